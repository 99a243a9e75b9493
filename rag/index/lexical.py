"""Lexical side of retrieval: one tokenizer for everything, and BM25 via bm25s."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import bm25s
import numpy as np
import Stemmer

STEMMER = Stemmer.Stemmer("english")
# bm25s's defaults, named so that a backend scoring BM25 elsewhere (SQL) uses the same
BM25_K1, BM25_B = 1.5, 0.75
# bm25s's English list keeps question words; in a question they only add noise.
STOPWORDS = sorted(
    set(bm25s.stopwords.STOPWORDS_EN)
    | {
        "what",
        "which",
        "who",
        "whom",
        "whose",
        "when",
        "where",
        "why",
        "how",
        "much",
        "many",
        "did",
        "does",
        "do",
        "done",
        "is",
        "are",
        "was",
        "were",
        "can",
        "could",
        "would",
        "should",
        "will",
        "has",
        "have",
        "had",
        "name",
        "kind",
        "type",
    }
)


def tokenize(texts: list[str]) -> list[list[str]]:
    """Lower-cased, stop words out, Snowball-stemmed: the same for corpus and queries."""
    return bm25s.tokenize(
        texts, stopwords=STOPWORDS, stemmer=STEMMER, return_ids=False, show_progress=False
    )


@lru_cache(maxsize=4096)
def query_terms(text: str) -> tuple[str, ...]:
    return tuple(tokenize([text])[0])


def lucene_idf(df: np.ndarray | int, num_docs: int) -> np.ndarray:
    """bm25s's default ("lucene") inverse document frequency."""
    return np.log(1 + (num_docs - np.asarray(df) + 0.5) / (np.asarray(df) + 0.5))


class Bm25Index:
    def __init__(self, retriever: bm25s.BM25) -> None:
        self.retriever = retriever

    @classmethod
    def build(cls, texts: list[str]) -> Bm25Index:
        retriever = bm25s.BM25(k1=BM25_K1, b=BM25_B)
        tokens = tokenize(texts)
        if not any(tokens):  # bm25s needs one token somewhere
            tokens[0] = ["\x00"]
        retriever.index(tokens, show_progress=False)
        return cls(retriever)

    @property
    def num_docs(self) -> int:
        return int(self.retriever.scores["num_docs"])

    def document_frequencies(self, terms: tuple[str, ...]) -> np.ndarray:
        indptr = self.retriever.scores["indptr"]
        vocab = self.retriever.vocab_dict
        tokens = [vocab.get(term) for term in terms]
        return np.asarray(
            [0 if t is None else int(indptr[t + 1] - indptr[t]) for t in tokens], dtype=np.int64
        )

    def scores(self, terms: tuple[str, ...], idf: np.ndarray | None = None) -> np.ndarray:
        """BM25 score of every indexed text for the query terms (zeros when none are known).

        With `idf` (one weight per term, e.g. from a larger collection this index is a part of),
        each term's contribution is rescaled from this index's own IDF to the one given."""
        if idf is None:
            ids = self.retriever.get_tokens_ids(list(terms))
            if not ids:
                return np.zeros(self.num_docs, dtype=np.float32)
            return self.retriever.get_scores_from_ids(ids)
        data, indices, indptr = (self.retriever.scores[k] for k in ("data", "indices", "indptr"))
        scores = np.zeros(self.num_docs, dtype=np.float32)
        for term, df, weight in zip(terms, self.document_frequencies(terms), idf, strict=True):
            if df == 0:
                continue
            token = self.retriever.vocab_dict[term]
            lo, hi = indptr[token], indptr[token + 1]
            own = lucene_idf(df, self.num_docs)
            np.add.at(scores, indices[lo:hi], data[lo:hi] * np.float32(weight / own))
        return scores

    def save(self, directory: Path) -> None:
        self.retriever.save(str(directory), show_progress=False)

    @classmethod
    def load(cls, directory: Path, mmap: bool = False) -> Bm25Index:
        return cls(bm25s.BM25.load(str(directory), mmap=mmap, show_progress=False))
