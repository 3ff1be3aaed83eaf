"""`TextIndex`: top-k similar documents by cosine similarity, in memory, at 100k documents on 2 cores.

Usage (what eval's ``knn_history`` and `approximate` do)::

    index = TextIndex().fit(ids, texts)                 # texts: strings, or dicts of named fields
    hits = index.search(["metformin type 2 diabetes"], k=5)   # [[(id, score), ...]] best first
    index.save(path); index = TextIndex.load(path)

Documents may be dicts of fields (``{"title": ..., "conditions": ..., "interventions": ...}``). Each field is
vectorised on its own, L2-normalised, weighted (``field_weights``, default 1) and concatenated; a search may use a
subset of the fields (``fields=[...]``, a *view*) without vectorising again — `approximate` uses this to find trials
alike in everything except one factor.

Backends:
- ``"tfidf"`` (default): scikit-learn TF-IDF (sublinear tf, English stop words), sparse throughout. Search multiplies
  sparse query chunks by a *statically pruned* transposed index: each query keeps its ``max_query_terms`` heaviest
  terms and each term keeps its ``max_postings`` heaviest documents, scores under ``min_score`` are dropped, and the
  top k of each row are read from a small padded block. No dense N×N matrix is ever formed. Pruning makes the search
  approximate for very common terms; set ``max_query_terms=0`` and ``max_postings=0`` for the exact search.
- ``"embedding"``: dense vectors from ``embed`` (a callable: list of texts → array [n, d]) or from a Hugging Face
  encoder named by ``model_name`` (mean-pooled, imported lazily; only used when configured). Exact chunked search.
"""

from __future__ import annotations

import json
import pickle
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from deepimagine_core.store import atomic_path

__all__ = ["TextIndex", "top_k_rows"]

TOKEN_PATTERN = r"(?u)\b[a-zA-Z][a-zA-Z0-9]+\b|\b\d+[a-zA-Z]+\b"
_DEFAULT_FIELD = "text"


def _row_normalise(m):
    if sp.issparse(m):
        norms = np.sqrt(np.asarray(m.multiply(m).sum(axis=1)).ravel())
        norms[norms == 0] = 1.0
        return sp.diags((1.0 / norms).astype(np.float32)) @ m
    norms = np.linalg.norm(m, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return (m / norms).astype(np.float32)


_BLOCK_CELLS = 4_000_000  # padded cells per block of rows (bounds the memory of the row-wise selections)


def _row_blocks(counts: np.ndarray, rows: np.ndarray, min_width: int):
    """Rows in blocks of similar length (sorted by count), each with its padded width, at most ~_BLOCK_CELLS cells."""
    rows = rows[np.argsort(counts[rows], kind="stable")]
    start = 0
    while start < rows.size:
        width = max(int(counts[rows[min(rows.size - 1, start + 1023)]]), min_width, 1)
        size = max(1, min(1024, _BLOCK_CELLS // width))
        block = rows[start:start + size]
        yield block, max(int(counts[block].max(initial=0)), min_width, 1)
        start += size


def _padded(m: sp.csr_matrix, rows: np.ndarray, width: int) -> np.ndarray:
    """Values of ``rows`` of a CSR matrix as [len(rows), width], -inf padded; entry (r, p) is the row's p-th stored
    value, so its column is ``m.indices[m.indptr[rows[r]] + p]``."""
    counts = np.diff(m.indptr)[rows]
    total = int(counts.sum())
    pos = np.arange(total) - np.repeat(np.cumsum(counts) - counts, counts)
    src = np.repeat(m.indptr[rows], counts) + pos
    vals = np.full(rows.size * width, -np.inf, np.float32)
    vals[np.repeat(np.arange(rows.size) * width, counts) + pos] = m.data[src]
    return vals.reshape(rows.size, width)


def _top_per_row(m: sp.csr_matrix, keep: int) -> sp.csr_matrix:
    """Keep the ``keep`` largest entries of each row of a CSR matrix (ties at the threshold are kept too)."""
    m = m.tocsr()
    counts = np.diff(m.indptr)
    heavy = np.flatnonzero(counts > keep)
    if keep <= 0 or heavy.size == 0:
        return m
    threshold = np.full(m.shape[0], -np.inf, np.float32)
    for block, width in _row_blocks(counts, heavy, keep):
        vals = _padded(m, block, width)
        threshold[block] = -np.partition(-vals, keep - 1, axis=1)[:, keep - 1]
    mask = m.data >= np.repeat(threshold, counts)
    kept = np.bincount(np.repeat(np.arange(m.shape[0]), counts)[mask], minlength=m.shape[0])
    indptr = np.concatenate([[0], np.cumsum(kept)])
    return sp.csr_matrix((m.data[mask], m.indices[mask], indptr), shape=m.shape)


def top_k_rows(scores, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Column indices and scores of the k best entries per row, best first; missing entries have index -1, score
    -inf. ``scores``: CSR matrix (absent = no match) or dense array."""
    n = scores.shape[0]
    out_cols = np.full((n, k), -1, np.int64)
    out_vals = np.full((n, k), -np.inf, np.float32)
    if sp.issparse(scores):
        scores = scores.tocsr()
        counts = np.diff(scores.indptr)
        blocks = ((block, _padded(scores, block, width)) for block, width in
                  _row_blocks(counts, np.flatnonzero(counts), k))
    else:
        blocks = [(np.arange(n), np.asarray(scores, np.float32))]
    for block, vals in blocks:
        if vals.shape[1] > k:
            pos = np.argpartition(-vals, k - 1, axis=1)[:, :k]
            vals = np.take_along_axis(vals, pos, 1)
        else:
            pos = np.broadcast_to(np.arange(vals.shape[1]), vals.shape)
        order = np.argsort(-vals, axis=1, kind="stable")
        vals, pos = np.take_along_axis(vals, order, 1), np.take_along_axis(pos, order, 1)
        found = np.isfinite(vals)
        if sp.issparse(scores):  # position within the row → column
            cols = scores.indices[np.where(found, scores.indptr[block][:, None] + pos, 0)] if scores.nnz else pos
        else:
            cols = pos
        take = vals.shape[1]
        out_vals[block, :take] = vals
        out_cols[block, :take] = np.where(found, cols, -1)
    return out_cols, out_vals


class TextIndex:
    """Cosine top-k over documents (see the module docstring for backends and pruning)."""

    def __init__(
        self,
        backend: str = "tfidf",
        *,
        field_weights: Mapping[str, float] | None = None,
        max_query_terms: int = 12,
        max_postings: int = 200,
        min_score: float = 0.05,
        chunk_rows: int = 4000,
        max_features: int | None = 500_000,
        embed: Callable[[list[str]], np.ndarray] | None = None,
        model_name: str | None = None,
    ):
        if backend not in ("tfidf", "embedding"):
            raise ValueError(f"unknown backend {backend!r}: use 'tfidf' or 'embedding'")
        if backend == "embedding" and embed is None and not model_name:
            raise ValueError("the embedding backend needs `embed` (a callable) or `model_name`")
        self.backend = backend
        self.field_weights = dict(field_weights or {})
        self.max_query_terms = max_query_terms
        self.max_postings = max_postings
        self.min_score = min_score
        self.chunk_rows = chunk_rows
        self.max_features = max_features
        self.model_name = model_name
        self._embed = embed
        self.ids: list[str] = []
        self.fields: list[str] = []
        self._vectorizers: dict[str, Any] = {}
        self._matrices: dict[str, Any] = {}  # field -> normalised document matrix
        self._views: dict[tuple[str, ...], Any] = {}  # fields -> pruned transposed (terms x docs) matrix

    # ---- building -------------------------------------------------------------------------------------------------
    def fit(self, ids: Sequence[str], texts: Sequence[str] | Sequence[Mapping[str, str]]) -> "TextIndex":
        """Index documents ``texts`` under ``ids`` (strings, or dicts of field → text with the same keys)."""
        if len(ids) != len(texts):
            raise ValueError(f"{len(ids)} ids but {len(texts)} texts")
        self.ids = [str(i) for i in ids]
        columns = self._columns(texts)
        self.fields = list(columns)
        self._views.clear()
        for name, values in columns.items():
            if self.backend == "tfidf":
                from sklearn.feature_extraction.text import TfidfVectorizer

                vec = TfidfVectorizer(stop_words="english", sublinear_tf=True, dtype=np.float32, lowercase=True,
                                      token_pattern=TOKEN_PATTERN, max_features=self.max_features)
                try:
                    matrix = vec.fit_transform(values).tocsr()
                except ValueError:  # empty vocabulary: the field has no words at all
                    vec, matrix = None, sp.csr_matrix((len(values), 0), dtype=np.float32)
                self._vectorizers[name] = vec
            else:
                matrix = self._encode(values)
            self._matrices[name] = _row_normalise(matrix)
        return self

    def _columns(self, texts) -> dict[str, list[str]]:
        if not len(texts):
            return {_DEFAULT_FIELD: []}
        if isinstance(texts[0], Mapping):
            names = list(texts[0].keys())
            return {n: [str(t.get(n) or "") for t in texts] for n in names}
        return {_DEFAULT_FIELD: [str(t or "") for t in texts]}

    def _encode(self, values: list[str]) -> np.ndarray:
        if self._embed is None:
            self._embed = _hf_encoder(self.model_name)
        return np.asarray(self._embed(values), dtype=np.float32)

    def _transform(self, texts, fields: Sequence[str]):
        columns = self._columns(texts)
        if set(columns) == {_DEFAULT_FIELD} and self.fields != [_DEFAULT_FIELD]:
            columns = {f: columns[_DEFAULT_FIELD] for f in fields}  # a plain query string matches every field
        parts = []
        for name in fields:
            values = columns.get(name, [""] * len(next(iter(columns.values()))))
            if self.backend == "tfidf":
                vec = self._vectorizers[name]
                m = vec.transform(values) if vec is not None else sp.csr_matrix((len(values), 0), dtype=np.float32)
            else:
                m = self._encode(values)
            parts.append(self._weight(name) * _row_normalise(m))
        return self._stack(parts)

    def _weight(self, name: str) -> float:
        return float(self.field_weights.get(name, 1.0))

    def _stack(self, parts):
        if self.backend == "tfidf":
            return _row_normalise(sp.hstack(parts, format="csr", dtype=np.float32))
        return _row_normalise(np.hstack(parts))

    def _check_fields(self, fields: Sequence[str] | None) -> tuple[str, ...]:
        fields = tuple(fields or self.fields)
        unknown = [f for f in fields if f not in self._matrices]
        if unknown:
            raise KeyError(f"unknown field(s) {unknown}; the index has {self.fields}")
        return fields

    def _documents(self, fields: tuple[str, ...]):
        return self._stack([self._weight(f) * self._matrices[f] for f in fields])

    def _index_side(self, fields: tuple[str, ...]):
        """The (pruned, transposed) document matrix a view searches against, built once per view."""
        if fields not in self._views:
            docs = self._documents(fields)
            if self.backend == "tfidf":
                self._views[fields] = _top_per_row(docs.T.tocsr(), self.max_postings).tocsr()
            else:
                self._views[fields] = np.ascontiguousarray(docs.T)
        return self._views[fields]

    # ---- searching ------------------------------------------------------------------------------------------------
    def _search_matrix(self, queries, k: int, fields: tuple[str, ...], self_offset: int | None = None):
        """Top-k (doc indices, scores) for query rows; ``self_offset`` = the queries are the documents themselves
        starting at that row, and each must not find itself."""
        index_t = self._index_side(fields)
        n_q = queries.shape[0]
        all_cols = np.full((n_q, k), -1, np.int64)
        all_vals = np.full((n_q, k), -np.inf, np.float32)
        if self.backend == "tfidf":
            queries = _top_per_row(queries, self.max_query_terms)
        for start in range(0, n_q, self.chunk_rows):
            block = queries[start:start + self.chunk_rows]
            scores = block @ index_t
            if self.backend == "tfidf":
                scores = sp.csr_matrix(scores)
                if self_offset is not None:
                    rows = np.repeat(np.arange(scores.shape[0]), np.diff(scores.indptr))
                    scores.data[scores.indices == rows + start + self_offset] = 0.0
                scores.data[scores.data < self.min_score] = 0.0
                scores.eliminate_zeros()
            else:
                scores = np.asarray(scores)
                if self_offset is not None:
                    r = np.arange(scores.shape[0])
                    scores[r, r + start + self_offset] = -np.inf
                scores = np.where(scores >= self.min_score, scores, -np.inf)
            cols, vals = top_k_rows(scores, k)
            all_cols[start:start + block.shape[0]] = cols
            all_vals[start:start + block.shape[0]] = vals
        return all_cols, all_vals

    def search(self, texts: Sequence[str] | Sequence[Mapping[str, str]], k: int = 10,
               fields: Sequence[str] | None = None, exclude_ids: Sequence[str | None] | None = None
               ) -> list[list[tuple[str, float]]]:
        """For each query text, up to k (id, cosine score) pairs, best first. ``exclude_ids[i]`` (e.g. the query's own
        trial) is never returned for query i."""
        fields = self._check_fields(fields)
        if not self.ids:
            return [[] for _ in texts]
        extra = 1 if exclude_ids is not None else 0
        cols, vals = self._search_matrix(self._transform(texts, fields), k + extra, fields)
        out = []
        for i in range(len(texts)):
            skip = exclude_ids[i] if exclude_ids is not None else None
            hits = [(self.ids[c], float(v)) for c, v in zip(cols[i], vals[i]) if c >= 0 and self.ids[c] != skip]
            out.append(hits[:k])
        return out

    def neighbours(self, k: int = 10, fields: Sequence[str] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Top-k neighbours of every indexed document among the others (itself excluded): (indices [n, k] into
        ``ids``, -1 where fewer matched; scores [n, k]). Vectorised; what `approximate` uses."""
        fields = self._check_fields(fields)
        if not self.ids:
            return np.zeros((0, k), np.int64), np.zeros((0, k), np.float32)
        return self._search_matrix(self._documents(fields), k, fields, self_offset=0)

    # ---- persistence ----------------------------------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """Write the index to folder ``path`` (meta.json, one matrix and one vectorizer per field)."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        for name, matrix in self._matrices.items():
            sparse = sp.issparse(matrix)
            with atomic_path(path / f"field_{name}.{'npz' if sparse else 'npy'}") as tmp, open(tmp, "wb") as fh:
                # file handles: given a path, numpy/scipy would append their own suffix to the temporary name
                sp.save_npz(fh, matrix.tocsr(), compressed=False) if sparse else np.save(fh, matrix)
            if self.backend == "tfidf":
                with atomic_path(path / f"vectorizer_{name}.pkl") as tmp:
                    tmp.write_bytes(pickle.dumps(self._vectorizers[name]))
        meta = {"backend": self.backend, "fields": self.fields, "field_weights": self.field_weights,
                "max_query_terms": self.max_query_terms, "max_postings": self.max_postings,
                "min_score": self.min_score, "chunk_rows": self.chunk_rows, "max_features": self.max_features,
                "model_name": self.model_name, "ids": self.ids}
        with atomic_path(path / "meta.json") as tmp:
            tmp.write_text(json.dumps(meta))
        return path

    @classmethod
    def load(cls, path: str | Path, embed: Callable[[list[str]], np.ndarray] | None = None) -> "TextIndex":
        """Read an index written by `save` (an embedding index built from a callable needs ``embed`` again)."""
        path = Path(path)
        meta = json.loads((path / "meta.json").read_text())
        index = cls(meta["backend"], field_weights=meta["field_weights"], max_query_terms=meta["max_query_terms"],
                    max_postings=meta["max_postings"], min_score=meta["min_score"], chunk_rows=meta["chunk_rows"],
                    max_features=meta["max_features"], embed=embed,
                    model_name=meta["model_name"] or (None if embed else "unset"))
        index.ids, index.fields = meta["ids"], meta["fields"]
        for name in index.fields:
            if index.backend == "tfidf":
                index._matrices[name] = sp.load_npz(path / f"field_{name}.npz").tocsr()
                index._vectorizers[name] = pickle.loads((path / f"vectorizer_{name}.pkl").read_bytes())
            else:
                index._matrices[name] = np.load(path / f"field_{name}.npy")
        return index

    def __len__(self) -> int:
        return len(self.ids)


def _hf_encoder(model_name: str | None) -> Callable[[list[str]], np.ndarray]:
    """Mean-pooled sentence vectors from a local or cached Hugging Face encoder (imported only when used)."""
    if not model_name or model_name == "unset":
        raise ValueError("this embedding index was built from a callable: pass `embed` to TextIndex.load")
    import torch
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_name)
    model = AutoModel.from_pretrained(model_name).eval()

    def encode(texts: list[str], batch_size: int = 32) -> np.ndarray:
        out = []
        with torch.no_grad():
            for i in range(0, len(texts), batch_size):
                batch = tokenizer(texts[i:i + batch_size], padding=True, truncation=True, max_length=256,
                                  return_tensors="pt")
                hidden = model(**batch).last_hidden_state
                mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                out.append(((hidden * mask).sum(1) / mask.sum(1).clamp(min=1)).float().numpy())
        return np.concatenate(out) if out else np.zeros((0, model.config.hidden_size), np.float32)

    return encode
