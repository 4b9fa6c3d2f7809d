# Sweepyard: `make run` starts the service, `make test` runs the tests. Both install into .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Pinned so that pip takes the CPU build; a looser pin can pull a multi-GB CUDA build instead.
TORCH := torch==2.13.0

.PHONY: install run test lint bench clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet $(TORCH)
	$(BIN)/python -m pip install --quiet -e '.[worker,dev]'
	touch $@

run: install
	$(BIN)/sweepyard up

test: install
	$(BIN)/pytest

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy app worker tests benchmarks

bench: install
	$(BIN)/python -m benchmarks.table2
	$(BIN)/python -m benchmarks.default_run
	$(BIN)/python -m benchmarks.sweep_reads
	$(BIN)/python -m benchmarks.bundle_size

clean:
	rm -rf var .pytest_cache .mypy_cache .ruff_cache
