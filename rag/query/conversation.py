"""Follow-up questions: "and when will the first one arrive?" needs the question before it; "Who
did Brentford sign?" does not, and must not be searched together with a question about cars.

No word list decides which is which: the service reads the question twice, searched alone and
searched with the user's previous question, and keeps the reading its reader is surer of
(`RagService.ask_stream`). The reader always reads the new question itself.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# "and when will it arrive?" asks "when will it arrive?": the conjunction only ties it to the
# conversation, and the reader, trained on standalone questions, is surer without it.
LEADING_CONJUNCTION = re.compile(r"^\s*(and|but|so|also|then)\b[\s,]*", re.IGNORECASE)


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


def standalone_wording(question: str) -> str:
    """The question without a conversational lead-in, for the reader."""
    return LEADING_CONJUNCTION.sub("", question, count=1) or question
