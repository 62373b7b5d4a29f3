"""Set unions over every shard's digests with one slice of them in memory at a time.

A merge that unites the value digests (or row hashes) of every shard in memory holds all of
them at once: its peak grows with the table's distinct values, not with a shard. Here each
shard's array is sorted and written to a local file as its partial is read
(:meth:`DigestSpill.add`), cut into :data:`BUCKETS` buckets by its leading bits; a union then
reads, bucket range by bucket range, every file's slice of that range (:func:`ranges`), at most
:data:`RANGE_ENTRIES` entries per range. Equal values fall in the same bucket, so a distinct
count, a count of repeats or a membership test per range, summed over the ranges, equals that
over the whole table; the merge's peak is one partial plus one range, whatever the table's
size. The files hold digests only (no raw value) in a private temporary folder, removed on
close.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from mlsecops_provider.core.shards.stats import DIGEST_BYTES, unpack

if TYPE_CHECKING:
    import numpy as np

BUCKETS = 1024  # by the leading 10 bits: the sort order of bytes and of unsigned integers
RANGE_ENTRIES = 1 << 21  # most entries of all shards read at once (~25 MiB of 12-byte digests)


class Spilled:
    """One shard's sorted digest array and where each bucket starts in it (file or memory)."""

    def __init__(self, array: np.ndarray, path: str | None = None) -> None:
        import numpy as np

        array = np.sort(array)
        self.dtype, self.path = array.dtype, path
        self.offsets = np.searchsorted(_buckets(array), np.arange(BUCKETS + 1)).astype("int64")
        self._array = None if path else array
        if path:
            array.tofile(path)

    def __len__(self) -> int:
        return int(self.offsets[-1])

    def sizes(self) -> np.ndarray:
        import numpy as np

        return np.diff(self.offsets)

    def read(self, low: int, high: int) -> np.ndarray:
        """The entries of buckets ``low`` to ``high - 1``."""
        import numpy as np

        start, stop = int(self.offsets[low]), int(self.offsets[high])
        if self._array is not None:
            return self._array[start:stop]
        if stop == start:
            return np.empty(0, dtype=self.dtype)
        assert self.path is not None
        offset = start * self.dtype.itemsize
        return np.fromfile(self.path, dtype=self.dtype, count=stop - start, offset=offset)


def _buckets(array: np.ndarray) -> np.ndarray:
    """Each entry's bucket: its leading 10 bits (big-endian bytes, or the integer's top bits)."""
    import numpy as np

    if array.dtype.kind == "S":
        lead = np.zeros((len(array), 2), dtype=np.uint8)
        raw = array.view(np.uint8).reshape(len(array), array.dtype.itemsize)
        lead[:, : min(2, array.dtype.itemsize)] = raw[:, :2]
        return ((lead[:, 0].astype(np.int64) << 8) | lead[:, 1]) >> 6
    return (array.astype(np.uint64) >> np.uint64(54)).astype(np.int64)


class DigestSpill:
    """A private temporary folder of spilled digest arrays (a context manager)."""

    def __init__(self) -> None:
        self._folder = tempfile.TemporaryDirectory(prefix="mlsecops-digests-")
        self._count = 0

    def add(self, packed: Any, dtype: str) -> Any:
        """The packed array (:func:`.stats.pack`) as a :class:`Spilled` file; other values
        (already spilled, or not a packed string) are returned as they are."""
        if not isinstance(packed, str):
            return packed
        self._count += 1
        path = os.path.join(self._folder.name, f"{self._count}.bin")
        return Spilled(unpack(packed, dtype), path)

    def close(self) -> None:
        self._folder.cleanup()

    def __enter__(self) -> DigestSpill:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def spilled(value: Any, dtype: str) -> Spilled:
    """``value`` as a :class:`Spilled` (a packed string is held in memory)."""
    return value if isinstance(value, Spilled) else Spilled(unpack(value, dtype))


def ranges(
    groups: Sequence[Sequence[Spilled]], limit: int | None = None
) -> Iterator[list[np.ndarray]]:
    """Per bucket range: one array per group (that range of every array of the group).

    Consecutive buckets are read together while all groups' entries stay within ``limit``
    (:data:`RANGE_ENTRIES`); a bucket above it is read alone.
    """
    import numpy as np

    limit = RANGE_ENTRIES if limit is None else limit
    every = [s for group in groups for s in group]
    sizes = np.sum([s.sizes() for s in every], axis=0) if every else np.zeros(BUCKETS)
    low = 0
    while low < BUCKETS:
        high, total = low + 1, int(sizes[low])
        while high < BUCKETS and total + int(sizes[high]) <= limit:
            total += int(sizes[high])
            high += 1
        yield [_joined([s.read(low, high) for s in group]) for group in groups]
        low = high


def _joined(pieces: list[np.ndarray]) -> np.ndarray:
    import numpy as np

    return np.concatenate(pieces) if pieces else np.empty(0, dtype="S1")


def merge_digest_counts(parts: Sequence[Any]) -> tuple[int, int]:
    """``(distinct values, values seen exactly once)`` over every shard's
    :func:`.stats.digest_counts` (packed or spilled), one bucket range at a time."""
    import numpy as np

    dtype = f"S{DIGEST_BYTES}"
    distinct = [spilled(p["distinct"], dtype) for p in parts]
    multi = [spilled(p["multi"], dtype) for p in parts]
    union_total = singles_total = 0
    for every, repeated in ranges([distinct, multi]):
        union, seen = np.unique(every, return_counts=True)
        singles = seen == 1
        if len(repeated):
            singles &= ~np.isin(union, repeated)
        union_total += len(union)
        singles_total += int(singles.sum())
    return union_total, singles_total


def distinct_count(arrays: Sequence[Any], dtype: str) -> int:
    """How many distinct entries the arrays (packed or spilled) hold together."""
    import numpy as np

    group = [spilled(a, dtype) for a in arrays]
    return sum(len(np.unique(joined)) for (joined,) in ranges([group]))
