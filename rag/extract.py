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
    ORGANIZATION = "organization"
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
        r"continent|town|province|county|location)\b|\blocation\b",
    ),
    (
        AnswerType.ORGANIZATION,
        r"\b(what|which) (\w+ )?(company|firm|brand|organi[sz]ation|agency|outlet|team|group|"
        r"university|party|carmaker|automaker|manufacturer|newspaper|band|network)\b",
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
    AnswerType.ORGANIZATION: [re.compile(NAME_PATTERN)],
}
NOT_QUANTITIES = re.compile(rf"{YEAR}|one", re.I)
NAME_TYPES = {AnswerType.PERSON, AnswerType.PLACE, AnswerType.ORGANIZATION}
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
    support: float  # share of the question's term weight found in the span's clause


def candidates(sentence: str, kind: AnswerType) -> list[tuple[int, int]]:
    found: dict[tuple[int, int], None] = {}
    for pattern in SHAPES.get(kind, []):
        for match in pattern.finditer(sentence):
            start, end = trim_name(sentence, match.start(), match.end(), kind)
            if kind is AnswerType.NUMBER and NOT_QUANTITIES.fullmatch(sentence[start:end]):
                continue  # "how much" is not answered by "2023", and "one of" is no count
            if end > start and any(ch.isalnum() for ch in sentence[start:end]):
                found[(start, end)] = None
    return drop_nested(list(found))


def trim_name(sentence: str, start: int, end: int, kind: AnswerType) -> tuple[int, int]:
    """Sentence-initial capitals ("According", "The") are not names."""
    text = sentence[start:end].rstrip(".,;:'’")
    end = start + len(text)
    if kind in NAME_TYPES:
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


CUE_WORDS = {
    AnswerType.DATE: {"in", "on", "during", "by", "since", "until", "before", "after", "from"},
    AnswerType.PLACE: {"in", "at", "from", "near", "into", "across", "outside"},
}
CUE_BONUS = 0.5
CLAUSE_BREAK = re.compile(r"[,;:()\u2014]|\b(?:and|but|while|whereas|which|who)\b")


def trim_asked_tail(sentence: str, start: int, end: int, asked: set[str]) -> int:
    """End of the span once trailing words that the question itself uses are cut off."""
    words = list(WORD.finditer(sentence, start, end))
    while words and set(query_terms(words[-1].group())) & asked:
        end = start + len(sentence[start : words.pop().start()].rstrip())
    return end


def gap(position: int, first: int, last: int) -> int:
    """Words between a word and the span covering words first..last."""
    return first - position if position < first else max(position - last, 0)


def clause_numbers(sentence: str, words: list[tuple[int, int, str]]) -> list[int]:
    """Clause index of each word: a word nearer the answer in words but across a comma or an
    "and" is usually about something else ("15% and Shanghai shares ... 10%")."""
    numbers, current, previous_end = [], 0, 0
    for _, end, _ in words:
        if CLAUSE_BREAK.search(sentence, previous_end, end):
            current += 1
        numbers.append(current)
        previous_end = end
    return numbers


def extract_span(
    kind: AnswerType, asked: set[str], sentence: str, weights: dict[str, float] | None = None
) -> SpanCandidate | None:
    """The best short answer of shape `kind` in `sentence`; `asked` are the question's terms.

    A candidate scores for each question word found in its clause of the sentence, then by
    how close such words sit (rarer words count more, `weights` being their IDF), plus a bonus
    for a cue word before it ("in" before a place). Spans using question words are not answers."""
    spans = candidates(sentence, kind)
    if not spans:
        return None
    words = [(m.start(), m.end(), m.group()) for m in WORD.finditer(sentence)]
    clause = clause_numbers(sentence, words)
    anchors: dict[str, list[int]] = {}
    for position, (_, _, word) in enumerate(words):
        for term in set(query_terms(word)) & asked:
            anchors.setdefault(term, []).append(position)
    cues = CUE_WORDS.get(kind, set())
    total = sum((weights or {}).get(term, 1.0) for term in asked) or 1.0
    best: SpanCandidate | None = None
    for start, end in spans:
        if kind not in NAME_TYPES:  # "three people" asked "how many people": answer "three"
            end = trim_asked_tail(sentence, start, end, asked)
        if end <= start or set(query_terms(sentence[start:end])) & asked:
            continue
        inside = [i for i, (s, _, _) in enumerate(words) if start <= s < end]
        first, last = (inside[0], inside[-1]) if inside else (0, 0)
        score = in_clause = 0.0
        for term, positions in anchors.items():
            weight = (weights or {}).get(term, 1.0)
            in_clause += weight * any(clause[p] == clause[first] for p in positions)
            closeness = max(
                (clause[p] == clause[first])
                + 0.5 / (1 + (first - p if p < first else max(p - last, 0)))
                for p in positions
            )
            score += weight * closeness
        if first > 0 and words[first - 1][2].lower() in cues:
            score += CUE_BONUS
        if best is None or score > best.score:
            best = SpanCandidate(start, end, score, in_clause / total)
    return best
