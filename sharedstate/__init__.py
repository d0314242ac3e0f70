"""sharedstate: one shared, durable, versioned JSON store on Redis for a bot and its worker.

from sharedstate import SharedStore
store = SharedStore.from_url("redis://localhost:6379/0", namespace="mybot", client_name="bot")
store.put("config", {"a": 1})
"""

from sharedstate.aio import AsyncSharedStore
from sharedstate.errors import (
    ConfigurationError,
    DocumentNotFound,
    FeedTrimmed,
    InvalidDocument,
    SharedStateError,
    SnapshotError,
    StoreUnavailable,
    VersionConflict,
)
from sharedstate.mapping import AsyncStoreMapping, StoreMapping
from sharedstate.models import Change, Document, DocumentInfo, Written
from sharedstate.store import SharedStore

__version__ = "0.1.0"

__all__ = [
    "AsyncSharedStore",
    "AsyncStoreMapping",
    "Change",
    "ConfigurationError",
    "Document",
    "DocumentInfo",
    "DocumentNotFound",
    "FeedTrimmed",
    "InvalidDocument",
    "SharedStateError",
    "SharedStore",
    "SnapshotError",
    "StoreMapping",
    "StoreUnavailable",
    "VersionConflict",
    "Written",
    "__version__",
]
