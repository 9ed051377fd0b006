"""Split an article into sentences that keep their exact character offsets.

Quotes must be verbatim, so a sentence is never rewritten: it is a `(start, end)` span of the
stored article text. Paragraphs (line breaks) always end a sentence; inside a paragraph spaCy
decides, in the article's language. A "sentence" longer than `max_sentence_chars` (a text
without full stops, or an attack) is cut into pieces after a clause (a comma, semicolon,
colon or dash), else between words, else at the bound: every stored sentence, every quote
and everything remembered of it stays small.
"""

from __future__ import annotations

import re
import threading

from index.config import Settings
from index.ingest.spacy_without_torch import ORTH, Doc, Language, compile_infix_regex, spacy
from index.records import SentenceSpan

_PARAGRAPH = re.compile(r"[^\n]+")
# Opening and closing quotation marks per language ("“" opens in English but closes in German).
_QUOTE_PAIRS = {"de": (("«", "»"), ("„", "“")), "en": (("“", "”"), ("‘", "’"))}
_DEFAULT_QUOTE_PAIRS = (("«", "»"), ("“", "”"))
_MAX_MERGED_CHARS = 600
# Where a sentence that is too long may be cut: after a clause, else at a space.
_CLAUSE_END = re.compile(r"[,;:](?=\s)|\s[–—-](?=\s)")
_SPACE = re.compile(r"\s")
# Words whose full stop spaCy takes for the end of a sentence: "etc" and Roman numerals.
_ABBREVIATED = re.compile(r"etc|[IVXLCDM]{2,}")
# Numbers that are not ordinals although a full stop follows them: years and amounts of three
# or more digits, thousands ("12.000"), scores and decimals ("3:1", "2,5").
_NOT_ORDINAL = re.compile(r"\d{3,}|\d{1,3}(?:\.\d{3})+|\d+(?:[:,]\d+)+")
# Sentence-final marks of scripts written without spaces ("。", "！", "？", half-width "｡"):
# the multilingual tokenizer would otherwise leave them inside a token, where the
# sentencizer cannot see them.
_UNSPACED_SENTENCE_ENDS = r"[。｡！？]"


@Language.component("articlebot_numbers_end_sentences")
def _numbers_end_sentences(doc: Doc) -> Doc:
    """German rules read "2022." as an ordinal (as in "am 3. Mai"), which glues "Das gilt seit
    2022. Danach ..." into one sentence. A year, amount or score with its full stop, followed by
    a capitalised word (after closing quotes), ends the sentence."""
    for i, token in enumerate(doc[:-1]):
        if not (token.text.endswith(".") and _NOT_ORDINAL.fullmatch(token.text[:-1])):
            continue
        j = i + 1
        while j < len(doc) and doc[j].is_punct and not doc[j - 1].whitespace_:
            j += 1  # closing quotes or brackets right after the full stop
        if j < len(doc) and _starts_sentence(doc, j):
            doc[j].is_sent_start = True
    return doc


@Language.component("articlebot_abbreviations_go_on")
def _abbreviations_go_on(doc: Doc) -> Doc:
    """The full stop of "etc." or of a Roman numeral ends no sentence when a lower-case word
    follows ("PH, etc., it is ...", "Ludwig XIV. bestehen"); spaCy's rules cut there."""
    for token in doc[1:]:
        if not (token.is_sent_start and token.text[:1].islower()):
            continue
        j = token.i - 1
        while j > 0 and doc[j].is_punct and doc[j].text != ".":
            j -= 1  # the comma in "etc., it is"
        if doc[j].text == "." and j > 0 and _ABBREVIATED.fullmatch(doc[j - 1].text):
            token.is_sent_start = False
    return doc


def _starts_sentence(doc: Doc, i: int) -> bool:
    """A capitalised word, or an opening quotation mark or bracket before one."""
    if doc[i].text[:1].isupper():
        return True
    opening = doc[i].is_quote or doc[i].is_left_punct
    return opening and i + 1 < len(doc) and doc[i + 1].text[:1].isupper()


def _quote_pairs(paragraph: str, language: str) -> tuple[tuple[str, str], ...]:
    """The quotation marks a paragraph uses. Guillemets point either way («Swiss and French»,
    »German books and magazines«): the one that comes first opens. German text without „ may
    use English “…”."""
    pairs = _QUOTE_PAIRS.get(language, _DEFAULT_QUOTE_PAIRS)
    left, right = paragraph.find("«"), paragraph.find("»")
    if right >= 0 and (left < 0 or right < left):
        pairs = tuple(("»", "«") if pair == ("«", "»") else pair for pair in pairs)
    if ("„", "“") in pairs and "„" not in paragraph:
        pairs = tuple(("“", "”") if pair == ("„", "“") else pair for pair in pairs)
    return pairs


def _opens_quote(text: str, pairs: tuple[tuple[str, str], ...]) -> bool:
    """Whether `text` opens a quotation it does not close."""
    for opening, closing in pairs:
        if text.count(opening) > text.count(closing):
            return True
    return text.count('"') % 2 == 1


class SentenceSplitter:
    """spaCy sentence splitting per language, with pipelines loaded once and reused."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._pipelines: dict[str, Language] = {}
        self._lock = threading.Lock()

    def warm_up(self, languages: tuple[str, ...] = ("de", "en")) -> None:
        for language in languages:
            self.pipeline(language)

    def pipeline(self, language: str) -> Language:
        """A trained pipeline if the config names one, else a blank one with a sentencizer."""
        with self._lock:
            if language not in self._pipelines:
                self._pipelines[language] = self._load(language)
            return self._pipelines[language]

    def _load(self, language: str) -> Language:
        trained = self.settings.spacy_pipeline(language)
        if trained:
            return spacy.load(trained, exclude=["ner", "lemmatizer", "textcat"])
        try:
            nlp = spacy.blank(language)
        except ImportError:  # no rules for the language, or they need a package not installed
            nlp = _multilingual()
        if hasattr(nlp.tokenizer, "add_special_case"):  # not the Chinese character tokenizer
            # "et al." is the commonest abbreviation spaCy's rules miss, in every language.
            nlp.tokenizer.add_special_case("al.", [{ORTH: "al."}])
        nlp.add_pipe("sentencizer")
        nlp.add_pipe("articlebot_abbreviations_go_on")
        nlp.add_pipe("articlebot_numbers_end_sentences")
        return nlp

    def split(self, text: str, language: str) -> list[SentenceSpan]:
        """Sentence spans of `text`, stripped of surrounding white space, in reading order."""
        nlp = self.pipeline(language)
        paragraphs = [m for m in _PARAGRAPH.finditer(text) if m.group().strip()]
        spans: list[SentenceSpan] = []
        docs = nlp.pipe(m.group() for m in paragraphs)
        for number, (match, doc) in enumerate(zip(paragraphs, docs, strict=True)):
            pieces = [(s.start_char, s.end_char) for s in doc.sents]
            for sentence in _merge_open_quotes(match.group(), pieces, language):
                limit = self.settings.max_sentence_chars
                for start, end in _bounded(match.group(), *sentence, limit):
                    spans.append(SentenceSpan(match.start() + start, match.start() + end, number))
        return spans


def _multilingual() -> Language:
    """spaCy's multilingual rules, which also end sentences at "。" or "！" between words of
    scripts written without spaces (Japanese, whose own tokenizer needs SudachiPy)."""
    nlp = spacy.blank("xx")
    infixes = [*nlp.Defaults.infixes, _UNSPACED_SENTENCE_ENDS]
    nlp.tokenizer.infix_finditer = compile_infix_regex(infixes).finditer
    return nlp


def _merge_open_quotes(
    text: str, pieces: list[tuple[int, int]], language: str
) -> list[tuple[int, int]]:
    """Join sentences that sit inside one quotation ("«Wir sind bereit. Alles ist gut.»")."""
    pairs = _quote_pairs(text, language)
    merged: list[tuple[int, int]] = []
    for start, end in pieces:
        if merged:
            last_start, last_end = merged[-1]
            if (
                _opens_quote(text[last_start:last_end], pairs)
                and end - last_start <= _MAX_MERGED_CHARS
            ):
                merged[-1] = (last_start, end)
                continue
        merged.append((start, end))
    return merged


def _bounded(text: str, start: int, end: int, limit: int) -> list[tuple[int, int]]:
    """`text[start:end]` stripped, in pieces of at most `limit` characters: each cut after the
    last clause in the piece's second half, else at its last space, else at the limit."""
    pieces = []
    while (stripped := _strip(text, start, end)) is not None:
        start, end = stripped
        if end - start <= limit:
            pieces.append((start, end))
            break
        low, high = start + limit // 2, start + limit
        clauses = [m.end() for m in _CLAUSE_END.finditer(text, low, high)]
        spaces = [m.start() for m in _SPACE.finditer(text, low, high)]
        cut = (clauses or spaces or [high])[-1]
        if (piece := _strip(text, start, cut)) is not None:
            pieces.append(piece)
        start = cut
    return pieces


def _strip(text: str, start: int, end: int) -> tuple[int, int] | None:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return (start, end) if start < end else None
