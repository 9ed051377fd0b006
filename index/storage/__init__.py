"""Storage engines behind one interface (`Storage`): the embedded SQLite + FAISS engine, and
PostgreSQL with pgvector for bots that outgrow one process."""

from __future__ import annotations

from index.config import Settings
from index.storage.base import Storage, StorageUnavailable


def open_storage(settings: Settings) -> Storage:
    """The engine the settings name: PostgreSQL for a `database_url`, else the data folder."""
    if settings.database_url:
        from index.storage.postgres import PostgresStorage

        return PostgresStorage(settings.database_url, compact=settings.compact_encodings)
    from index.storage.sqlite import SQLiteStorage

    return SQLiteStorage(settings.data_dir, compact=settings.compact_encodings)


__all__ = ["Storage", "StorageUnavailable", "open_storage"]
