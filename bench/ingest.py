"""Ingest speed: files to a saved index, beside the plain encode rate of 500-character chunks;
the cost of one write (add, replace, delete an article) to a 10,000-article index; and one
large document (the 10 MB upload limit) against the same text as 1,000 small ones, with
questions asked while it is written.

    python -m bench.ingest [--articles 300] [--squad PATH] [--large-mb 10 --train PATH]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from langchain_text_splitters import RecursiveCharacterTextSplitter

from bench.common import load_squad, project_service, save_results
from bench.scale import SQUAD
from rag.config import BACKENDS, DEFAULT_BACKEND, Settings
from rag.index import store
from rag.index.corpus import build
from rag.ingest.documents import Document, load_paths, make_document
from rag.models.embeddings import shared_embedder
from rag.service import RagService

NEW_ARTICLE = (
    "Xiaomi opens a second car plant\n\n"
    "Xiaomi said on Tuesday it will open a second car plant in Wuhan in 2026. "
    "The plant will build 300,000 vehicles a year, the company said. "
    "Production of the first model, the SU7, continues in Beijing."
)


def ingest_rate(paragraphs: list[Document], backend: str) -> dict:
    """Plain: sentence-transformers (torch, its default batch size) on 500-character chunks.
    rag: files to a saved index with the given embedding backend."""
    model = shared_embedder(backend="torch").model
    splitter = RecursiveCharacterTextSplitter(chunk_size=500, chunk_overlap=0)
    plain_chunks = [c for d in paragraphs for c in splitter.split_text(d.text)]
    model.encode(plain_chunks[:32], normalize_embeddings=True)  # warm, as rag's model is
    started = time.perf_counter()
    model.encode(plain_chunks, normalize_embeddings=True)
    plain_seconds = time.perf_counter() - started
    with tempfile.TemporaryDirectory() as folder:
        for doc in paragraphs:
            (Path(folder) / f"{doc.doc_id}.txt").write_text(f"{doc.title}\n\n{doc.text}")
        settings = Settings(index_dir=Path(folder) / "index", sources=[], embed_backend=backend)
        service = RagService(settings)
        started = time.perf_counter()
        built = service.ingest(load_paths([Path(folder)]).documents)
        rag_seconds = time.perf_counter() - started
    characters = sum(len(d.text) for d in paragraphs)
    return {
        "articles": len(paragraphs),
        "characters": characters,
        "plain_encode": {
            "chunks": len(plain_chunks),
            "chunks_per_second": round(len(plain_chunks) / plain_seconds, 1),
            "characters_per_second": round(characters / plain_seconds),
        },
        "rag_ingest_files_to_saved_index": {
            "backend": service.embedder.backend,
            "chunks": built.manifest.chunks,
            "sentences": built.manifest.sentences,
            "chunks_per_second": round(built.manifest.chunks / rag_seconds, 1),
            "characters_per_second": round(characters / rag_seconds),
        },
    }


def one_write_to_a_large_index(paragraphs: list[Document], articles: int) -> dict:
    """Articles made of SQuAD paragraphs (vectors reused from the cached SQuAD index, so the
    big index costs no embedding); then one new article, one replacement, one deletion."""
    name = "squad" if len(paragraphs) >= 2067 else f"squad-first{len(paragraphs)}"
    squad = project_service(name, paragraphs).current().index
    documents = [
        make_document(f"a{n}", paragraphs[n % len(paragraphs)].text, title=f"Article {n}")
        for n in range(articles)
    ]
    embedder = shared_embedder()
    with tempfile.TemporaryDirectory() as folder:
        service = RagService(Settings(index_dir=Path(folder), sources=[]), embedder)
        started = time.perf_counter()
        big = build(documents, service.spec, embedder, squad.segments)
        store.commit(big, service.root)
        service.activate(big)
        build_seconds = time.perf_counter() - started
        timings = {}
        for name, write in [
            ("add_one_article", lambda: service.ingest([make_document("new", NEW_ARTICLE)])),
            ("replace_one_article", lambda: service.ingest([make_document("a7", NEW_ARTICLE)])),
            ("delete_one_article", lambda: service.delete(["a8"])),
        ]:
            started = time.perf_counter()
            write()
            timings[f"{name}_seconds"] = round(time.perf_counter() - started, 3)
        answer = service.ask("Where will Xiaomi open its second car plant?")
    return {
        "articles": articles,
        "sentences": big.manifest.sentences,
        "initial_build_seconds": round(build_seconds, 1),
        **timings,
        "segments_after": len(service.current().index.segments),
        "new_article_answer": answer.answer,
    }


def large_document(paragraphs: list[Document], megabytes: float) -> dict:
    """Indexing time grows with length alone: one document of `megabytes` against the same
    paragraphs as 1,000 documents; /ask latency on another index while the big one is written."""
    import statistics
    import threading

    budget = int(megabytes * 1_000_000)
    texts, size = [], 0
    for paragraph in paragraphs:  # distinct text: repeats would be embedded only once
        if size >= budget:
            break
        texts.append(paragraph.text)
        size += len(paragraph.text.encode()) + 2
    embedder = shared_embedder()
    per_doc = -(-len(texts) // 1000)
    small = [
        make_document(f"small-{i}", "\n\n".join(texts[i * per_doc : (i + 1) * per_doc]))
        for i in range(-(-len(texts) // per_doc))
    ]
    big = make_document("large", "\n\n".join(texts), title="One large document")
    seconds, latencies = {}, []
    with tempfile.TemporaryDirectory() as folder:
        asking = RagService(Settings(index_dir=Path(folder) / "seed"), embedder)
        asking.sync_sources()
        for name, docs in [("small_documents", small), ("one_large_document", [big])]:
            writer = RagService(Settings(index_dir=Path(folder) / name, sources=[]), embedder)
            done = threading.Event()

            def write(writer=writer, docs=docs, name=name, done=done) -> None:
                started = time.perf_counter()
                writer.ingest(docs, progress=print)
                seconds[name] = round(time.perf_counter() - started, 1)
                done.set()

            thread = threading.Thread(target=write)
            thread.start()
            while name == "one_large_document" and not done.wait(0.5):
                started = time.perf_counter()
                asking.ask("when is the first vehicle expected?")
                latencies.append(time.perf_counter() - started)
            thread.join()
    return {
        "megabytes": round(size / 1e6, 2),
        "small_documents": len(small),
        "small_documents_seconds": seconds["small_documents"],
        "one_large_document_seconds": seconds["one_large_document"],
        "large_over_small": round(seconds["one_large_document"] / seconds["small_documents"], 2),
        "ask_while_writing": {
            "questions": len(latencies),
            "p50_ms": round(statistics.median(latencies) * 1000, 1) if latencies else None,
            "max_ms": round(max(latencies) * 1000, 1) if latencies else None,
        },
    }


def result_name(args: argparse.Namespace) -> str:
    backend = "" if args.backend == DEFAULT_BACKEND else f"-{args.backend}"
    return f"ingest{backend}{'-quick' if args.quick else ''}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--articles", type=int, default=300, help="for the ingest rate")
    parser.add_argument("--large", type=int, default=10_000, help="articles in the large index")
    parser.add_argument(
        "--backend", choices=BACKENDS, default=DEFAULT_BACKEND, help="embedding backend"
    )
    parser.add_argument("--unique", type=int, default=0, help="distinct paragraphs (0: all)")
    parser.add_argument("--squad", type=Path, default=SQUAD)
    parser.add_argument("--quick", action="store_true", help="100 articles, 2,000 in the large")
    parser.add_argument(
        "--large-mb", type=float, default=0, help="only time one document this large"
    )
    parser.add_argument(
        "--train", type=Path, default=SQUAD.with_name("train-v1.1.json"), help="its text"
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.articles, args.large, args.unique = 100, 2000, 300
    if args.large_mb:  # a run of its own: minutes per 10 MB
        report = {"large_document": large_document(load_squad(args.train)[0], args.large_mb)}
        print(report, flush=True)
        print(f"saved {save_results('ingest-large', 'bench.ingest', report)}")
        return
    paragraphs = load_squad(args.squad)[0]
    report = {"ingest": ingest_rate(paragraphs[: args.articles], args.backend)}
    print(report["ingest"], flush=True)
    unique = paragraphs[: args.unique] if args.unique else paragraphs
    report["one_write"] = one_write_to_a_large_index(unique, args.large)
    print(report["one_write"], flush=True)
    print(f"saved {save_results(result_name(args), 'bench.ingest', report)}")


if __name__ == "__main__":
    main()
