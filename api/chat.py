"""Chat presentation: an answer as a reply with [n] markers; chat messages as turns."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from rag.errors import ChatError
from rag.query.conversation import Turn
from rag.types import AnswerMode, AskResult

NOT_IN_ARTICLES = "The articles I have don't say."
PIECE = re.compile(r"\S+\s*|\s+")
SOURCES_HEADING = "\n\nSources:\n"
MARKERS = re.compile(r"\s*(?:\[\d+\])+")


def message_text(content: Any) -> str:
    """OpenAI content is a string or a list of parts; only text parts carry a question."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(
            str(part.get("text", ""))
            for part in content
            if isinstance(part, dict) and part.get("type") == "text"
        )
    raise ChatError("message content must be a string or a list of content parts")


def split_messages(messages: list[dict[str, Any]]) -> tuple[str, list[Turn]]:
    """The question (the last user message) and the turns before it."""
    turns = [Turn(str(m.get("role", "")), message_text(m.get("content"))) for m in messages]
    turns = [
        Turn(t.role, answer_of(t.content) if t.role == "assistant" else t.content)
        for t in turns
        if t.role in ("user", "assistant")
    ]
    if not turns or turns[-1].role != "user" or not turns[-1].content.strip():
        raise ChatError("the last message must be a user message with text")
    return turns[-1].content, turns[:-1]


def answer_of(reply: str) -> str:
    """The answer in one of our replies, without its markers and sources: what a follow-up's
    pronoun may stand for ("How old is he?" after "Mikkel Damsgaard [1]")."""
    return MARKERS.sub("", reply.split(SOURCES_HEADING, 1)[0]).strip()


def reply_text(result: AskResult) -> str:
    if not result.answerable:
        # named only when it holds a word of the question: a passage found by vector proximity
        # alone is any article (the seed, asked about a port) and naming it misleads
        closest = next((p.title for p in result.passages[:1] if p.lexical > 0), None)
        hint = f" The closest article I found is “{closest}”." if closest else ""
        return f"{NOT_IN_ARTICLES}{hint}"
    if result.mode == AnswerMode.GENERATIVE:  # the reply carries its own markers
        return f"{result.answer}{sources_text(result)}"
    markers = "".join(f"[{c.n}]" for c in result.citations)
    return f"{result.answer} {markers}{sources_text(result)}"


def sources_text(result: AskResult) -> str:
    sources = "\n".join(f"[{c.n}] {c.title}: “{c.quote}”" for c in result.citations)
    return f"{SOURCES_HEADING}{sources}"


def pieces(text: str) -> Iterator[str]:
    """Word-sized pieces, so a client renders the reply as it arrives."""
    yield from PIECE.findall(text)
