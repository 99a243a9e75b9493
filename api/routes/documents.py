"""Document endpoints: list and read; add, replace and delete behind the write key."""

from __future__ import annotations

import hashlib
import logging
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request, Response, UploadFile
from fastapi.concurrency import run_in_threadpool

from api.guards import require_read, require_write, svc
from api.schemas import DocumentIn, DocumentOut, DocumentSummary, WriteResult, error_responses
from rag.index.backend import CorpusView
from rag.ingest.documents import DOC_ID_PATTERN, UPLOADED, Document, make_document, parse_file
from rag.service import RagService

log = logging.getLogger("rag.api")
router = APIRouter(prefix="/documents", tags=["documents"])
WRITE = {"dependencies": [Depends(require_write)], "responses": error_responses(403, 409, 415)}


def written(docs: list[Document], index: CorpusView) -> WriteResult:
    return WriteResult(
        documents=[DocumentSummary.of(d) for d in docs],
        index_documents=index.manifest.documents,
        index_chunks=index.manifest.chunks,
    )


def from_body(body: DocumentIn, doc_id: str | None = None) -> Document:
    derived = "doc-" + hashlib.sha256(body.text.encode()).hexdigest()[:16]
    return make_document(doc_id or body.id or derived, body.text, body.title, body.metadata)


async def create(service: RagService, docs: list[Document]) -> CorpusView:
    view, _ = await run_in_threadpool(service.put, docs, True, log.info)
    return view


@router.get("", response_model=list[DocumentSummary], dependencies=[Depends(require_read)])
def list_documents(
    request: Request,
    limit: int | None = Query(None, ge=1, description="At most this many (default: all)."),
    offset: int = Query(0, ge=0, description="Skip this many first."),
) -> list[DocumentSummary]:
    documents = svc(request).documents()
    end = None if limit is None else offset + limit
    return [DocumentSummary.of(d) for d in documents[offset:end]]


@router.get("/{doc_id}", response_model=DocumentOut, dependencies=[Depends(require_read)])
def get_document(doc_id: str, request: Request) -> DocumentOut:
    return DocumentOut.of(svc(request).document(doc_id))


@router.post("", status_code=201, response_model=WriteResult, **WRITE)
async def add_document(body: DocumentIn, request: Request) -> WriteResult:
    """Add one document from JSON. Existing ids are refused with 409 (use PUT to replace)."""
    doc = from_body(body)
    return written([doc], await create(svc(request), [doc]))


@router.post("/upload", status_code=201, response_model=WriteResult, **WRITE)
async def upload_documents(file: UploadFile, request: Request) -> WriteResult:
    """Add the documents in one file (.txt .md .html .json .jsonl); 415 for other types."""
    name = file.filename or "upload.txt"
    docs = parse_file(name, await file.read(), source=UPLOADED + name)
    return written(docs, await create(svc(request), docs))


@router.put(
    "/{doc_id}",
    response_model=WriteResult,
    dependencies=WRITE["dependencies"],
    responses={
        201: {"model": WriteResult, "description": "Created under this id"},
        **WRITE["responses"],
    },
)
async def put_document(
    doc_id: Annotated[str, Path(pattern=DOC_ID_PATTERN.pattern)],
    body: DocumentIn,
    request: Request,
    response: Response,
) -> WriteResult:
    """Replace the document (or create it under this id)."""
    doc = from_body(body, doc_id)
    view, new = await run_in_threadpool(svc(request).put, [doc], False, log.info)
    if new:
        response.status_code = 201
    return written([doc], view)


@router.delete("/{doc_id}", response_model=WriteResult, **WRITE)
async def delete_document(doc_id: str, request: Request) -> WriteResult:
    service = svc(request)
    doc = service.document(doc_id)
    return written([doc], await run_in_threadpool(service.delete, [doc_id]))
