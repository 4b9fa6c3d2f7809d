"""Dependencies the routers share."""

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Path
from sqlalchemy.orm import Session

from app.core.db import session_scope
from app.models import Run
from app.services import runs as run_service


def get_db() -> Iterator[Session]:
    with session_scope() as session:
        yield session


SessionDep = Annotated[Session, Depends(get_db)]
RunId = Annotated[int, Path(ge=1, le=2**63 - 1, description="The run's id.")]


def get_run(session: SessionDep, run_id: RunId) -> Run:
    return run_service.get_run(session=session, run_id=run_id)


RunDep = Annotated[Run, Depends(get_run)]
