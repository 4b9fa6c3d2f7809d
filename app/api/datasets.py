from fastapi import APIRouter

from app.schemas import DatasetPublic
from app.services.datasets import CATALOG

router = APIRouter(prefix="/datasets", tags=["datasets"])


@router.get("", response_model=list[DatasetPublic])
def list_datasets() -> list[DatasetPublic]:
    """List the data sets a run can train on."""
    return [
        DatasetPublic(name=info.name, task=info.task, input_dim=info.input_dim, description=info.description)
        for info in CATALOG.values()
    ]
