"""Statistics that merge exactly across shards (numpy only, JSON-able).

Every figure here is computed per shard and merged by addition, min/max or set union, so a
reduce task gets the figure of the whole table without reading it:

* **counts** (additive), **sums** (integers exact; floats up to summation order), **min/max**;
* **fixed-edge histograms** (:func:`bin_counts`): edges fixed up front (e.g. from a reference
  batch's quantiles), so the merged counts equal the counts over the whole table;
* **CDF counts on a grid** (:func:`cdf_counts`) for the two-sample KS statistic against a
  reference: with the grid = every distinct reference value, :func:`ks_from_counts` gives
  *exactly* scipy's ``ks_2samp`` statistic (the maximum of ``|F_ref - F_cur|`` over the pooled
  points is reached at a reference point or just before one). A reference with more than
  ``KS_GRID`` distinct values is gridded at ``KS_GRID`` of its quantiles; the statistic is then
  a lower bound ``D_lo`` and the error bound ``D_hi - D_lo`` (the largest reference plus batch
  mass strictly between two grid points) is computed and reported, never assumed;
* **value digests** (:func:`value_digests`): a keyed 96-bit digest of each value (SipHash
  for strings and integers, BLAKE2b for the rest), so uniqueness and distinct counts merge by
  set union without any raw value in a partial; each column digests under its own subkey
  (:func:`column_key`), so equal values in two columns do not match; the duplicate screen's
  **row hashes**
  (:func:`row_hashes`) are keyed by the same key. The key is derived from the input's digest
  (and ``MLSECOPS_SHARD_DIGEST_KEY`` when set): a digest is a pseudonym, not encryption; with
  the key a guessed value can be confirmed.

Binary arrays travel as base64 strings (:func:`pack` / :func:`unpack`).
"""

from __future__ import annotations

import base64
import hashlib
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from mlsecops_provider.core.errors import DataError

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

KS_GRID = 4096  # most grid points per column for the KS statistic (exact below this)
DIGEST_BYTES = 12
KEY_ENV = "MLSECOPS_SHARD_DIGEST_KEY"


def pack(array: np.ndarray) -> str:
    """A numpy array (uint64 or fixed bytes) as base64 of its little-endian bytes."""
    return base64.b64encode(array.tobytes()).decode("ascii")


def unpack(text: str, dtype: str) -> np.ndarray:
    import numpy as np

    try:
        return np.frombuffer(base64.b64decode(text.encode("ascii"), validate=True), dtype=dtype)
    except (AttributeError, ValueError, TypeError) as err:
        raise DataError(f"shard statistics: not a packed {dtype} array ({err})") from err


def digest_key(source_sha256: str) -> bytes:
    """The key of the value digests of one input (all its shards share it)."""
    secret = os.environ.get(KEY_ENV, "")
    return hashlib.sha256(f"mlsecops-shard-digest|{source_sha256}|{secret}".encode()).digest()


def column_key(key: bytes, column: str) -> bytes:
    """The key of one column's value digests: the same value gets unrelated digests in two
    columns, so a reader of the partials cannot tell that two columns share a value."""
    return hashlib.sha256(key + b"|column|" + column.encode("utf-8", "surrogatepass")).digest()


def key_id(key: bytes) -> dict[str, Any]:
    """What a partial says of its digest key: a one-way fingerprint (equal in every shard
    of one merge, or the digests do not compare) and whether a deployment secret is in it."""
    fingerprint = hashlib.sha256(b"mlsecops-shard-digest-key-id|" + key).hexdigest()[:16]
    return {"id": fingerprint, "secret": bool(os.environ.get(KEY_ENV, ""))}


def _is_bool(value: Any) -> bool:
    """Python's and numpy's booleans (numpy 2 names its type ``bool``, numpy 1 ``bool_``)."""
    return isinstance(value, bool) or type(value).__name__ in ("bool", "bool_")


def _canonical(value: Any) -> bytes:
    if isinstance(value, float) or type(value).__name__.startswith("float"):
        number = float(value)
        return b"f" + repr(0.0 if number == 0 else number).encode()
    if _is_bool(value):
        return b"b" + repr(bool(value)).encode()
    if isinstance(value, int) or type(value).__name__.startswith(("int", "uint")):
        return b"i" + repr(int(value)).encode()
    if isinstance(value, str):
        return b"s" + value.encode("utf-8", "surrogatepass")
    if isinstance(value, bytes):
        return b"y" + value
    return b"r" + f"{type(value).__name__}:{value!r}".encode("utf-8", "surrogatepass")


def value_digests(values: Iterable[Any], key: bytes) -> np.ndarray:
    """Keyed digests (``S12``) of the values, in order.

    Strings and integers (the high-cardinality columns) are digested vectorised: SipHash-2-4
    (pandas' keyed ``hash_array``) under two subkeys of ``key`` over the tagged text (``s`` +
    string, ``i`` + decimal), 128 bits cut to 96. Every other value (and a string UTF-8 cannot
    encode) takes keyed BLAKE2b of its canonical bytes. Which function digests a value depends
    on the value alone, so equal values get equal digests in every shard.
    """
    import numpy as np
    import pandas as pd

    items = values if isinstance(values, list) else list(values)
    array = np.array(items, dtype=object) if items else np.empty(0, dtype=object)
    kind = pd.api.types.infer_dtype(array, skipna=False)
    try:
        if kind == "string":
            return _sip_digests("s" + array, key)
        if kind == "integer":
            try:
                decimal = array.astype(np.int64).astype(str)
            except OverflowError:  # beyond 64 bits: Python's own decimal
                decimal = array.astype(str)
            return _sip_digests("i" + decimal.astype(object), key)
    except UnicodeEncodeError:  # a string UTF-8 cannot encode: value by value below
        pass
    out = np.empty(len(items), dtype=f"S{DIGEST_BYTES}")
    texts = [_sip_text(v) for v in items]
    fast = [i for i, t in enumerate(texts) if t is not None]
    if fast:
        out[fast] = _sip_digests(np.array([texts[i] for i in fast], dtype=object), key)
    for i, text in enumerate(texts):
        if text is None:
            out[i] = _blake(items[i], key)
    return out


def _sip_text(value: Any) -> str | None:
    """The tagged text SipHash digests, or ``None`` for values BLAKE2b digests."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return None
        return "s" + value
    if _is_bool(value):
        return None
    if isinstance(value, int) or type(value).__name__.startswith(("int", "uint")):
        return "i" + repr(int(value))
    return None


def _blake(value: Any, key: bytes) -> bytes:
    return hashlib.blake2b(_canonical(value), digest_size=DIGEST_BYTES, key=key).digest()


def _sip_digests(texts: np.ndarray, key: bytes) -> np.ndarray:
    import numpy as np
    import pandas as pd

    halves = []
    for label in (b"0", b"1"):
        hash_key = _sip_key(key, label)
        halves.append(
            pd.util.hash_array(texts, encoding="utf8", hash_key=hash_key, categorize=False)
        )
    both = np.stack([h.astype("<u8") for h in halves], axis=1)
    return both.view("S16").ravel().astype(f"S{DIGEST_BYTES}")


def _sip_key(key: bytes, label: bytes) -> str:
    """A SipHash key for pandas' hashing (16 one-byte UTF-8 characters) derived from ``key``."""
    sub = hashlib.sha256(key + b"|siphash|" + label).digest()[:16]
    return "".join(chr(b & 0x7F) for b in sub)


def digest_counts(series: pd.Series, key: bytes) -> dict[str, Any]:
    """Distinct non-null values of a column as digests, with counts where a value repeats."""
    import numpy as np

    counts = series.dropna().value_counts(dropna=True)
    digests = value_digests(counts.index.tolist(), key)
    order = np.argsort(digests)
    digests, numbers = digests[order], counts.to_numpy(dtype="int64")[order]
    multi = numbers > 1
    return {
        "distinct": pack(digests),
        "multi": pack(digests[multi]),
        "multi_counts": [int(n) for n in numbers[multi]],
    }


def bin_counts(values: np.ndarray, edges: np.ndarray) -> list[int]:
    """Counts per bin (``searchsorted(..., 'right')`` of fixed edges) plus a missing bin."""
    import numpy as np

    ok = values[~np.isnan(values)]
    binned = np.bincount(np.searchsorted(edges, ok, side="right"), minlength=len(edges) + 1)
    return [int(n) for n in binned] + [int(len(values) - len(ok))]


def ks_grid(reference: np.ndarray, size: int = KS_GRID) -> tuple[np.ndarray, bool]:
    """The grid of the KS counts and whether it is exact (every distinct reference value)."""
    import numpy as np

    distinct = np.unique(reference[~np.isnan(reference)])
    if len(distinct) <= size:
        return distinct, True
    picks = np.unique(np.quantile(distinct, np.linspace(0.0, 1.0, size), method="nearest"))
    return picks, False


def cdf_counts(values: np.ndarray, grid: np.ndarray) -> dict[str, Any]:
    """``le[k] = #(v <= grid[k])`` and ``lt[k] = #(v < grid[k])`` over the non-missing values."""
    import numpy as np

    ok = np.sort(values[~np.isnan(values)])
    return {
        "n": int(len(ok)),
        "le": pack(np.searchsorted(ok, grid, side="right").astype("<i8")),
        "lt": pack(np.searchsorted(ok, grid, side="left").astype("<i8")),
    }


def cdf_arrays(counts: Mapping[str, Any]) -> dict[str, Any]:
    """:func:`cdf_counts` with its packed counts decoded (what :func:`merge_cdf_counts` sums)."""
    return {**counts, "le": _counts(counts.get("le")), "lt": _counts(counts.get("lt"))}


def _counts(value: Any) -> np.ndarray:
    import numpy as np

    if isinstance(value, np.ndarray):
        return value
    return unpack(value, "<i8").astype("int64")


def merge_cdf_counts(parts: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    n = sum(int(p["n"]) for p in parts)
    le = sum(_counts(p["le"]) for p in parts)
    lt = sum(_counts(p["lt"]) for p in parts)
    return {"n": n, "le": le, "lt": lt}


def ks_from_counts(
    ref: dict[str, Any], cur: dict[str, Any], exact: bool
) -> tuple[float, float, float]:
    """``(D, bound, D_hi)``: the KS statistic from grid counts (see the module docstring)."""
    import numpy as np

    n1, n2 = int(ref["n"]), int(cur["n"])
    f1_le, f2_le = ref["le"] / n1, cur["le"] / n2
    f1_lt, f2_lt = ref["lt"] / n1, cur["lt"] / n2
    # At each grid point and just before it (on an exact grid, just before a reference value
    # the reference CDF is at the previous value: lt[k] == le[k-1]).
    diffs = np.concatenate((f1_le - f2_le, f1_lt - f2_lt))
    min_s = float(np.clip(-np.min(diffs), 0, 1))
    max_s = float(np.max(diffs))
    d = min_s if min_s > max_s else max_s
    if exact:
        return d, 0.0, d
    # Between grid points k-1 and k both CDFs stay within [le[k-1], lt[k]].
    lo1, lo2 = np.concatenate(([0.0], f1_le)), np.concatenate(([0.0], f2_le))
    hi1, hi2 = np.concatenate((f1_lt, [1.0])), np.concatenate((f2_lt, [1.0]))
    d_hi = float(max(np.max(hi1 - lo2), np.max(hi2 - lo1), d))
    return d, max(d_hi - d, 0.0), d_hi


def ks_pvalue(d: float, n1: int, n2: int) -> tuple[float, float]:
    """scipy ``ks_2samp``'s two-sided ``(statistic, p-value)`` for ``d`` (same method choice;
    the exact method snaps the statistic to its lattice, as scipy reports it)."""
    import numpy as np
    from scipy.stats import distributions

    g = math.gcd(n1, n2)
    if max(n1, n2) <= 10000:  # scipy's MAX_AUTO_N: 'auto' tries the exact distribution
        try:
            from scipy.stats._stats_py import _attempt_exact_2kssamp

            success, snapped, prob = _attempt_exact_2kssamp(n1, n2, g, d, "two-sided")
            if success:
                return float(snapped), float(np.clip(prob, 0, 1))
        except ImportError:  # pragma: no cover - a scipy without the helper: asymptotic
            pass
    m, n = sorted([float(n1), float(n2)], reverse=True)
    en = m * n / (m + n)
    return float(d), float(np.clip(distributions.kstwo.sf(d, np.round(en)), 0, 1))


def row_hashes(frame: pd.DataFrame, columns: list[str], key: bytes) -> np.ndarray:
    """The duplicate screen's row hashes: pandas' row hash (the single-task screen's
    function), then SipHash of it under a subkey of ``key``. pandas' own ``hash_key`` reaches
    only text columns, and it combines column hashes invertibly, so its row hashes alone
    would let a reader of the partials confirm that a record they know is in the data."""
    import pandas as pd

    public = pd.util.hash_pandas_object(frame[columns], index=False).to_numpy()
    as_bytes = public.astype("<u8").view("S8").astype(object)  # 8 bytes, trailing NULs cut:
    # still one text per value (it pads back to 8 bytes), hashed by the keyed object path
    return pd.util.hash_array(as_bytes, hash_key=_sip_key(key, b"rows"), categorize=False)


def threshold_counts(values: np.ndarray, threshold: float, neighbours: bool) -> dict[str, Any]:
    """Counts below/at ``threshold`` and (if ``neighbours``) the closest values either side."""
    import numpy as np

    ok = values[~np.isnan(values)]
    below, at_most = ok[ok < threshold], ok[ok <= threshold]
    above, at_least = ok[ok > threshold], ok[ok >= threshold]
    out: dict[str, Any] = {"lt": int(len(below)), "le": int(len(at_most))}
    if neighbours:
        out.update(
            max_lt=float(below.max()) if len(below) else None,
            max_le=float(at_most.max()) if len(at_most) else None,
            min_gt=float(above.min()) if len(above) else None,
            min_ge=float(at_least.min()) if len(at_least) else None,
        )
    return out
