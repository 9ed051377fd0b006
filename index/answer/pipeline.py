"""The answer pipeline: respell → query → retrieve → quote → decide.

    question ──SpellingMatcher──▶ question as the library spells it
    question ──Embedder──▶ Query ──Retriever──▶ [Hit] ──Quoter──▶ [Quote]
    [Quote] ──ConfidenceThreshold──▶ Answer

A follow-up (see `index.answer.followup`) is the same pipeline with the earlier question
mixed into the query.
"""

from __future__ import annotations

from dataclasses import replace

from index.answer.decide import ConfidenceThreshold
from index.answer.followup import FOLLOW_UP_CONTEXT_WEIGHT, leans_on_previous
from index.answer.query import Query
from index.answer.quote import Quoter
from index.answer.retrieve import Retriever
from index.answer.spelling import SpellingMatcher
from index.config import Settings
from index.embeddings import Embedder
from index.language import detect_language
from index.records import Answer
from index.storage.base import Storage


class AnswerPipeline:
    """Answers a question from one chat's library with verbatim quotes."""

    def __init__(self, settings: Settings, embedder: Embedder, storage: Storage) -> None:
        self.storage = storage
        self.embedder = embedder
        self.spelling = SpellingMatcher(storage)
        self.retriever = Retriever(storage, embedder.model_key, embedder.contextual)
        self.quoter = Quoter(storage, settings.join_referring_sentences)
        self.decider = ConfidenceThreshold(settings.min_confidence)
        self.candidates = settings.max_candidates

    def run(
        self, chat_id: str, question: str, previous: Answer | None = None, implicit: bool = False
    ) -> Answer:
        """The sentences of this chat's articles that best answer `question`.

        With `previous`, the question is a follow-up to that answer; with `implicit` (a
        question that merely came next in a private chat) only when it leans on it or has no
        answer on its own."""
        question = " ".join(question.split())
        languages = self.storage.chat_languages(chat_id)
        language = detect_language(question, among=languages | {"en", "de"}) if question else "en"
        if not languages or not question:
            return Answer(question, library_empty=not languages, language=language)
        searched = self.spelling.run(chat_id, question)
        query = Query.of(self.embedder.encode_query(searched), language)
        if previous is None or not previous.found:
            return self._answer(chat_id, question, query)
        if implicit and not leans_on_previous(question):
            bare = self._answer(chat_id, question, query)
            if bare.found:
                return bare
        context = self.embedder.encode_query(self.spelling.run(chat_id, previous.search_text))
        followed = query.with_context(
            context, FOLLOW_UP_CONTEXT_WEIGHT, frozenset(previous.article_ids)
        )
        return replace(self._answer(chat_id, question, followed), context=previous.search_text)

    def _answer(self, chat_id: str, question: str, query: Query) -> Answer:
        hits = self.retriever.run(chat_id, query, self.candidates)
        return self.decider.run(question, self.quoter.run(hits), query.language)
