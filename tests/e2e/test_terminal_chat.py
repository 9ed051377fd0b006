"""`articlebot chat` and `articlebot run` without a token, run as a newcomer would."""

from __future__ import annotations

import os
import pty
import re
import subprocess
import sys
from pathlib import Path

from tests.e2e.conftest import IRAN_TITLE, ROOT, RUSSIA_OFFERS_HELP, STRIKE_TITLE


def articlebot(*args: str) -> list[str]:
    """The command line for `articlebot ARGS`, run by the Python running the tests."""
    return [sys.executable, "-c", "from bot.cli import main; main()", *args]


def first_quote(reply: str) -> str:
    match = re.search(r"^1\. “(.*?)”$", reply, re.MULTILINE)
    assert match, reply
    return match.group(1)


def environment(data_dir: Path) -> dict[str, str]:
    """This environment without Telegram settings, with a data folder of the test's own."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TELEGRAM_")}
    return env | {"ARTICLEBOT_DATA_DIR": str(data_dir), "ARTICLEBOT_ALLOW_PRIVATE_URLS": "1"}


def test_terminal_chat_behaves_like_a_private_chat(news_site: str, tmp_path: Path) -> None:
    lines = [
        f"{news_site}/russland-iran.html",
        "Who is mediating with Iran?",
        "What did the Kremlin say?",
        "/more",
        "/context",
        "/add ./tests/e2e/pages/bahnstreik.html",
        "/add ./tests/e2e/pages/missing.txt",
        "/list",
        "/forget",
        "yes",
        "/list",
        "/quit",
    ]
    chat = subprocess.run(
        articlebot("chat"),
        input="\n".join(lines) + "\n",
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=environment(tmp_path),
        timeout=180,
    )
    assert chat.returncode == 0, chat.stderr
    welcome, *replies = chat.stdout.split("\n> ")
    assert "/add LINK, FILE or TEXT" in welcome
    added, mediating, kremlin, more, context, file, missing, listing, *rest = replies
    confirm, forgot, empty, bye = rest
    assert added.startswith(f"Added #1: {IRAN_TITLE} (German, ")
    assert f"“{RUSSIA_OFFERS_HELP}" in mediating
    assert "sagte Kremlsprecher Dimitri Peskow" in first_quote(kremlin)
    assert more.startswith("4. “")
    assert "»" in context and "«" in context
    assert file.startswith(f"Added #2: {STRIKE_TITLE} (German, ")  # a local file, by its path
    assert missing.startswith("./tests/e2e/pages/missing.txt is neither a link nor a readable")
    assert listing.startswith(f"#1  {IRAN_TITLE} (de, 2025-03-05, ")
    assert confirm.startswith("Forget every article in this chat (2)?")
    assert forgot.startswith("Done: the library is empty now (2 forgotten).")
    assert empty.startswith("The library is empty.")
    assert bye.strip() == ""


def test_run_without_a_token_says_how_to_get_one(tmp_path: Path) -> None:
    run = subprocess.run(
        articlebot("run"),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=environment(tmp_path),
        timeout=120,
    )
    assert run.returncode == 2
    for hint in ("@BotFather", "/newbot", "export TELEGRAM_BOT_TOKEN=", "articlebot chat"):
        assert hint in run.stderr


def test_run_without_a_token_offers_the_terminal_chat_on_a_terminal(tmp_path: Path) -> None:
    terminal, keyboard = pty.openpty()
    try:
        os.write(terminal, b"\n/quit\n")  # accept the default answer, then leave the chat
        run = subprocess.run(
            articlebot("run"),
            stdin=keyboard,
            capture_output=True,
            text=True,
            cwd=ROOT,
            env=environment(tmp_path),
            timeout=180,
        )
    finally:
        os.close(terminal)
        os.close(keyboard)
    assert run.returncode == 0, run.stderr
    assert "Start a terminal chat now? [Y/n]" in run.stdout
    assert "/add LINK, FILE or TEXT" in run.stdout
