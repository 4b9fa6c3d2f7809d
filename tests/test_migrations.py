"""Alembic up and down on SQLite and PostgreSQL; the ORM and the migrations describe the same schema."""

from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from app.core import migrate as migrations
from app.models import Base

TABLES = {"runs", "run_tags", "epoch_metrics", "run_artifacts", "sweeps", "checkpoints", "run_frames"}


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'empty.db'}"
    return str(request.getfixturevalue("postgres_url"))


def table_names(url: str) -> set[str]:
    engine = sa.create_engine(url)
    try:
        return set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_upgrade_matches_the_models_and_downgrade_undoes_it(empty_database: str) -> None:
    migrations.upgrade(empty_database)
    assert TABLES | {"alembic_version"} == table_names(empty_database)
    engine = sa.create_engine(empty_database)
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []
    engine.dispose()

    migrations.downgrade(empty_database)
    assert table_names(empty_database) <= {"alembic_version"}
    migrations.upgrade(empty_database)
    assert TABLES <= table_names(empty_database)


def test_status_constraint_rejects_unknown_statuses(empty_database: str) -> None:
    migrations.upgrade(empty_database)
    engine = sa.create_engine(empty_database)
    insert = sa.text(
        "INSERT INTO runs (status, spec, epochs, progress_epoch, attempts, created_at) "
        "VALUES (:status, '{}', 1, 0, 0, CURRENT_TIMESTAMP)"
    )
    with engine.begin() as connection:
        connection.execute(insert, {"status": "queued"})
    with pytest.raises(sa.exc.IntegrityError), engine.begin() as connection:
        connection.execute(insert, {"status": "exploded"})
    engine.dispose()
