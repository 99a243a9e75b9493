"""What many would build instead, for comparison: LangChain's FAISS vector store as a retriever
over the same chunks and the same model, behind a FastAPI endpoint.
Run: python -m bench.langchain_app --port P"""

from __future__ import annotations

import argparse
import os
import warnings

import uvicorn
from fastapi import FastAPI

from rag.config import Settings
from rag.ingest.documents import load_paths
from rag.models.embeddings import resolve_model


def create_app() -> FastAPI:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    warnings.simplefilter("ignore", DeprecationWarning)
    from langchain_community.embeddings import HuggingFaceEmbeddings
    from langchain_community.vectorstores import FAISS
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    settings = Settings()
    embeddings = HuggingFaceEmbeddings(
        model_name=resolve_model(settings.model), encode_kwargs={"normalize_embeddings": True}
    )
    splitter = RecursiveCharacterTextSplitter(
        chunk_size=settings.chunk_size, chunk_overlap=settings.chunk_overlap
    )
    texts = [d.text for d in load_paths(settings.sources).documents]
    store = FAISS.from_documents(splitter.create_documents(texts), embeddings)
    retriever = store.as_retriever(search_kwargs={"k": 3})
    app = FastAPI()

    @app.get("/ready")
    def ready() -> dict:
        return {"ready": True}

    @app.post("/ask")
    def ask(body: dict) -> dict:
        return {"passages": [d.page_content for d in retriever.invoke(body["question"])]}

    return app


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    uvicorn.run(create_app(), host="127.0.0.1", port=args.port, log_level="warning")
