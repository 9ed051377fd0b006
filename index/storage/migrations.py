"""Versioned schema migrations, one list per engine.

A database records the last migration applied to it; opening it applies the ones after that,
in order, each in its own transaction. So a live database is upgraded in place, never refused
or rebuilt, and a new schema change is one more entry at the end of a list. Entries are never
edited once released.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Migration:
    version: int
    description: str
    sql: str


# The embedded engine. Version 4 is the first schema this project released; databases of
# earlier development versions are refused with a clear message.
SQLITE = (
    Migration(
        4,
        "articles, sentences and the encoding cache",
        """
CREATE TABLE chats (
    id TEXT PRIMARY KEY,
    next_number INTEGER NOT NULL DEFAULT 1,
    version INTEGER NOT NULL DEFAULT 0  -- counts changes to the chat's articles
);
CREATE TABLE articles (
    id INTEGER PRIMARY KEY,
    chat_id TEXT NOT NULL REFERENCES chats(id),
    number INTEGER NOT NULL,
    title TEXT NOT NULL,
    text TEXT NOT NULL,
    language TEXT NOT NULL,
    source TEXT NOT NULL,
    url TEXT,
    canonical_url TEXT,
    author TEXT,
    published TEXT,
    added_at TEXT NOT NULL,
    added_by TEXT,
    text_hash TEXT NOT NULL,
    UNIQUE (chat_id, number),
    UNIQUE (chat_id, text_hash)
);
CREATE INDEX articles_by_url ON articles (chat_id, canonical_url);
CREATE TABLE sentences (
    id INTEGER PRIMARY KEY,
    article_id INTEGER NOT NULL REFERENCES articles(id) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    paragraph INTEGER NOT NULL,
    start INTEGER NOT NULL,
    "end" INTEGER NOT NULL
);
CREATE INDEX sentences_by_article ON sentences (article_id, position);
-- How each model read each sentence: in which passage, and under which cached encoding.
CREATE TABLE sentence_encodings (
    sentence_id INTEGER NOT NULL REFERENCES sentences(id) ON DELETE CASCADE,
    model TEXT NOT NULL,
    passage INTEGER NOT NULL,
    key TEXT NOT NULL,
    PRIMARY KEY (sentence_id, model)
);
CREATE INDEX sentence_encodings_by_key ON sentence_encodings (key, model);
CREATE TABLE encodings (
    model TEXT NOT NULL,
    key TEXT NOT NULL,
    vector BLOB NOT NULL,
    token_ids BLOB NOT NULL,
    token_spans BLOB NOT NULL,
    token_vectors BLOB NOT NULL,
    PRIMARY KEY (model, key)
);
""",
    ),
    Migration(
        5,
        "conversation memory; the request that stored an article",
        """
ALTER TABLE articles ADD COLUMN request TEXT;
CREATE INDEX articles_by_request ON articles (chat_id, request);
CREATE TABLE answer_messages (
    id INTEGER PRIMARY KEY,
    chat_id TEXT NOT NULL,
    message_id INTEGER NOT NULL,
    record TEXT NOT NULL,
    UNIQUE (chat_id, message_id)
);
CREATE TABLE latest_answers (
    chat_id TEXT PRIMARY KEY,
    message_id INTEGER NOT NULL
);
""",
    ),
    Migration(
        6,
        "the adds each user asked for, for the hourly quota",
        """
CREATE TABLE adds (
    user_id TEXT NOT NULL,
    at REAL NOT NULL                -- seconds since the epoch
);
CREATE INDEX adds_by_user ON adds (user_id, at);
""",
    ),
    Migration(
        7,
        "feed subscriptions; per-chat settings (collecting links)",
        """
CREATE TABLE feeds (
    id INTEGER PRIMARY KEY,
    chat_id TEXT NOT NULL,
    url TEXT NOT NULL,
    title TEXT NOT NULL,
    added_by TEXT,
    added_at TEXT NOT NULL,
    language TEXT NOT NULL,             -- of whoever followed it: the chat hears this one
    etag TEXT,
    last_modified TEXT,
    next_poll REAL NOT NULL,            -- seconds since the epoch
    claimed_until REAL,                 -- a process is polling it until then
    last_success TEXT,
    last_error TEXT,
    failures INTEGER NOT NULL DEFAULT 0,
    reported INTEGER NOT NULL DEFAULT 0,  -- the failing was told to the chat
    paused INTEGER NOT NULL DEFAULT 0,
    UNIQUE (chat_id, url)
);
CREATE INDEX feeds_due ON feeds (next_poll);
CREATE TABLE feed_items (
    feed_id INTEGER NOT NULL REFERENCES feeds(id) ON DELETE CASCADE,
    key TEXT NOT NULL,
    PRIMARY KEY (feed_id, key)
);
CREATE TABLE chat_settings (
    chat_id TEXT PRIMARY KEY,
    collect_links INTEGER NOT NULL DEFAULT 0
);
""",
    ),
    Migration(
        8,
        "compact encodings: a format per encoding, a token codebook per model",
        """
-- 0: float32 vector and float16 token vectors, as before. 1: compact (see storage/codec.py)
ALTER TABLE encodings ADD COLUMN format INTEGER NOT NULL DEFAULT 0;
CREATE INDEX encodings_full ON encodings (model) WHERE format = 0;
CREATE TABLE token_codebooks (
    model TEXT PRIMARY KEY,
    codebook BLOB NOT NULL
);
""",
    ),
    Migration(
        9,
        "how each model read each sentence, keyed by (sentence, model) alone (no rowid)",
        """
-- Without its rowid and the separate index of its primary key, the table takes about half
-- the space: some 70 bytes a sentence, once token vectors are compact.
CREATE TABLE sentence_encodings_keyed (
    sentence_id INTEGER NOT NULL REFERENCES sentences(id) ON DELETE CASCADE,
    model TEXT NOT NULL,
    passage INTEGER NOT NULL,
    key TEXT NOT NULL,
    PRIMARY KEY (sentence_id, model)
) WITHOUT ROWID;
INSERT INTO sentence_encodings_keyed SELECT sentence_id, model, passage, key
    FROM sentence_encodings;
DROP TABLE sentence_encodings;
ALTER TABLE sentence_encodings_keyed RENAME TO sentence_encodings;
CREATE INDEX sentence_encodings_by_key ON sentence_encodings (key, model);
""",
    ),
)

# PostgreSQL with pgvector. Sentence vectors live in `sentence_vectors`, next to the chat they
# belong to so a search is filtered by chat; each model gets an HNSW index of its own (made
# when the model is first used, since it depends on the model's dimension).
POSTGRES = (
    Migration(
        1,
        "articles, sentences, encodings, vectors and conversation memory",
        """
CREATE EXTENSION IF NOT EXISTS vector;
CREATE TABLE chats (
    id TEXT PRIMARY KEY,
    next_number INTEGER NOT NULL DEFAULT 1,
    version BIGINT NOT NULL DEFAULT 0
);
CREATE TABLE articles (
    id BIGSERIAL PRIMARY KEY,
    chat_id TEXT NOT NULL REFERENCES chats(id),
    number INTEGER NOT NULL,
    title TEXT NOT NULL,
    text TEXT NOT NULL,
    language TEXT NOT NULL,
    source TEXT NOT NULL,
    url TEXT,
    canonical_url TEXT,
    author TEXT,
    published TEXT,
    added_at TEXT NOT NULL,
    added_by TEXT,
    text_hash TEXT NOT NULL,
    request TEXT,
    UNIQUE (chat_id, number),
    UNIQUE (chat_id, text_hash)
);
CREATE INDEX articles_by_url ON articles (chat_id, canonical_url);
CREATE INDEX articles_by_request ON articles (chat_id, request);
CREATE TABLE sentences (
    id BIGSERIAL PRIMARY KEY,
    article_id BIGINT NOT NULL REFERENCES articles(id) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    paragraph INTEGER NOT NULL,
    start INTEGER NOT NULL,
    "end" INTEGER NOT NULL
);
CREATE INDEX sentences_by_article ON sentences (article_id, position);
CREATE TABLE models (
    id SERIAL PRIMARY KEY,
    key TEXT NOT NULL UNIQUE,
    dimension INTEGER NOT NULL
);
CREATE TABLE encodings (
    model_id INTEGER NOT NULL REFERENCES models(id),
    key TEXT NOT NULL,
    vector BYTEA NOT NULL,
    token_ids BYTEA NOT NULL,
    token_spans BYTEA NOT NULL,
    token_vectors BYTEA NOT NULL,
    PRIMARY KEY (model_id, key)
);
CREATE TABLE sentence_encodings (
    sentence_id BIGINT NOT NULL REFERENCES sentences(id) ON DELETE CASCADE,
    model_id INTEGER NOT NULL REFERENCES models(id),
    passage INTEGER NOT NULL,
    key TEXT NOT NULL,
    PRIMARY KEY (sentence_id, model_id)
);
CREATE INDEX sentence_encodings_by_key ON sentence_encodings (key, model_id);
CREATE TABLE sentence_vectors (
    sentence_id BIGINT NOT NULL REFERENCES sentences(id) ON DELETE CASCADE,
    model_id INTEGER NOT NULL REFERENCES models(id),
    chat_id TEXT NOT NULL,
    vector vector NOT NULL,
    PRIMARY KEY (model_id, sentence_id)
);
CREATE INDEX sentence_vectors_by_chat ON sentence_vectors (model_id, chat_id);
CREATE TABLE answer_messages (
    id BIGSERIAL PRIMARY KEY,
    chat_id TEXT NOT NULL,
    message_id BIGINT NOT NULL,
    record TEXT NOT NULL,
    UNIQUE (chat_id, message_id)
);
CREATE TABLE latest_answers (
    chat_id TEXT PRIMARY KEY,
    message_id BIGINT NOT NULL
);
""",
    ),
    Migration(
        2,
        "the inbox of webhook updates, shared by the bot's worker processes",
        """
CREATE TABLE inbox (
    update_id BIGINT PRIMARY KEY,
    chat_key TEXT NOT NULL,         -- updates of one chat are handled in order
    body JSONB NOT NULL,
    received_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    attempts INTEGER NOT NULL DEFAULT 0,
    not_before TIMESTAMPTZ NOT NULL DEFAULT now(),
    replied_at TIMESTAMPTZ,         -- the bot has answered it (a retry must not answer again)
    done_at TIMESTAMPTZ,
    failed BOOLEAN NOT NULL DEFAULT false
);
CREATE INDEX inbox_waiting ON inbox (chat_key, update_id) WHERE done_at IS NULL;
""",
    ),
    Migration(
        3,
        "the adds each user asked for, for the hourly quota",
        """
CREATE TABLE adds (
    user_id TEXT NOT NULL,
    at DOUBLE PRECISION NOT NULL    -- seconds since the epoch
);
CREATE INDEX adds_by_user ON adds (user_id, at);
""",
    ),
    Migration(
        4,
        "feed subscriptions; per-chat settings (collecting links)",
        """
CREATE TABLE feeds (
    id BIGSERIAL PRIMARY KEY,
    chat_id TEXT NOT NULL,
    url TEXT NOT NULL,
    title TEXT NOT NULL,
    added_by TEXT,
    added_at TEXT NOT NULL,
    language TEXT NOT NULL,             -- of whoever followed it: the chat hears this one
    etag TEXT,
    last_modified TEXT,
    next_poll DOUBLE PRECISION NOT NULL,      -- seconds since the epoch
    claimed_until DOUBLE PRECISION,           -- a process is polling it until then
    last_success TEXT,
    last_error TEXT,
    failures INTEGER NOT NULL DEFAULT 0,
    reported INTEGER NOT NULL DEFAULT 0,      -- the failing was told to the chat
    paused INTEGER NOT NULL DEFAULT 0,
    UNIQUE (chat_id, url)
);
CREATE INDEX feeds_due ON feeds (next_poll);
CREATE TABLE feed_items (
    feed_id BIGINT NOT NULL REFERENCES feeds(id) ON DELETE CASCADE,
    key TEXT NOT NULL,
    PRIMARY KEY (feed_id, key)
);
CREATE TABLE chat_settings (
    chat_id TEXT PRIMARY KEY,
    collect_links INTEGER NOT NULL DEFAULT 0
);
""",
    ),
    Migration(
        5,
        "compact encodings: a format per encoding, a token codebook per model",
        """
-- 0: float32 vector and float16 token vectors, as before. 1: compact (see storage/codec.py)
ALTER TABLE encodings ADD COLUMN format SMALLINT NOT NULL DEFAULT 0;
CREATE INDEX encodings_full ON encodings (model_id) WHERE format = 0;
CREATE TABLE token_codebooks (
    model_id INTEGER PRIMARY KEY REFERENCES models(id),
    codebook BYTEA NOT NULL
);
""",
    ),
)


def pending(migrations: tuple[Migration, ...], current: int) -> list[Migration]:
    """The migrations a database at version `current` still needs, in order."""
    return [m for m in migrations if m.version > current]


def latest(migrations: tuple[Migration, ...]) -> int:
    return migrations[-1].version
