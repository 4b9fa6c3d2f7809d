"""Alembic environment: the URL comes from Sweepyard's settings unless the caller set one."""

from alembic import context

from app.core.db import get_engine
from app.models import Base

config = context.config
url = config.get_main_option("sqlalchemy.url") or None


def run_migrations_offline() -> None:
    context.configure(
        url=url or str(get_engine().url),
        target_metadata=Base.metadata,
        literal_binds=True,
        render_as_batch=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    with get_engine(url).connect() as connection:
        # Batch mode lets ALTER-heavy migrations run on SQLite too.
        context.configure(
            connection=connection, target_metadata=Base.metadata, render_as_batch=True, compare_type=True
        )
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
