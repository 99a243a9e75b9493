"""Follow-up questions: "and when will the first one arrive?" needs the question before it; "Who
did Brentford sign?" does not, and must not be searched together with a question about cars.

No word list decides which is which: the service reads the question alone, and also with a
pronoun in it replaced by a name from the conversation ("what caused it?" → "what caused Black
Death?") or, without a pronoun, searched together with the user's previous question; it keeps
the reading its reader is surest of (`Pipeline.ask`). A rewrite is only a hypothesis.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# "and when will it arrive?" asks "when will it arrive?": the conjunction only ties it to the
# conversation, and the reader, trained on standalone questions, is surer without it.
LEADING_CONJUNCTION = re.compile(r"^\s*(and|but|so|also|then)\b[\s,]*", re.IGNORECASE)
# A capitalised run of words: a name ("Black Death", "Great Wall Motor", "NFL").
NAME = re.compile(r"\b(?:[A-Z][a-z]+|[A-Z]{2,})(?: (?:[A-Z][a-z]+|[A-Z]{2,}))*\b")
# English's third-person pronouns; the possessive ones take a name's "'s".
PRONOUN = re.compile(r"\b(it|they|them|he|him|she|its|their|his|her)\b", re.IGNORECASE)
POSSESSIVE = frozenset(("its", "their", "his", "her"))
WORD_AFTER = re.compile(r"\s+[a-z]")
# An earlier answer short enough to be what a pronoun points at ("Cam Newton", "Reuters").
MAX_REFERENT_CHARS = 60


@dataclass(frozen=True)
class Turn:
    role: str  # "user" or "assistant"
    content: str


def with_history(question: str, history: list[Turn]) -> str | None:
    """The search text for reading `question` as a follow-up, or None with no earlier question."""
    previous = [t.content.strip() for t in history if t.role == "user" and t.content.strip()]
    if not previous or previous[-1] == question.strip():
        return None
    return f"{previous[-1]} {question}"


def resolved(question: str, history: list[Turn], limit: int = 2) -> list[str]:
    """The question with its first pronoun replaced by each name the conversation offers: the
    names in the previous question, then the previous answer. At most `limit` rewrites."""
    pronoun = PRONOUN.search(question)
    if pronoun is None:
        return []
    word = pronoun.group().lower()
    # "her" is possessive before a word ("her husband"), else the object ("tell her?")
    object_her = word == "her" and not WORD_AFTER.match(question, pronoun.end())
    possessive = word in POSSESSIVE and not object_her
    rewrites: list[str] = []
    for name in referents(history):
        filler = f"{name}'s" if possessive else name
        rewrite = question[: pronoun.start()] + filler + question[pronoun.end() :]
        if rewrite not in rewrites and name.lower() not in question.lower():
            rewrites.append(rewrite)
        if len(rewrites) == limit:
            break
    return rewrites


def referents(history: list[Turn]) -> list[str]:
    """Names a pronoun may stand for, nearest first: those of the last question (not its
    opening word, which every question capitalises), then the last answer if it is short."""
    questions = [t.content.strip() for t in history if t.role == "user" and t.content.strip()]
    answers = [t.content.strip() for t in history if t.role == "assistant" and t.content.strip()]
    names = [m.group() for m in NAME.finditer(questions[-1]) if m.start() > 0] if questions else []
    if answers and len(answers[-1]) <= MAX_REFERENT_CHARS and NAME.match(answers[-1]):
        names.append(answers[-1].rstrip("."))
    return list(dict.fromkeys(names))


def standalone_wording(question: str) -> str:
    """The question without a conversational lead-in, for the reader."""
    return LEADING_CONJUNCTION.sub("", question, count=1) or question
