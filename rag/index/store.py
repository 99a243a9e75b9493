"""Indexes on disk: immutable segment folders, and commit files that list them.

`CURRENT` names the commit in force. A write saves its new segment folder (staged under a
temp name, then renamed), then a new commit file, then replaces `CURRENT` atomically; a crash
at any point leaves the previous commit in force, and readers never see a partial one. Files
no commit in force refers to are removed after the switch.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path

import faiss
import numpy as np

from rag.digest import file_digest
from rag.errors import IndexStoreError
from rag.index.corpus import CorpusIndex
from rag.index.lexical import Bm25Index
from rag.index.manifest import FORMAT_VERSION, Manifest, SegmentEntry
from rag.index.segment import Segment
from rag.ingest.documents import Document

POINTER = "CURRENT"
ARRAYS = "spans.npz"
VECTORS = "vectors.npy"
TITLE_VECTORS = "titles.npy"
DENSE = "dense.faiss"
BM25_DIR = "bm25"
DOCUMENTS = "documents.jsonl"
LEGACY_MANIFEST = "manifest.json"  # format 2: one folder per snapshot
SPAN_ARRAYS = (
    "chunk_doc",
    "chunk_start",
    "chunk_end",
    "chunk_sent_lo",
    "chunk_sent_hi",
    "sent_chunk",
    "sent_start",
    "sent_end",
    "sent_keys",
    "title_keys",
)


def fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def unique_name(prefix: str) -> str:
    return f"{prefix}-{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:8]}"


@contextmanager
def write_lock(root: Path) -> Iterator[None]:
    """One writer at a time per index folder, across processes."""
    root.mkdir(parents=True, exist_ok=True)
    with (root / ".lock").open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


# --- writing -------------------------------------------------------------------------------


def commit(index: CorpusIndex, root: Path) -> str:
    """Save the segments not yet on disk, then switch `CURRENT` to a commit listing all."""
    root.mkdir(parents=True, exist_ok=True)
    for segment in index.segments:
        if not segment.name:
            save_segment(segment, root)
    index.manifest.segments = [
        SegmentEntry(
            s.name, len(s.documents), len(s.chunk_doc), len(s.sent_chunk), sorted(gone), s.files
        )
        for s, gone in zip(index.segments, index.deleted, strict=True)
    ]
    name = unique_name("commit") + ".json"
    write_atomically(root / name, json.dumps(asdict(index.manifest), indent=1))
    write_atomically(root / POINTER, name + "\n")
    index.snapshot = name
    remove_unreferenced(root, index.manifest, keep=name)
    return name


def write_atomically(path: Path, text: str) -> None:
    staging = path.with_name(f".tmp-{path.name}-{uuid.uuid4().hex[:8]}")
    staging.write_text(text)
    fsync_path(staging)
    os.replace(staging, path)
    fsync_path(path.parent)


def save_segment(segment: Segment, root: Path) -> None:
    name = unique_name("seg")
    staging = root / f".tmp-{name}"
    staging.mkdir()
    try:
        with (staging / DOCUMENTS).open("w", encoding="utf-8") as handle:
            for doc in segment.documents:
                handle.write(json.dumps(doc.to_record(), ensure_ascii=False) + "\n")
        np.savez(staging / ARRAYS, **{key: getattr(segment, key) for key in SPAN_ARRAYS})
        np.save(staging / VECTORS, np.asarray(segment.vectors))
        np.save(staging / TITLE_VECTORS, np.asarray(segment.title_vectors))
        faiss.write_index(segment.dense, str(staging / DENSE))
        segment.bm25.save(staging / BM25_DIR)
        files = {}
        for path in sorted(p for p in staging.rglob("*") if p.is_file()):
            fsync_path(path)
            files[str(path.relative_to(staging))] = file_digest(path)
        staging.rename(root / name)
        fsync_path(root)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    segment.name, segment.files = name, files


def remove_unreferenced(root: Path, manifest: Manifest, keep: str) -> None:
    """Segments, commits and temp files that the commit in force does not use."""
    used = {keep, POINTER, ".lock"} | {entry.name for entry in manifest.segments}
    for path in root.iterdir():
        if path.name in used:
            continue
        if path.name.startswith(("seg-", "snap-", ".tmp-")) and path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        elif path.name.startswith(("commit-", ".tmp-")):
            path.unlink(missing_ok=True)


# --- reading -------------------------------------------------------------------------------


def current_commit(root: Path) -> Path | None:
    """The commit file (or, format 2, the snapshot folder) that `CURRENT` names."""
    pointer = root / POINTER
    if not pointer.is_file():
        return None
    target = root / pointer.read_text().strip()
    if not target.exists():
        raise IndexStoreError(
            f"{pointer} names {target.name}, which is missing: run `rag index rebuild`"
        )
    return target


def read_manifest(root: Path) -> Manifest | None:
    target = current_commit(root)
    if target is None:
        return None
    path = target / LEGACY_MANIFEST if target.is_dir() else target
    try:
        return Manifest.from_json(json.loads(path.read_text()))
    except (OSError, ValueError, TypeError, KeyError) as error:
        raise IndexStoreError(
            f"unreadable manifest {path} ({error}): run `rag index rebuild`"
        ) from None


def verify(root: Path, skip: frozenset[str] = frozenset()) -> list[str]:
    """Files whose bytes no longer match the commit's checksums (empty when all is well);
    segments named in `skip` (already checked and in memory) are not read again."""
    manifest = read_manifest(root)
    if manifest is None:
        return [f"no index in {root}"]
    problems = []
    for entry in manifest.segments:
        if entry.name in skip:
            continue
        for name, digest in entry.files.items():
            path = root / entry.name / name
            if not path.is_file():
                problems.append(f"{entry.name}/{name}: missing")
            elif file_digest(path) != digest:
                problems.append(f"{entry.name}/{name}: checksum mismatch")
    return problems


def read_documents(path: Path) -> list[Document]:
    with path.open(encoding="utf-8") as handle:
        return [Document(**json.loads(line)) for line in handle]


def load_documents(root: Path) -> list[Document]:
    """The live documents of the index in force, in any format version (to rebuild from)."""
    target = current_commit(root)
    if target is None:
        return []
    if target.is_dir():
        return read_documents(target / DOCUMENTS)
    manifest = read_manifest(root)
    documents = []
    for entry in manifest.segments:
        gone = set(entry.deleted)
        documents += [
            d for d in read_documents(root / entry.name / DOCUMENTS) if d.doc_id not in gone
        ]
    return documents


def load_segment(root: Path, entry: SegmentEntry) -> Segment:
    """Vectors and BM25 postings stay on disk, memory-mapped: a query reads only the rows and
    terms it needs, so resident memory does not grow with them (bench/startup.py)."""
    folder = root / entry.name
    arrays = np.load(folder / ARRAYS)
    return Segment(
        documents=read_documents(folder / DOCUMENTS),
        vectors=np.load(folder / VECTORS, mmap_mode="r"),
        title_vectors=np.load(folder / TITLE_VECTORS, mmap_mode="r"),
        dense=read_dense(folder / DENSE),
        bm25=Bm25Index.load(folder / BM25_DIR, mmap=True),
        name=entry.name,
        files=entry.files,
        **{key: arrays[key] for key in SPAN_ARRAYS},
    )


def read_dense(path: Path) -> faiss.Index:
    """The FAISS index memory-mapped, read-only (segments never change): a large one loads in
    a fraction of the time it takes to read its file, and pages in only the lists searched."""
    return faiss.read_index(str(path), faiss.IO_FLAG_MMAP | faiss.IO_FLAG_READ_ONLY)


def load(root: Path, check: bool = True, reuse: list[Segment] = ()) -> CorpusIndex | None:
    """The commit in force, or None when there is none of this format version to query.

    Segments already in memory (`reuse`, matched by name) are not read again."""
    manifest = read_manifest(root)
    if manifest is None or manifest.format_version != FORMAT_VERSION:
        return None
    in_memory = {segment.name: segment for segment in reuse}
    if check and (problems := verify(root, frozenset(in_memory))):
        raise IndexStoreError(
            f"index in {root} is corrupt ({'; '.join(problems)}): run `rag index rebuild`"
        )
    segments = [in_memory.get(e.name) or load_segment(root, e) for e in manifest.segments]
    deleted = [frozenset(entry.deleted) for entry in manifest.segments]
    return CorpusIndex(manifest, segments, deleted, snapshot=current_commit(root).name)
