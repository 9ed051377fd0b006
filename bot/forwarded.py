"""Forwarded posts: what a message forwarded from a channel, group or person holds to add.

A forwarded post is added as an article whose source is where it came from (the channel's
name and, for a public channel, the post's `t.me` link), not the person who forwarded it. A
post that is mostly a link (a headline and "read more") adds the linked article instead; a
photo's or video's caption counts as text. What Telegram users forward is read here, so the
handlers only decide when.
"""

from __future__ import annotations

from dataclasses import dataclass

from telegram import (
    Message,
    MessageEntity,
    MessageOrigin,
    MessageOriginChannel,
    MessageOriginChat,
    MessageOriginHiddenUser,
    MessageOriginUser,
)

from bot.conversation import is_short_note
from index.records import Origin

_NO_LINKS = ("t.me", "telegram.me")  # links to other posts, not to articles


@dataclass(frozen=True)
class ForwardedPost:
    """What to add for a forwarded message: the link it is about, or its text and origin;
    both empty when it holds no text at all (a poll, a sticker, a photo without caption)."""

    link: str = ""
    text: str = ""
    origin: Origin | None = None

    @property
    def empty(self) -> bool:
        return not (self.link or self.text)


def forwarded_post(message: Message) -> ForwardedPost:
    """Read a message with a `forward_origin` (Telegram keeps the post's text and entities)."""
    text = message.text or message.caption or ""
    if not text.strip():
        return ForwardedPost()
    kinds = [MessageEntity.URL, MessageEntity.TEXT_LINK]
    entities = (
        message.parse_entities(kinds) if message.text else message.parse_caption_entities(kinds)
    )
    links = [entity.url or shown for entity, shown in entities.items()]
    links = [link for link in links if not _telegram_link(link)]
    shown_links = [shown for entity, shown in entities.items() if entity.type == MessageEntity.URL]
    if links and is_short_note(text, shown_links):
        return ForwardedPost(link=_with_scheme(links[0]))
    return ForwardedPost(text=text, origin=origin_of(message.forward_origin))


def origin_of(origin: MessageOrigin) -> Origin:
    """The name, public link and date of where a forwarded message first appeared."""
    published = origin.date.date().isoformat() if origin.date else None
    if isinstance(origin, MessageOriginChannel):
        chat = origin.chat
        link = f"https://t.me/{chat.username}/{origin.message_id}" if chat.username else None
        return Origin(chat.title or chat.username or "", link, published)
    if isinstance(origin, MessageOriginChat):
        return Origin(origin.sender_chat.title or "", None, published)
    if isinstance(origin, MessageOriginUser):
        return Origin(origin.sender_user.full_name, None, published)
    if isinstance(origin, MessageOriginHiddenUser):
        return Origin(origin.sender_user_name, None, published)
    return Origin("", None, published)


def _telegram_link(link: str) -> bool:
    host = link.split("://", 1)[-1].split("/", 1)[0].lower()
    return host in _NO_LINKS


def _with_scheme(link: str) -> str:
    """Telegram marks "example.com/a" as a link too; fetching needs the scheme."""
    return link if "://" in link else f"https://{link}"
