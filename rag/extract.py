"""Short answer spans inside a chosen sentence, guided by what kind of answer is asked for.

No reader model: the question's wh-word says what shape the answer has (a date, a number, a
name), and the candidate of that shape nearest the question's own words in the sentence wins.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from rag.lexical import query_terms


class AnswerType(StrEnum):
    DATE = "date"
    NUMBER = "number"
    PERSON = "person"
    PLACE = "place"
    OTHER = "other"


TYPE_CUES = [
    (
        AnswerType.DATE,
        r"\bwhen\b|\bwhat (year|date|day|month|decade|century|time)\b|"
        r"\bwhich (year|date|day|month|decade|century)\b|\b(release|launch) date\b|\bhow soon\b|"
        r"\bwhat era\b|\bin what (year|month|decade|century)\b",
    ),
    (
        AnswerType.NUMBER,
        r"\bhow (many|much|long|far|old|big|large|tall|high|often|fast)\b|"
        r"\bwhat (percentage|percent|share|number|amount|proportion)\b|\bby how much\b",
    ),
    (AnswerType.PERSON, r"\bwho(m|se)?\b"),
    (
        AnswerType.PLACE,
        r"\bwhere\b|\b(what|which|in what) (city|country|place|state|region|"
        r"continent|town|province|county|location)\b",
    ),
]

MONTH = (
    r"(?:Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|June?|July?|Aug(?:ust)?|"
    r"Sep(?:t(?:ember)?)?|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?)\.?"
)
YEAR = r"(?:1[0-9]{3}|20[0-9]{2})(?:s\b)?"
DATE_PATTERNS = [
    rf"\b{MONTH}\s+\d{{1,2}}(?:st|nd|rd|th)?,?\s+{YEAR}",
    rf"\b\d{{1,2}}(?:st|nd|rd|th)?\s+(?:of\s+)?{MONTH}\s+{YEAR}",
    rf"\b(?:(?:early|late|mid|the end of|the beginning of)\s+)?(?:{MONTH}\s+)?{YEAR}\b",
    rf"\b{MONTH}\s+\d{{1,2}}(?:st|nd|rd|th)?\b",
    r"\b(?:early|late|mid|next|last|this|the following|the previous)[ -](?:week|month|year|"
    r"decade|century|spring|summer|autumn|fall|winter|weekend)\b",
    r"\b(?:early |late |mid-)?(?:1[0-9]|20|twenty-first|nineteenth|eighteenth|twentieth)"
    r"(?:th)? century\b",
    r"\b(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday|yesterday|today|tomorrow)\b",
]
NUMBER_WORDS = (
    r"(?:one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|"
    r"thirteen|fourteen|fifteen|twenty|thirty|forty|fifty|hundred|thousand|"
    r"dozens?|several|half)"
)
UNIT = (
    r"(?:\s?(?:%|percent|per cent|million|billion|trillion|thousand|hundred|km|kilometers|"
    r"kilometres|miles|meters|metres|feet|kg|tons|tonnes|years|months|days|hours|minutes|"
    r"people|dollars|euros|yuan|points))*"
)
NUMBER_PATTERNS = [
    rf"(?:[$€£¥]\s?)?\d[\d,.]*\d?{UNIT}",
    rf"\b{NUMBER_WORDS}(?:[ -]{NUMBER_WORDS})*{UNIT}\b",
]
NAME_PATTERN = (
    r"\b[A-Z][\w'’.-]*(?:\s+(?:of|de|da|del|van|von|der|la|le|al|bin|the|and|&)?"
    r"\s*[A-Z][\w'’.-]*)*"
)
NOT_NAMES = {
    "the",
    "a",
    "an",
    "in",
    "on",
    "at",
    "according",
    "after",
    "before",
    "however",
    "once",
    "under",
    "two",
    "three",
    "another",
    "this",
    "that",
    "these",
    "those",
    "it",
    "he",
    "she",
    "they",
    "we",
    "his",
    "her",
    "their",
    "its",
    "our",
    "post",
    "if",
    "when",
    "while",
    "as",
    "but",
    "and",
    "or",
    "for",
    "from",
    "with",
    "by",
}

SHAPES = {
    AnswerType.DATE: [re.compile(p, re.I) for p in DATE_PATTERNS],
    AnswerType.NUMBER: [re.compile(p, re.I) for p in NUMBER_PATTERNS],
    AnswerType.PERSON: [re.compile(NAME_PATTERN)],
    AnswerType.PLACE: [re.compile(NAME_PATTERN)],
}
WORD = re.compile(r"\w+", re.UNICODE)


def answer_type(question: str) -> AnswerType:
    lowered = question.lower()
    for kind, cue in TYPE_CUES:
        if re.search(cue, lowered):
            return kind
    return AnswerType.OTHER


@dataclass(frozen=True)
class SpanCandidate:
    start: int  # offsets into the sentence
    end: int
    score: float


def candidates(sentence: str, kind: AnswerType) -> list[tuple[int, int]]:
    found: dict[tuple[int, int], None] = {}
    for pattern in SHAPES.get(kind, []):
        for match in pattern.finditer(sentence):
            start, end = trim_name(sentence, match.start(), match.end(), kind)
            if end > start and any(ch.isalnum() for ch in sentence[start:end]):
                found[(start, end)] = None
    return drop_nested(list(found))


def trim_name(sentence: str, start: int, end: int, kind: AnswerType) -> tuple[int, int]:
    """Sentence-initial capitals ("According", "The") are not names."""
    text = sentence[start:end].rstrip(".,;:'’")
    end = start + len(text)
    if kind in (AnswerType.PERSON, AnswerType.PLACE):
        while (word := WORD.match(sentence, start)) and word.group().lower() in NOT_NAMES:
            rest = sentence[word.end() : end]
            start = word.end() + len(rest) - len(rest.lstrip())
            if start >= end:
                return start, start
    return start, end


def drop_nested(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Keep the longest of overlapping matches ("March 3, 2021" over "2021")."""
    kept: list[tuple[int, int]] = []
    for start, end in sorted(spans, key=lambda s: (s[0], -(s[1] - s[0]))):
        if kept and start < kept[-1][1]:
            if end - start > kept[-1][1] - kept[-1][0]:
                kept[-1] = (start, end)
            continue
        kept.append((start, end))
    return kept


def extract_span(question: str, sentence: str) -> SpanCandidate | None:
    """The best short answer of the asked-for shape in `sentence`, if there is one."""
    kind = answer_type(question)
    spans = candidates(sentence, kind)
    if not spans:
        return None
    asked = set(query_terms(question))
    words = [(m.start(), m.end(), m.group()) for m in WORD.finditer(sentence)]
    anchors = [s for s, e, w in words if set(query_terms(w)) & asked]
    best: SpanCandidate | None = None
    for start, end in spans:
        span_terms = set(query_terms(sentence[start:end]))
        if span_terms and span_terms <= asked:  # the question already says it
            continue
        score = sum(1.0 / (1 + word_distance(words, start, end, a)) for a in anchors)
        if best is None or score > best.score:
            best = SpanCandidate(start, end, score)
    return best


def word_distance(words: list[tuple[int, int, str]], start: int, end: int, anchor: int) -> int:
    """How many words lie between the span and the anchor word."""
    lo, hi = (anchor, start) if anchor < start else (end, anchor)
    return sum(1 for s, _, _ in words if lo <= s < hi)
