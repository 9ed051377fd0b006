"""Webhook mode: Telegram posts each update to the bot's URL, and worker processes handle them.

    Telegram ──POST──▶ receiver ──▶ inbox (PostgreSQL) ──▶ Worker slots ──▶ the usual handlers

The receiver accepts only requests that carry the webhook's secret token (403 otherwise) and
look like an update (400 otherwise), stores the update and answers 200 at once; answering
takes as long as it takes, in the workers. Any number of processes on any number of machines
can run this with the same database (behind a proxy that spreads the requests); on one
machine, `--workers N` starts N of them sharing the port.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from urllib.parse import urlsplit

import psycopg
from aiohttp import web
from telegram.ext import Application

from bot.handlers import ALLOWED_UPDATES
from bot.inbox import Inbox, valid_update
from bot.worker import Worker
from index.config import Settings
from index.library import Library

logger = logging.getLogger(__name__)

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
# Parallel requests Telegram may make to the webhook.
MAX_CONNECTIONS = 40


def webhook_secret(token: str) -> str:
    """TELEGRAM_WEBHOOK_SECRET, or else one derived from the bot token, so every worker
    registers and expects the same one."""
    configured = os.environ.get("TELEGRAM_WEBHOOK_SECRET", "").strip()
    return configured or hashlib.sha256(f"articlebot-webhook:{token}".encode()).hexdigest()


def receiver(inbox: Inbox, path: str, secret: str) -> web.Application:
    """The HTTP side: `POST path` stores an update in the inbox; `GET /healthz` says "ok"."""

    async def receive(request: web.Request) -> web.Response:
        given = request.headers.get(SECRET_HEADER, "")
        if not hmac.compare_digest(given.encode(), secret.encode()):
            return web.Response(status=403)
        try:
            body = json.loads(await request.read())
        except ValueError:
            body = None
        if not valid_update(body):
            logger.warning("Refused a request that is not an update, from %s", request.remote)
            return web.Response(status=400)
        try:
            await inbox.put(body)
        except psycopg.OperationalError as error:  # Telegram delivers it again later
            logger.warning("Cannot store update %s: %s", body["update_id"], error)
            return web.Response(status=503)
        return web.Response(status=200)

    async def healthy(_request: web.Request) -> web.Response:
        return web.Response(text="ok")

    application = web.Application(client_max_size=2**20)
    application.router.add_post(path, receive)
    application.router.add_get("/healthz", healthy)
    return application


def run_webhook(
    settings: Settings, token: str, make_application: Callable[[Library], Application]
) -> int:
    """Serve the webhook until SIGINT/SIGTERM, in this process or in `settings.workers`;
    `make_application` gives the bot with its handlers for a Library."""
    if not settings.database_url:
        print(
            "Webhook mode keeps updates in PostgreSQL: set ARTICLEBOT_DATABASE_URL (without "
            "it, run without --webhook-url: the bot then polls Telegram).",
            file=sys.stderr,
        )
        return 2
    if settings.workers > 1:
        return _supervise(settings)
    return asyncio.run(_serve(settings, token, make_application))


async def _serve(
    settings: Settings, token: str, make_application: Callable[[Library], Application]
) -> int:
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for number in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(number, stopping.set)
    library = Library(settings)
    inbox = Inbox(settings.database_url)
    application = make_application(library)
    secret = webhook_secret(token)
    try:
        async with application:
            await application.post_init(application)
            await application.job_queue.start()  # polling feeds (start() is polling's)
            await application.bot.set_webhook(
                settings.webhook_url,
                secret_token=secret,
                allowed_updates=ALLOWED_UPDATES,
                max_connections=MAX_CONNECTIONS,
            )
            path = urlsplit(settings.webhook_url).path or "/"
            runner = web.AppRunner(receiver(inbox, path, secret), access_log=None)
            await runner.setup()
            await web.TCPSite(runner, settings.listen, settings.port, reuse_port=True).start()
            logger.info("Webhook %s served on %s:%d", path, settings.listen, settings.port)
            worker = asyncio.create_task(Worker(application, inbox).run(stopping))
            await stopping.wait()
            await runner.cleanup()  # no new updates; those in hand are finished
            await worker
            await application.job_queue.stop()
    finally:
        await inbox.close()
        library.close()
    return 0


def _supervise(settings: Settings) -> int:
    """Run `settings.workers` worker processes sharing the port; one that dies is started
    again; SIGINT/SIGTERM stops them all."""
    environment = os.environ | {
        "ARTICLEBOT_WEBHOOK_URL": settings.webhook_url,
        "ARTICLEBOT_LISTEN": settings.listen,
        "ARTICLEBOT_PORT": str(settings.port),
        "ARTICLEBOT_WORKERS": "1",
    }
    stopping = False

    def stop(_number: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)

    def start() -> subprocess.Popen[bytes]:
        return subprocess.Popen([sys.executable, "-m", "bot"], env=environment)

    workers = [start() for _ in range(settings.workers)]
    while not stopping:
        time.sleep(0.5)
        for index, worker in enumerate(workers):
            if worker.poll() is not None and not stopping:
                logger.warning(
                    "Worker %d exited with %s; starting it again", worker.pid, worker.returncode
                )
                workers[index] = start()
    for worker in workers:
        worker.send_signal(signal.SIGTERM)
    return max(worker.wait() for worker in workers)
