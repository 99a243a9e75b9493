"""rag: question answering over news articles with citations that verify.

Pipeline, one module per stage: documents → chunking → embeddings → index → retrieval →
answer (extract) → citations; `service` runs it, `api/` serves it over HTTP.
"""
