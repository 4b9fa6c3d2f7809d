"""The FastAPI application."""

import logging

from fastapi import APIRouter, FastAPI, Request, status
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse

from app.api import datasets, events, health, plots, runs, sweeps
from app.core.cache import ImmutableResponses
from app.core.config import get_settings
from app.core.db import DatabaseUnavailable
from app.core.security import BearerTokenMiddleware, BodySizeLimitMiddleware
from app.services.errors import Conflict, NotFound, Unprocessable

API_PREFIX = "/api/v1"
DESCRIPTION = """
Sweepyard trains small feed-forward networks on toy data sets (noisy XOR, a 1-D regression) and keeps
every epoch's metrics. Submit a run spec, poll the run, read its loss history.

```
curl -X POST http://127.0.0.1:8000/api/v1/runs -H 'Content-Type: application/json' -d '{}'
curl http://127.0.0.1:8000/api/v1/runs/1
curl 'http://127.0.0.1:8000/api/v1/runs/1/metrics?format=csv'
```
"""


def create_app() -> FastAPI:
    settings = get_settings()
    logging.basicConfig(level=settings.log_level)
    app = FastAPI(title="Sweepyard", version="1.0", description=DESCRIPTION)
    app.state.succeeded_responses = ImmutableResponses(max_bytes=64 * 2**20)

    # Outermost last: CORS answers preflights before the token check; the size limit guards the body.
    app.add_middleware(BodySizeLimitMiddleware, limit=settings.max_body_bytes)
    if settings.api_token is not None:
        app.add_middleware(BearerTokenMiddleware, token=settings.api_token.get_secret_value())
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type"],
        )

    api = APIRouter(prefix=API_PREFIX)
    api.include_router(datasets.router)
    api.include_router(runs.router)
    api.include_router(sweeps.router)
    api.include_router(events.router)
    api.include_router(plots.router)
    app.include_router(api)
    app.include_router(health.router)

    @app.exception_handler(NotFound)
    def not_found(_request: Request, exc: NotFound) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=status.HTTP_404_NOT_FOUND)

    @app.exception_handler(Unprocessable)
    def unprocessable(_request: Request, exc: Unprocessable) -> JSONResponse:
        detail = [{"loc": list(exc.loc), "msg": str(exc), "type": "value_error"}]
        return JSONResponse({"detail": detail}, status_code=status.HTTP_422_UNPROCESSABLE_CONTENT)

    @app.exception_handler(Conflict)
    def conflict(_request: Request, exc: Conflict) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=status.HTTP_409_CONFLICT)

    @app.exception_handler(DatabaseUnavailable)
    def database_unavailable(_request: Request, exc: DatabaseUnavailable) -> JSONResponse:
        return JSONResponse(
            {"detail": f"the database is unavailable, try again shortly ({exc})"},
            status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
            headers={"Retry-After": "5"},
        )

    return app
