"""cdss: versioned checklists for ketamine and esketamine treatment of depression,
with tamper-evident completion records.

The public names load on first use, so ``import cdss`` (and every ``cdss``
command) stays fast; see ``__all__`` for what is public.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cdss.catalog import Catalog
    from cdss.checklist import Checklist
    from cdss.errors import (
        CdssError,
        ContextError,
        IntegrityError,
        InvalidInput,
        NotFound,
        SessionStateError,
        StoreError,
        UsageError,
    )
    from cdss.plan import PlannedItem, RunContext, declare, plan
    from cdss.record import Record, RecordItem
    from cdss.session import Session, find_session
    from cdss.store import Store
    from cdss.store.sqlite import SqliteStore, open_store

_WHERE = {
    "Catalog": "cdss.catalog",
    "Checklist": "cdss.checklist",
    "CdssError": "cdss.errors",
    "ContextError": "cdss.errors",
    "IntegrityError": "cdss.errors",
    "InvalidInput": "cdss.errors",
    "NotFound": "cdss.errors",
    "SessionStateError": "cdss.errors",
    "StoreError": "cdss.errors",
    "UsageError": "cdss.errors",
    "PlannedItem": "cdss.plan",
    "RunContext": "cdss.plan",
    "declare": "cdss.plan",
    "plan": "cdss.plan",
    "Record": "cdss.record",
    "RecordItem": "cdss.record",
    "Session": "cdss.session",
    "find_session": "cdss.session",
    "Store": "cdss.store",
    "SqliteStore": "cdss.store.sqlite",
    "open_store": "cdss.store.sqlite",
}
__all__ = [
    "Catalog",
    "CdssError",
    "Checklist",
    "ContextError",
    "IntegrityError",
    "InvalidInput",
    "NotFound",
    "PlannedItem",
    "Record",
    "RecordItem",
    "RunContext",
    "Session",
    "SessionStateError",
    "SqliteStore",
    "Store",
    "StoreError",
    "UsageError",
    "declare",
    "find_session",
    "open_store",
    "plan",
]


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'cdss' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
