"""The prioritiser's one cache policy: one entry per owner, hit only at the
version stored, the owners used last kept, objects held by identity."""

import gc

import numpy as np
from scipy import sparse

from screeners.prioritiser.cache import Memo


def test_a_new_version_replaces_the_old_and_a_stale_one_never_answers():
    memo: Memo[str] = Memo(size=2)
    memo.put("store", "v1", "features of v1")
    assert memo.get("store", "v1") == "features of v1"
    memo.put("store", "v2", "features of v2")
    assert memo.get("store", "v1") is None
    assert memo.get("store", "v2") == "features of v2"


def test_only_the_owners_used_last_are_kept():
    memo: Memo[int] = Memo(size=2)
    memo.put("a", 0, 1)
    memo.put("b", 0, 2)
    assert memo.get("a", 0) == 1  # a used last: b goes first
    memo.put("c", 0, 3)
    assert (memo.get("a", 0), memo.get("b", 0), memo.get("c", 0)) == (1, None, 3)


def test_get_or_make_makes_once_per_version():
    memo: Memo[list] = Memo(size=1)
    made = []
    for version in ("v1", "v1", "v2", "v2"):
        memo.get_or_make("x", version, lambda: made.append(version) or [version])
    assert made == ["v1", "v2"]


def test_an_object_owner_counts_only_while_that_very_object_lives():
    memo: Memo[str] = Memo(size=4)
    X = sparse.csr_matrix(np.eye(3, dtype=np.float32))
    assert memo.for_object(X, lambda: "first") == "first"
    assert memo.for_object(X, lambda: "again") == "first"
    # an equal matrix is another object: its own entry
    assert memo.for_object(X.copy(), lambda: "copy") == "copy"
    # once it is gone, a new object never gets its value, even at the same address
    del X
    gc.collect()
    newcomers = [sparse.csr_matrix(np.eye(3, dtype=np.float32)) for _ in range(20)]
    assert all(memo.for_object(m, lambda: "new") == "new" for m in newcomers)
