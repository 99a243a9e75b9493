"""Checks on a generated reply, in code rather than in the prompt: each sentence must cite a
passage it was given, its numbers and names must be in the passages it cites, and it must be
close in meaning to a sentence of each. Sentences that fail are dropped; citations of the
rest are renumbered in order of first use and point at the exact sentence that backs them."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from rag.index.backend import CorpusView
from rag.ingest.chunking import split_sentences
from rag.models.llm import Generated, LanguageModel, Source, prompt

MARKER = re.compile(r"\s*\[(\d+)\]")
# facts a passage must contain (case aside): anything with a digit, and capitalised words
# (names of people, places, companies; a capital that starts a sentence is checked too)
FACT = re.compile(r"(?<![\w'’])(?:\w*\d[\w.,%/:-]*|(?<=\s)[A-Z][\w'’&-]+)")
NO_ANSWER = re.compile(r"^\W*i (?:do not|don'?t|cannot|can'?t) (?:know|answer|tell)", re.I)


@dataclass(frozen=True)
class Verdict:
    sentence: str  # as generated, markers included
    claim: str  # without markers
    cited: list[int]
    reason: str | None  # why it was dropped; None when it stands
    quotes: dict[int, int]  # cited passage -> the sentence row that backs the claim best
    support: float


def split_claims(reply: str) -> list[str]:
    """Sentences, with markers that trail a full stop ("… 2023. [1]") kept on their sentence."""
    claims: list[str] = []
    for span in split_sentences(reply):
        text = reply[span.start : span.end]
        lead = re.match(r"(?:\s*\[\d+\])+", text)
        if lead and claims:
            claims[-1] += lead.group(0)
            text = text[lead.end() :].strip()
        if text:
            claims.append(text)
    return claims


def complete_claims(buffer: str) -> tuple[list[str], str]:
    """The sentences of a growing reply that are finished, and the rest to keep waiting on
    (a sentence is finished once the next one has begun with words, not just markers)."""
    claims = split_claims(buffer)
    if len(claims) < 2 or not re.search(r"[^\W\d]", MARKER.sub("", claims[-1])):
        return [], buffer
    return claims[:-1], buffer[buffer.rindex(claims[-1]) :]


def is_refusal(reply: str) -> bool:
    return bool(NO_ANSWER.match(reply.strip()))


def normalise(text: str) -> str:
    return re.sub(r"[\s,]+", " ", text.lower().replace("’", "'")).strip(" .")


def check(
    sentence: str,
    claim_vector: np.ndarray,
    sources: dict[int, Source],
    index: CorpusView,
    threshold: float,
) -> Verdict:
    claim = MARKER.sub("", sentence).strip()
    cited = list(dict.fromkeys(int(n) for n in MARKER.findall(sentence)))

    def verdict(reason: str | None, quotes: dict[int, int] | None = None, support=0.0):
        return Verdict(sentence, claim, cited, reason, quotes or {}, support)

    if not cited:
        return verdict("cites no passage")
    if unknown := [n for n in cited if n not in sources]:
        return verdict(f"cites [{unknown[0]}], a passage it was not given")
    given = normalise(" ".join(sources[n].text + " " + sources[n].title for n in cited))
    facts = [re.sub(r"['’]s$", "", f.strip(".,;:")) for f in FACT.findall(" " + claim)]
    if missing := [f for f in facts if f and normalise(f) not in given]:
        return verdict(f"states {missing[0]!r}, which its passages do not")
    quotes, scores = {}, []
    for n in cited:
        rows, _, _ = index.sentence_spans(sources[n].chunk)
        similarities = index.sentence_similarity(rows, claim_vector)
        best = int(np.argmax(similarities))
        quotes[n] = int(rows[best])
        scores.append(float(similarities[best]))
    if max(scores) < threshold:
        return verdict(f"too far in meaning from its passages ({max(scores):.2f})", quotes)
    return verdict(None, quotes, max(scores))


def renumber(verdicts: list[Verdict]) -> tuple[str, list[tuple[int, int]]]:
    """The reply from the sentences that stand, markers renumbered by first use; and, per new
    number, (old passage number, quoted sentence row)."""
    order: dict[int, int] = {}
    for verdict in verdicts:
        for n in verdict.cited:
            order.setdefault(n, len(order) + 1)
    text = " ".join(
        MARKER.sub(lambda m: f" [{order[int(m.group(1))]}]", v.sentence).strip() for v in verdicts
    )
    quotes: dict[int, int] = {}
    for verdict in verdicts:
        for n, row in verdict.quotes.items():
            quotes.setdefault(n, row)
    return text, [(n, quotes[n]) for n in order]


def grounded_reply(
    model: LanguageModel,
    question: str,
    sources: list[Source],
    index: CorpusView,
    embed: Callable[[list[str]], np.ndarray],
    threshold: float,
) -> Iterator[str | Generated]:
    """Stream the model's reply sentence by sentence, each one checked before it is passed
    on (with its markers renumbered); the last item is the `Generated` summary."""
    by_number = {source.n: source for source in sources}
    kept: list[Verdict] = []
    dropped: list[str] = []
    order: dict[int, int] = {}
    started, tokens, reply, buffer = time.perf_counter(), 0, "", ""
    first_token = last_token = started

    def settle(sentences: list[str]) -> Iterator[str]:
        vectors = embed([MARKER.sub("", s).strip() for s in sentences])
        for sentence, vector in zip(sentences, vectors, strict=True):
            verdict = check(sentence, vector, by_number, index, threshold)
            if verdict.reason:
                dropped.append(f"{verdict.claim!r}: {verdict.reason}")
                continue
            kept.append(verdict)
            for n in verdict.cited:
                order.setdefault(n, len(order) + 1)
            text = MARKER.sub(lambda m: f" [{order[int(m.group(1))]}]", sentence).strip()
            yield text if len(kept) == 1 else " " + text

    for piece in model.stream(prompt(question, sources)):
        tokens += 1
        last_token = time.perf_counter()
        first_token = first_token if tokens > 1 else last_token
        reply += piece
        done, buffer = complete_claims(buffer + piece)
        if done and not is_refusal(reply):
            yield from settle(done)
    refused = is_refusal(reply)
    if buffer.strip() and not refused:
        yield from settle(split_claims(buffer))
    text, quotes = renumber(kept)
    yield Generated(
        text,
        quotes,
        dropped,
        tokens,
        time.perf_counter() - started,
        first_token - started,
        (tokens - 1) / (last_token - first_token) if tokens > 1 else 0.0,
        refused,
    )
