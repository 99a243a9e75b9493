"""Snapshots on disk: manifest, staleness, vector reuse, corruption, atomic switch."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from rag.config import Settings
from rag.index import dense as dense_module
from rag.index import store
from rag.index.dense import dense_index, dense_kind, nearest
from rag.index.manifest import FORMAT_VERSION
from rag.models.embeddings import Embedder
from rag.service import RagService
from tests.conftest import SEED_DIR


@pytest.fixture()
def sources(tmp_path: Path) -> Path:
    folder = tmp_path / "articles"
    shutil.copytree(SEED_DIR, folder)
    return folder


def open_service(tmp_path: Path, sources: Path, embedder: Embedder, **overrides) -> RagService:
    settings = Settings(index_dir=tmp_path / "index", sources=[sources], **overrides)
    return RagService.open(settings, embedder)


def test_manifest_describes_the_index(service: RagService) -> None:
    manifest = store.read_manifest(service.root)
    assert manifest is not None
    assert manifest.spec.model == "all-MiniLM-L6-v2" and manifest.dimension == 384
    assert manifest.documents == 1 and manifest.chunks >= 3 and manifest.sentences >= 18
    assert manifest.format_version == FORMAT_VERSION and manifest.sources_fingerprint
    assert [store.VECTORS in entry.files for entry in manifest.segments] == [True]
    assert store.verify(service.root) == []


def test_fresh_index_is_loaded_not_rebuilt(tmp_path, sources, embedder) -> None:
    first = open_service(tmp_path, sources, embedder)
    again = RagService(first.settings, embedder)
    assert again.sync_sources() == []
    assert again.current().index.manifest.created_at == first.current().index.manifest.created_at


def test_changed_source_rebuilds_and_reuses_vectors(tmp_path, sources, embedder) -> None:
    service = open_service(tmp_path, sources, embedder)
    (sources / "second.txt").write_text("Tesla opens a plant in Berlin.\n\nIt employs 500 people.")
    messages: list[str] = []
    reasons = RagService(service.settings, embedder).sync_sources(messages.append)
    assert reasons == ["source files changed"]
    # only the new file is indexed (its title is its first sentence)
    assert "embedding 2 new texts (1 reused or repeated)" in messages
    assert store.read_manifest(service.root).documents == 2


def test_changed_chunking_rebuilds(tmp_path, sources, embedder) -> None:
    service = open_service(tmp_path, sources, embedder)
    changed = Settings(index_dir=service.root, sources=[sources], chunk_size=300, chunk_overlap=30)
    reasons = RagService(changed, embedder).sync_sources()
    assert reasons == ["chunk_size changed (800 -> 300)", "chunk_overlap changed (120 -> 30)"]
    assert store.read_manifest(service.root).spec.chunk_size == 300


def test_removed_source_file_leaves_the_index(tmp_path, sources, embedder) -> None:
    service = open_service(tmp_path, sources, embedder)
    (sources / "second.txt").write_text("A second article about batteries.")
    RagService(service.settings, embedder).sync_sources()
    (sources / "second.txt").unlink()
    fresh = RagService(service.settings, embedder)
    fresh.sync_sources()
    assert [d.doc_id for d in fresh.documents()] == ["xiaomi-great-wall-electric-car"]


def test_only_files_in_force_and_no_temp_files_remain(tmp_path, sources, embedder) -> None:
    service = open_service(tmp_path, sources, embedder)
    (sources / "extra.txt").write_text("Another article.")
    RagService(service.settings, embedder).sync_sources()
    manifest = store.read_manifest(service.root)
    names = sorted(p.name for p in service.root.iterdir())
    commit = store.current_commit(service.root).name
    assert names == sorted([".lock", "CURRENT", commit] + [e.name for e in manifest.segments])


def test_corrupt_file_is_refused_with_the_way_out(tmp_path, sources, embedder) -> None:
    service = open_service(tmp_path, sources, embedder)
    segment = store.read_manifest(service.root).segments[0].name
    with (service.root / segment / store.VECTORS).open("r+b") as handle:
        handle.seek(200)
        handle.write(b"\xff\xff\xff\xff")
    assert store.verify(service.root) == [f"{segment}/{store.VECTORS}: checksum mismatch"]
    with pytest.raises(store.IndexStoreError, match="rag index rebuild"):
        RagService(service.settings, embedder).sync_sources()
    rebuilt = RagService(service.settings, embedder)
    assert rebuilt.sync_sources(force=True) == ["rebuild requested"]
    assert store.verify(service.root) == []


def test_failed_write_keeps_the_previous_commit(tmp_path, sources, embedder, monkeypatch):
    service = open_service(tmp_path, sources, embedder)
    before = store.current_commit(service.root)

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(store.faiss, "write_index", crash)
    (sources / "new.txt").write_text("Breaking: something happened.")
    with pytest.raises(OSError, match="disk full"):
        RagService(service.settings, embedder).sync_sources()
    assert store.current_commit(service.root) == before
    assert store.verify(service.root) == []
    assert not [p for p in service.root.iterdir() if p.name.startswith(".tmp-")]


def test_a_large_segment_is_searched_approximately_and_rescored_exactly(monkeypatch) -> None:
    rng = np.random.default_rng(0)
    centres = rng.standard_normal((30, 384))
    points = centres[rng.integers(0, 30, 3_000)] + 0.5 * rng.standard_normal((3_000, 384))
    vectors = (points / np.linalg.norm(points, axis=1, keepdims=True)).astype(np.float32)
    monkeypatch.setattr(dense_module, "FLAT_LIMIT", 1_000)
    dense = dense_index(vectors)
    assert dense_kind(dense) == "IVF219,SQ4"  # 4 * sqrt(3,000) lists, 4-bit codes
    recall = []
    for query in vectors[rng.integers(0, 3_000, 30)]:
        rows, scores = nearest(dense, vectors, query, 100)
        np.testing.assert_allclose(scores, vectors[rows] @ query, rtol=1e-5)  # exact cosines
        assert (np.diff(scores) <= 0).all()
        truth = np.argsort(-(vectors @ query))[:10]
        recall.append(len(set(rows[:10].tolist()) & set(truth.tolist())) / 10)
    assert np.mean(recall) >= 0.9
