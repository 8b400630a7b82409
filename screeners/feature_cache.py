"""The store's fitted TF-IDF features kept on disk, so a new process (`cluster
status --estimate`, a new `cluster screen`) loads them instead of refitting.

The cache is one file beside the store, `<store file>.features.npz`, holding each
matrix (and the second one of the same records, if the features have one:
`Views.second`) as its structure and its term counts, not its weights: the
weights are computed again on loading (`Tfidf.weigh`, the same numbers the fit
gave), so an entry costs five bytes rather than eight, and the file is
deflated (its column numbers and counts repeat). With the record ids and the
vocabulary, it carries the fingerprint they were made from: the feature
settings, the library versions that shape the numbers, and a hash of every
record's id, title, abstract and keywords. A file whose fingerprint differs, or
that cannot be read or does not hang together, is ignored and rewritten; the
cache is only ever a shortcut to the same matrix a fresh fit gives. Nothing but
numbers and terms is stored, and it is read without unpickling, so a file
planted beside a store cannot run code.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy import sparse

from db.files import FEATURES_SUFFIX, features_path
from db.store import Store
from screeners.prioritiser.components import Views

FORMAT = 3  # bump when the file layout changes


@dataclass(frozen=True)
class Cached:
    ids: np.ndarray
    counts: Views  # each matrix's structure, its data the term counts (not yet weighed)
    empty: np.ndarray  # bool per row: the record has no text
    terms: tuple[str, ...] | None  # column order; None: no vectoriser (no text at all)


def cache_path(store: Store) -> Path | None:
    """Where the store's features are kept (None for an in-memory store)."""
    if store.path is None:
        return None
    return features_path(store.path)


def fingerprint(store: Store, settings: dict[str, Any]) -> str:
    """A hash of the feature settings and of every record's id and texts.

    Reads the texts as bytes straight from SQLite: about twice the cost of the
    length totals it replaces, and any edit to a text changes it.
    """
    import scipy
    import sklearn

    h = hashlib.blake2b(digest_size=20)
    h.update(json.dumps({"format": FORMAT, "settings": settings, "sklearn": sklearn.__version__,
                         "numpy": np.__version__, "scipy": scipy.__version__},
                        sort_keys=True, default=str).encode())
    cur = store.db.conn.execute(
        "SELECT id, CAST(title AS BLOB), CAST(abstract AS BLOB), CAST(keywords AS BLOB) "
        "FROM records ORDER BY id")
    for rows in iter(lambda: cur.fetchmany(2000), []):
        for rid, t, a, k in rows:
            # lengths first, so no two different records hash alike by shifting text
            h.update(b"%d\x1f%d\x1f%d\x1f%d\x1e" % (
                rid, -1 if t is None else len(t), -1 if a is None else len(a),
                -1 if k is None else len(k)))
            for part in (t, a, k):
                if part:
                    h.update(part)
    return h.hexdigest()


def load(path: Path, fp: str) -> Cached | None:
    """The cached features if `path` holds them for fingerprint `fp`, else None."""
    try:
        with np.load(path, allow_pickle=False) as z:
            if str(z["fingerprint"][()]) != fp:
                return None
            ids = z["ids"].astype(np.int64)
            matrices = [_matrix(z, _prefix(k)) for k in range(int(z["n_views"][()]))]
            empty = z["empty"].astype(bool)
            has_vec = bool(z["has_vectorizer"][()])
            terms = tuple(bytes(z["terms"]).decode("utf-8").split("\n")) if has_vec else None
    except Exception:  # unreadable, truncated, foreign or from another layout: refit
        return None
    views = [m for m in matrices if m is not None and m.shape[0] == len(ids)]
    if not 1 <= len(views) <= 2 or len(views) != len(matrices):
        return None
    n_cols = views[0].shape[1]
    ok = len(ids) == len(empty) and bool(np.all(np.diff(ids) > 0))
    if has_vec:
        ok = ok and terms is not None and len(terms) == len(set(terms)) == n_cols
    if not ok:
        return None
    return Cached(ids, Views(*views), empty, terms)


def _prefix(view: int) -> str:
    # the first view's arrays keep the names they had before there were views
    return f"view{view}_" if view else ""


def _matrix(z: Any, prefix: str) -> sparse.csr_matrix | None:
    """The count matrix stored under `prefix`, or None if its parts do not hang together."""
    shape = tuple(int(v) for v in z[prefix + "shape"])
    data, indices, indptr = z[prefix + "counts"], z[prefix + "indices"], z[prefix + "indptr"]
    n_rows, n_cols = shape if len(shape) == 2 else (-1, -1)
    ok = (n_rows >= 0 and len(indptr) == n_rows + 1
          and indptr[0] == 0 and indptr[-1] == len(data) == len(indices)
          and bool(np.all(np.diff(indptr) >= 0))
          and (len(indices) == 0 or (0 <= indices.min() and indices.max() < n_cols))
          and np.issubdtype(data.dtype, np.unsignedinteger)
          and (len(data) == 0 or data.min() > 0))
    return sparse.csr_matrix((data, indices, indptr), shape=(n_rows, n_cols)) if ok else None


def save(path: Path, fp: str, ids: np.ndarray, X: Views, counts: tuple[np.ndarray, ...],
         empty: np.ndarray, vectorizer: Any) -> bool:
    """Write the features for fingerprint `fp` (`counts`: each view's term counts,
    entry for entry with its `data`); False (and no file) if it cannot be written:
    the cache is a shortcut, never a reason to fail."""
    terms_blob = np.zeros(0, dtype=np.uint8)
    has_vec = vectorizer is not None
    if has_vec:
        terms = vectorizer.get_feature_names_out().tolist()
        if any("\n" in t for t in terms):
            return False  # the term list is newline-separated
        terms_blob = np.frombuffer("\n".join(terms).encode("utf-8"), dtype=np.uint8)
    if len(counts) != len(X.all) or any(len(c) != V.nnz for c, V in zip(counts, X.all)):
        return False
    arrays: dict[str, np.ndarray] = {
        "fingerprint": np.array(fp), "ids": ids, "n_views": np.array(len(X.all)),
        "empty": empty, "has_vectorizer": np.array(has_vec), "terms": terms_blob}
    for k, (V, c) in enumerate(zip(X.all, counts)):
        p = _prefix(k)
        arrays.update({p + "shape": np.array(V.shape), p + "counts": c,
                       p + "indices": V.indices, p + "indptr": V.indptr})
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "wb") as fh:
            store_file = path.with_name(path.name[: -len(FEATURES_SUFFIX)])
            if store_file.exists():
                # whoever may read the store may read its features (mkstemp makes 0600)
                os.fchmod(fh.fileno(), store_file.stat().st_mode & 0o666)
            # the layout np.savez_compressed writes, deflated at the fastest level:
            # the column numbers shrink by about a half at a fraction of the time
            with zipfile.ZipFile(fh, "w", compression=zipfile.ZIP_DEFLATED,
                                 compresslevel=1) as zf:
                for name, arr in arrays.items():
                    with zf.open(name + ".npy", "w", force_zip64=True) as member:
                        np.lib.format.write_array(member, np.asanyarray(arr),
                                                  allow_pickle=False)
        # readers see the old file or the new one, never half of one
        os.replace(tmp, path)
        return True
    except Exception:  # a full disk, a read-only folder: go on without the file
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass
        return False


def vectorizer_from(feature: Any, terms: tuple[str, ...], idf: np.ndarray) -> Any:
    """The fitted vectoriser rebuilt from its vocabulary and idf weights."""
    vec = feature.vectorizer()
    vec.set_params(vocabulary={t: i for i, t in enumerate(terms)})
    vec.idf_ = idf
    return vec
