# Sweepyard images. Three final targets:
#
#   api          the HTTP API and `sweepyard migrate`; base dependencies only, no torch (app/ never imports it)
#     docker build --target api -t sweepyard-api .
#
#   worker       Celery workers that train on CPU (the default target)
#     docker build --target worker -t sweepyard-worker .
#     By default torch comes from the ordinary package index, whose Linux x86_64 wheels bundle the CUDA
#     libraries (several GB). For a slim CPU-only image point pip at PyTorch's CPU wheel index:
#     docker build --target worker \
#       --build-arg PIP_EXTRA_ARGS="--index-url <the PyTorch CPU wheel index>" -t sweepyard-worker .
#     TORCH_SPEC pins the version, e.g. --build-arg TORCH_SPEC="torch==2.5.1".
#
#   worker-cuda  the same worker with a CUDA build of torch, for hosts with an NVIDIA GPU
#     docker build --target worker-cuda -t sweepyard-worker-cuda .
#     docker run --gpus all ... sweepyard-worker-cuda   (compose: see the note in docker-compose.yml)
#     The torch wheels ship their own CUDA runtime, so the base image needs no CUDA toolkit: the host needs
#     only the NVIDIA driver and the NVIDIA Container Toolkit. To pick a CUDA version, point pip at the
#     matching PyTorch wheel index: --build-arg CUDA_PIP_EXTRA_ARGS="--index-url <the PyTorch cuXXX index>".
#     Runs with `device: auto` train on the GPU when the worker sees one.
#
# The project is installed editable from /app: app/core/migrate.py finds /app/alembic.ini and
# /app/migrations next to the package source.

ARG PYTHON_IMAGE=python:3.11-slim

FROM ${PYTHON_IMAGE} AS base
# A container is reached from outside: the API listens on every interface, not just loopback.
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    SWEEPYARD_HOST=0.0.0.0 \
    SWEEPYARD_VAR_DIR=/app/var
RUN useradd --create-home --uid 10001 --user-group sweepyard
WORKDIR /app
# The base dependencies first, from pyproject.toml alone, so a code change does not reinstall them.
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > /tmp/requirements.txt \
    && pip install --no-cache-dir -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt


FROM base AS api
COPY . .
RUN pip install --no-cache-dir -e . \
    && python -m compileall -q app migrations \
    && mkdir -p /app/var && chown sweepyard:sweepyard /app/var
USER sweepyard
EXPOSE 8000
# No curl in slim images; the standard library is enough.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD python -c "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('SWEEPYARD_PORT', '8000'), timeout=3)"
CMD ["sweepyard", "api"]


FROM base AS worker-cuda
ARG CUDA_TORCH_SPEC="torch>=2.4"
ARG CUDA_PIP_EXTRA_ARGS=""
ENV NVIDIA_VISIBLE_DEVICES=all \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility
# torch before the source: the biggest layer stays cached across code changes.
RUN pip install --no-cache-dir $CUDA_PIP_EXTRA_ARGS "$CUDA_TORCH_SPEC"
COPY . .
RUN pip install --no-cache-dir -e '.[worker]' \
    && python -m compileall -q app worker migrations \
    && mkdir -p /app/var && chown sweepyard:sweepyard /app/var
USER sweepyard
CMD ["sweepyard", "worker"]


# Last, so that a plain `docker build .` gives the CPU worker.
FROM base AS worker
ARG TORCH_SPEC="torch>=2.4"
ARG PIP_EXTRA_ARGS=""
# torch before the source: the biggest layer stays cached across code changes.
RUN pip install --no-cache-dir $PIP_EXTRA_ARGS "$TORCH_SPEC"
COPY . .
RUN pip install --no-cache-dir -e '.[worker]' \
    && python -m compileall -q app worker migrations \
    && mkdir -p /app/var && chown sweepyard:sweepyard /app/var
USER sweepyard
CMD ["sweepyard", "worker"]
