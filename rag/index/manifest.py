"""What a committed index is made of and how it was made: the spec, the segment list, counts.

A PostgreSQL backend writes the same manifest fields to its own tables; the embedded store
keeps it as the commit file that `CURRENT` names.
"""

from __future__ import annotations

from dataclasses import dataclass, field

FORMAT_VERSION = 4


@dataclass(frozen=True)
class IndexSpec:
    """What decides the index's content besides the documents: a change means re-embedding."""

    model: str
    chunk_size: int
    chunk_overlap: int
    precision: str = "fp32"  # of the vectors: int8 ones are not mixed with fp32 ones


@dataclass
class Manifest:
    """What a committed index holds; stored as the commit file that `CURRENT` names."""

    format_version: int
    spec: IndexSpec
    dimension: int
    dense_index: str
    documents: int  # live ones
    chunks: int
    sentences: int
    sources_fingerprint: str | None
    created_at: float
    segments: list[SegmentEntry] = field(default_factory=list)
    # source documents deleted through the service: a sync or a rebuild leaves them out
    withdrawn: list[str] = field(default_factory=list)

    @classmethod
    def from_json(cls, data: dict) -> Manifest:
        known = IndexSpec.__dataclass_fields__
        spec = IndexSpec(**{k: v for k, v in data["spec"].items() if k in known})
        segments = [SegmentEntry(**entry) for entry in data.get("segments", [])]
        fields = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**{**fields, "spec": spec, "segments": segments})

    def stale_reasons(self, spec: IndexSpec) -> list[str]:
        """Why the stored vectors or chunks cannot serve `spec` (empty when they can)."""
        reasons = []
        if self.format_version != FORMAT_VERSION:
            reasons.append(f"format version {self.format_version} != {FORMAT_VERSION}")
        for name in IndexSpec.__dataclass_fields__:
            have, want = getattr(self.spec, name), getattr(spec, name)
            if have != want:
                reasons.append(f"{name} changed ({have!r} -> {want!r})")
        return reasons


@dataclass
class SegmentEntry:
    name: str
    documents: int
    chunks: int
    sentences: int
    deleted: list[str] = field(default_factory=list)  # doc_ids no longer live here
    files: dict[str, str] = field(default_factory=dict)  # relative path -> sha256
