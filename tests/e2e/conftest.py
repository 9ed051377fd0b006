"""End-to-end fixtures: the Bot API stand-in, a local news site, and the real bot process.

The bot runs exactly as users start it (`python -m bot`), in a subprocess whose environment
points it at the stand-in (TELEGRAM_BASE_URL) and at a fresh data folder. It takes a few
seconds to start (imports and model loading), so each test module starts it once; tests
keep out of each other's way by talking in chats of their own.
"""

from __future__ import annotations

import functools
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.telegram_standin import BotApiStandin

TOKEN = "123456:E2E-TEST-TOKEN"
BOT_USERNAME = "article_test_bot"
PAGES = Path(__file__).parent / "pages"
# What the pages say: two German news articles (and a short note).
IRAN_TITLE = "Russland bietet Trump Hilfe bei Kommunikation mit Iran an"
STRIKE_TITLE = "Lokführerstreik legt Bahnverkehr lahm"
RUSSIA_OFFERS_HELP = (
    "Russland hat sich bereiterklärt, die Regierung von US-Präsident Donald Trump (78) bei der "
    "Kommunikation mit dem Iran zu unterstützen."
)
ROOT = Path(__file__).resolve().parents[2]
READY = f"Running as @{BOT_USERNAME}"
START_TIMEOUT = 120.0  # seconds for imports and model loading on a slow machine


class _NewsPages(SimpleHTTPRequestHandler):
    """Serves tests/e2e/pages; `?delay=SECONDS` makes a page slow, like a sluggish site."""

    def do_GET(self) -> None:
        delay = parse_qs(urlsplit(self.path).query).get("delay")
        if delay:
            time.sleep(float(delay[0]))
        super().do_GET()

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _NewsSite(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that hangs up early (the bot stops reading an oversized page) is fine


@pytest.fixture(scope="session")
def news_site() -> Iterator[str]:
    """The base URL of a local web server holding the German news pages."""
    server = _NewsSite(("127.0.0.1", 0), functools.partial(_NewsPages, directory=str(PAGES)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


class BotProcess:
    """The real bot (`python -m bot`) talking to a stand-in; can be stopped and started again.
    `environment` adds settings (a database, webhook mode); `ready` is the log line that says
    the bot is taking updates."""

    def __init__(
        self,
        standin: BotApiStandin,
        data_dir: Path,
        environment: dict[str, str] | None = None,
        ready: str = READY,
        name: str = "bot",
    ) -> None:
        self.standin = standin
        self.data_dir = data_dir
        self.environment = environment or {}
        self.ready = ready
        self.log_path = data_dir / f"{name}.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = os.environ | {
            "TELEGRAM_BOT_TOKEN": self.standin.token,
            "TELEGRAM_BASE_URL": self.standin.base_url,
            "TELEGRAM_BASE_FILE_URL": self.standin.base_file_url,
            "ARTICLEBOT_DATA_DIR": str(self.data_dir),
            "ARTICLEBOT_ALLOW_PRIVATE_URLS": "1",
            **self.environment,
        }
        started = self.log.count(self.ready)
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "bot"], cwd=ROOT, env=env, stdout=log, stderr=log
            )
        # The bot logs its username once the model is loaded and its commands are registered,
        # right before it starts polling; messages sent before then wait in the stand-in.
        deadline = time.monotonic() + START_TIMEOUT
        while self.log.count(self.ready) == started:
            if self.process.poll() is not None:
                raise AssertionError(f"the bot exited with {self.process.returncode}:\n{self.log}")
            if time.monotonic() > deadline:
                raise AssertionError(f"the bot did not start in {START_TIMEOUT}s:\n{self.log}")
            time.sleep(0.1)

    def stop(self, sig: int = signal.SIGTERM) -> int:
        """Signal the bot and return its exit code."""
        assert self.process is not None
        self.process.send_signal(sig)
        try:
            return self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise AssertionError(f"the bot did not stop on signal {sig}:\n{self.log}") from None

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


@pytest.fixture(scope="module")
def standin() -> Iterator[BotApiStandin]:
    with BotApiStandin(TOKEN, BOT_USERNAME) as server:
        yield server


@pytest.fixture(scope="module")
def bot(standin: BotApiStandin, tmp_path_factory: pytest.TempPathFactory) -> Iterator[BotProcess]:
    process = BotProcess(standin, tmp_path_factory.mktemp("bot-data"))
    process.start()
    yield process
    if process.process.poll() is None:
        assert process.stop() == 0, process.log
