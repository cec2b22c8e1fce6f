"""Storage URLs resolved and checked before any work, without creating a store.

``resolve_storage_url`` gives the URL a command uses (option, ``$AUTONAT_STORAGE``, the file
named by ``$AUTONAT_STORAGE_FILE``, or the embedded default), an embedded store's file made
absolute so that Ray actors, whose working folder differs, open the same file.
``check_reachable`` connects once (PostgreSQL) or checks the folder (SQLite);
``require_existing_store`` refuses a missing SQLite file, for commands that only read.
``redact`` hides a URL's password wherever one is printed. This module imports SQLAlchemy
only to connect and to parse URLs.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from autonat_search.errors import StorageError

__all__ = [
    "DEFAULT_MAX_WAIT",
    "EMBEDDED_DEFAULT",
    "STORAGE_ENV",
    "STORAGE_FILE_ENV",
    "check_reachable",
    "redact",
    "require_existing_store",
    "resolve_storage_url",
    "url_has_password",
]

STORAGE_ENV = "AUTONAT_STORAGE"
STORAGE_FILE_ENV = "AUTONAT_STORAGE_FILE"
EMBEDDED_DEFAULT = "sqlite:///autonat-search.db"
# Seconds a database outage is waited out (storage.resilient) before a worker gives up.
DEFAULT_MAX_WAIT = 300.0
_SQLITE = re.compile(r"^(?P<driver>sqlite(?:\+\w+)?):///(?P<path>[^?]*)(?P<query>\?.*)?$")
_CONNECT_TIMEOUT_S = 5


def _sqlite_path(url: str) -> Path | None:
    match = _SQLITE.match(url)
    if match is None or not match["path"] or match["path"] == ":memory:":
        return None
    return Path(match["path"])


def _url_from_environment() -> str:
    found = os.environ.get(STORAGE_ENV)
    if found:
        return found
    file_name = os.environ.get(STORAGE_FILE_ENV)
    if not file_name:
        return EMBEDDED_DEFAULT
    path = Path(file_name).expanduser()
    try:
        text = path.read_text().strip()
    except OSError as error:
        raise StorageError(
            f"{STORAGE_FILE_ENV}: cannot read {path} ({error.strerror or error})"
        ) from None
    if not text or len(text.splitlines()) != 1:
        raise StorageError(f"{STORAGE_FILE_ENV}: {path} must hold the storage URL on one line")
    return text


def resolve_storage_url(url: str | None) -> str:
    """``url``, else ``$AUTONAT_STORAGE``, else the content of ``$AUTONAT_STORAGE_FILE``, else
    the embedded default; a relative SQLite file resolved against the current folder."""
    url = url or _url_from_environment()
    match = _SQLITE.match(url)
    path = _sqlite_path(url)
    if match is None or path is None or path.is_absolute():
        return url
    return f"{match['driver']}:///{path.expanduser().resolve()}{match['query'] or ''}"


def url_has_password(url: str) -> bool:
    """Whether ``url`` carries a password (an unparsable URL is reported where it is opened)."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(url).password is not None
    except ArgumentError:
        return False


def require_existing_store(url: str) -> None:
    """For commands that only read: an embedded store's file must exist (never created)."""
    path = _sqlite_path(url)
    if path is not None and not path.is_file():
        raise StorageError(
            f"no store at {path} (nothing to read; create a study with start-study, or give "
            f"--storage or ${STORAGE_ENV})"
        )


def redact(url: str) -> str:
    """The URL as it may be printed: password replaced by ***."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<unparsable storage URL>"


def check_reachable(url: str) -> None:
    """Fail now, in one line, if the storage cannot be used; creates nothing."""
    path = _sqlite_path(url)
    if path is not None:
        folder = next((p for p in (path.parent, *path.parent.parents) if p.exists()), Path("/"))
        if not os.access(folder if not path.exists() else path, os.W_OK):
            raise StorageError(f"the embedded store {path} is not writable")
        return
    import sqlalchemy
    from sqlalchemy.exc import ArgumentError, SQLAlchemyError

    try:
        parsed = sqlalchemy.engine.make_url(url)
    except ArgumentError:
        raise StorageError(f"not a storage URL: {redact(url)}") from None
    if not parsed.drivername.startswith("postgresql"):
        raise StorageError(
            f"unsupported storage {redact(url)}: use postgresql+psycopg2://... or sqlite:///..."
        )
    engine = sqlalchemy.create_engine(
        url, connect_args={"connect_timeout": _CONNECT_TIMEOUT_S}, poolclass=sqlalchemy.NullPool
    )
    try:
        with engine.connect():
            pass
    except SQLAlchemyError as error:
        reason = str(getattr(error, "orig", None) or error).strip().splitlines()[0]
        raise StorageError(f"storage {redact(url)} is unreachable: {reason}") from error
    finally:
        engine.dispose()
