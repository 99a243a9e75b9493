"""Property tests: for any Unicode text, spans reproduce their text and citations verify."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from rag.errors import DocumentError
from rag.index.corpus import build
from rag.index.manifest import IndexSpec
from rag.ingest.chunking import Chunker, split_sentences
from rag.ingest.documents import make_document
from rag.query.citations import cite, verify
from rag.types import Evidence

PIECES = st.one_of(
    st.text(min_size=1, max_size=80),
    st.sampled_from(
        ["\n\n", "\n", ". ", "! ", "? ", "  ", "\t", "\r\n", "。", "…", "🚗", "\u200b"]
    ),
)
TEXTS = st.lists(PIECES, min_size=1, max_size=40).map("".join)


def words_of(text: str) -> str:
    return "".join(ch for ch in text if ch.isalnum())


@settings(max_examples=300, deadline=None)
@given(text=TEXTS, size=st.integers(20, 400), overlap_share=st.floats(0, 0.9))
@example(text="\r\r\r\n0000000\n000000000", size=20, overlap_share=0.5)  # a piece in the next
def test_chunks_and_sentences_are_exact_spans(text: str, size: int, overlap_share: float):
    chunker = Chunker(size, int(size * overlap_share))
    spans = chunker.split(text)
    assert [text[c.start : c.end] for c in spans.chunks] == (
        chunker.splitter.split_text(text) or [text]
    )
    for s in spans.sentences:
        assert 0 <= s.start < s.end <= len(text)
    for before, after in zip(spans.sentences, spans.sentences[1:], strict=False):
        assert before.end <= after.start
    covered = "".join(text[s.start : s.end] for s in split_sentences(text))
    assert words_of(covered) == words_of(text)  # no word is lost between sentences


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(texts=st.lists(TEXTS.filter(str.strip), min_size=1, max_size=3))
def test_citations_of_any_text_verify(texts: list[str], embedder) -> None:
    documents = []
    for n, text in enumerate(texts):
        try:
            documents.append(make_document(f"d{n}", text))
        except DocumentError:
            return  # only whitespace after normalisation: refused at the door, by design
    index = build(documents, IndexSpec("all-MiniLM-L6-v2", 200, 40), embedder)
    evidence = [
        Evidence(int(s), index.sentence_chunk(s), 1.0) for s in np.arange(len(index.sent_start))
    ]
    for citation in cite(index, evidence):
        text = index.document(citation.doc_id).text
        verify(citation, text)
        assert text[citation.start : citation.end] == citation.quote and citation.quote.strip()
