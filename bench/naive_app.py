"""The endpoint many would write first, for comparison: embed each request on its own, search
FAISS, return the nearest passages. Run: python -m bench.naive_app --port P"""

from __future__ import annotations

import argparse
import os

import faiss
import uvicorn
from fastapi import FastAPI

from rag.config import Settings
from rag.ingest.chunking import Chunker
from rag.ingest.documents import load_paths
from rag.models.embeddings import resolve_model


def create_app() -> FastAPI:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from sentence_transformers import SentenceTransformer

    settings = Settings()
    model = SentenceTransformer(resolve_model(settings.model), device="cpu")
    chunker = Chunker(settings.chunk_size, settings.chunk_overlap)
    texts = [
        doc.text[c.start : c.end]
        for doc in load_paths(settings.sources).documents
        for c in chunker.split(doc.text).chunks
    ]
    index = faiss.IndexFlatIP(model.get_embedding_dimension())
    index.add(model.encode(texts, normalize_embeddings=True))
    app = FastAPI()

    @app.get("/ready")
    def ready() -> dict:
        return {"ready": True}

    @app.post("/ask")
    def ask(body: dict) -> dict:
        vector = model.encode([body["question"]], normalize_embeddings=True)
        scores, rows = index.search(vector, 3)
        return {"passages": [texts[r] for r in rows[0] if r >= 0], "scores": scores[0].tolist()}

    return app


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    uvicorn.run(create_app(), host="127.0.0.1", port=args.port, log_level="warning")
