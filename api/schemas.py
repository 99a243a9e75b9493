"""Request and response bodies that are HTTP's own (the pipeline's types are reused as is)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from rag.config import MAX_QUESTION_CHARS, MAX_TOP_K
from rag.ingest.documents import Document
from rag.query.conversation import Turn
from rag.query.pipeline import Query
from rag.types import AnswerMode


class Filters(BaseModel):
    doc_ids: list[str] | None = Field(None, description="Only search these documents.")


class HistoryTurn(BaseModel):
    role: str = Field(..., pattern="^(user|assistant)$")
    content: str = Field(..., max_length=MAX_QUESTION_CHARS * 5)


class AskRequest(BaseModel):
    question: str = Field(
        ...,
        min_length=1,
        max_length=MAX_QUESTION_CHARS,
        examples=["when is the first vehicle expected?"],
    )
    top_k: int | None = Field(None, ge=1, le=MAX_TOP_K, description="Passages to return.")
    filters: Filters | None = None
    history: list[HistoryTurn] | None = Field(
        None, max_length=100, description="Earlier turns, oldest first, for follow-ups."
    )
    mode: AnswerMode | None = Field(
        None,
        description="extractive (instant, exact) or generative (an LLM, checked); "
        "default from RAG_ANSWER_MODE.",
    )
    min_confidence: float | None = Field(
        None,
        ge=0.0,
        le=1.0,
        description="Abstain when the answer's confidence (the calibrated probability that it is "
        "right) is below this; default: the service's threshold (RAG_ANSWER_THRESHOLD).",
    )

    def query(self) -> Query:
        """The pipeline's query (validated there once more: a blank question is a 422)."""
        return Query(
            self.question,
            self.top_k,
            None
            if self.filters is None or self.filters.doc_ids is None
            else tuple(self.filters.doc_ids),
            tuple(Turn(t.role, t.content) for t in self.history or ()),
            self.mode,
            self.min_confidence,
        )


class DocumentIn(BaseModel):
    """A document to add (`id` optional: derived from the text when missing) or replace."""

    id: str | None = Field(None, max_length=200, description="Letters, digits, . _ : -")
    title: str | None = Field(None, max_length=1_000)
    text: str = Field(..., min_length=1)
    metadata: dict[str, Any] = Field(default_factory=dict)


class DocumentSummary(BaseModel):
    doc_id: str
    title: str
    chars: int
    source: str | None
    metadata: dict[str, Any]

    @classmethod
    def of(cls, doc: Document) -> DocumentSummary:
        return cls(
            doc_id=doc.doc_id,
            title=doc.title,
            chars=len(doc.text),
            source=doc.source,
            metadata=doc.metadata,
        )


class DocumentOut(DocumentSummary):
    text: str

    @classmethod
    def of(cls, doc: Document) -> DocumentOut:
        return cls(**DocumentSummary.of(doc).model_dump(), text=doc.text)


class WriteResult(BaseModel):
    documents: list[DocumentSummary]
    index_documents: int
    index_chunks: int


class Health(BaseModel):
    status: str
    documents: int
    chunks: int
    sentences: int
    model: str
    dense_index: str


class ErrorBody(BaseModel):
    error: str
    detail: Any = None


ERRORS = {
    401: "Missing or wrong API key",
    403: "Writes are disabled on this service",
    404: "No such document or route",
    409: "The document exists already",
    413: "Request body too large",
    415: "Unsupported file type",
    422: "Invalid request",
    429: "Rate limit exceeded (see Retry-After)",
}


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for the error statuses an operation can return."""
    return {code: {"model": ErrorBody, "description": ERRORS[code]} for code in codes}
