"""Which store a ``--store`` value (or ``CDSS_STORE``) names, and opening it.

A ``postgresql://`` (or ``postgres://``) URL names the shared PostgreSQL store;
anything else is the path of an embedded SQLite file. Commands take the
location as text, never as a path: a path type would fold the URL's ``//``.

One rule lives here rather than in each command: only ``cdss run`` (and
``cdss store init`` / ``copy``) may create a store. Every other command works
on records that must already exist, so a mistyped location is an error, not a
new empty store that then lists no sessions.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, TypeAlias

from cdss.errors import NotFound

if TYPE_CHECKING:
    from cdss.store.postgres import PostgresStore
    from cdss.store.sqlite import SqliteStore

ENV_STORE = "CDSS_STORE"
Location = str | Path
OpenedStore: TypeAlias = "SqliteStore | PostgresStore"
"""What ``open_store`` returns: a ``Store`` that is also a context manager (``with`` closes it)."""


def resolve(location: Location | None) -> str:
    """The location given, else ``CDSS_STORE``, else the default SQLite file in the user's data folder."""
    if location is not None and str(location) != "":
        return str(location)
    from_env = os.environ.get(ENV_STORE)
    if from_env:
        return from_env
    from cdss.store.sqlite import default_path

    return str(default_path())


def is_url(location: Location) -> bool:
    from cdss.store.postgres import is_url as postgres_url

    return isinstance(location, str) and postgres_url(location)


def describe(location: Location | None) -> str:
    """The location as messages show it: a path as it is, a URL without its password."""
    resolved = resolve(location)
    if is_url(resolved):
        from cdss.store.postgres import redacted

        return redacted(resolved)
    return resolved


def exists(location: Location | None) -> bool:
    """Whether a store file is there; a server's store is taken to exist (opening it will say)."""
    resolved = resolve(location)
    return is_url(resolved) or Path(resolved).exists()


def shown(store: object) -> str:
    """How messages name an open store: its file, or its URL without the password."""
    from cdss.store.sqlite import SqliteStore

    if isinstance(store, SqliteStore):
        return str(store.path)
    from cdss.store.postgres import PostgresStore

    if isinstance(store, PostgresStore):
        return store.name.removeprefix("store ")
    return repr(store)


def open_store(
    location: Location | None = None, *, create: bool = False, read_only: bool = False
) -> OpenedStore:
    """Open the store at ``location`` (see ``resolve``); the caller closes it (``with`` works).

    ``create`` makes an empty store where there is none; without it a missing
    file, or a database without a cdss store, is ``NotFound``. ``read_only``
    (audits, listings) never creates, migrates or writes: it works on
    read-only media and with an auditor's read-only role.
    """
    resolved = resolve(location)
    if is_url(resolved):
        from cdss.store.postgres import PostgresStore

        return PostgresStore(resolved, create=create, read_only=read_only)
    from cdss.store.sqlite import SqliteStore

    path = Path(resolved)
    if not create and not path.exists():
        raise NotFound(
            f"store {path} does not exist: no sessions have been recorded there "
            f"(`cdss run` creates it with the first session, `cdss store init {path}` an empty one)"
        )
    if read_only:
        return SqliteStore(path, read_only=True)
    if create and location is None and not os.environ.get(ENV_STORE) and not path.parent.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
    return SqliteStore(path)
