"""Follow-up questions: read the conversation so far to know what "it" and "the first one" are.

No LLM: a question that leans on what came before (a pronoun, a leading "and", a bare
fragment) is searched together with the user's previous question; the kind of answer asked
for still comes from the new question alone.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from rag.lexical import query_terms

LEANS_BACK = re.compile(
    r"^\s*(and|but|also|so|then|what about|how about)\b"
    r"|\b(it|its|they|them|their|theirs|that|those|these|this|he|she|him|her|his|"
    r"the (first|second|last|new|same) ones?|one|ones|there|then)\b",
    re.IGNORECASE,
)
FRAGMENT_TERMS = 2  # a question with this few content words cannot stand on its own


@dataclass(frozen=True)
class Turn:
    role: str  # "user" or "assistant"
    content: str


def is_follow_up(question: str) -> bool:
    return bool(LEANS_BACK.search(question)) or len(query_terms(question)) <= FRAGMENT_TERMS


def search_text(question: str, history: list[Turn]) -> str:
    """The text to retrieve with: the question, plus the last user question if it leans on it."""
    previous = [t.content.strip() for t in history if t.role == "user" and t.content.strip()]
    if not previous or not is_follow_up(question):
        return question
    return f"{previous[-1]} {question}"
