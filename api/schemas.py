"""Request and response bodies that are HTTP's own (the pipeline's types are reused as is)."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, Field

from rag.config import MAX_QUESTION_CHARS, MAX_TOP_K
from rag.ingest.documents import DOC_ID_PATTERN, DOC_ID_RULE, Document
from rag.ingest.news import PUBLISHED, PUBLISHER
from rag.query.conversation import Turn
from rag.query.pipeline import Query
from rag.types import AnswerMode


def not_a_bool(value: Any) -> Any:
    """JSON's `true` is not the number 1 (pydantic's lax mode would take it as one)."""
    if isinstance(value, bool):
        raise ValueError("Input should be a number, not true or false")
    return value


# (the bounds first: after the validator, they would not reach the JSON schema)
TopK = Annotated[int, Field(ge=1, le=MAX_TOP_K), BeforeValidator(not_a_bool)]
Confidence = Annotated[float, Field(ge=0.0, le=1.0), BeforeValidator(not_a_bool)]
# White space as Python's str.strip() takes it, spelled out: regex engines (pydantic's, the
# fuzzer's) disagree on what `\s` covers
WHITE = "".join(f"\\u{ord(c):04x}" for c in map(chr, range(0x10000)) if c.isspace())
SOME_TEXT = f"[^{WHITE}]"  # at least one character that is not white space
TEXT = f"^[^\\u0000]*[^{WHITE}\\u0000][^\\u0000]*$"  # SOME_TEXT, and no NUL (binary data)
PATTERN_RULES = {  # what a pattern means, said in words in a 422
    SOME_TEXT: "must hold text, not only white space",
    TEXT: "must hold text, not only white space, and no NUL characters (binary data)",
    DOC_ID_PATTERN.pattern: DOC_ID_RULE,
}


class Filters(BaseModel):
    doc_ids: list[str] | None = Field(None, description="Only search these documents.")
    publishers: list[str] | None = Field(
        None, description="Only articles of these publishers (any spelling: Reuters, reuters.com)."
    )
    published_after: date | None = Field(None, description="Only articles dated on or after.")
    published_before: date | None = Field(None, description="Only articles dated on or before.")


class HistoryTurn(BaseModel):
    role: str = Field(..., pattern="^(user|assistant)$")
    content: str = Field(..., max_length=MAX_QUESTION_CHARS * 5)


class AskRequest(BaseModel):
    question: str = Field(
        ...,
        min_length=1,
        max_length=MAX_QUESTION_CHARS,
        pattern=SOME_TEXT,
        examples=["when is the first vehicle expected?"],
    )
    top_k: TopK | None = Field(None, description="Passages to return.")
    filters: Filters | None = None
    history: list[HistoryTurn] | None = Field(
        None, max_length=100, description="Earlier turns, oldest first, for follow-ups."
    )
    mode: AnswerMode | None = Field(
        None,
        description="extractive (instant, exact) or generative (an LLM, checked); "
        "default from RAG_ANSWER_MODE.",
    )
    min_confidence: Confidence | None = Field(
        None,
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
            *(
                (None, None, None)
                if self.filters is None
                else (
                    self.filters.publishers,
                    self.filters.published_after,
                    self.filters.published_before,
                )
            ),
        )


class DocumentIn(BaseModel):
    """A document to add (`id` optional: derived from the text when missing) or replace."""

    id: str | None = Field(
        None, pattern=DOC_ID_PATTERN.pattern, description="Letters, digits, . _ : - (1-200)"
    )
    title: str | None = Field(None, max_length=1_000)
    text: str = Field(..., min_length=1, pattern=TEXT)
    metadata: dict[str, Any] = Field(default_factory=dict)


class DocumentSummary(BaseModel):
    doc_id: str
    title: str
    chars: int
    source: str | None
    published: str | None = Field(None, description="The article's date (YYYY-MM-DD), if known.")
    publisher: str | None = Field(None, description="Who published it, if known.")
    metadata: dict[str, Any]

    @classmethod
    def of(cls, doc: Document) -> DocumentSummary:
        return cls(
            doc_id=doc.doc_id,
            title=doc.title,
            chars=len(doc.text),
            source=doc.source,
            published=doc.metadata.get(PUBLISHED),
            publisher=doc.metadata.get(PUBLISHER),
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
    status: Literal["ok", "empty"] = Field(
        description="`empty`: serving, with no documents yet (add some to get answers)"
    )
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
