"""Incremental writes: one small segment per change, deletion marks, merges, one corpus view."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rag.config import Settings
from rag.errors import NotFoundError
from rag.index import store
from rag.index.corpus import build
from rag.index.merge import MAX_SEGMENTS
from rag.index.segment import Cut, Embedded
from rag.ingest.documents import make_document
from rag.service import RagService

FACTS = [
    ("tesla", "Tesla opened a factory near Berlin in March 2022. It employs 11,000 people."),
    ("byd", "BYD sold 3 million cars in 2023. Its headquarters are in Shenzhen."),
    ("nio", "Nio swaps batteries in three minutes. The company was founded in 2014."),
    ("rivian", "Rivian delivered its first pickup truck in September 2021."),
    ("lucid", "Lucid builds its sedans in Casa Grande, Arizona."),
]


def documents(names=None):
    return [make_document(n, t) for n, t in FACTS if names is None or n in names]


@pytest.fixture()
def service(tmp_path: Path, embedder) -> RagService:
    return RagService(Settings(index_dir=tmp_path / "index", sources=[]), embedder)


def test_a_write_adds_one_segment_and_leaves_the_others_untouched(service) -> None:
    service.ingest(documents(["tesla", "byd", "nio"]))
    first = store.read_manifest(service.root).segments[0]
    messages: list[str] = []
    service.ingest(documents(["rivian"]), progress=messages.append)
    manifest = store.read_manifest(service.root)
    assert [e.name for e in manifest.segments] == [first.name, manifest.segments[1].name]
    assert manifest.segments[0].files == first.files  # not rewritten
    # its one sentence is its title too: embedded once
    assert "embedding 1 new texts (1 reused or repeated)" in messages
    assert manifest.documents == 4 and store.verify(service.root) == []


def test_a_text_repeated_in_one_write_is_embedded_once(service) -> None:
    line = "Shares of the company rose 5% in Hong Kong."
    repeated = [
        make_document("wire-1", f"Tesla opened a factory near Berlin. {line}", title="Wire"),
        make_document("wire-2", f"BYD sold 3 million cars in 2023. {line}", title="Wire"),
    ]
    messages: list[str] = []
    index = service.ingest(repeated, progress=messages.append)
    # 4 sentences and 2 titles: the repeated line and title are embedded once each
    assert "embedding 4 new texts (2 reused or repeated)" in messages
    rows = [r for r in range(len(index.sent_start)) if index.sentence_text(r) == line]
    assert len(rows) == 2
    np.testing.assert_array_equal(index.vectors[rows[:1]], index.vectors[rows[1:]])
    assert np.linalg.norm(index.vectors[rows[:1]]) == pytest.approx(1.0, abs=1e-5)


def test_replace_and_delete_mark_the_old_rows_and_queries_skip_them(service) -> None:
    service.ingest(documents(["tesla", "byd", "nio", "rivian"]))
    service.ingest([make_document("byd", "BYD sold 4 million cars in 2024.")])
    service.delete(["nio"])
    index = service.current().index
    assert sorted(index.doc_rows) == ["byd", "rivian", "tesla"]
    assert store.read_manifest(service.root).segments[0].deleted == ["byd", "nio"]
    answer = service.ask("How many cars did BYD sell?")
    assert answer.answer == "4 million" and answer.citations[0].doc_id == "byd"
    hits = service.search("battery swap in three minutes", top_k=5)
    assert "nio" not in {p.doc_id for p in hits}
    with pytest.raises(NotFoundError, match="nio"):
        service.delete(["nio"])


def test_many_small_writes_stay_few_segments_and_match_a_fresh_build(service, embedder) -> None:
    for n in range(40):
        service.ingest([make_document(f"note-{n}", f"Plant {n} opened on May {n % 28 + 1}, 2024.")])
    index = service.current().index
    assert len(index.segments) <= MAX_SEGMENTS
    sizes = [len(s.documents) for s in index.segments]
    assert sizes == sorted(sizes, reverse=True)  # older segments are the bigger ones
    fresh = build(index.live_documents(), service.spec, embedder)
    terms = ("plant", "may", "2024", "unknownword")
    assert np.allclose(index.idf(terms), fresh.idf(terms))
    query = embedder.encode(["When did plant 17 open?"])[0]
    # same IDF; only the length normalisation differs a little (each segment's mean length)
    scores, expected = index.bm25_scores(terms), fresh.bm25_scores(terms)
    assert sorted(scores) == pytest.approx(sorted(expected), rel=0.02)
    top = index.dense_chunks(query, 1)[0]
    assert index.chunk_document(top).doc_id == "note-17"


def test_merging_reuses_vectors(service) -> None:
    service.ingest(documents(["tesla"]))
    messages: list[str] = []
    service.ingest(documents(["byd"]), progress=messages.append)  # 1 + 1: merged
    assert len(service.current().index.segments) == 1
    assert any(m.startswith("merging the 2 documents") for m in messages)
    assert "embedding 0 new texts (6 reused or repeated)" in messages


def test_a_write_from_another_process_is_seen_and_shares_loaded_segments(service, embedder):
    service.ingest(documents(["tesla", "byd", "nio"]))
    other = RagService(service.settings, embedder)
    other.sync_sources()
    other.ingest(documents(["rivian"]))
    service.ingest(documents(["lucid"]))  # takes the lock, sees rivian, adds lucid
    assert sorted(service.current().index.doc_rows) == ["byd", "lucid", "nio", "rivian", "tesla"]
    assert store.verify(service.root) == []


def test_deleting_everything_leaves_a_serving_empty_index(service) -> None:
    service.ingest(documents(["tesla"]))
    service.delete(["tesla"])
    assert service.documents() == [] and store.verify(service.root) == []
    result = service.ask("Where did Tesla open a factory?")
    assert not result.answerable and result.passages == []
    assert result.message.startswith("The index holds no documents yet")
    assert service.search("Tesla factory") == []
    service.ingest(documents(["byd"]))  # and takes documents again
    assert sorted(service.current().index.doc_rows) == ["byd"]


def test_a_chunk_without_a_home_sentence_borrows_one_even_at_the_end() -> None:
    # two chunks, both sentences homed in the first: the second borrows the last sentence
    pieces = Cut(
        documents=[],
        chunk_doc=np.array([0, 0], dtype=np.int32),
        chunk_start=np.array([0, 5]),
        chunk_end=np.array([10, 12]),
        chunk_texts=["", ""],
        sent_chunk=np.array([0, 0], dtype=np.int32),
        sent_start=np.array([0, 5]),
        sent_end=np.array([4, 10]),
        sent_texts=["", ""],
    )
    lo, hi = Embedded(pieces, *[np.zeros(0)] * 4).home_ranges()
    assert lo.tolist() == [0, 1] and hi.tolist() == [2, 2]
