"""Shared fixtures: real settings, one embedding model per session, libraries in temporary
folders (or databases), and a real HTTP server on 127.0.0.1 that serves article pages and
misbehaves on purpose.

Nothing here is a mock: the model is the converted packaged model, storage is real SQLite and
FAISS or a real PostgreSQL with pgvector, and pages travel over real sockets. Tests in modules
marked `both_engines` run once per storage engine.
"""

from __future__ import annotations

import contextlib
import os
import random
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from index.config import Settings, load_settings
from index.embeddings import Embedder
from index.library import Library
from tests.postgres import LocalPostgres

DATA_DIR = Path(__file__).resolve().parent / "data"

# Environment variables passed through to the settings the tests use. Everything else a
# developer may have set (ARTICLEBOT_MIN_CONFIDENCE, ARTICLEBOT_CONFIG, ...) is ignored, so the
# suite tests the documented defaults. The model cache may point elsewhere while developing.
PASSED_THROUGH = ("ARTICLEBOT_MODEL_CACHE_DIR",)

# How long the server's slow routes take; tests use a much shorter fetch timeout.
SLOW_SECONDS = 5.0
# The size of the server's oversize pages; tests set `fetch_max_bytes` well below it.
HUGE_BYTES = 600_000
# The seed article (a German news text from shared/seed), as plain text.
SEED_ARTICLE = "seed_russland_iran.txt"


def fixture_path(name: str) -> Path:
    """The path of a file in `tests/data`."""
    return DATA_DIR / name


def fixture_bytes(name: str) -> bytes:
    """The raw bytes of a file in `tests/data`."""
    return fixture_path(name).read_bytes()


def fixture_text(name: str) -> str:
    """A UTF-8 file of `tests/data` as text."""
    return fixture_path(name).read_text(encoding="utf-8")


def settings_environ() -> dict[str, str]:
    """The environment `load_settings` sees in tests: only the passed-through variables."""
    return {key: os.environ[key] for key in PASSED_THROUGH if key in os.environ}


@pytest.fixture
def read_fixture() -> Callable[[str], str]:
    """A helper that returns a `tests/data` file as text."""
    return fixture_text


@pytest.fixture
def clean_environ(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """Removes every ARTICLEBOT_* variable except the passed-through ones from os.environ."""
    for key in list(os.environ):
        if key.startswith("ARTICLEBOT_") and key not in PASSED_THROUGH:
            monkeypatch.delenv(key)
    return monkeypatch


ENGINES = ("sqlite", "postgresql")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Tests marked `both_engines` (and not `embedded_only`) run once per storage engine."""
    definition = metafunc.definition
    if (
        "engine" in metafunc.fixturenames
        and definition.get_closest_marker("both_engines")
        and not definition.get_closest_marker("embedded_only")
    ):
        metafunc.parametrize("engine", ENGINES, scope="module")


@pytest.fixture(scope="module")
def engine() -> str:
    """The storage engine of a test's libraries (see `pytest_generate_tests`)."""
    return "sqlite"


@pytest.fixture(scope="session")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalPostgres]:
    """A PostgreSQL server with pgvector on 127.0.0.1 for the whole session."""
    server = LocalPostgres(tmp_path_factory.mktemp("postgres")).start()
    yield server
    server.stop()


def engine_settings(folder: Path, engine: str, request: pytest.FixtureRequest) -> Settings:
    """Default settings with data in `folder` (and, for PostgreSQL, a new database);
    private URLs allowed for the local server."""
    database = request.getfixturevalue("postgres").new_database() if engine != "sqlite" else ""
    return load_settings(settings_environ()).with_overrides(
        data_dir=folder, database_url=database, allow_private_urls=True
    )


@pytest.fixture
def settings(tmp_path: Path, engine: str, request: pytest.FixtureRequest) -> Settings:
    """Default settings with data in `tmp_path`, on the test's storage engine."""
    return engine_settings(tmp_path, engine, request)


@pytest.fixture(scope="session")
def embedder() -> Embedder:
    """One loaded embedding model for the whole session (provisioned on first use if needed)."""
    model = Embedder(load_settings(settings_environ()))
    model.warm_up()
    return model


@pytest.fixture
def library(settings: Settings, embedder: Embedder) -> Iterator[Library]:
    """An empty library in `tmp_path`, sharing the session's model."""
    lib = Library(settings, embedder=embedder)
    yield lib
    lib.close()


# ---- the local article server ---------------------------------------------------------------

_CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".txt": "text/plain; charset=utf-8",
    ".md": "text/markdown; charset=utf-8",
}
_BINARY_ROUTES = {
    "/report.pdf": ("application/pdf", b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< >>\nendobj\n"),
    "/photo.jpg": ("image/jpeg", b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01" + b"\x00" * 64),
    "/archive.zip": ("application/zip", b"PK\x03\x04\x14\x00\x00\x00\x08\x00" + b"\x00" * 64),
}


def _huge_page() -> bytes:
    paragraph = (
        "<p>Der Gemeinderat diskutierte bis spät in die Nacht über das Budget des kommenden "
        "Jahres, ohne sich auf einen Kompromiss zu einigen.</p>\n"
    )
    body = paragraph * (HUGE_BYTES // len(paragraph) + 1)
    return f"<html><head><title>Sehr lang</title></head><body>{body}</body></html>".encode()


class ArticleServer:
    """A threaded HTTP server on 127.0.0.1 serving `tests/data` plus special routes.

    - `/<file>`: a file of tests/data (query strings ignored), `/missing` and others: 404
    - `/redirect/<path>`: 302 to `/<path>`; `/loop/<n>`: redirects forever
    - `/to-private/<path>`: 302 to `http://localhost:<port>/<path>` (a private address)
    - `/slow`: answers after SLOW_SECONDS; `/drip`: sends an article in small pieces, slowly
    - `/report.pdf`, `/photo.jpg`, `/archive.zip`: non-article content types
    - `/huge` (with Content-Length) and `/huge-stream` (without): HUGE_BYTES of HTML
    - `/latin1`: the German article in ISO-8859-1, declared only in the HTTP header
    - `/plain`: the seed article as text/plain; `/empty`: an empty HTML page
    - `/junk`: random bytes declared as HTML; `/odd-charset`: text/plain in an unknown charset
    """

    def __init__(self) -> None:
        self.paths: list[str] = []
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                with server._lock:
                    server.paths.append(self.path)
                server._route(self)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.base = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> ArticleServer:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def url(self, path: str) -> str:
        return self.base + "/" + path.lstrip("/")

    def mark(self) -> int:
        """A position in the request log, for `requested_since`."""
        with self._lock:
            return len(self.paths)

    def requested_since(self, mark: int) -> list[str]:
        with self._lock:
            return self.paths[mark:]

    # routing

    def _route(self, handler: BaseHTTPRequestHandler) -> None:
        path = urlsplit(handler.path).path
        if path.startswith("/redirect/"):
            return _redirect(handler, "/" + path.removeprefix("/redirect/"))
        if path.startswith("/to-private/"):
            target = f"http://localhost:{self.port}/" + path.removeprefix("/to-private/")
            return _redirect(handler, target)
        if path.startswith("/loop/"):
            step = int(path.removeprefix("/loop/") or 0)
            return _redirect(handler, f"/loop/{step + 1}")
        if path in _BINARY_ROUTES:
            content_type, body = _BINARY_ROUTES[path]
            return _send(handler, 200, content_type, body)
        if path == "/slow":
            time.sleep(SLOW_SECONDS)
            return _send(handler, 200, _CONTENT_TYPES[".html"], fixture_bytes("en_article.html"))
        if path == "/drip":
            return _drip(handler, fixture_bytes("en_article.html"))
        if path in {"/huge", "/huge-stream"}:
            return _send(
                handler, 200, _CONTENT_TYPES[".html"], _huge_page(), length=path == "/huge"
            )
        if path == "/latin1":
            html = fixture_text("de_article.html").replace('<meta charset="utf-8">', "")
            body = html.encode("iso-8859-1", errors="replace")
            return _send(handler, 200, "text/html; charset=iso-8859-1", body)
        if path == "/plain":
            return _send(handler, 200, _CONTENT_TYPES[".txt"], fixture_bytes(SEED_ARTICLE))
        if path == "/odd-charset":
            return _send(
                handler, 200, "text/plain; charset=x-unheard-of", fixture_bytes(SEED_ARTICLE)
            )
        if path == "/empty":
            return _send(handler, 200, _CONTENT_TYPES[".html"], b"")
        if path == "/junk":
            junk = random.Random(1).randbytes(20_000)
            return _send(handler, 200, _CONTENT_TYPES[".html"], junk)
        file = DATA_DIR / path.lstrip("/")
        if path.count("/") == 1 and file.suffix in _CONTENT_TYPES and file.is_file():
            return _send(handler, 200, _CONTENT_TYPES[file.suffix], file.read_bytes())
        return _send(handler, 404, "text/html; charset=utf-8", b"<h1>404 Not Found</h1>")


def _send(
    handler: BaseHTTPRequestHandler,
    status: int,
    content_type: str,
    body: bytes,
    length: bool = True,
) -> None:
    handler.send_response(status)
    handler.send_header("Content-Type", content_type)
    if length:
        handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    # The client may stop reading, as it should for oversize pages.
    with contextlib.suppress(BrokenPipeError, ConnectionResetError):
        handler.wfile.write(body)


def _redirect(handler: BaseHTTPRequestHandler, location: str) -> None:
    handler.send_response(302)
    handler.send_header("Location", location)
    handler.send_header("Content-Length", "0")
    handler.end_headers()


def _drip(handler: BaseHTTPRequestHandler, body: bytes, pieces: int = 25) -> None:
    """A page that arrives a little at a time: each piece well within a short read timeout,
    the whole page far beyond it."""
    handler.send_response(200)
    handler.send_header("Content-Type", _CONTENT_TYPES[".html"])
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    size = len(body) // pieces + 1
    try:
        for start in range(0, len(body), size):
            handler.wfile.write(body[start : start + size])
            handler.wfile.flush()
            time.sleep(SLOW_SECONDS / pieces)
    except (BrokenPipeError, ConnectionResetError):
        pass


@pytest.fixture(scope="session")
def article_server() -> Iterator[ArticleServer]:
    """A real HTTP server on 127.0.0.1 for URL ingestion (see `ArticleServer` for its routes)."""
    with ArticleServer() as server:
        yield server


# ---- helpers for tests that check a library is unchanged --------------------------------------


def library_state(library: Library, chat_id: str) -> tuple[list[tuple], int]:
    """What a user can observe of a chat's library: its articles and the number of indexed
    sentences."""
    articles = [
        (a.number, a.title, a.text_hash, a.sentence_count) for a in library.articles(chat_id)
    ]
    return articles, library.storage.vector_count(chat_id, library.embedder.model_key)


@pytest.fixture
def stocked_library(library: Library) -> Library:
    """A library whose chat "readers" holds one short article (to see that bad input leaves it
    intact)."""
    library.add_text(
        "readers",
        "Tiefbauamt saniert die Wettsteinbrücke\n"
        "Die Wettsteinbrücke in Basel wird ab dem 3. März für zwei Monate saniert. "
        "Autos werden über die Johanniterbrücke umgeleitet, Trams fahren weiterhin.",
    )
    return library
