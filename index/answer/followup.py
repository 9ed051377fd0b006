"""Follow-ups: when a question builds on an earlier answer, and the memory that tells.

The policy, in one place:
- A reply to a message that shows an answer (the answer itself, its "More" page or its
  "Context") follows up on that answer, in any chat.
- In a private chat, a question right after an answer may follow up on it ("implicit"): it
  does when it leans on it ("And ...", "What about ...", a pronoun for someone named before)
  or when it finds nothing on its own. Anything else in between (an article added, removed,
  forgotten) ends that.
- In a group, questions stand alone unless they reply to an answer: others may be talking in
  between.
- A follow-up is read together with the earlier question, which weighs
  `FOLLOW_UP_CONTEXT_WEIGHT` of the new one, and prefers the earlier answer's articles.

The memory is kept by the storage engine, so follow-ups and buttons outlive a restart and work
whichever process handles the next message. It keeps references (article, sentence, offsets),
never article text: at most `MAX_RECORD_BYTES` per message and `ANSWERS_PER_CHAT` messages per
chat, however long the questions and quotes.
"""

from __future__ import annotations

import json
import re

from index.records import MAX_CONTEXT_CHARS, Answer, Quote
from index.storage.base import Storage

# The most one remembered answer takes (JSON, UTF-8): twelve quotes with their highlights fit.
MAX_RECORD_BYTES = 8192
# How much an earlier question counts when a follow-up is read in its light.
FOLLOW_UP_CONTEXT_WEIGHT = 0.5
# What makes a question lean on the previous one: an opening such as "And ..." or "What
# about ...", or a pronoun for a person or place named before. Words as common as "das", "es"
# or "it" are left out: most questions that contain them stand on their own.
_LEANS_ON_PREVIOUS = re.compile(
    r"^\s*(and|but|also|so|what about|how about|und|aber|auch|was ist mit)\b"
    r"|\b(he|she|they|him|her|them|his|hers|their|there|er|ihm|ihn|ihnen|dort|damals)\b",
    re.IGNORECASE,
)


def leans_on_previous(question: str) -> bool:
    """Whether a question cannot stand on its own ("And the Kremlin?", "What did he say?")."""
    return _LEANS_ON_PREVIOUS.search(question) is not None


class AnswerMemory:
    """Which message of a chat shows which answer, and the chat's latest answer."""

    def __init__(self, storage: Storage) -> None:
        self.storage = storage

    def record(self, chat_id: str, message_id: int, answer: Answer) -> None:
        """Remember the answer a message shows; only found answers can be followed up, and
        any answer ends the previous one's turn."""
        if answer.found:
            self.storage.remember_answer(chat_id, message_id, _dump(answer), latest=True)
        else:
            self.interrupt(chat_id)

    def show(self, chat_id: str, message_id: int, answer: Answer) -> None:
        """Remember that another message (more quotes, context) belongs to `answer` too."""
        self.storage.remember_answer(chat_id, message_id, _dump(answer), latest=False)

    def recall(self, chat_id: str, message_id: int | None) -> Answer | None:
        """The answer a message shows (None if unknown or forgotten)."""
        if message_id is None:
            return None
        return self._load(self.storage.recall_answer(chat_id, message_id))

    def interrupt(self, chat_id: str) -> None:
        """Something other than a question happened: the next question stands on its own."""
        self.storage.clear_latest_answer(chat_id)

    def previous(
        self, chat_id: str, replied_to: int | None, private: bool
    ) -> tuple[Answer | None, bool]:
        """(the earlier answer a new question builds on, whether that is only a guess)."""
        explicit = self.recall(chat_id, replied_to)
        if explicit is not None:
            return explicit, False
        if private:
            latest = self._load(self.storage.latest_answer(chat_id))
            if latest is not None:
                return latest, True
        return None, False

    def _load(self, record: str | None) -> Answer | None:
        """An answer as remembered, its quotes read again from their articles (a quote of an
        article removed since is left out)."""
        if record is None:
            return None
        data = json.loads(record)
        articles = self.storage.articles_by_ids(q[0] for q in data["quotes"])
        quotes = [
            Quote.at(
                articles[article_id], start, end, score, sentence_id, position,
                tuple(tuple(span) for span in highlights),
            )
            for article_id, sentence_id, position, start, end, score, highlights in data["quotes"]
            if article_id in articles
        ]  # fmt: skip
        return Answer(
            data["question"], quotes, found=True, language=data["language"], context=data["context"]
        )


def _dump(answer: Answer) -> str:
    """An answer as references, within MAX_RECORD_BYTES. Of the questions only what a
    follow-up reads is kept (`Answer.search_text`); a record still too large drops its
    quotes' highlights (which only mark words in bold), then its last quotes."""
    quotes = [
        [q.article_id, q.sentence_id, q.position, q.start, q.end, q.score, q.highlights]
        for q in answer.quotes
    ]
    record = {
        "question": answer.question.strip()[-MAX_CONTEXT_CHARS:],
        "context": answer.context[-MAX_CONTEXT_CHARS:],
        "language": answer.language,
        "quotes": quotes,
    }
    text = json.dumps(record, ensure_ascii=False)
    if len(text.encode()) > MAX_RECORD_BYTES:
        for quote in quotes:
            quote[-1] = ()
        text = json.dumps(record, ensure_ascii=False)
    while len(text.encode()) > MAX_RECORD_BYTES:
        quotes.pop()
        text = json.dumps(record, ensure_ascii=False)
    return text
