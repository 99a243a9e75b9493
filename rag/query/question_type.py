"""What kind of answer a question asks for (a date, a number, a name): reported with every
answer, so a client can show or check it. The trained reader picks the words itself."""

from __future__ import annotations

import re
from enum import StrEnum


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


def answer_type(question: str) -> AnswerType:
    lowered = question.lower()
    for kind, cue in TYPE_CUES:
        if re.search(cue, lowered):
            return kind
    return AnswerType.OTHER
