"""Proves the Bot API stand-in works with the real python-telegram-bot and enforces Telegram's
rules, so end-to-end tests built on it can be trusted."""

from __future__ import annotations

import asyncio
import hashlib
import html
import json
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from telegram import Bot, BotCommand, InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.constants import ChatAction, ParseMode
from telegram.error import BadRequest, RetryAfter
from telegram.ext import (
    Application,
    ApplicationBuilder,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from tests.telegram_standin import BotApiStandin, Chat, HtmlParseError, User, parse_html

TOKEN = "123456:TEST"
ALICE = User(1001, "Alice", "alice")
PRIVATE = Chat(ALICE.id)
GROUP = Chat(-100123, "supergroup", "Readers")


@pytest.fixture
def standin() -> Iterator[BotApiStandin]:
    with BotApiStandin(TOKEN, "article_test_bot") as server:
        yield server


# ---- a tiny bot built on the real PTB Application -------------------------------------------


async def echo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("Again", callback_data="again")]])
    text = html.escape(" ".join(context.args or []))
    await update.effective_message.reply_text(
        f"<b>Echo:</b> {text}", parse_mode=ParseMode.HTML, reply_markup=keyboard
    )


async def pressed(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    query = update.callback_query
    await query.answer("Pressed!")
    await query.edit_message_text(
        f"<i>You pressed</i> {html.escape(query.data)}", parse_mode=ParseMode.HTML
    )


async def document_size(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    document = update.effective_message.document
    data = await (await document.get_file()).download_as_bytearray()
    digest = hashlib.sha256(data).hexdigest()[:12]
    await update.effective_message.reply_text(f"{document.file_name}: {len(data)} bytes {digest}")


def run_bot(standin: BotApiStandin, scenario: Callable[[], None]) -> None:
    """Run a real PTB Application against the stand-in while ``scenario`` plays the user in a
    worker thread (its waits block, so they must stay off the bot's event loop)."""

    async def main() -> None:
        app: Application = (
            ApplicationBuilder()
            .token(TOKEN)
            .base_url(standin.base_url)
            .base_file_url(standin.base_file_url)
            .build()
        )
        app.add_handler(CommandHandler("echo", echo))
        app.add_handler(CallbackQueryHandler(pressed))
        app.add_handler(MessageHandler(filters.Document.ALL, document_size))
        async with app:
            await app.start()
            await app.updater.start_polling(timeout=1)
            try:
                await asyncio.to_thread(scenario)
            finally:
                await app.updater.stop()
                await app.stop()

    asyncio.run(main())


def call(standin: BotApiStandin, method: str, token: str = TOKEN, **params: Any) -> tuple[int, Any]:
    """Call the stand-in with a plain JSON body, as non-PTB clients do."""
    request = urllib.request.Request(
        f"{standin.base_url}{token}/{method}",
        data=json.dumps(params).encode(),
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)


# ---- end to end with PTB's Application --------------------------------------------------------


def test_command_reply_with_keyboard_and_callback_edit(standin: BotApiStandin) -> None:
    def scenario() -> None:
        sent = standin.send_message(PRIVATE, ALICE, "/echo <b>hi</b> & you")
        assert sent["entities"] == [{"type": "bot_command", "offset": 0, "length": 5}]

        reply = standin.wait_for_message(ALICE.id, timeout=10)
        assert reply["text"] == "Echo: <b>hi</b> & you"
        assert reply["entities"] == [{"type": "bold", "offset": 0, "length": 5}]
        assert reply["html"] == "<b>Echo:</b> &lt;b&gt;hi&lt;/b&gt; &amp; you"
        assert reply["reply_markup"] == {
            "inline_keyboard": [[{"text": "Again", "callback_data": "again"}]]
        }
        assert reply["from"]["username"] == "article_test_bot"

        query_id = standin.press_button(PRIVATE, ALICE, reply, "again")
        edited = standin.wait_for_edit(ALICE.id, timeout=10)
        assert edited["message_id"] == reply["message_id"]
        assert edited["text"] == "You pressed again"
        assert edited["entities"] == [{"type": "italic", "offset": 0, "length": 11}]
        assert "reply_markup" not in edited  # editMessageText without markup drops the keyboard
        assert [a["callback_query_id"] for a in standin.answered_callbacks] == [query_id]
        assert standin.answered_callbacks[0]["text"] == "Pressed!"

    run_bot(standin, scenario)
    assert standin.sent_messages(ALICE.id)[0]["edit_count"] == 1
    expected = {"getMe", "deleteWebhook", "getUpdates", "sendMessage", "editMessageText"}
    assert expected <= set(standin.calls)
    assert not standin.errors


def test_bot_downloads_a_users_document(standin: BotApiStandin) -> None:
    payload = bytes(range(256)) * 40  # every byte value, including \r\n sequences

    def scenario() -> None:
        sent = standin.send_message(
            PRIVATE, ALICE, "my notes", document=("notes.bin", "application/octet-stream", payload)
        )
        assert sent["caption"] == "my notes"
        assert "text" not in sent
        reply = standin.wait_for_message(ALICE.id, timeout=10)
        digest = hashlib.sha256(payload).hexdigest()[:12]
        assert reply["text"] == f"notes.bin: {len(payload)} bytes {digest}"

    run_bot(standin, scenario)
    assert "getFile" in standin.calls


def test_command_addressed_to_another_bot_is_ignored(standin: BotApiStandin) -> None:
    def scenario() -> None:
        other = standin.send_message(PRIVATE, ALICE, "/echo@otherbot first")
        assert other["entities"] == [{"type": "bot_command", "offset": 0, "length": 14}]
        standin.send_message(PRIVATE, ALICE, "/echo@article_test_bot second")
        assert standin.wait_for_message(ALICE.id, timeout=10)["text"] == "Echo: second"

    run_bot(standin, scenario)
    assert [m["text"] for m in standin.sent_messages()] == ["Echo: second"]


def test_wait_timeout_reports_what_was_sent(standin: BotApiStandin) -> None:
    with pytest.raises(AssertionError, match=r"(?s)timed out .*\(none\)"):
        standin.wait_for_message(ALICE.id, timeout=0.1)


# ---- Telegram's rules, seen through PTB's Bot ---------------------------------------------


# PTB's own RetryAfter.__init__ emits a deprecation warning about int retry_after values.
@pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")
def test_telegram_rules_are_enforced(standin: BotApiStandin) -> None:
    standin.send_message(PRIVATE, ALICE, "hello")  # a bot can only write to chats it knows

    async def main() -> None:
        async with Bot(TOKEN, base_url=standin.base_url) as bot:
            # PTB strips "Bad Request: " and lower-cases the rest of the description.
            with pytest.raises(BadRequest, match=r"(?i)can't parse entities: can't find end tag"):
                await bot.send_message(ALICE.id, "<b>unbalanced", parse_mode=ParseMode.HTML)
            with pytest.raises(BadRequest, match=r"(?i)unmatched end tag at byte offset 8"):
                await bot.send_message(ALICE.id, "<b>x<i>y</b></i>", parse_mode=ParseMode.HTML)
            with pytest.raises(BadRequest, match=r"(?i)message is too long"):
                await bot.send_message(ALICE.id, "x" * 5000)
            with pytest.raises(BadRequest, match=r"(?i)message text is empty"):
                await bot.send_message(ALICE.id, "<b> </b>", parse_mode=ParseMode.HTML)
            with pytest.raises(BadRequest, match=r"(?i)chat not found"):
                await bot.send_message(4242, "hi")

            long_html = "<b>" + "y" * 4096 + "</b>"  # the limit applies after parsing
            message = await bot.send_message(ALICE.id, long_html, parse_mode=ParseMode.HTML)
            assert len(message.text) == 4096
            assert message.text_html == long_html
            with pytest.raises(BadRequest, match=r"(?i)message is not modified"):
                await message.edit_text(long_html, parse_mode=ParseMode.HTML)
            with pytest.raises(BadRequest, match=r"(?i)message to edit not found"):
                await bot.edit_message_text("x", chat_id=ALICE.id, message_id=999)

            standin.fail_next("sendMessage", retry_after=3)
            with pytest.raises(RetryAfter, match="Retry in 3 seconds"):
                await bot.send_message(ALICE.id, "too fast")
            assert (await bot.send_message(ALICE.id, "123")).text == "123"

    asyncio.run(main())
    assert standin.errors[0]["description"].startswith("Bad Request: can't parse entities: ")
    assert [m["text"] for m in standin.sent_messages(ALICE.id)] == ["y" * 4096, "123"]


def test_other_methods_parse_in_ptb(standin: BotApiStandin) -> None:
    standin.send_message(GROUP, ALICE, "/echo hi")
    standin.set_admins(GROUP.id, [ALICE])

    async def main() -> None:
        async with Bot(
            TOKEN, base_url=standin.base_url, base_file_url=standin.base_file_url
        ) as bot:
            assert bot.username == "article_test_bot"
            assert (await bot.get_chat(GROUP.id)).title == "Readers"
            assert (await bot.get_chat_member(GROUP.id, ALICE.id)).status == "administrator"
            admins = await bot.get_chat_administrators(GROUP.id)
            assert [admin.user.id for admin in admins] == [ALICE.id]

            commands = [BotCommand("ask", "Ask about an article")]
            assert await bot.set_my_commands(commands)
            assert await bot.get_my_commands() == tuple(commands)
            assert await bot.send_chat_action(GROUP.id, ChatAction.TYPING)

            sent = await bot.send_document(
                GROUP.id, b"a\r\nb", filename="a.txt", caption="<b>c</b>", parse_mode="HTML"
            )
            assert sent.document.file_name == "a.txt"
            assert sent.caption_html == "<b>c</b>"
            data = await (await bot.get_file(sent.document.file_id)).download_as_bytearray()
            assert data == b"a\r\nb"
            assert await bot.delete_message(GROUP.id, sent.message_id)

    asyncio.run(main())
    assert standin.commands == [{"command": "ask", "description": "Ask about an article"}]
    assert standin.chat_actions == [{"chat_id": GROUP.id, "action": "typing"}]
    assert standin.sent_messages(GROUP.id)[0]["deleted"]


# ---- the raw protocol ------------------------------------------------------------------------


def test_raw_protocol_errors_and_long_polling(standin: BotApiStandin) -> None:
    unauthorized = {"ok": False, "error_code": 401, "description": "Unauthorized"}
    assert call(standin, "getMe", token="999:WRONG") == (401, unauthorized)
    status, body = call(standin, "fooBar")
    assert (status, body["description"]) == (404, "Not Found: method not found")
    assert call(standin, "getme")[1]["result"]["can_read_all_group_messages"] is False

    first = standin.send_message(PRIVATE, ALICE, "one https://example.com/a. @bob")
    assert first["entities"] == [
        {"type": "url", "offset": 4, "length": 21},
        {"type": "mention", "offset": 27, "length": 4},
    ]
    standin.send_message(PRIVATE, ALICE, "two")
    updates = call(standin, "getUpdates")[1]["result"]
    assert [u["message"]["text"][:3] for u in updates] == ["one", "two"]
    offset = updates[-1]["update_id"] + 1
    assert call(standin, "getUpdates", offset=offset, timeout=0)[1]["result"] == []

    threading.Timer(0.2, standin.send_message, (PRIVATE, ALICE, "three")).start()
    started = time.monotonic()
    updates = call(standin, "getUpdates", offset=offset, timeout=5)[1]["result"]
    assert [u["message"]["text"] for u in updates] == ["three"]
    assert time.monotonic() - started < 3

    # PTB's encoding: form fields, str values verbatim, everything else JSON-encoded.
    form = urllib.parse.urlencode(
        {
            "chat_id": str(ALICE.id),
            "text": "123",
            "reply_parameters": json.dumps({"message_id": first["message_id"]}),
        }
    ).encode()
    with urllib.request.urlopen(f"{standin.base_url}{TOKEN}/sendMessage", form) as response:
        result = json.load(response)["result"]
    assert result["text"] == "123"
    assert result["reply_to_message"]["message_id"] == first["message_id"]
    with urllib.request.urlopen(f"{standin.base_url}{TOKEN}/getChat?chat_id={ALICE.id}") as resp:
        assert json.load(resp)["result"]["first_name"] == "Alice"


def test_group_privacy_mode(standin: BotApiStandin) -> None:
    standin.send_message(GROUP, ALICE, "just chatting")
    standin.send_message(GROUP, ALICE, "/echo@otherbot hi")
    standin.send_message(GROUP, ALICE, "/echo hi")
    updates = call(standin, "getUpdates")[1]["result"]
    assert [u["message"]["text"] for u in updates] == ["/echo hi"]

    standin.set_admins(GROUP.id, [standin.bot_user])  # an admin bot sees every message
    standin.send_message(GROUP, ALICE, "still chatting")
    offset = updates[-1]["update_id"] + 1
    updates = call(standin, "getUpdates", offset=offset)[1]["result"]
    assert [u["message"]["text"] for u in updates] == ["still chatting"]


def test_reactions(standin: BotApiStandin) -> None:
    message = standin.send_message(GROUP, ALICE, "https://example.com/news")

    async def main() -> None:
        async with Bot(TOKEN, base_url=standin.base_url) as bot:
            assert await bot.set_message_reaction(GROUP.id, message["message_id"], "🤷")
            with pytest.raises(BadRequest, match=r"(?i)reaction_invalid"):
                await bot.set_message_reaction(GROUP.id, message["message_id"], "🐙")
            with pytest.raises(BadRequest, match=r"(?i)message to react not found"):
                await bot.set_message_reaction(GROUP.id, 999, "👍")

    asyncio.run(main())
    assert standin.wait_for_reaction(GROUP.id, message["message_id"]) == ["🤷"]
    assert len(standin.reactions) == 1


# ---- the HTML parser on its own --------------------------------------------------------------


def test_html_parser_entities() -> None:
    text, entities = parse_html(
        '<b>a<i>b</i></b> &lt;&#33;&gt; <a href="https://e.com/?x=1&y=2">l</a> 😀<u>u</u>'
        '<pre><code class="language-py">c</code></pre><blockquote expandable>q</blockquote>'
    )
    assert text == "ab <!> l 😀ucq"
    assert entities == [
        {"type": "bold", "offset": 0, "length": 2},
        {"type": "italic", "offset": 1, "length": 1},
        {"type": "text_link", "offset": 7, "length": 1, "url": "https://e.com/?x=1&y=2"},
        {"type": "underline", "offset": 11, "length": 1},
        {"type": "pre", "offset": 12, "length": 1, "language": "py"},
        {"type": "expandable_blockquote", "offset": 13, "length": 1},
    ]


@pytest.mark.parametrize(
    ("source", "error"),
    [
        ("a < b", 'Unsupported start tag "" at byte offset 2'),
        ("<br>", 'Unsupported start tag "br" at byte offset 0'),
        ("x</b>", "Unexpected end tag at byte offset 1"),
        ("<b", "Unclosed start tag at byte offset 0"),
        ("<span>x</span>", 'Tag "span" must have class "tg-spoiler" at byte offset 0'),
        ("AT&T", 'Unsupported HTML entity "&T" at byte offset 2'),
        ("é&nbsp;", 'Unsupported HTML entity "&nbsp;" at byte offset 2'),
    ],
)
def test_html_parser_errors(source: str, error: str) -> None:
    with pytest.raises(HtmlParseError) as raised:
        parse_html(source)
    assert str(raised.value) == error


def test_inline_queries_and_forum_topics_follow_telegrams_rules(standin: BotApiStandin) -> None:
    forum = Chat(-100321, "supergroup", "Desk", is_forum=True)
    topic = standin.create_topic(forum, ALICE, "Iran")
    asked = standin.send_message(forum, ALICE, "/ask who?", topic=topic)
    assert asked["message_thread_id"] == topic and asked["is_topic_message"]
    assert asked["reply_to_message"]["forum_topic_created"] == {
        "name": "Iran",
        "icon_color": 7322096,
    }
    assert call(standin, "sendMessage", chat_id=forum.id, text="x", message_thread_id=999) == (
        400,
        {"ok": False, "error_code": 400, "description": "Bad Request: message thread not found"},
    )
    status, sent = call(standin, "sendMessage", chat_id=forum.id, text="x", message_thread_id=topic)
    assert status == 200 and sent["result"]["message_thread_id"] == topic

    query = standin.inline_query(ALICE, "who?")
    article = {"type": "article", "id": "a", "title": "T"}
    bad_html = article | {"input_message_content": {"message_text": "<b>x", "parse_mode": "HTML"}}
    assert call(standin, "answerInlineQuery", inline_query_id=query, results=[bad_html])[0] == 400
    good = article | {"input_message_content": {"message_text": "<b>x</b>", "parse_mode": "HTML"}}
    twice = [good, good]
    assert call(standin, "answerInlineQuery", inline_query_id=query, results=twice)[0] == 400
    assert call(standin, "answerInlineQuery", inline_query_id=query, results=[good])[0] == 200
    assert call(standin, "answerInlineQuery", inline_query_id=query, results=[good])[0] == 400
    posted = standin.choose_inline_result(GROUP, ALICE, query, "a")
    assert posted["text"] == "x" and posted["via_bot"]["username"] == "article_test_bot"
    assert posted["entities"] == [{"type": "bold", "offset": 0, "length": 1}]


def test_updates_the_bot_did_not_ask_for_are_not_delivered(standin: BotApiStandin) -> None:
    assert call(standin, "getUpdates", allowed_updates=["message"], timeout=0)[1]["result"] == []
    standin.inline_query(ALICE, "who?")
    standin.send_message(PRIVATE, ALICE, "hello")
    (update,) = call(standin, "getUpdates", timeout=0)[1]["result"]
    assert update["message"]["text"] == "hello"
    call(standin, "getUpdates", offset=update["update_id"] + 1, allowed_updates=[], timeout=0)
    standin.inline_query(ALICE, "who?")
    (update,) = call(standin, "getUpdates", timeout=0)[1]["result"]
    assert update["inline_query"]["query"] == "who?"
