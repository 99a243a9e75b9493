"""Citations: the quoted sentence, where it sits in its document, and a check that it does."""

from __future__ import annotations

from rag.errors import CitationError
from rag.index.backend import CorpusView
from rag.ingest.news import PUBLISHED, PUBLISHER
from rag.types import Citation, Evidence


def cite(index: CorpusView, evidence: list[Evidence]) -> list[Citation]:
    citations = []
    for n, item in enumerate(evidence, 1):
        doc = index.chunk_document(item.chunk)
        start, end = index.sentence_span(item.sentence)
        citation = Citation(
            n=n,
            doc_id=doc.doc_id,
            title=doc.title,
            chunk_id=index.chunk_id(item.chunk),
            start=start,
            end=end,
            quote=doc.text[start:end],
            score=round(item.score, 4),
            published=doc.metadata.get(PUBLISHED),
            publisher=doc.metadata.get(PUBLISHER),
        )
        verify(citation, doc.text)
        citations.append(citation)
    return citations


def verify(citation: Citation, document_text: str) -> None:
    if document_text[citation.start : citation.end] != citation.quote:
        raise CitationError(
            f"citation {citation.n} of {citation.doc_id} does not match its offsets"
        )
