"""One entry per wire story: the same story from several outlets, lightly edited, is found when
it is written (MinHash over word shingles, LSH from `datasketch`) and its documents share a
`story` id in their metadata (the first copy's id), which retrieval collapses on."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import replace

from datasketch import MinHash, MinHashLSH

from rag.ingest.documents import Document

STORY = "story"
SHINGLE_WORDS = 5
PERMUTATIONS = 128
SAME_STORY = 0.5  # estimated Jaccard of shingles above which two texts are one story
RECENT_STORIES = 5_000  # documents a fresh story index reads (of 3,000 characters: about 7 s)
WORD = re.compile(r"\w+")


def signature(text: str) -> MinHash:
    words = WORD.findall(text.casefold())
    shingles = {" ".join(words[i : i + SHINGLE_WORDS]) for i in range(max(1, len(words) - 4))}
    minhash = MinHash(num_perm=PERMUTATIONS, seed=1)
    minhash.update_batch([s.encode() for s in shingles])
    return minhash


class StoryIndex:
    """The stories of the documents written so far, kept up to date write by write."""

    def __init__(self, documents: Iterable[Document] = ()) -> None:
        self.lsh = MinHashLSH(threshold=SAME_STORY, num_perm=PERMUTATIONS)
        self.signatures: dict[str, MinHash] = {}
        self.story: dict[str, str] = {}
        for doc in documents:
            self.insert(doc.doc_id, signature(doc.text), doc.metadata.get(STORY, doc.doc_id))

    def tag(self, documents: list[Document]) -> list[Document]:
        """`documents` with the story each belongs to (its own id when it is a new one),
        remembered for the next write; copies within one batch find each other too."""
        tagged = []
        for doc in documents:
            self.remove(doc.doc_id)  # a replaced text may tell another story
            minhash = signature(doc.text)
            matches = [
                other
                for other in self.lsh.query(minhash)
                if self.signatures[other].jaccard(minhash) >= SAME_STORY
            ]
            story = min((self.story[m] for m in matches), default=doc.doc_id)
            self.insert(doc.doc_id, minhash, story)
            metadata = {k: v for k, v in doc.metadata.items() if k != STORY}
            if story != doc.doc_id:
                metadata[STORY] = story
            tagged.append(replace(doc, metadata=metadata))
        return tagged

    def insert(self, doc_id: str, minhash: MinHash, story: str) -> None:
        self.lsh.insert(doc_id, minhash)
        self.signatures[doc_id], self.story[doc_id] = minhash, story

    def remove(self, doc_id: str) -> None:
        if doc_id in self.signatures:
            self.lsh.remove(doc_id)
            del self.signatures[doc_id], self.story[doc_id]
