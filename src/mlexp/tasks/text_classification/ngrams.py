"""TF-IDF features of word n-grams and in-word character n-grams, computed with array operations.

scikit-learn's TfidfVectorizer walks every n-gram of every document in Python, which takes
about a minute for 100,000 news snippets; here the texts (already normalised to single-spaced
lower-case words) are split once, words become integer codes, word n-grams are integer keys
made from the codes, and the character n-grams of a document are the sum of those of its words
(a word-by-n-gram matrix built once per distinct word), so almost all work is in NumPy/SciPy.
Weights as TfidfVectorizer(sublinear_tf=True, smooth_idf=True, norm="l2"): (1 + ln tf) · idf,
each block (words, characters) scaled to unit length. `one()` computes the same for one text
with dictionary look-ups (the service's per-sentence path).
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import chain
from typing import Any

import numpy as np
import pandas as pd
from scipy import sparse


def char_grams(word: str, low: int, high: int) -> list[str]:
    """The n-grams (low ≤ n ≤ high, n at least 1: a 0-gram is the same empty string in every word) of the word
    padded with one space each side; short words whole."""
    padded = f" {word} "
    if len(padded) <= low:
        return [padded]
    lengths = range(max(low, 1), min(high, len(padded)) + 1)
    return [padded[i : i + n] for n in lengths for i in range(len(padded) - n + 1)]


def _document_frequency(counts: sparse.csr_matrix) -> np.ndarray:
    """Documents holding each column (the matrix's duplicates are summed, so a column appears once per row)."""
    return np.bincount(counts.indices, minlength=counts.shape[1])


def _select(counts: sparse.csr_matrix, min_df: int, max_features: int | None) -> np.ndarray:
    """Columns kept: in at least min_df documents, the max_features most frequent (ties by column)."""
    keep = np.flatnonzero(_document_frequency(counts) >= min_df)
    if max_features is not None and len(keep) > max_features:
        frequency = np.bincount(counts.indices, weights=counts.data, minlength=counts.shape[1])[keep]
        keep = np.sort(keep[np.argsort(-frequency, kind="stable")[:max_features]])
    return keep


def _weights(counts: sparse.csr_matrix, idf: np.ndarray) -> sparse.csr_matrix:
    """(1 + ln tf) · idf, each row scaled to unit length."""
    matrix = counts.tocsr().astype(np.float64)
    matrix.data = (np.log(matrix.data) + 1.0) * idf[matrix.indices]
    lengths = np.diff(matrix.indptr)
    squares = np.add.reduceat(matrix.data**2, matrix.indptr[:-1][lengths > 0]) if matrix.nnz else np.zeros(0)
    norms = np.ones(matrix.shape[0])
    norms[lengths > 0] = np.sqrt(squares)
    matrix.data /= np.repeat(norms, lengths)
    return matrix


def _columns(counts: sparse.csr_matrix, keep: np.ndarray) -> sparse.csr_matrix:
    """counts[:, keep] by renumbering the kept columns (faster than SciPy's fancy indexing on big matrices)."""
    renumber = np.full(counts.shape[1], -1, dtype=np.int64)
    renumber[keep] = np.arange(len(keep))
    new = renumber[counts.indices]
    kept = new >= 0
    rows = np.repeat(np.arange(counts.shape[0]), np.diff(counts.indptr))[kept]
    indptr = np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=counts.shape[0]))])
    return sparse.csr_matrix((counts.data[kept], new[kept], indptr), shape=(counts.shape[0], len(keep)))


def _idf(counts: sparse.csr_matrix) -> np.ndarray:
    return np.log((1.0 + counts.shape[0]) / (1.0 + _document_frequency(counts))) + 1.0


class NgramTfidf:
    """Fitted vocabularies and idf weights; transform() for batches, one() for a single text."""

    def __init__(
        self,
        word_ngrams: Sequence[int],
        char_ngrams: Sequence[int],
        max_word_features: int | None,
        max_char_features: int | None,
        min_df: int,
    ) -> None:
        self.word_range = (int(word_ngrams[0]), int(word_ngrams[1]))
        self.char_range = (int(char_ngrams[0]), int(char_ngrams[1]))
        if self.word_range[1] > 3:
            raise ValueError("word n-grams longer than 3 are not supported")
        self.max_word_features, self.max_char_features, self.min_df = max_word_features, max_char_features, min_df
        self.words: pd.Index = pd.Index([])
        self.word_columns: pd.Index = pd.Index([], dtype=np.int64)  # n-gram keys of the kept word columns
        self.char_columns: pd.Index = pd.Index([])  # kept character n-grams
        self.word_idf = np.zeros(0)
        self.char_idf = np.zeros(0)

    @property
    def has_words(self) -> bool:
        return self.word_range[1] > 0

    @property
    def has_chars(self) -> bool:
        return self.char_range[1] > 0

    @property
    def n_features(self) -> int:
        return len(self.word_columns) + len(self.char_columns)

    def _keys(self, codes: np.ndarray, docs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Word n-gram keys (n in word_range) with their documents; n-grams with unknown words left out."""
        size = np.int64(len(self.words) + 1)
        keys, owners = [], []
        low, high = self.word_range
        for n in range(max(low, 1), high + 1):
            if len(codes) < n:
                continue
            span = len(codes) - n + 1
            key = np.full(span, n - 1, dtype=np.int64)  # n itself in the key keeps unigrams and bigrams apart
            valid = np.ones(span, dtype=bool)
            for k in range(n):
                part = codes[k : k + span]
                key = key * size + part
                valid &= (part >= 0) & (docs[k : k + span] == docs[:span])
            keys.append(key[valid])
            owners.append(docs[:span][valid])
        if not keys:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
        return np.concatenate(keys), np.concatenate(owners)

    @staticmethod
    def _tokens(texts: Sequence[str]) -> tuple[list[str], np.ndarray]:
        split = [t.split() for t in texts]
        docs = np.repeat(np.arange(len(split)), [len(s) for s in split])
        return list(chain.from_iterable(split)), docs

    def _char_matrix(self, words: Sequence[str], columns: pd.Index | None) -> tuple[sparse.csr_matrix, pd.Index]:
        """Distinct words × character n-grams counts (on `columns`, or on every n-gram seen when None)."""
        grams = [char_grams(w, *self.char_range) for w in words]
        flat = list(chain.from_iterable(grams))
        rows = np.repeat(np.arange(len(words)), [len(g) for g in grams])
        if columns is None:
            codes, columns = pd.factorize(pd.Index(flat, dtype=object))
        else:
            codes = columns.get_indexer(flat)
        known = codes >= 0
        matrix = sparse.csr_matrix(
            (np.ones(int(known.sum())), (rows[known], codes[known])), shape=(len(words), len(columns))
        )
        return matrix, columns

    def fit_transform(self, texts: Sequence[str]) -> sparse.csr_matrix:
        tokens, docs = self._tokens(texts)
        codes, self.words = pd.factorize(pd.Index(tokens, dtype=object))
        word_counts = sparse.csr_matrix((np.ones(len(codes)), (docs, codes)), shape=(len(texts), len(self.words)))
        blocks = []
        if self.has_words:
            keys, owners = self._keys(codes.astype(np.int64), docs)
            key_codes, uniques = pd.factorize(keys)
            counts = sparse.csr_matrix((np.ones(len(keys)), (owners, key_codes)), shape=(len(texts), len(uniques)))
            keep = _select(counts, self.min_df, self.max_word_features)
            self.word_columns = pd.Index(np.asarray(uniques)[keep])
            counts = _columns(counts, keep)
            self.word_idf = _idf(counts)
            blocks.append(_weights(counts, self.word_idf))
        if self.has_chars:
            per_word, grams = self._char_matrix(list(self.words), None)
            counts = sparse.csr_matrix(word_counts @ per_word)
            keep = _select(counts, self.min_df, self.max_char_features)
            self.char_columns = pd.Index(np.asarray(grams, dtype=object)[keep])
            counts = _columns(counts, keep)
            self.char_idf = _idf(counts)
            blocks.append(_weights(counts, self.char_idf))
        return sparse.hstack(blocks).tocsr()

    def transform(self, texts: Sequence[str]) -> sparse.csr_matrix:
        tokens, docs = self._tokens(texts)
        blocks = []
        if self.has_words:
            keys, owners = self._keys(self.words.get_indexer(tokens).astype(np.int64), docs)
            columns = self.word_columns.get_indexer(keys)
            found = columns >= 0
            counts = sparse.csr_matrix(
                (np.ones(int(found.sum())), (owners[found], columns[found])), shape=(len(texts), len(self.word_columns))
            )
            blocks.append(_weights(counts, self.word_idf))
        if self.has_chars:
            codes, distinct = pd.factorize(pd.Index(tokens, dtype=object))
            word_counts = sparse.csr_matrix((np.ones(len(codes)), (docs, codes)), shape=(len(texts), len(distinct)))
            per_word, _ = self._char_matrix(list(distinct), self.char_columns)
            blocks.append(_weights(sparse.csr_matrix(word_counts @ per_word), self.char_idf))
        return sparse.hstack(blocks).tocsr()

    def lookups(self) -> dict[str, Any]:
        """Plain dictionaries for one(): word → code, word n-gram key → column, character n-gram → column."""
        return {
            "words": {w: i for i, w in enumerate(self.words)},
            "word_columns": {int(k): i for i, k in enumerate(self.word_columns)},
            "char_columns": {g: i for i, g in enumerate(self.char_columns)},
            "char_cache": {},
        }

    def one(self, text: str, lookups: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
        """(columns, weights) of one normalised text, equal to its row of transform()."""
        tokens = text.split()
        columns: list[np.ndarray] = []
        values: list[np.ndarray] = []
        if self.has_words and tokens:
            words, word_columns = lookups["words"], lookups["word_columns"]
            codes = [words.get(t, -1) for t in tokens]
            size = len(self.words) + 1
            counts: dict[int, int] = {}
            low, high = self.word_range
            for n in range(max(low, 1), high + 1):
                for start in range(len(codes) - n + 1):
                    part = codes[start : start + n]
                    if min(part) < 0:
                        continue
                    key = n - 1
                    for code in part:
                        key = key * size + code
                    column = word_columns.get(key)
                    if column is not None:
                        counts[column] = counts.get(column, 0) + 1
            self._add(counts, self.word_idf, 0, columns, values)
        if self.has_chars and tokens:
            char_columns, cache = lookups["char_columns"], lookups["char_cache"]
            counts = {}
            for token in tokens:
                found = cache.get(token)
                if found is None:
                    found = [
                        c for c in (char_columns.get(g) for g in char_grams(token, *self.char_range)) if c is not None
                    ]
                    if len(cache) < 200_000:  # a bounded memo: sentences repeat their words
                        cache[token] = found
                for column in found:
                    counts[column] = counts.get(column, 0) + 1
            self._add(counts, self.char_idf, len(self.word_columns), columns, values)
        if not columns:
            return np.zeros(0, dtype=np.int64), np.zeros(0)
        return np.concatenate(columns), np.concatenate(values)

    @staticmethod
    def _add(
        counts: dict[int, int], idf: np.ndarray, offset: int, columns: list[np.ndarray], values: list[np.ndarray]
    ) -> None:
        if not counts:
            return
        index = np.fromiter(counts.keys(), dtype=np.int64, count=len(counts))
        weight = (np.log(np.fromiter(counts.values(), dtype=np.float64, count=len(counts))) + 1.0) * idf[index]
        columns.append(index + offset)
        values.append(weight / np.sqrt(weight @ weight))
