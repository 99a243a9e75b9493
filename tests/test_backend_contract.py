"""What every index backend must do; run over each one (`BACKENDS`), with the real model.

A backend is where an index lives (`rag.index.backend`): write transactions that publish
whole or not at all, and a committed version that retrieval, the reader and citations read.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from rag.config import Settings
from rag.errors import NotFoundError
from rag.index.backend import Backend, CorpusView
from rag.index.backends import open_backend
from rag.index.lexical import query_terms
from rag.index.manifest import IndexSpec
from rag.ingest.documents import make_document
from rag.models.embeddings import Embedder
from tests.conftest import fresh_database

SPEC = IndexSpec("all-MiniLM-L6-v2", 300, 40, "int8")
ARTICLES = {
    "tesla": (
        "Tesla opens a plant in Berlin",
        "Tesla opened its first European factory near Berlin in March 2022. "
        "The plant builds the Model Y. About 12,000 people work there.",
    ),
    "byd": (
        "BYD overtakes rivals",
        "BYD sold more electric cars than any rival in the last quarter. "
        "The Shenzhen company also makes batteries and buses.",
    ),
}


class CountingEncoder:
    """The real embedder, counting what it embeds (vectors for known texts must be reused)."""

    def __init__(self, embedder: Embedder) -> None:
        self.embedder = embedder
        self.dimension = embedder.dimension
        self.texts = 0

    def encode(self, texts: list[str], **options) -> np.ndarray:
        self.texts += len(texts)
        return self.embedder.encode(texts, **options)


@pytest.fixture
def encoder(embedder: Embedder) -> CountingEncoder:
    return CountingEncoder(embedder)


@pytest.fixture(params=["embedded", "postgres"])
def make(
    request, tmp_path: Path, encoder: CountingEncoder
) -> Iterator[Callable[[IndexSpec], Backend]]:
    """A backend on a fresh, empty store (the same store for every call in one test)."""
    if request.param == "embedded":
        settings = Settings(index_dir=tmp_path / "index", sources=[])
    else:
        url = fresh_database(request.getfixturevalue("postgres_url"), "contract")
        settings = Settings(database_url=url, sources=[])
    made: list[Backend] = []

    def backend_for(spec: IndexSpec) -> Backend:
        made.append(open_backend(settings, spec, encoder))
        return made[-1]

    yield backend_for
    for backend in made:
        backend.close()


@pytest.fixture
def backend(make) -> Backend:
    return make(SPEC)


def docs(*ids: str, suffix: str = "") -> list:
    return [make_document(i, ARTICLES[i][1] + suffix, ARTICLES[i][0]) for i in ids]


def write(backend: Backend, previous: CorpusView | None = None, **changes) -> CorpusView:
    with backend.writer(previous=previous) as transaction:
        transaction.delete(set(changes.get("delete", ())))
        transaction.add(changes.get("add", []))
    return transaction.result


def test_an_empty_backend_has_no_version_and_an_empty_corpus_is_a_valid_one(
    backend: Backend,
) -> None:
    assert backend.head() is None and backend.load() is None
    empty = write(backend, add=[])
    assert backend.head() == empty.snapshot and empty.manifest.documents == 0
    view = write(backend, empty, add=docs("tesla"))
    last = write(backend, view, delete=["tesla"])  # the last document goes: still serving
    for read in (last, backend.load()):
        assert read.live_documents() == [] and read.manifest.documents == 0
        assert read.document("tesla") is None and read.chunks_of(["tesla"]).size == 0
    assert backend.verify() == []


def test_deleted_source_documents_are_remembered_even_by_a_forced_rebuild(
    backend: Backend,
) -> None:
    view = write(backend, add=docs("tesla", "byd"))
    with backend.writer(previous=view) as transaction:
        transaction.delete({"byd"})
        transaction.withdraw({"byd"})
    with backend.writer() as transaction:
        assert transaction.withdrawn == {"byd"}
        transaction.add(docs("tesla", suffix=" It opened in 2022."))
    with backend.writer(force=True) as transaction:
        transaction.replace_all(transaction.salvage_documents())
        assert transaction.withdrawn == {"byd"}
    with backend.writer() as transaction:
        assert transaction.withdrawn == {"byd"}
        transaction.add(docs("byd"))  # ingested again: no longer withdrawn
        assert transaction.withdrawn == set()
    assert sorted(d.doc_id for d in backend.load().live_documents()) == ["byd", "tesla"]


def test_a_write_publishes_a_version_that_reads_back(backend: Backend) -> None:
    view = write(backend, add=docs("tesla", "byd"))
    assert backend.head() == view.snapshot
    again = backend.load()
    assert sorted(d.doc_id for d in again.live_documents()) == ["byd", "tesla"]
    assert again.document("tesla").text == ARTICLES["tesla"][1]
    assert again.document("nio") is None
    assert (again.manifest.documents, again.manifest.spec) == (2, SPEC)
    assert backend.verify() == []


def test_spans_are_exact_offsets_into_the_document(backend: Backend) -> None:
    view = write(backend, add=docs("tesla", "byd"))
    for doc_id in ("tesla", "byd"):
        text = view.document(doc_id).text
        for chunk in view.chunks_of([doc_id]).tolist():
            assert view.chunk_document(chunk).doc_id == doc_id
            start, end = view.chunk_span(chunk)
            assert view.chunk_text(chunk) == text[start:end]
            assert view.chunk_id(chunk).startswith(f"{doc_id}#")
            rows, starts, ends = view.sentence_spans(chunk)
            assert rows.size and (starts >= start).all() and (ends <= end).all()
            for row in rows.tolist():
                s, e = view.sentence_span(row)
                assert view.sentence_text(row) == text[s:e] and text[s:e].strip()
                assert view.sentence_chunk(row) in view.chunks_of([doc_id]).tolist()


def test_dense_and_lexical_search_find_the_right_chunk(backend: Backend, embedder) -> None:
    view = write(backend, add=docs("tesla", "byd"))
    question = embedder.encode(["Where did Tesla open its European factory?"])[0]
    byd = view.chunks_of(["byd"])
    tesla = view.chunks_of(["tesla"])
    assert view.dense_chunks(question, 1).tolist() == tesla[:1].tolist()
    both = np.concatenate([tesla, byd])
    best = view.best_sentence_similarity(both, question)
    assert best.shape == (both.size,) and best[0] > best[-1] and (np.abs(best) <= 1.0001).all()
    titles = view.title_similarity(both, question)
    assert titles[0] > titles[-1]
    found, scores = view.lexical(query_terms("Shenzhen batteries"), 5, np.array([], dtype=int))
    assert found.tolist() == byd.tolist() and (scores > 0).all()
    # the given chunks are scored too, even without a matching term
    found, scores = view.lexical(query_terms("Shenzhen batteries"), 0, tesla)
    assert found.tolist() == tesla.tolist() and (scores == 0).all()


def test_replace_and_delete_are_seen_whole_and_old_versions_stay_readable(
    backend: Backend,
) -> None:
    first = write(backend, add=docs("tesla", "byd"))
    second = write(backend, first, add=docs("tesla", suffix=" It opened in 2022."))
    assert second.document("tesla").text.endswith("It opened in 2022.")
    assert all(second.chunk_document(c).text.endswith("2022.") for c in second.chunks_of(["tesla"]))
    third = write(backend, second, delete=["byd"])
    assert [d.doc_id for d in third.live_documents()] == ["tesla"]
    found, _ = third.lexical(query_terms("Shenzhen"), 5, np.array([], dtype=int))
    assert found.size == 0
    # a query holding an older version reads it unchanged
    assert (
        first.document("byd") is not None and first.document("tesla").text == ARTICLES["tesla"][1]
    )
    assert backend.load().snapshot == third.snapshot == backend.head()


def test_a_failed_transaction_publishes_nothing(backend: Backend) -> None:
    view = write(backend, add=docs("tesla"))
    with pytest.raises(NotFoundError, match="nio"):
        write(backend, view, add=docs("byd"), delete=["nio"])
    with pytest.raises(RuntimeError, match="client went away"), backend.writer() as transaction:
        transaction.add(docs("byd"))
        raise RuntimeError("client went away")
    assert backend.head() == view.snapshot
    assert [d.doc_id for d in backend.load().live_documents()] == ["tesla"]


def test_known_texts_keep_their_vectors(backend: Backend, encoder: CountingEncoder) -> None:
    view = write(backend, add=docs("tesla"))
    embedded_once = encoder.texts
    write(backend, view, add=docs("tesla") + docs("byd"))  # tesla unchanged: nothing new
    assert encoder.texts - embedded_once <= 4  # byd's three sentences and its title


def test_a_new_spec_makes_the_stored_index_stale(backend: Backend, make) -> None:
    write(backend, add=docs("tesla"))
    with backend.writer() as transaction:
        assert transaction.stale_reasons == []
    with make(IndexSpec("all-MiniLM-L6-v2", 500, 40, "int8")).writer() as transaction:
        assert transaction.stale_reasons == ["chunk_size changed (300 -> 500)"]
        assert [d.doc_id for d in transaction.stored_documents()] == ["tesla"]


def test_the_manifest_counts_what_is_live_after_every_write(backend: Backend) -> None:
    view = write(backend, add=docs("tesla", "byd"))
    view = write(backend, view, add=docs("tesla", suffix=" Output doubled. A second shift began."))
    last = write(backend, view, delete=["byd"])
    for read in (last, backend.load()):
        chunks = read.chunks_of(["tesla"]).tolist()
        sentences = sum(read.sentence_spans(c)[0].size for c in chunks)
        assert (read.manifest.documents, read.manifest.chunks) == (1, len(chunks))
        assert read.manifest.sentences == sentences == 5


def test_a_forced_write_can_still_read_the_documents_it_will_not_build_from(
    backend: Backend,
) -> None:
    write(backend, add=docs("tesla", "byd"))
    with backend.writer(force=True) as transaction:
        assert transaction.stored_documents() == []
        salvaged = transaction.salvage_documents()
        assert sorted(d.doc_id for d in salvaged) == ["byd", "tesla"]
        transaction.replace_all(salvaged)
    assert sorted(d.doc_id for d in backend.load().live_documents()) == ["byd", "tesla"]


def test_a_forced_rebuild_holds_exactly_what_it_was_given(backend: Backend) -> None:
    write(backend, add=docs("tesla", "byd"))
    with backend.writer(force=True) as transaction:
        transaction.replace_all(docs("byd"))
    view = backend.load()
    assert [d.doc_id for d in view.live_documents()] == ["byd"]
    assert view.manifest.documents == 1 and backend.verify() == []
