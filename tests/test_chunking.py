"""Every chunk and sentence is an exact span of its document, for any sizes and text."""

from __future__ import annotations

import itertools
import random

import pytest

from rag.ingest.chunking import Chunker, split_sentences
from tests.conftest import SEED_DIR

SEED_TEXT = next(SEED_DIR.glob("*.txt")).read_text(encoding="utf-8")


def larger_corpus(n: int = 60) -> list[str]:
    """Seed paragraphs shuffled, with Unicode, odd spacing and very long runs mixed in."""
    rng = random.Random(7)
    paragraphs = [p for p in SEED_TEXT.split("\n\n") if p.strip()]
    extras = [
        "Ünïcödé “quotes” — and emoji 🚗 matter. 日本語の文です。Second one!",
        "no punctuation at all " * 80,
        "A" * 3000,
        "Line one\nline two\n\n\n   indented paragraph.\t\tTabs too.  ",
        "Dr. Smith paid $3.5 million on Jan. 5, 2021. Mr. Lee (the C.E.O.) said no.",
    ]
    docs = []
    for _ in range(n):
        parts = rng.sample(paragraphs, k=rng.randint(1, len(paragraphs))) + rng.sample(extras, 2)
        rng.shuffle(parts)
        docs.append(rng.choice(["\n\n", "\n", " ", "\n \n"]).join(parts))
    return docs


@pytest.mark.parametrize("size,overlap", [(200, 0), (300, 50), (800, 120), (1000, 400), (120, 100)])
def test_chunk_offsets_reproduce_text(size: int, overlap: int) -> None:
    chunker = Chunker(size, overlap)
    for text in [SEED_TEXT, *larger_corpus()]:
        spans = chunker.split(text)
        expected = chunker.splitter.split_text(text)
        assert [text[c.start : c.end] for c in spans.chunks] == expected
        assert all(c.end - c.start <= max(size, 3000) for c in spans.chunks)
        starts = [c.start for c in spans.chunks]
        assert starts == sorted(starts)
        for home, sentence in zip(spans.sentence_chunk, spans.sentences, strict=True):
            chunk = spans.chunks[home]
            assert chunk.start < sentence.end and sentence.start < chunk.end


def test_sentences_are_stripped_ordered_and_cover_the_words() -> None:
    for text in [SEED_TEXT, *larger_corpus(20)]:
        spans = split_sentences(text)
        for before, after in itertools.pairwise(spans):
            assert before.end <= after.start
        covered = "".join(text[s.start : s.end] for s in spans)
        for s in spans:
            piece = text[s.start : s.end]
            assert piece == piece.strip() and piece
        assert "".join(covered.split()) == "".join(text.split())


def test_seed_sentences_split_title_and_paragraphs() -> None:
    sentences = [SEED_TEXT[s.start : s.end] for s in split_sentences(SEED_TEXT)]
    assert sentences[0] == "Xiaomi works on an electric car by 2023 alongside the great wall"
    assert (
        "According to the report, both companies plan to announce this partnership early next "
        "week, which would bring their first vehicle copies during 2023." in sentences
    )
    assert sentences[-1] == "Post a Comment"


def test_overlap_must_be_smaller_than_size() -> None:
    with pytest.raises(ValueError, match="chunk_overlap"):
        Chunker(100, 100)


def test_each_sentence_lives_in_the_chunk_that_holds_most_of_it() -> None:
    """The linear search finds what a scan of every chunk finds, on a long document."""
    text = "\n\n".join(larger_corpus(40))
    split = Chunker(300, 60).split(text)

    def overlap(sentence, chunk) -> int:
        return min(chunk.end, sentence.end) - max(chunk.start, sentence.start)

    assert len(split.sentences) > 500
    for sentence, home in zip(split.sentences, split.sentence_chunk, strict=True):
        overlaps = [overlap(sentence, chunk) for chunk in split.chunks]
        assert home == overlaps.index(max(overlaps))
