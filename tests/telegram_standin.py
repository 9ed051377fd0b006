"""A local stand-in for the Telegram Bot API, for end-to-end tests of the real bot process.

Telegram's servers are unreachable from the test machines, so end-to-end tests point the bot at
this server instead (``ApplicationBuilder().base_url(standin.base_url)``). It speaks the Bot
API's JSON-over-HTTP protocol and enforces the rules bots most often break on the real servers
(HTML parse errors, text length, "message is not modified", stale callback queries), so those
bugs fail tests here instead of failing in production.

Tests play the Telegram users through a thread-safe API (:meth:`BotApiStandin.send_message`,
:meth:`BotApiStandin.press_button`, ...) and observe the bot's output
(:meth:`BotApiStandin.wait_for_message`, :meth:`BotApiStandin.sent_messages`, ...). The waiting
methods block, so call them from a thread other than the bot's event loop (e.g. via
``asyncio.to_thread``) when the bot runs in the test process.

With ``setWebhook`` the stand-in delivers updates the way Telegram does: an HTTPS-less POST of
each update to the webhook URL with the ``X-Telegram-Bot-Api-Secret-Token`` header, several
requests at once (``max_connections``), a chat's updates one after another, and an update whose
request fails or is not answered with 2xx delivered again a little later; ``getUpdates`` is
refused while a webhook is set. Every delivery attempt is logged in ``webhook_deliveries``.

Forwarded posts carry a ``forward_origin`` (see :func:`channel_origin` and friends); forum
supergroups (``Chat(..., is_forum=True)``) have topics, whose messages carry their
``message_thread_id`` and, when they reply to nothing else, reply to the topic's first
(service) message, as on Telegram; the bot's messages go to the topic named by
``message_thread_id`` and otherwise to the General topic, even when they reply to a message
in another one. Inline mode: :meth:`BotApiStandin.inline_query` sends a query,
``answerInlineQuery`` is validated (result ids, types, HTML of the messages) and recorded,
and :meth:`BotApiStandin.choose_inline_result` posts a chosen result "via" the bot. Updates of
kinds the bot leaves out of ``allowed_updates`` (getUpdates or setWebhook) are not delivered.

Deliberate simplifications: one bot per server, no payments; inline results are articles
only, and an inline query may be longer than Telegram's 256 characters; Markdown
parse modes are stored verbatim without parsing; a bare ``&`` or an unknown named entity such as
``&nbsp;`` in HTML is rejected (Telegram shows it literally, but it nearly always means
unescaped user text) unless ``strict_html_entities=False``; the length limit counts code points.
"""

from __future__ import annotations

import contextlib
import copy
import http.client
import itertools
import json
import logging
import re
import socket
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import PurePosixPath
from typing import Any, NoReturn, Self
from urllib.parse import parse_qsl, unquote, urlsplit

logger = logging.getLogger(__name__)

JSON = dict[str, Any]
# The kinds of update a bot gets until it names others in allowed_updates (Telegram leaves out
# chat_member and the reactions unless asked; the stand-in makes only these kinds).
DEFAULT_UPDATES = frozenset(
    {"message", "edited_message", "callback_query", "inline_query", "chosen_inline_result"}
)
MAX_TEXT_LENGTH = 4096
MAX_CAPTION_LENGTH = 1024
MAX_DOWNLOAD_SIZE = 20 * 1024 * 1024
NOT_MODIFIED = (
    "Bad Request: message is not modified: specified new message content and reply markup are "
    "exactly the same as a current content and reply markup of the message"
)
CHAT_ACTIONS = frozenset(
    {
        "typing",
        "upload_photo",
        "record_video",
        "upload_video",
        "record_voice",
        "upload_voice",
        "upload_document",
        "choose_sticker",
        "find_location",
        "record_video_note",
        "upload_video_note",
    }
)
# Keys the stand-in adds to its records of bot messages; never shown to the bot.
_RECORD_KEYS = frozenset({"html", "parse_mode", "reply_to", "request", "edit_count", "deleted"})
# Parameters that are JSON objects/arrays in the Bot API (decoded when logging requests).
_JSON_PARAMS = frozenset(
    {
        "reply_markup",
        "entities",
        "caption_entities",
        "reply_parameters",
        "link_preview_options",
        "commands",
        "scope",
        "allowed_updates",
        "reaction",
    }
)
# The emoji a bot may react with (Telegram's list for ReactionTypeEmoji), as far as tests use.
REACTION_EMOJI = frozenset(
    "👍👎❤🔥🥰👏😁🤔🤯😱🤬😢🎉🤩🤮💩🙏👌🕊🤡🥱🥴😍🐳🌚🌭💯🤣⚡🍌🏆💔🤨😐🍓🍾💋🖕😈😴😭🤓👻👀🎃🙈😇😨🤝✍🤗🫡🎅🎄☃💅🤪🗿🆒💘🙉🦄😘💊🙊😎👾🤷😡"
)


def utf16_len(text: str) -> int:
    """Length in UTF-16 code units, the unit of Telegram's entity offsets and lengths."""
    return len(text.encode("utf-16-le")) // 2


# --------------------------------------------------------------------------------------------
# Telegram's HTML parse mode
# --------------------------------------------------------------------------------------------

_HTML_TAGS = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "span": "spoiler",
    "tg-spoiler": "spoiler",
    "a": "text_link",
    "code": "code",
    "pre": "pre",
    "blockquote": "blockquote",
    "tg-emoji": "custom_emoji",
}
_NAMED_ENTITIES = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}
_ENTITY = re.compile(r"&(?:#x([0-9a-fA-F]{1,6})|#([0-9]{1,7})|([A-Za-z]+));?")
_PLAIN_RUN = re.compile(r"[^&<]+")
_TAG_NAME = re.compile(r"[^\s>]*")
_END_TAG = re.compile(r"</([^\s>]*)\s*>")
_ATTR_NAME = re.compile(r"[^\s=>]+")
_NAME_TOKEN = re.compile(r"[A-Za-z0-9.\-]*")


class HtmlParseError(ValueError):
    """Telegram's "can't parse entities" failure; the message follows Telegram's wording."""


def _decode_entity(source: str, pos: int) -> tuple[str | None, int]:
    """Decode the entity at ``source[pos] == "&"`` the way tdlib does (``;`` optional).

    Returns the character and the position after the entity, or ``(None, pos + 1)``.
    """
    match = _ENTITY.match(source, pos)
    if match:
        hex_code, dec_code, name = match.groups()
        if name is not None:
            if name in _NAMED_ENTITIES:
                return _NAMED_ENTITIES[name], match.end()
        else:
            code = int(hex_code, 16) if hex_code else int(dec_code)
            if 0 < code < 0x10FFFF and not 0xD800 <= code <= 0xDFFF:
                return chr(code), match.end()
    return None, pos + 1


@dataclass
class _OpenTag:
    name: str
    attrs: dict[str, str]
    offset: int  # UTF-16 offset of the tag's content in the plain text
    chunk: int  # index into the parser's output chunks where the content starts
    language: str | None = None


class _HtmlParser:
    """Telegram's HTML parse mode, modelled on tdlib's parse_html: same tags, same errors."""

    def __init__(self, source: str, strict_entities: bool) -> None:
        self.source, self.strict = source, strict_entities
        self.pos = 0
        self.chunks: list[str] = []
        self.offset = 0
        self.stack: list[_OpenTag] = []
        self.entities: list[JSON] = []

    def parse(self) -> tuple[str, list[JSON]]:
        while self.pos < len(self.source):
            if run := _PLAIN_RUN.match(self.source, self.pos):
                self._append(run.group())
                self.pos = run.end()
            elif self.source[self.pos] == "&":
                char, end = _decode_entity(self.source, self.pos)
                if char is None and self.strict:
                    snippet = re.match(r"&[#\w]*;?", self.source[self.pos :]).group()
                    self._fail(f'Unsupported HTML entity "{snippet}"', self.pos)
                self._append(char or "&")
                self.pos = end
            elif self.source.startswith("</", self.pos):
                self._end_tag()
            else:
                self._start_tag()
        if self.stack:
            raise HtmlParseError(
                f'Can\'t find end tag corresponding to start tag "{self.stack[-1].name}"'
            )
        self.entities.sort(key=lambda entity: (entity["offset"], -entity["length"]))
        return "".join(self.chunks), self.entities

    def _append(self, text: str) -> None:
        self.chunks.append(text)
        self.offset += utf16_len(text)

    def _byte_offset(self, pos: int) -> int:
        return len(self.source[:pos].encode())

    def _fail(self, message: str, pos: int) -> NoReturn:
        raise HtmlParseError(f"{message} at byte offset {self._byte_offset(pos)}")

    def _skip_spaces(self) -> None:
        while self.pos < len(self.source) and self.source[self.pos].isspace():
            self.pos += 1

    def _start_tag(self) -> None:
        start = self.pos
        name_match = _TAG_NAME.match(self.source, start + 1)
        name = name_match.group().lower()
        if name_match.end() >= len(self.source):
            self._fail("Unclosed start tag", start)
        if name not in _HTML_TAGS:
            self._fail(f'Unsupported start tag "{name}"', start)
        self.pos = name_match.end()
        attrs = self._attributes(name, start)
        if name == "span" and attrs.get("class") != "tg-spoiler":
            self._fail('Tag "span" must have class "tg-spoiler"', start)
        if name == "tg-emoji" and not attrs.get("emoji-id"):
            self._fail('Tag "tg-emoji" must have attribute "emoji-id"', start)
        self.stack.append(_OpenTag(name, attrs, self.offset, len(self.chunks)))

    def _attributes(self, tag: str, start: int) -> dict[str, str]:
        attrs: dict[str, str] = {}
        while True:
            self._skip_spaces()
            if self.pos >= len(self.source):
                self._fail("Unclosed start tag", start)
            if self.source[self.pos] == ">":
                self.pos += 1
                return attrs
            name_match = _ATTR_NAME.match(self.source, self.pos)
            no_value = f'Expected equal sign in declaration of an attribute of the tag "{tag}"'
            if name_match is None:
                self._fail(no_value, start)
            name, self.pos = name_match.group().lower(), name_match.end()
            self._skip_spaces()
            if self.pos < len(self.source) and self.source[self.pos] != "=":
                if tag == "blockquote" and name == "expandable":
                    attrs[name] = ""
                    continue
                self._fail(no_value, start)
            self.pos += 1
            self._skip_spaces()
            if self.pos >= len(self.source):
                self._fail("Unclosed start tag", start)
            attrs[name] = self._attribute_value(start)

    def _attribute_value(self, start: int) -> str:
        quote = self.source[self.pos]
        if quote in "\"'":
            end = self.source.find(quote, self.pos + 1)
            if end < 0:
                self._fail("Unclosed start tag", start)
            raw, self.pos = self.source[self.pos + 1 : end], end + 1
            # Telegram keeps undecodable "&" in attributes, e.g. href="...?a=1&b=2".
            return _ENTITY.sub(lambda m: _decode_entity(raw, m.start())[0] or m.group(), raw)
        token = _NAME_TOKEN.match(self.source, self.pos)
        self.pos = token.end()
        if self.pos < len(self.source) and not (
            self.source[self.pos].isspace() or self.source[self.pos] == ">"
        ):
            self._fail("Unexpected end of name token", token.start())
        return token.group().lower()

    def _end_tag(self) -> None:
        start = self.pos
        if not self.stack:
            self._fail("Unexpected end tag", start)
        match = _END_TAG.match(self.source, start)
        if match is None:
            self._fail("Unclosed end tag", start)
        name, tag = match.group(1).lower(), self.stack.pop()
        if name and name != tag.name:
            raise HtmlParseError(
                f"Unmatched end tag at byte offset {self._byte_offset(start)}, "
                f'expected "</{tag.name}>", found "</{name}>"'
            )
        self.pos = match.end()
        self._close(tag)

    def _close(self, tag: _OpenTag) -> None:
        parent = self.stack[-1] if self.stack else None
        css_class = tag.attrs.get("class", "")
        if (
            tag.name == "code"
            and parent
            and parent.name == "pre"
            and css_class.startswith("language-")
        ):  # <pre><code class="language-x"> becomes a single pre entity with a language
            parent.language = css_class.removeprefix("language-")
            return
        length = self.offset - tag.offset
        if length == 0:
            return
        entity: JSON = {"type": _HTML_TAGS[tag.name], "offset": tag.offset, "length": length}
        if tag.name == "a":
            entity["url"] = tag.attrs.get("href") or "".join(self.chunks[tag.chunk :])
        elif tag.name == "pre" and tag.language:
            entity["language"] = tag.language
        elif tag.name == "blockquote" and "expandable" in tag.attrs:
            entity["type"] = "expandable_blockquote"
        elif tag.name == "tg-emoji":
            entity["custom_emoji_id"] = tag.attrs["emoji-id"]
        self.entities.append(entity)


def parse_html(source: str, strict_entities: bool = True) -> tuple[str, list[JSON]]:
    """Parse Telegram-flavoured HTML into (plain text, entities); raise HtmlParseError if bad."""
    return _HtmlParser(source, strict_entities).parse()


# --------------------------------------------------------------------------------------------
# Entities Telegram detects in what users type
# --------------------------------------------------------------------------------------------

_AUTO_ENTITIES = (
    ("url", re.compile(r"(?<![\w/])https?://[^\s<>\"]*[^\s<>\".,;:!?'()\[\]{}]")),
    (
        "bot_command",
        re.compile(r"(?<![\w/<>\\])/[A-Za-z0-9_]{1,64}(?:@[A-Za-z0-9_]{3,32})?(?![\w/<>\\])"),
    ),
    ("mention", re.compile(r"(?<![\w@])@[A-Za-z0-9_]{3,32}(?![\w@])")),
    ("hashtag", re.compile(r"(?<![\w#])#\w*[^\W\d]\w*")),
)


def find_entities(text: str) -> list[JSON]:
    """The url, bot_command, mention and hashtag entities Telegram attaches to a user's text."""
    spans = sorted(
        (
            (m.start(), m.end(), kind)
            for kind, regex in _AUTO_ENTITIES
            for m in regex.finditer(text)
        ),
        key=lambda span: (span[0], -span[1]),
    )
    entities: list[JSON] = []
    covered = 0
    for start, end, kind in spans:
        if start >= covered:  # like Telegram, overlapping matches lose to the earlier one
            entities.append(
                {
                    "type": kind,
                    "offset": utf16_len(text[:start]),
                    "length": utf16_len(text[start:end]),
                }
            )
            covered = end
    return entities


def _strip_text(text: str, entities: list[JSON]) -> tuple[str, list[JSON]]:
    """Trim surrounding whitespace like Telegram does, moving and clipping the entities."""
    stripped = text.strip()
    lead = utf16_len(text[: len(text) - len(text.lstrip())])
    size = utf16_len(stripped)
    kept = []
    for entity in entities:
        start = max(entity["offset"] - lead, 0)
        end = min(entity["offset"] + entity["length"] - lead, size)
        if end > start:
            kept.append({**entity, "offset": start, "length": end - start})
    return stripped, kept


# --------------------------------------------------------------------------------------------
# Test-facing value types and request decoding
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class User:
    """A Telegram user the test acts as."""

    id: int
    first_name: str = "Tess"
    username: str | None = None
    language_code: str | None = "en"

    def to_dict(self) -> JSON:
        data: JSON = {"id": self.id, "is_bot": False, "first_name": self.first_name}
        if self.username:
            data["username"] = self.username
        if self.language_code:
            data["language_code"] = self.language_code
        return data


@dataclass(frozen=True)
class Chat:
    """A chat the test talks in. A private chat's id must equal the user's id, like Telegram's.
    A supergroup with ``is_forum`` has topics (:meth:`BotApiStandin.create_topic`)."""

    id: int
    type: str = "private"
    title: str | None = None
    is_forum: bool = False

    def to_dict(self) -> JSON:
        data = {"id": self.id, "type": self.type, "title": self.title or f"Chat {self.id}"}
        return data | ({"is_forum": True} if self.is_forum else {})


def channel_origin(
    title: str, message_id: int, username: str | None = None, chat_id: int = -1001000000001
) -> JSON:
    """The ``forward_origin`` of a post forwarded from a channel (public if it has a
    ``username``)."""
    chat: JSON = {"id": chat_id, "type": "channel", "title": title}
    if username:
        chat["username"] = username
    return {
        "type": "channel",
        "date": int(time.time()) - 3600,
        "chat": chat,
        "message_id": message_id,
    }


def user_origin(user: User) -> JSON:
    """The ``forward_origin`` of a message forwarded from a person who allows linking."""
    return {"type": "user", "date": int(time.time()) - 3600, "sender_user": user.to_dict()}


def hidden_user_origin(name: str) -> JSON:
    """The ``forward_origin`` of a message forwarded from a person who hides their account."""
    return {"type": "hidden_user", "date": int(time.time()) - 3600, "sender_user_name": name}


@dataclass(frozen=True)
class Upload:
    """A file part of a multipart/form-data request."""

    file_name: str
    mime_type: str
    data: bytes


@dataclass(frozen=True)
class _StoredFile:
    file_id: str
    file_unique_id: str
    file_path: str
    file_name: str
    mime_type: str
    data: bytes = field(repr=False)

    def as_document(self) -> JSON:
        return {
            "file_id": self.file_id,
            "file_unique_id": self.file_unique_id,
            "file_name": self.file_name,
            "mime_type": self.mime_type,
            "file_size": len(self.data),
        }


class ApiError(Exception):
    """A Bot API error: raised by method handlers and sent as ``{"ok": false, ...}``."""

    def __init__(self, code: int, description: str, parameters: JSON | None = None) -> None:
        super().__init__(description)
        self.code, self.description, self.parameters = code, description, parameters

    def to_json(self) -> JSON:
        body: JSON = {"ok": False, "error_code": self.code, "description": self.description}
        if self.parameters:
            body["parameters"] = self.parameters
        return body


def _parse_multipart(content_type: str, body: bytes) -> tuple[JSON, dict[str, Upload]]:
    """Split a multipart/form-data body into text fields and file uploads, byte-exact."""
    boundary = re.search(r'boundary="?([^";]+)"?', content_type)
    if boundary is None:
        raise ApiError(400, "Bad Request: multipart boundary is missing")
    fields: JSON = {}
    files: dict[str, Upload] = {}
    for part in body.split(b"--" + boundary.group(1).encode())[1:]:
        if part.startswith(b"--"):
            break
        head, _, content = part.partition(b"\r\n\r\n")
        headers = head.decode("utf-8", "replace")
        name = re.search(r'\bname="([^"]*)"', headers)
        filename = re.search(r'\bfilename="([^"]*)"', headers)
        content = content.removesuffix(b"\r\n")
        if name is None:
            continue
        if filename is None:
            fields[name.group(1)] = content.decode("utf-8")
            continue
        mime = re.search(r"(?im)^content-type:\s*([^\s;]+)", headers)
        files[name.group(1)] = Upload(
            unquote(filename.group(1)),
            mime.group(1) if mime else "application/octet-stream",
            content,
        )
    return fields, files


class _Params:
    """Request parameters, each read by its documented type, as the Bot API server does.

    PTB sends str values verbatim and JSON-encodes every other value (``chat_id=123`` arrives as
    ``"123"``, ``reply_markup`` as a JSON string), so a raw value alone can't tell the text
    ``"123"`` from the integer 123; plain JSON bodies arrive already typed.
    """

    def __init__(self, values: JSON, files: dict[str, Upload]) -> None:
        self.values, self.files = values, files

    @classmethod
    def from_http(cls, query: str, content_type: str, body: bytes) -> _Params:
        values: JSON = dict(parse_qsl(query, keep_blank_values=True))
        files: dict[str, Upload] = {}
        mime = content_type.split(";")[0].strip().lower()
        try:
            if mime == "application/json" and body.strip():
                decoded = json.loads(body)
                if not isinstance(decoded, dict):
                    raise ValueError("not an object")
                values.update(decoded)
            elif mime == "application/x-www-form-urlencoded":
                values.update(parse_qsl(body.decode(), keep_blank_values=True))
            elif mime == "multipart/form-data":
                fields, files = _parse_multipart(content_type, body)
                values.update(fields)
        except (ValueError, UnicodeDecodeError) as error:
            raise ApiError(400, f"Bad Request: can't parse request body: {error}") from error
        return cls(values, files)

    def get(self, name: str) -> Any:
        return self.values.get(name)

    def string(self, name: str) -> str | None:
        value = self.values.get(name)
        return None if value is None else str(value)

    def integer(self, name: str) -> int | None:
        value = self.values.get(name)
        if value is None or value == "":
            return None
        try:
            return int(value)
        except (TypeError, ValueError):
            raise ApiError(400, f"Bad Request: invalid {name} specified") from None

    def flag(self, name: str) -> bool:
        return self.values.get(name) in (True, "true", "True", "1", 1)

    def object(self, name: str) -> Any:
        value = self.values.get(name)
        if not isinstance(value, str):
            return value
        try:
            return json.loads(value)
        except ValueError:
            raise ApiError(400, f"Bad Request: can't parse {name} JSON object") from None

    def upload(self, name: str) -> Upload | None:
        """The uploaded file for ``name``, sent as that part or referenced as attach://part."""
        value = self.string(name) or ""
        return self.files.get(value.removeprefix("attach://") if value else name)

    def as_log(self) -> JSON:
        """The parameters for logs and records, with JSON-valued parameters decoded."""
        log = dict(self.values)
        for key in _JSON_PARAMS & log.keys():
            with contextlib.suppress(ApiError):
                log[key] = self.object(key)
        log.update(
            {k: f"<upload {u.file_name}: {len(u.data)} bytes>" for k, u in self.files.items()}
        )
        return log


def _view(message: JSON, nested: bool = True) -> JSON:
    """The Telegram Message object for a stored message (a reply's target has no own reply)."""
    view = {k: copy.deepcopy(v) for k, v in message.items() if k not in _RECORD_KEYS}
    if not nested:
        view.pop("reply_to_message", None)
    return view


def _update_chat(update: JSON) -> int | None:
    """The chat an update belongs to (its message's chat, or the user for queries)."""
    for payload in update.values():
        if isinstance(payload, dict):
            message = payload.get("message") if "chat" not in payload else payload
            if isinstance(message, dict) and "chat" in message:
                return message["chat"]["id"]
            return (payload.get("from") or {}).get("id")
    return None


def _post_update(webhook: JSON, body: bytes) -> int:
    """POST one update to the bot's webhook; the HTTP status, or 0 when no answer came."""
    headers = {"Content-Type": "application/json"}
    if webhook["secret_token"]:
        headers["X-Telegram-Bot-Api-Secret-Token"] = webhook["secret_token"]
    request = urllib.request.Request(webhook["url"], data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=15) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)
    except (OSError, http.client.HTTPException):
        return 0


def _message_id(message: JSON | int) -> int:
    return message if isinstance(message, int) else int(message["message_id"])


def _buttons(message: JSON) -> list[str]:
    rows = (message.get("reply_markup") or {}).get("inline_keyboard", [])
    return [button.get("callback_data") or button.get("url", "?") for row in rows for button in row]


# --------------------------------------------------------------------------------------------
# HTTP plumbing
# --------------------------------------------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    """Hands every request to the stand-in; HTTP/1.1 so PTB's httpx keeps connections alive."""

    protocol_version = "HTTP/1.1"
    server: _Server

    def setup(self) -> None:
        super().setup()
        with self.server.connections_lock:
            self.server.connections.add(self.connection)

    def finish(self) -> None:
        with self.server.connections_lock:
            self.server.connections.discard(self.connection)
        super().finish()

    def do_POST(self) -> None:  # name fixed by BaseHTTPRequestHandler
        self.server.standin._handle_http(self)

    do_GET = do_POST

    def respond(self, status: int, body: bytes, content_type: str = "application/json") -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except OSError:  # the client gave up, e.g. a cancelled long poll
            self.close_connection = True

    def log_message(self, fmt: str, *args: Any) -> None:
        logger.debug("standin %s " + fmt, self.address_string(), *args)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, standin: BotApiStandin) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.standin = standin
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hangs up mid-request (a bot process killed on purpose) is normal."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)

    def close_connections(self) -> None:
        with self.connections_lock:
            connections = list(self.connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)


# --------------------------------------------------------------------------------------------
# The stand-in
# --------------------------------------------------------------------------------------------

ChatLike = Chat | JSON
UserLike = User | JSON


class BotApiStandin:
    """Serves the Bot API for one bot on 127.0.0.1 and lets tests act as Telegram users.

    In groups the bot runs in privacy mode (getMe's ``can_read_all_group_messages`` is false)
    unless ``privacy_mode=False``: user messages are then delivered only if they start with a
    command not addressed to another bot, or reply to one of the bot's messages, unless the
    bot is one of the group's admins (``set_admins``), which sees every message.
    """

    def __init__(
        self,
        token: str = "123456:TEST",
        username: str = "article_test_bot",
        *,
        first_name: str = "Article Test Bot",
        privacy_mode: bool = True,
        strict_html_entities: bool = True,
        inline_mode: bool = True,
    ) -> None:
        self.token = token
        self.bot_user: JSON = {
            "id": int(token.split(":", 1)[0]),
            "is_bot": True,
            "first_name": first_name,
            "username": username,
        }
        self.privacy_mode = privacy_mode
        self.inline_mode = inline_mode
        self.strict_html_entities = strict_html_entities
        self._cond = threading.Condition(threading.RLock())
        self._ids = itertools.count(1)
        self._update_ids = itertools.count(1)
        self._updates: list[JSON] = []
        self._poll_generation = 0
        self._stopping = False
        self._chats: dict[int, JSON] = {}
        self._users: dict[int, JSON] = {}
        self._members: dict[int, set[int]] = {}
        self._admins: dict[int, tuple[JSON | None, list[JSON]]] = {}
        self._last_message_id: dict[int, int] = {}
        self._messages: dict[int, dict[int, JSON]] = {}
        self._sent: list[JSON] = []
        self._edits: list[JSON] = []
        self._message_cursor: dict[int, int] = {}
        self._edit_cursor: dict[int, int] = {}
        self._files: dict[str, _StoredFile] = {}
        self._topics: dict[int, dict[int, str]] = {}  # chat -> thread id -> topic name
        self._open_callbacks: set[str] = set()
        self._open_inline: set[str] = set()
        self._allowed_updates: set[str] = set(DEFAULT_UPDATES)
        self._inline_answers: dict[str, JSON] = {}
        self._answered: list[JSON] = []
        self._reactions: list[JSON] = []
        self._commands: dict[str, list[JSON]] = {}
        self._chat_actions: list[JSON] = []
        self._requests: list[tuple[str, JSON]] = []
        self._errors: list[JSON] = []
        self._failures: dict[str, list[ApiError]] = {}
        self._breaks: dict[str, int] = {}  # method -> calls still to leave unanswered
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._webhook: JSON | None = None
        self._in_flight: set[int] = set()  # update ids being delivered
        self._retry_at: dict[int, float] = {}  # update id -> when to deliver it again
        self._delivery_threads: list[threading.Thread] = []
        self.webhook_deliveries: list[JSON] = []
        handlers: dict[str, Callable[[_Params], Any]] = {
            "getMe": self._get_me,
            "logOut": lambda p: True,
            "close": lambda p: True,
            "setWebhook": self._set_webhook,
            "deleteWebhook": self._delete_webhook,
            "getWebhookInfo": self._get_webhook_info,
            "getUpdates": self._get_updates,
            "sendMessage": self._send_message,
            "sendDocument": self._send_document,
            "editMessageText": self._edit_message_text,
            "editMessageReplyMarkup": self._edit_reply_markup,
            "deleteMessage": self._delete_message,
            "answerCallbackQuery": self._answer_callback,
            "answerInlineQuery": self._answer_inline_query,
            "setMyCommands": self._set_commands,
            "getMyCommands": self._get_commands,
            "deleteMyCommands": self._delete_commands,
            "sendChatAction": self._send_chat_action,
            "getFile": self._get_file,
            "getChat": self._get_chat,
            "getChatMember": self._get_chat_member,
            "getChatAdministrators": self._get_chat_administrators,
            "setMessageReaction": self._set_message_reaction,
        }
        self._methods = {name.lower(): handler for name, handler in handlers.items()}

    # ---- lifecycle -------------------------------------------------------------------------

    def start(self) -> Self:
        """Start serving on a free port in a background thread."""
        self._server = _Server(self)
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), name="bot-api-standin", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Release long polls, close client connections and stop the server."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._server is not None:
            self._server.shutdown()
            self._server.close_connections()
            self._server.server_close()
            self._thread.join(timeout=5)
            self._server = None
        for thread in self._delivery_threads:
            thread.join(timeout=15)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._server is not None, "the stand-in is not running; call start() first"
        return self._server.server_address[1]

    @property
    def base_url(self) -> str:
        """For ``ApplicationBuilder().base_url()``; PTB appends the token and "/method"."""
        return f"http://127.0.0.1:{self.port}/bot"

    @property
    def base_file_url(self) -> str:
        """For ``ApplicationBuilder().base_file_url()``; PTB appends the token and file path."""
        return f"http://127.0.0.1:{self.port}/file/bot"

    # ---- acting as users -------------------------------------------------------------------

    def send_message(
        self,
        chat: ChatLike,
        user: UserLike,
        text: str,
        reply_to: JSON | None = None,
        document: tuple[str, str, bytes] | None = None,
        *,
        photo: bool = False,
        forward_origin: JSON | None = None,
        topic: int | None = None,
    ) -> JSON:
        """A user sends ``text`` (or a ``(file_name, mime_type, bytes)`` document, or with
        ``photo`` a photo, captioned with it); returns the Message as delivered, with the
        entities Telegram would detect. ``forward_origin`` makes it a forwarded message,
        ``topic`` (a thread id from :meth:`create_topic`) places it in a forum topic."""
        if not text and document is None and not photo:
            raise ValueError("Telegram clients can't send an empty message")
        with self._cond:
            message = self._new_message(*self._enter(chat, user))
            key = "text"
            if document is not None:
                message["document"] = self._store_file(*document, folder="documents").as_document()
                key = "caption"
            elif photo:
                stored = self._store_file("photo.jpg", "image/jpeg", b"\xff\xd8\xff", "photos")
                size = {"file_id": stored.file_id, "file_unique_id": stored.file_unique_id}
                message["photo"] = [size | {"width": 90, "height": 60, "file_size": 3}]
                key = "caption"
            if text:
                message[key] = text
                if entities := find_entities(text):
                    message[f"{key}_entities" if key == "caption" else "entities"] = entities
            if forward_origin is not None:
                message["forward_origin"] = copy.deepcopy(forward_origin)
            self._place(message, reply_to, topic)
            return self._deliver("message", message)

    def send_poll(
        self,
        chat: ChatLike,
        user: UserLike,
        question: str,
        options: list[str],
        forward_origin: JSON | None = None,
    ) -> JSON:
        """A user sends (or forwards, with ``forward_origin``) a regular poll."""
        with self._cond:
            message = self._new_message(*self._enter(chat, user))
            message["poll"] = {
                "id": str(next(self._ids)),
                "question": question,
                "options": [
                    {"text": option, "voter_count": 0, "persistent_id": str(number)}
                    for number, option in enumerate(options)
                ],
                "total_voter_count": 0,
                "is_closed": False,
                "is_anonymous": True,
                "type": "regular",
                "allows_multiple_answers": False,
                "allows_revoting": False,
                "members_only": False,
            }
            if forward_origin is not None:
                message["forward_origin"] = copy.deepcopy(forward_origin)
            return self._deliver("message", message)

    def create_topic(self, chat: ChatLike, user: UserLike, name: str) -> int:
        """A user opens a topic in a forum supergroup; returns its ``message_thread_id`` (the
        id of the service message that starts it)."""
        with self._cond:
            chat_dict, user_dict = self._enter(chat, user)
            if not chat_dict.get("is_forum"):
                raise ValueError(f"chat {chat_dict['id']} is not a forum")
            message = self._new_message(chat_dict, user_dict)
            thread = message["message_id"]
            message |= {
                "message_thread_id": thread,
                "is_topic_message": True,
                "forum_topic_created": {"name": name, "icon_color": 7322096},
            }
            self._topics.setdefault(chat_dict["id"], {})[thread] = name
            self._messages.setdefault(chat_dict["id"], {})[thread] = message
            return thread

    def _place(self, message: JSON, reply_to: JSON | None, topic: int | None) -> None:
        """Set what a user's message replies to and the topic it is in; a topic's message
        that replies to nothing replies to the topic's first message, as on Telegram."""
        chat_id = message["chat"]["id"]
        if topic is not None:
            if topic not in self._topics.get(chat_id, {}):
                raise ValueError(f"chat {chat_id} has no topic {topic}")
            message |= {"message_thread_id": topic, "is_topic_message": True}
        target = reply_to if reply_to is not None else topic
        if target is not None:
            stored = self._messages.get(chat_id, {}).get(_message_id(target))
            if stored is None and not isinstance(target, dict):
                raise ValueError(f"message {target} does not exist")
            message["reply_to_message"] = _view(stored or target, nested=False)

    def inline_query(self, user: UserLike, query: str, chat_type: str = "supergroup") -> str:
        """The user types "@bot ``query``" in a chat of ``chat_type``; returns the query id."""
        if not self.inline_mode:
            raise ValueError("inline mode is off for this bot (BotFather's /setinline)")
        with self._cond:
            user_dict = user.to_dict() if isinstance(user, User) else dict(user)
            self._users[user_dict["id"]] = user_dict
            query_id = str(5_000_000_000_000 + next(self._ids))
            self._open_inline.add(query_id)
            payload = {
                "id": query_id,
                "from": user_dict,
                "query": query,
                "offset": "",
                "chat_type": chat_type,
            }
            self._enqueue("inline_query", payload)
            return query_id

    def wait_for_inline_answer(self, query_id: str, timeout: float = 10.0) -> JSON:
        """The bot's answerInlineQuery for ``query_id``: its ``results``, ``cache_time``,
        ``is_personal``..."""
        return self._wait(
            f"the answer to inline query {query_id}",
            0,
            lambda: self._inline_answers.get(query_id),
            timeout,
        )

    def choose_inline_result(
        self, chat: ChatLike, user: UserLike, query_id: str, result_id: str
    ) -> JSON:
        """The user picks result ``result_id`` of the answered inline query: its message is
        posted in ``chat`` as the user's, "via" the bot. Returns the message."""
        with self._cond:
            answer = self._inline_answers.get(query_id)
            if answer is None:
                raise ValueError(f"inline query {query_id} was not answered")
            result = next((r for r in answer["results"] if r["id"] == result_id), None)
            if result is None:
                raise ValueError(f"inline query {query_id} has no result {result_id!r}")
            content = result["input_message_content"]
            message = self._new_message(*self._enter(chat, user))
            message["via_bot"] = dict(self.bot_user)
            message["text"], entities = self._content_text(content, answer["parse_mode"])
            if entities:
                message["entities"] = entities
            return self._deliver("message", message)

    def edit_message(self, chat: ChatLike, user: UserLike, message: JSON, text: str) -> JSON:
        """The user edits their earlier ``message`` to ``text``; delivers ``edited_message``."""
        with self._cond:
            chat_dict, user_dict = self._enter(chat, user)
            stored = self._messages.get(chat_dict["id"], {}).get(_message_id(message))
            if stored is None or stored["from"]["id"] != user_dict["id"]:
                raise ValueError(f"message {_message_id(message)} is not this user's message")
            key = "caption" if "document" in stored else "text"
            stored[key], stored["edit_date"] = text, int(time.time())
            stored.pop("entities" if key == "text" else "caption_entities", None)
            if entities := find_entities(text):
                stored["entities" if key == "text" else "caption_entities"] = entities
            return self._deliver("edited_message", stored)

    def send_sticker(
        self,
        chat: ChatLike,
        user: UserLike,
        emoji: str = "👍",
        forward_origin: JSON | None = None,
    ) -> JSON:
        """A user sends (or forwards, with ``forward_origin``) a regular, static sticker."""
        with self._cond:
            message = self._new_message(*self._enter(chat, user))
            stored = self._store_file("sticker.webp", "image/webp", b"RIFF\0\0\0\0WEBP", "stickers")
            message["sticker"] = {
                "file_id": stored.file_id,
                "type": "regular",
                "file_unique_id": stored.file_unique_id,
                "width": 512,
                "height": 512,
                "is_animated": False,
                "is_video": False,
                "emoji": emoji,
                "file_size": len(stored.data),
            }
            if forward_origin is not None:
                message["forward_origin"] = copy.deepcopy(forward_origin)
            return self._deliver("message", message)

    def press_button(
        self, chat: ChatLike, user: UserLike, message: JSON, callback_data: str
    ) -> str:
        """The user presses the inline button with ``callback_data`` on the bot's ``message``
        (as it is now, edits included); returns the callback query id."""
        with self._cond:
            chat_dict, user_dict = self._enter(chat, user)
            current = self._messages.get(chat_dict["id"], {}).get(_message_id(message))
            if current is None:
                raise ValueError(f"message {_message_id(message)} no longer exists")
            if callback_data not in _buttons(current):
                raise ValueError(
                    f"message {current['message_id']} has no button "
                    f"{callback_data!r}; its buttons: {_buttons(current)}"
                )
            query_id = str(4_000_000_000_000 + next(self._ids))
            self._open_callbacks.add(query_id)
            self._enqueue(
                "callback_query",
                {
                    "id": query_id,
                    "from": user_dict,
                    "chat_instance": f"ci{chat_dict['id']}",
                    "message": _view(current),
                    "data": callback_data,
                },
            )
            return query_id

    def set_admins(
        self, chat_id: int, admins: list[UserLike], owner: UserLike | None = None
    ) -> None:
        """Configure who getChatMember/getChatAdministrators report as the chat's admins."""
        as_dict = [a.to_dict() if isinstance(a, User) else dict(a) for a in admins]
        owner_dict = owner.to_dict() if isinstance(owner, User) else owner
        with self._cond:
            self._admins[chat_id] = (owner_dict, as_dict)

    def fail_next(
        self,
        method: str,
        error_code: int = 429,
        description: str | None = None,
        retry_after: int | None = None,
        times: int = 1,
    ) -> None:
        """Make the next ``times`` calls of ``method`` fail (a 429 with retry_after=1 default)."""
        if error_code == 429:
            retry_after = retry_after or 1
        default = {
            429: f"Too Many Requests: retry after {retry_after}",
            403: "Forbidden: bot was blocked by the user",
            400: "Bad Request: injected failure",
            502: "Bad Gateway",
        }
        error = ApiError(
            error_code,
            description or default.get(error_code, "Injected failure"),
            {"retry_after": retry_after} if retry_after else None,
        )
        with self._cond:
            self._failures.setdefault(method.lower(), []).extend([error] * times)

    def break_next(self, method: str, times: int = 1) -> None:
        """Make the next ``times`` calls of ``method`` end without an answer: the connection
        is closed unanswered and the call not carried out, as when a request times out."""
        with self._cond:
            self._breaks[method.lower()] = self._breaks.get(method.lower(), 0) + times

    # ---- observing the bot -----------------------------------------------------------------

    def sent_messages(self, chat_id: int | None = None) -> list[JSON]:
        """Copies of the bot's messages in send order, edits applied. Besides the Message
        fields each has ``html`` (the text as sent), ``parse_mode``, ``reply_to`` (message id),
        ``request`` (the decoded parameters), ``edit_count`` and ``deleted``."""
        with self._cond:
            return [copy.deepcopy(m) for m in self._sent if chat_id in (None, m["chat"]["id"])]

    def wait_for_message(
        self,
        chat_id: int,
        predicate: Callable[[JSON], bool] | None = None,
        timeout: float = 30.0,
        after: JSON | int | None = None,
    ) -> JSON:
        """Block until the bot has sent a matching message to ``chat_id`` whose id is above
        ``after`` (a message or id; default: the last message this method returned for the
        chat), and return it. Raises AssertionError listing what was sent on timeout."""
        with self._cond:
            floor = self._message_cursor.get(chat_id, 0) if after is None else _message_id(after)

        def find() -> JSON | None:
            for record in self._sent:
                if (
                    record["chat"]["id"] == chat_id
                    and record["message_id"] > floor
                    and (predicate is None or predicate(copy.deepcopy(record)))
                ):
                    cursor = self._message_cursor.get(chat_id, 0)
                    self._message_cursor[chat_id] = max(cursor, record["message_id"])
                    return record
            return None

        return self._wait(f"a new bot message in chat {chat_id}", chat_id, find, timeout)

    def wait_for_edit(
        self,
        chat_id: int,
        predicate: Callable[[JSON], bool] | None = None,
        timeout: float = 30.0,
        message_id: int | None = None,
    ) -> JSON:
        """Block until the bot edits a message in ``chat_id`` (after the edits this method
        already returned for the chat) and return the message as of that edit."""

        def find() -> JSON | None:
            for index in range(self._edit_cursor.get(chat_id, 0), len(self._edits)):
                snapshot = self._edits[index]
                if (
                    snapshot["chat"]["id"] == chat_id
                    and message_id in (None, snapshot["message_id"])
                    and (predicate is None or predicate(copy.deepcopy(snapshot)))
                ):
                    self._edit_cursor[chat_id] = index + 1
                    return snapshot
            return None

        return self._wait(f"a bot edit in chat {chat_id}", chat_id, find, timeout)

    def wait_for_chat_action(self, chat_id: int, timeout: float = 30.0) -> JSON:
        """Block until the bot sends a chat action ("typing") to ``chat_id``; return it."""

        def find() -> JSON | None:
            return next((a for a in self._chat_actions if a["chat_id"] == chat_id), None)

        return self._wait(f"a chat action in chat {chat_id}", chat_id, find, timeout)

    @property
    def answered_callbacks(self) -> list[JSON]:
        """answerCallbackQuery calls: callback_query_id, text, show_alert, url, cache_time."""
        with self._cond:
            return copy.deepcopy(self._answered)

    @property
    def reactions(self) -> list[JSON]:
        """setMessageReaction calls: chat_id, message_id and the emoji set (empty: removed)."""
        with self._cond:
            return copy.deepcopy(self._reactions)

    def wait_for_reaction(self, chat_id: int, message_id: int, timeout: float = 30.0) -> list[str]:
        """Block until the bot reacts to a message; returns the emoji it set."""

        def find() -> list[str] | None:
            for reaction in reversed(self._reactions):
                if reaction["chat_id"] == chat_id and reaction["message_id"] == message_id:
                    return reaction["emoji"]
            return None

        return self._wait(f"a reaction to message {message_id}", chat_id, find, timeout)

    @property
    def commands(self) -> list[JSON]:
        """The commands set with setMyCommands for the default scope and no language."""
        return self.get_commands()

    def get_commands(self, scope: JSON | None = None, language_code: str = "") -> list[JSON]:
        """The commands set for a scope (e.g. ``{"type": "all_private_chats"}``) and language."""
        with self._cond:
            return copy.deepcopy(self._commands.get(self._scope_key(scope, language_code), []))

    @property
    def chat_actions(self) -> list[JSON]:
        """sendChatAction calls as ``{"chat_id": ..., "action": ...}``."""
        with self._cond:
            return copy.deepcopy(self._chat_actions)

    @property
    def calls(self) -> list[str]:
        """Names of all Bot API methods called, in order."""
        with self._cond:
            return [method for method, _ in self._requests]

    @property
    def requests(self) -> list[tuple[str, JSON]]:
        """All calls with their decoded parameters (JSON parameters decoded to objects)."""
        with self._cond:
            return copy.deepcopy(self._requests)

    @property
    def errors(self) -> list[JSON]:
        """Error responses sent to the bot, as ``{"method", "error_code", "description"}``;
        omits the 409 with which a newer getUpdates ends a superseded (abandoned) long poll."""
        with self._cond:
            return copy.deepcopy(self._errors)

    # ---- internals: state ------------------------------------------------------------------

    def _wait(
        self, what: str, chat_id: int, find: Callable[[], JSON | None], timeout: float
    ) -> JSON:
        deadline = time.monotonic() + timeout
        with self._cond:
            while (found := find()) is None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(
                        f"timed out after {timeout}s waiting for {what}\n" + self._report(chat_id)
                    )
                self._cond.wait(remaining)
            return copy.deepcopy(found)

    def _report(self, chat_id: int) -> str:
        lines = [f"bot messages in chat {chat_id}:"]
        for m in self._sent:
            if m["chat"]["id"] != chat_id:
                continue
            flags = " [deleted]" if m["deleted"] else ""
            flags += f" [edited x{m['edit_count']}]" if m["edit_count"] else ""
            text = m.get("text", m.get("caption", ""))
            lines.append(f"  #{m['message_id']}{flags}: {text[:200]!r} buttons={_buttons(m)}")
        if len(lines) == 1:
            lines.append("  (none)")
        lines.append(f"error responses: {[(e['method'], e['description']) for e in self._errors]}")
        lines.append(f"last calls: {[method for method, _ in self._requests[-20:]]}")
        return "\n".join(lines)

    def _enter(self, chat: ChatLike, user: UserLike) -> tuple[JSON, JSON]:
        """Register the user as present in the chat; returns their Telegram dicts."""
        user_dict = user.to_dict() if isinstance(user, User) else dict(user)
        chat_dict = chat.to_dict() if isinstance(chat, Chat) else dict(chat)
        if chat_dict["type"] == "private":
            if chat_dict["id"] != user_dict["id"]:
                raise ValueError("a private chat's id must equal its user's id")
            chat_dict = {
                "id": user_dict["id"],
                "type": "private",
                "first_name": user_dict["first_name"],
            }
            if user_dict.get("username"):
                chat_dict["username"] = user_dict["username"]
        self._chats[chat_dict["id"]] = chat_dict
        self._users[user_dict["id"]] = user_dict
        self._members.setdefault(chat_dict["id"], set()).add(user_dict["id"])
        return chat_dict, user_dict

    def _new_message(self, chat: JSON, sender: JSON) -> JSON:
        message_id = self._last_message_id.get(chat["id"], 0) + 1
        self._last_message_id[chat["id"]] = message_id
        return {
            "message_id": message_id,
            "from": dict(sender),
            "chat": dict(chat),
            "date": int(time.time()),
        }

    def _deliver(self, kind: str, message: JSON) -> JSON:
        """Store a user's message and enqueue it unless privacy mode hides it from the bot."""
        self._messages.setdefault(message["chat"]["id"], {})[message["message_id"]] = message
        if (
            message["chat"]["type"] == "private"
            or not self.privacy_mode
            or self._is_admin(message["chat"]["id"], self.bot_user["id"])
            or self._addressed(message)
        ):
            self._enqueue(kind, message)
        return copy.deepcopy(message)

    def _is_admin(self, chat_id: int, user_id: int) -> bool:
        owner, admins = self._admins.get(chat_id, (None, []))
        return any(admin and admin["id"] == user_id for admin in [owner, *admins])

    def _addressed(self, message: JSON) -> bool:
        if (message.get("reply_to_message") or {}).get("from", {}).get("id") == self.bot_user["id"]:
            return True
        if (message.get("via_bot") or {}).get("id") == self.bot_user["id"]:
            return True
        text = message.get("text") or message.get("caption") or ""
        entities = message.get("entities") or message.get("caption_entities") or []
        if not entities or entities[0]["type"] != "bot_command" or entities[0]["offset"] != 0:
            return False
        target = text[: entities[0]["length"]].partition("@")[2]
        return target.lower() in ("", self.bot_user["username"].lower())

    def _enqueue(self, kind: str, payload: JSON) -> None:
        """Queue an update, unless the bot's ``allowed_updates`` leave its kind out (Telegram
        then never delivers it)."""
        if kind not in self._allowed_updates:
            return
        self._updates.append({"update_id": next(self._update_ids), kind: copy.deepcopy(payload)})
        self._cond.notify_all()

    def _allow(self, params: _Params) -> None:
        """Take ``allowed_updates`` from getUpdates or setWebhook: a list replaces the kinds
        delivered (an empty one means the default), no value keeps them."""
        allowed = params.object("allowed_updates")
        if allowed is None:
            return
        self._allowed_updates = set(allowed) or set(DEFAULT_UPDATES)
        self._updates = [
            u for u in self._updates if set(u) - {"update_id"} <= self._allowed_updates
        ]

    def _store_file(self, file_name: str, mime_type: str, data: bytes, folder: str) -> _StoredFile:
        number = next(self._ids)
        stored = _StoredFile(
            f"standin-file-{number}",
            f"uniq{number}",
            f"{folder}/file_{number}{PurePosixPath(file_name).suffix}",
            file_name,
            mime_type,
            data,
        )
        self._files[stored.file_id] = stored
        return stored

    # ---- internals: HTTP -------------------------------------------------------------------

    def _handle_http(self, handler: _Handler) -> None:
        url = urlsplit(handler.path)
        body = handler.rfile.read(int(handler.headers.get("Content-Length") or 0))
        if url.path.startswith("/file/bot"):
            self._serve_file(handler, unquote(url.path.removeprefix("/file/bot")))
            return
        match = re.fullmatch(r"/bot([^/]+)/(\w*)", url.path)
        try:
            if match is None or not match.group(2):
                raise ApiError(404, "Not Found")
            if match.group(1) != self.token:
                raise ApiError(401, "Unauthorized")
            if self._broken(match.group(2)):
                handler.close_connection = True
                handler.connection.shutdown(socket.SHUT_RDWR)
                return
            params = _Params.from_http(url.query, handler.headers.get("Content-Type", ""), body)
            result: JSON = {"ok": True, "result": self._call(match.group(2), params)}
            handler.respond(200, json.dumps(result).encode())
        except ApiError as error:
            handler.respond(error.code, json.dumps(error.to_json()).encode())
        except Exception as error:  # a stand-in bug must not look like a network failure
            logger.exception("Bot API stand-in failed on %s", url.path)
            failure = {"ok": False, "error_code": 500, "description": f"Internal: {error!r}"}
            handler.respond(500, json.dumps(failure).encode())

    def _broken(self, method: str) -> bool:
        """Whether this call of `method` is one `break_next` asked to leave unanswered."""
        with self._cond:
            left = self._breaks.get(method.lower(), 0)
            if left:
                self._breaks[method.lower()] = left - 1
                self._requests.append((method, {"broken": True}))
            return bool(left)

    def _call(self, method: str, params: _Params) -> Any:
        with self._cond:
            self._requests.append((method, params.as_log()))
            self._cond.notify_all()
            try:
                handler = self._methods.get(method.lower())
                if handler is None:
                    raise ApiError(404, "Not Found: method not found")
                if failures := self._failures.get(method.lower()):
                    raise failures.pop(0)
                return handler(params)
            except ApiError as error:
                if error.code != 409:  # 409 ends a long poll its client has already abandoned
                    self._errors.append(
                        {
                            "method": method,
                            "error_code": error.code,
                            "description": error.description,
                        }
                    )
                raise

    def _serve_file(self, handler: _Handler, rest: str) -> None:
        token, _, file_path = rest.partition("/")
        with self._cond:
            stored = next((f for f in self._files.values() if f.file_path == file_path), None)
        if token != self.token or stored is None:
            error = ApiError(404, "Not Found")
            handler.respond(404, json.dumps(error.to_json()).encode())
        else:
            handler.respond(200, stored.data, stored.mime_type)

    # ---- internals: parameter helpers ------------------------------------------------------

    def _chat(self, params: _Params) -> JSON:
        raw = params.get("chat_id")
        if raw in (None, ""):
            raise ApiError(400, "Bad Request: chat_id is empty")
        if isinstance(raw, str) and raw.startswith("@"):
            found = [c for c in self._chats.values() if f"@{c.get('username')}" == raw]
            if found:
                return found[0]
        elif (chat := self._chats.get(params.integer("chat_id"))) is not None:
            return chat
        raise ApiError(400, "Bad Request: chat not found")

    def _formatted(
        self, params: _Params, key: str, entities_key: str, max_length: int
    ) -> tuple[str, list[JSON], str]:
        """Parse text/caption by parse_mode and apply Telegram's limits; returns the plain
        text, its entities and the text as sent."""
        source = params.string(key) or ""
        mode = (params.string("parse_mode") or "").lower()
        if mode == "html":
            try:
                plain, entities = parse_html(source, self.strict_html_entities)
            except HtmlParseError as error:
                raise ApiError(400, f"Bad Request: can't parse entities: {error}") from None
        elif mode in ("markdown", "markdownv2"):  # not parsed: stored verbatim
            plain, entities = source, []
        elif not mode:
            plain, entities = source, params.object(entities_key) or []
        else:
            raise ApiError(400, "Bad Request: unsupported parse_mode")
        plain, entities = _strip_text(plain, entities)
        if key == "text" and not plain:
            raise ApiError(400, "Bad Request: message text is empty")
        if len(plain) > max_length:
            what = "message is too long" if key == "text" else "message caption is too long"
            raise ApiError(400, f"Bad Request: {what}")
        return plain, entities, source

    def _reply_markup(self, params: _Params) -> JSON | None:
        """The request's reply_markup, validated; only inline keyboards appear on messages."""
        markup = params.object("reply_markup")
        if markup is None:
            return None
        if not isinstance(markup, dict):
            raise ApiError(400, "Bad Request: can't parse reply keyboard markup JSON object")
        for row in markup.get("inline_keyboard", []):
            for button in row:
                if not set(button) - {"text"}:
                    raise ApiError(
                        400, "Bad Request: text buttons are unallowed in the inline keyboard"
                    )
                data = button.get("callback_data")
                if data is not None and not 1 <= len(str(data).encode()) <= 64:
                    raise ApiError(400, "Bad Request: BUTTON_DATA_INVALID")
        return markup if "inline_keyboard" in markup else None

    def _reply_target(self, params: _Params, chat: JSON) -> JSON | None:
        reply = params.object("reply_parameters") or {}
        message_id = reply.get("message_id", params.integer("reply_to_message_id"))
        if message_id is None:
            return None
        target = self._messages.get(chat["id"], {}).get(int(message_id))
        if target is None and not (
            reply.get("allow_sending_without_reply") or params.flag("allow_sending_without_reply")
        ):
            raise ApiError(400, "Bad Request: message to be replied not found")
        return target

    def _topic_of(self, params: _Params, chat: JSON) -> int | None:
        """The forum topic named by ``message_thread_id`` (None: the General topic)."""
        thread = params.integer("message_thread_id")
        if thread is None:
            return None
        if thread not in self._topics.get(chat["id"], {}):
            raise ApiError(400, "Bad Request: message thread not found")
        return thread

    def _content_text(self, content: JSON, default_mode: str | None) -> tuple[str, list[JSON]]:
        """The text and entities of an inline result's InputTextMessageContent, validated
        like a sendMessage."""
        if not isinstance(content, dict) or not isinstance(content.get("message_text"), str):
            raise ApiError(400, "Bad Request: MESSAGE_EMPTY")
        mode = content.get("parse_mode", default_mode)
        params = _Params(
            {"text": content["message_text"], "parse_mode": mode or ""}
            | ({"entities": content["entities"]} if "entities" in content else {}),
            {},
        )
        text, entities, _ = self._formatted(params, "text", "entities", MAX_TEXT_LENGTH)
        return text, entities

    def _bot_message(self, params: _Params, action: str) -> JSON:
        if params.get("inline_message_id"):
            raise ApiError(400, "Bad Request: inline messages are not supported by the stand-in")
        chat = self._chat(params)
        message_id = params.integer("message_id")
        if message_id is None:
            raise ApiError(400, "Bad Request: message identifier is not specified")
        message = self._messages.get(chat["id"], {}).get(message_id)
        if message is None:
            raise ApiError(400, f"Bad Request: message to {action} not found")
        if action == "edit" and message["from"]["id"] != self.bot_user["id"]:
            raise ApiError(400, "Bad Request: message can't be edited")
        return message

    def _record_sent(self, params: _Params, chat: JSON, content: JSON, source: str) -> JSON:
        """Validate the reply parts of a send, then store and return the bot's new message."""
        target = self._reply_target(params, chat)
        markup = self._reply_markup(params)
        thread = self._topic_of(params, chat)
        message = self._new_message(chat, self.bot_user) | content
        if thread is not None:
            message |= {"message_thread_id": thread, "is_topic_message": True}
        if target is not None:
            message["reply_to_message"] = _view(target, nested=False)
        if markup is not None:
            message["reply_markup"] = markup
        record = message | {
            "html": source,
            "parse_mode": params.string("parse_mode"),
            "reply_to": target and target["message_id"],
            "request": params.as_log(),
            "edit_count": 0,
            "deleted": False,
        }
        self._messages.setdefault(chat["id"], {})[message["message_id"]] = record
        self._sent.append(record)
        self._cond.notify_all()
        return _view(record)

    def _record_edit(self, record: JSON, params: _Params, changes: JSON) -> JSON:
        """Apply an edit to the bot's message (empty values remove the field) and log it."""
        for key, value in changes.items():
            if value:
                record[key] = value
            else:
                record.pop(key, None)
        record.update(
            edit_date=int(time.time()), edit_count=record["edit_count"] + 1, request=params.as_log()
        )
        if params.string("text") is not None:
            record.update(html=params.string("text"), parse_mode=params.string("parse_mode"))
        self._edits.append(copy.deepcopy(record))
        self._cond.notify_all()
        return _view(record)

    @staticmethod
    def _scope_key(scope: JSON | None, language_code: str | None) -> str:
        return json.dumps(scope or {"type": "default"}, sort_keys=True) + (language_code or "")

    # ---- Bot API methods (called with the lock held) ---------------------------------------

    def _get_me(self, params: _Params) -> JSON:
        return self.bot_user | {
            "can_join_groups": True,
            "can_read_all_group_messages": not self.privacy_mode,
            "supports_inline_queries": self.inline_mode,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }

    def _set_webhook(self, params: _Params) -> bool:
        url = params.get("url") or ""
        if not url:
            return self._delete_webhook(params)
        if not re.fullmatch(r"https?://[^\s]+", url):
            raise ApiError(400, "Bad Request: bad webhook: Failed to resolve host")
        secret = params.get("secret_token")
        if secret is not None and not re.fullmatch(r"[A-Za-z0-9_-]{1,256}", secret):
            raise ApiError(400, "Bad Request: secret token contains unallowed characters")
        if params.flag("drop_pending_updates"):
            self._updates.clear()
        self._allow(params)
        connections = max(1, min(100, params.integer("max_connections") or 40))
        self._webhook = {"url": url, "secret_token": secret, "max_connections": connections}
        while len(self._delivery_threads) < connections:
            thread = threading.Thread(target=self._deliver_webhooks, daemon=True)
            self._delivery_threads.append(thread)
            thread.start()
        self._cond.notify_all()
        return True

    def _delete_webhook(self, params: _Params) -> bool:
        self._webhook = None
        if params.flag("drop_pending_updates"):
            self._updates.clear()
        return True

    def _get_webhook_info(self, params: _Params) -> JSON:
        return {
            "url": self._webhook["url"] if self._webhook else "",
            "has_custom_certificate": False,
            "pending_update_count": len(self._updates),
            "max_connections": self._webhook["max_connections"] if self._webhook else 40,
        }

    @property
    def webhook(self) -> JSON | None:
        """The webhook as the bot set it (url, secret_token, max_connections), or None."""
        with self._cond:
            return copy.deepcopy(self._webhook)

    def _deliverable(self) -> JSON | None:
        """The oldest update not being delivered whose chat has no earlier one in flight."""
        busy = {_update_chat(u) for u in self._updates if u["update_id"] in self._in_flight}
        now = time.monotonic()
        for update in self._updates:
            chat = _update_chat(update)
            if update["update_id"] in self._in_flight or chat in busy:
                continue
            busy.add(chat)
            if self._retry_at.get(update["update_id"], 0) <= now:
                return update
        return None

    def _deliver_webhooks(self) -> None:
        """One of the parallel connections Telegram delivers webhook updates through."""
        while True:
            with self._cond:
                while not self._stopping and (
                    self._webhook is None or (update := self._deliverable()) is None
                ):
                    self._cond.wait(0.1)
                if self._stopping:
                    return
                self._in_flight.add(update["update_id"])
                webhook, body = dict(self._webhook), json.dumps(update).encode()
            status = _post_update(webhook, body)
            with self._cond:
                self._in_flight.discard(update["update_id"])
                self.webhook_deliveries.append({"update_id": update["update_id"], "status": status})
                if 200 <= status < 300:
                    self._updates = [u for u in self._updates if u is not update]
                    self._retry_at.pop(update["update_id"], None)
                else:
                    self._retry_at[update["update_id"]] = time.monotonic() + 0.5
                self._cond.notify_all()

    def _get_updates(self, params: _Params) -> list[JSON]:
        """Long polling: confirm updates below ``offset``, then wait up to ``timeout`` seconds
        for one. A newer getUpdates call ends this one with 409, as on Telegram."""
        if self._webhook is not None:
            raise ApiError(
                409,
                "Conflict: can't use getUpdates method while webhook is active; use "
                "deleteWebhook to delete the webhook first",
            )
        self._allow(params)
        offset, limit = params.integer("offset"), params.integer("limit") or 100
        deadline = time.monotonic() + float(params.get("timeout") or 0)
        self._poll_generation += 1
        generation = self._poll_generation
        self._cond.notify_all()
        if offset is not None and offset < 0:
            self._updates = self._updates[offset:]
        elif offset is not None:
            self._updates = [u for u in self._updates if u["update_id"] >= offset]
        while not self._updates and not self._stopping:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            self._cond.wait(remaining)
            if generation != self._poll_generation:
                raise ApiError(
                    409,
                    "Conflict: terminated by other getUpdates request; make "
                    "sure that only one bot instance is running",
                )
        return copy.deepcopy(self._updates[: max(1, min(limit, 100))])

    def _send_message(self, params: _Params) -> JSON:
        chat = self._chat(params)
        text, entities, source = self._formatted(params, "text", "entities", MAX_TEXT_LENGTH)
        content: JSON = {"text": text} | ({"entities": entities} if entities else {})
        return self._record_sent(params, chat, content, source)

    def _send_document(self, params: _Params) -> JSON:
        chat = self._chat(params)
        if upload := params.upload("document"):
            stored = self._store_file(upload.file_name, upload.mime_type, upload.data, "documents")
        elif (stored := self._files.get(params.string("document") or "")) is None:
            raise ApiError(400, "Bad Request: wrong file identifier/HTTP URL specified")
        caption, entities, source = self._formatted(
            params, "caption", "caption_entities", MAX_CAPTION_LENGTH
        )
        content: JSON = {"document": stored.as_document()}
        content |= {"caption": caption} if caption else {}
        content |= {"caption_entities": entities} if entities else {}
        return self._record_sent(params, chat, content, source)

    def _edit_message_text(self, params: _Params) -> JSON:
        record = self._bot_message(params, "edit")
        if "text" not in record:
            raise ApiError(400, "Bad Request: there is no text in the message to edit")
        text, entities, _ = self._formatted(params, "text", "entities", MAX_TEXT_LENGTH)
        markup = self._reply_markup(params)  # omitting it removes the keyboard, like Telegram
        if (text, entities, markup) == (
            record["text"],
            record.get("entities", []),
            record.get("reply_markup"),
        ):
            raise ApiError(400, NOT_MODIFIED)
        return self._record_edit(
            record, params, {"text": text, "entities": entities, "reply_markup": markup}
        )

    def _edit_reply_markup(self, params: _Params) -> JSON:
        record = self._bot_message(params, "edit")
        markup = self._reply_markup(params)
        if markup == record.get("reply_markup"):
            raise ApiError(400, NOT_MODIFIED)
        return self._record_edit(record, params, {"reply_markup": markup})

    def _delete_message(self, params: _Params) -> bool:
        message = self._bot_message(params, "delete")
        del self._messages[message["chat"]["id"]][message["message_id"]]
        if "deleted" in message:
            message["deleted"] = True
        self._cond.notify_all()
        return True

    def _answer_callback(self, params: _Params) -> bool:
        query_id = params.string("callback_query_id")
        if query_id not in self._open_callbacks:
            raise ApiError(
                400,
                "Bad Request: query is too old and response timeout expired or query ID is invalid",
            )
        self._open_callbacks.discard(query_id)
        self._answered.append(
            {
                "callback_query_id": query_id,
                "text": params.string("text"),
                "show_alert": params.flag("show_alert"),
                "url": params.string("url"),
                "cache_time": params.integer("cache_time"),
            }
        )
        self._cond.notify_all()
        return True

    def _answer_inline_query(self, params: _Params) -> bool:
        query_id = params.string("inline_query_id")
        if query_id not in self._open_inline:
            raise ApiError(
                400,
                "Bad Request: query is too old and response timeout expired or query ID is invalid",
            )
        results = params.object("results")
        if not isinstance(results, list) or len(results) > 50:
            raise ApiError(400, "Bad Request: RESULTS_TOO_MUCH")
        ids = [str(result.get("id", "")) for result in results]
        if len(set(ids)) != len(ids) or not all(1 <= len(i.encode()) <= 64 for i in ids):
            raise ApiError(400, "Bad Request: RESULT_ID_INVALID")
        mode = params.string("parse_mode")
        for result in results:
            if result.get("type") != "article" or not str(result.get("title", "")).strip():
                raise ApiError(400, "Bad Request: RESULT_TYPE_INVALID")
            self._content_text(result.get("input_message_content"), mode)
        self._open_inline.discard(query_id)
        self._inline_answers[query_id] = {
            "results": results,
            "cache_time": params.integer("cache_time"),
            "is_personal": params.flag("is_personal"),
            "next_offset": params.string("next_offset"),
            "parse_mode": mode,
        }
        self._cond.notify_all()
        return True

    def _set_commands(self, params: _Params) -> bool:
        commands = params.object("commands")
        if not isinstance(commands, list) or len(commands) > 100:
            raise ApiError(400, "Bad Request: commands must be an array of at most 100 commands")
        for command in commands:
            if not re.fullmatch(r"[a-z0-9_]{1,32}", str(command.get("command", ""))):
                raise ApiError(400, "Bad Request: BOT_COMMAND_INVALID")
            if not 1 <= len(str(command.get("description", "")).strip()) <= 256:
                raise ApiError(400, "Bad Request: command description must be 1-256 characters")
        key = self._scope_key(params.object("scope"), params.string("language_code"))
        self._commands[key] = [
            {"command": c["command"], "description": c["description"]} for c in commands
        ]
        return True

    def _get_commands(self, params: _Params) -> list[JSON]:
        key = self._scope_key(params.object("scope"), params.string("language_code"))
        return copy.deepcopy(self._commands.get(key, []))

    def _delete_commands(self, params: _Params) -> bool:
        self._commands.pop(
            self._scope_key(params.object("scope"), params.string("language_code")), None
        )
        return True

    def _send_chat_action(self, params: _Params) -> bool:
        chat = self._chat(params)
        action = params.string("action")
        if action not in CHAT_ACTIONS:
            raise ApiError(400, "Bad Request: wrong parameter action in request")
        record = {"chat_id": chat["id"], "action": action}
        if (thread := self._topic_of(params, chat)) is not None:
            record["message_thread_id"] = thread
        self._chat_actions.append(record)
        self._cond.notify_all()
        return True

    def _get_file(self, params: _Params) -> JSON:
        stored = self._files.get(params.string("file_id") or "")
        if stored is None:
            raise ApiError(400, "Bad Request: invalid file_id")
        if len(stored.data) > MAX_DOWNLOAD_SIZE:
            raise ApiError(400, "Bad Request: file is too big")
        return {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "file_size": len(stored.data),
            "file_path": stored.file_path,
        }

    def _get_chat(self, params: _Params) -> JSON:
        gifts = dict.fromkeys(
            [
                "unlimited_gifts",
                "limited_gifts",
                "unique_gifts",
                "premium_subscription",
                "gifts_from_channels",
            ],
            True,
        )
        return self._chat(params) | {
            "accent_color_id": 0,
            "max_reaction_count": 11,
            "accepted_gift_types": gifts,
        }

    def _member(self, chat: JSON, user: JSON) -> JSON:
        owner, admins = self._admins.get(chat["id"], (None, []))
        if owner and owner["id"] == user["id"]:
            return {"status": "creator", "user": user, "is_anonymous": False}
        if any(admin["id"] == user["id"] for admin in admins):
            rights = dict.fromkeys(
                [
                    "can_manage_chat",
                    "can_delete_messages",
                    "can_manage_video_chats",
                    "can_restrict_members",
                    "can_change_info",
                    "can_invite_users",
                    "can_post_stories",
                    "can_edit_stories",
                    "can_delete_stories",
                    "can_pin_messages",
                ],
                True,
            )
            return {
                "status": "administrator",
                "user": user,
                "can_be_edited": False,
                "is_anonymous": False,
                "can_promote_members": False,
            } | rights
        present = user["id"] in self._members.get(chat["id"], set()) | {self.bot_user["id"]}
        return {"status": "member" if present else "left", "user": user}

    def _get_chat_member(self, params: _Params) -> JSON:
        chat, user_id = self._chat(params), params.integer("user_id")
        user = self.bot_user if user_id == self.bot_user["id"] else self._users.get(user_id)
        if user is None:
            raise ApiError(400, "Bad Request: user not found")
        return self._member(chat, user)

    def _set_message_reaction(self, params: _Params) -> bool:
        chat, message_id = self._chat(params), params.integer("message_id")
        if message_id not in self._messages.get(chat["id"], {}):
            raise ApiError(400, "Bad Request: message to react not found")
        reaction = params.object("reaction") or []
        if not isinstance(reaction, list):
            raise ApiError(400, "Bad Request: can't parse reaction types JSON object")
        emoji = []
        for kind in reaction:
            if kind.get("type") != "emoji" or kind.get("emoji") not in REACTION_EMOJI:
                raise ApiError(400, "Bad Request: REACTION_INVALID")
            emoji.append(kind["emoji"])
        self._reactions.append({"chat_id": chat["id"], "message_id": message_id, "emoji": emoji})
        self._cond.notify_all()
        return True

    def _get_chat_administrators(self, params: _Params) -> list[JSON]:
        chat = self._chat(params)
        if chat["type"] == "private":
            raise ApiError(400, "Bad Request: there are no administrators in the private chat")
        owner, admins = self._admins.get(chat["id"], (None, []))
        return [self._member(chat, user) for user in ([owner] if owner else []) + admins]
