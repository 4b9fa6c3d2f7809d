from fastapi import APIRouter, Response, status
from sqlalchemy import text

from app.core import queue
from app.core.db import session_scope
from app.schemas import Health, Readiness

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health)
def healthz() -> Health:
    """Liveness: the API process answers."""
    return Health(status="ok")


@router.get(
    "/readyz",
    response_model=Readiness,
    responses={503: {"model": Readiness, "description": "A dependency is down; `checks` says which."}},
)
def readyz(response: Response) -> Readiness:
    """Readiness: the database and the broker both answer."""
    checks: dict[str, str] = {}
    try:
        with session_scope() as session:
            session.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:  # any failure to answer means "not ready"
        checks["database"] = f"unavailable: {type(exc).__name__}: {exc}"
    problem = queue.broker_problem()
    checks["broker"] = "ok" if problem is None else f"unavailable: {problem}"
    ready = all(value == "ok" for value in checks.values())
    if not ready:
        response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    return Readiness(status="ok" if ready else "unavailable", checks=checks)
