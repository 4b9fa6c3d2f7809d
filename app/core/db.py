"""Engine and sessions: one engine per database URL, one context manager that owns each transaction."""

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from app.core.config import get_settings

T = TypeVar("T")
# What read-only helpers take: an ORM session, or a bare connection on the polled read paths.
Reader = Session | Connection


def dialect_name(reader: Reader) -> str:
    return reader.dialect.name if isinstance(reader, Connection) else reader.get_bind().dialect.name


class DatabaseUnavailable(Exception):
    """The database could not be reached or refused the work for a reason outside the request."""


def _configure_sqlite(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets the API read while a worker writes; the busy timeout makes writers queue instead of failing.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


_engines: dict[str, Engine] = {}
_autocommit_engines: dict[str, Engine] = {}
_session_factories: dict[tuple[str, bool], sessionmaker[Session]] = {}


def get_engine(url: str | None = None) -> Engine:
    """The engine for this URL (default: the settings' database), made once per process."""
    url = url or get_settings().resolved_database_url
    if url not in _engines:
        _engines[url] = _create_engine(url)
    return _engines[url]


def _create_engine(url: str) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        event.listen(engine, "connect", _configure_sqlite)
        return engine
    # Enough connections for every thread of the API's pool (40) to hold one at once. No pre-ping: its
    # round trip on every checkout cost a quarter of a status read; a connection that a database restart
    # killed is noticed on use instead, which invalidates the whole pool (reads then retry once, below).
    # A bounded connect: the polled reads run on the API's event loop (see app/api/runs.py).
    return create_engine(url, pool_size=20, max_overflow=30, connect_args={"connect_timeout": 5})


def forget_engines(close: bool = True) -> None:
    """Drop every engine: after a fork (close=False keeps the parent's connections intact) or when the
    settings change."""
    for engine in _engines.values():
        engine.dispose(close=close)
    _engines.clear()
    _autocommit_engines.clear()
    _session_factories.clear()


def _autocommit_engine(url: str) -> Engine:
    if url not in _autocommit_engines:
        _autocommit_engines[url] = get_engine(url).execution_options(isolation_level="AUTOCOMMIT")
    return _autocommit_engines[url]


def _unavailable(exc: DBAPIError) -> bool:
    return isinstance(exc, OperationalError) or exc.connection_invalidated


def read(work: Callable[[Connection], T], url: str | None = None) -> T:
    """Run a read on a pooled connection in autocommit mode, without an ORM session: the lightest path,
    for what clients poll. A connection found dead (the database restarted) is replaced and the read,
    which changes nothing, runs once more."""
    engine = _autocommit_engine(url or get_settings().resolved_database_url)
    for attempt in (1, 2):
        try:
            with engine.connect() as connection:
                return work(connection)
        except DBAPIError as exc:
            if attempt == 1 and exc.connection_invalidated:
                continue
            if _unavailable(exc):
                raise DatabaseUnavailable(str(exc.orig).strip().splitlines()[0]) from exc
            raise
    raise AssertionError("unreachable")


@contextmanager
def session_scope(url: str | None = None, read_only: bool = False) -> Iterator[Session]:
    """Commit on success, roll back on any error, and report an unreachable database as one error type.

    read_only: for the polled read paths, statements run in autocommit mode, which saves the BEGIN and
    COMMIT round trips a transaction costs; each statement still sees committed data only.
    """
    key = (url or get_settings().resolved_database_url, read_only)
    if key not in _session_factories:
        bind = _autocommit_engine(key[0]) if read_only else get_engine(key[0])
        _session_factories[key] = sessionmaker(bind=bind, expire_on_commit=False)
    session = _session_factories[key]()
    try:
        yield session
        session.commit()
    except (OperationalError, DBAPIError) as exc:
        session.rollback()
        if _unavailable(exc):
            raise DatabaseUnavailable(str(exc.orig).strip().splitlines()[0]) from exc
        raise
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
