"""Decide: whether the best quote answers the question, or the library has no answer.

Scores are on the scale of a cosine similarity and comparable across questions (see
`index.answer.retrieve`), so one calibrated threshold decides; `articlebot eval` prints how
many answers and non-answers each threshold keeps.
"""

from __future__ import annotations

from index.records import Answer, Quote


class ConfidenceThreshold:
    """An answer is found when its best quote scores at least `min_confidence`."""

    def __init__(self, min_confidence: float) -> None:
        self.min_confidence = min_confidence

    def run(self, question: str, quotes: list[Quote], language: str) -> Answer:
        found = bool(quotes) and quotes[0].score >= self.min_confidence
        return Answer(question, quotes, found=found, language=language)
