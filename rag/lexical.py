"""Lexical side of retrieval: one tokenizer for everything, and BM25 via bm25s."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import bm25s
import numpy as np
import Stemmer

STEMMER = Stemmer.Stemmer("english")
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


class Bm25Index:
    def __init__(self, retriever: bm25s.BM25) -> None:
        self.retriever = retriever

    @classmethod
    def build(cls, texts: list[str]) -> Bm25Index:
        retriever = bm25s.BM25()
        tokens = tokenize(texts)
        if not any(tokens):  # bm25s needs one token somewhere
            tokens[0] = ["\x00"]
        retriever.index(tokens, show_progress=False)
        return cls(retriever)

    def scores(self, terms: tuple[str, ...]) -> np.ndarray:
        """BM25 score of every indexed text for the query terms (zeros when none are known)."""
        ids = self.retriever.get_tokens_ids(list(terms))
        if not ids:
            return np.zeros(self.retriever.scores["num_docs"], dtype=np.float32)
        return self.retriever.get_scores_from_ids(ids)

    def idf(self, terms: tuple[str, ...], prior_docs: int = 1000) -> np.ndarray:
        """Inverse document frequency per term, as if `prior_docs` more texts lacked it.

        The prior keeps a handful of chunks from giving wild weights (in a one-article index
        every word is "common"); in a large index it fades away. Unseen terms weigh most."""
        num_docs = self.retriever.scores["num_docs"] + prior_docs
        indptr = self.retriever.scores["indptr"]
        vocab = self.retriever.vocab_dict
        values = []
        for term in terms:
            token = vocab.get(term)
            df = 0 if token is None else int(indptr[token + 1] - indptr[token])
            values.append(np.log(1 + (num_docs - df + 0.5) / (df + 0.5)))
        return np.asarray(values, dtype=np.float32)

    def save(self, directory: Path) -> None:
        self.retriever.save(str(directory), show_progress=False)

    @classmethod
    def load(cls, directory: Path, mmap: bool = False) -> Bm25Index:
        return cls(bm25s.BM25.load(str(directory), mmap=mmap, show_progress=False))
