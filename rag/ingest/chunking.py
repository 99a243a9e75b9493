"""Chunks and sentences, each as exact character spans of its document.

Chunks are what a search returns; sentences are what an answer quotes. Both are stored as
offsets only, so `document.text[start:end]` is the text by construction.
"""

from __future__ import annotations

import bisect
import itertools
import re
from dataclasses import dataclass

import blingfire
from langchain_text_splitters import RecursiveCharacterTextSplitter

PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n")


@dataclass(frozen=True)
class Span:
    start: int
    end: int


@dataclass(frozen=True)
class ChunkSpans:
    """One document cut up: its chunks, its sentences, and the chunk each sentence lies in."""

    chunks: list[Span]
    sentences: list[Span]
    sentence_chunk: list[int]


def strip_span(text: str, start: int, end: int) -> Span | None:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return Span(start, end) if end > start else None


def split_sentences(text: str) -> list[Span]:
    """Sentence spans: paragraphs first (blank lines), then blingfire within each."""
    spans: list[Span] = []
    cursor = 0
    for brk in [*PARAGRAPH_BREAK.finditer(text), None]:
        stop = brk.start() if brk else len(text)
        paragraph = text[cursor:stop]
        if paragraph.strip():
            _, offsets = blingfire.text_to_sentences_and_offsets(paragraph)
            for start, end in offsets:
                span = strip_span(text, cursor + start, cursor + end)
                if span:
                    spans.append(span)
        cursor = brk.end() if brk else len(text)
    return spans or [Span(0, len(text))]


class Chunker:
    """langchain's recursive splitter for the cut; offsets recovered and checked here."""

    def __init__(self, chunk_size: int, chunk_overlap: int) -> None:
        if chunk_overlap >= chunk_size:
            raise ValueError(
                f"chunk_overlap ({chunk_overlap}) must be smaller than chunk_size ({chunk_size})"
            )
        self.splitter = RecursiveCharacterTextSplitter(
            chunk_size=chunk_size, chunk_overlap=chunk_overlap
        )

    def chunk_spans(self, text: str) -> list[Span]:
        spans: list[Span] = []
        search_from = 0
        for piece in self.splitter.split_text(text):
            start = text.find(piece, search_from)
            if start < 0 and spans:  # a piece can begin where the previous one did
                start = text.find(piece, spans[-1].start)
            if start < 0:  # the splitter changed the text; never emit a span that lies
                raise ValueError("text splitter returned text that is not in the document")
            spans.append(Span(start, start + len(piece)))
            search_from = start + 1
        return spans or [Span(0, len(text))]

    def split(self, text: str) -> ChunkSpans:
        chunks = self.chunk_spans(text)
        sentences = split_sentences(text)
        return ChunkSpans(chunks, sentences, home_chunks(sentences, chunks))


def home_chunks(sentences: list[Span], chunks: list[Span]) -> list[int]:
    """For each sentence, the chunk that holds most of it (the first one on a tie; for a
    sentence in a gap the splitter left out, the nearest chunk).

    Both lists run in document order, so each sentence only looks at the chunks around it:
    linear in the document's length, not quadratic (a 1 MB article took 22 s when every
    sentence scanned the chunks from the first)."""
    reach = list(itertools.accumulate((c.end for c in chunks), max))  # sorted, for bisect
    furthest = list(
        itertools.accumulate(
            range(len(chunks)), lambda a, b: max(a, b, key=lambda n: chunks[n].end)
        )
    )
    homes = []
    for sentence in sentences:
        first = bisect.bisect_right(reach, sentence.start)  # chunks before end before it
        # the one of those reaching furthest, then every chunk up to the first one after it
        nearby = [furthest[first - 1]] if first else []
        for number in range(first, len(chunks)):
            nearby.append(number)
            if chunks[number].start >= sentence.end:
                break

        def overlap(number: int, sentence: Span = sentence) -> int:
            chunk = chunks[number]
            return min(chunk.end, sentence.end) - max(chunk.start, sentence.start)

        homes.append(max(sorted(nearby), key=lambda n: (overlap(n), -n)))
    return homes
