"""Attack: the red team's attacks on the keyed digests of sharded validation (commits b72a683,
1e4a2e3): forge, drop or mistype a partial's ``digest_key``; relabel a shard partial's
``mode`` ("whole" among shards, an unknown label) so that the key check is skipped; confirm a
known record from the duplicate screen's row hashes where pandas' ``hash_key`` does not reach
(numeric, boolean, datetime, nullable and numeric-categorical columns ignore it, and a mixed
row's keyed part is combined invertibly with the public hashes of its numeric part); weaken
the SipHash key (``_sip_key``); read the secret from the key fingerprint; collide column
names after ``str()`` or with unicode; rename a column in one shard; reuse another column's
digests in an edited partial to learn that two columns share values; an undecodable secret;
and compare the merged duplicate verdicts with the single-task gate's for every dtype.

Proves: a forged, missing or mistyped ``digest_key`` and a renamed column give verdict
``error``; the SipHash keys are 16 one-byte characters, every byte of which counts; the
fingerprint holds neither the key nor the secret; colliding and unicode column names give
the single-task verdict or fail closed; an undecodable secret fails the map task; per-column
subkeys keep a reused digest set from linking two columns; the merged duplicate screen
equals the single task's for every dtype. Two bugs this red team found are fixed: the row
hashes of non-text columns were pandas' public hashes (a known record could be confirmed
even with ``MLSECOPS_SHARD_DIGEST_KEY`` set; now every row hash is SipHash-keyed after
pandas' combine), and a shard partial relabelled ``whole`` or with another ``mode`` escaped
the key check (the merge now requires mode ``whole`` exactly for a single shard).
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from mlsecops_provider.core.data.datasets import read_table, write_table
from mlsecops_provider.core.errors import DataError
from mlsecops_provider.core.evidence import Verdict
from mlsecops_provider.core.shards import stats
from mlsecops_provider.core.shards.split import ShardRef, split_dataset
from mlsecops_provider.core.validation import gate as g
from mlsecops_provider.core.validation import sharded_screens as ss
from mlsecops_provider.core.validation.poisoning import PoisoningConfig
from mlsecops_provider.core.validation.sharded import partial_bytes, validate_shard
from mlsecops_provider.core.validation.sharded_merge import merge_partials

SECRET = "red-team deployment secret 0123456789"
SOURCE = "ab" * 32  # an input's digest: public (it is in the provenance statement)
CONFIG = g.ValidationConfig(
    screens=PoisoningConfig(duplicate_rate_threshold=0.1), render_html=False
)
SUITE = {
    "name": "red-team",
    "expectations": [
        {"type": "expect_table_row_count_to_be_between", "kwargs": {"min_value": 1}},
        {"type": "expect_column_values_to_be_unique", "kwargs": {"column": "email"}},
    ],
}
ROWS_SUITE = {"name": "rows", "expectations": SUITE["expectations"][:1]}
BASE = pd.DataFrame(
    {
        "email": [f"person{i}@example.org" for i in range(40)],
        "city": [f"c{i % 7}" for i in range(40)],
    }
)
COPIED = pd.concat([BASE, BASE], ignore_index=True)  # every row twice: the copies in shard 2
M64 = 2**64


def _shards(tmp_path: Path, frame: pd.DataFrame, count: int, name: str = "in") -> list[ShardRef]:
    data = write_table(frame, (tmp_path / f"{name}.parquet").as_uri())
    prefix = (tmp_path / f"{name}-shards").as_uri()
    return split_dataset(data.uri, data.sha256, prefix, shard_count=count)


def _partial(frame: pd.DataFrame, shard: ShardRef, suite: Any = SUITE) -> dict[str, Any]:
    """A shard's partial through JSON, as the operator stores it."""
    return json.loads(partial_bytes(validate_shard(frame, shard, suite, None, CONFIG)))


def _partials(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    secrets: list[str | None],
    frame: pd.DataFrame = COPIED,
    suite: Any = SUITE,
) -> list[dict[str, Any]]:
    out = []
    for shard, secret in zip(_shards(tmp_path, frame, len(secrets)), secrets, strict=True):
        if secret is None:
            monkeypatch.delenv(stats.KEY_ENV, raising=False)
        else:
            monkeypatch.setenv(stats.KEY_ENV, secret)
        rows, _ = read_table(shard.uri, shard.sha256)
        out.append(_partial(rows, shard, suite))
    return out


def _published(part: dict[str, Any]) -> set[int]:
    """Every row hash a duplicate-screen partial publishes."""
    fields = ("in_ref", "not_in_ref")
    return {int(h) for f in fields for h in stats.unpack(str(part[f]), "<u8")}


def _forged_whole(part: dict[str, Any]) -> dict[str, Any]:
    """A shard partial rewritten as a one-shard ("whole") partial claiming a pass."""
    kept = {k: v for k, v in part.items() if k in ("schema", "shard", "suite_sha256",
            "config_sha256", "reference_sha256", "run", "quarantine", "columns")}  # fmt: skip
    result = {"verdict": "pass", "message": "forged pass", "metrics": {}, "findings": []}
    return {**kept, "mode": "whole", "result": result, "details": {}}


def test_forged_missing_or_mistyped_digest_key_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every forged, missing or mistyped digest_key in one shard's partial gives error."""
    parts = _partials(tmp_path, monkeypatch, [SECRET, SECRET])
    assert parts[0]["digest_key"] == parts[1]["digest_key"]
    assert merge_partials(parts, SUITE, CONFIG)[0].verdict is Verdict.FAIL  # honest: copies
    good = parts[1]["digest_key"]
    forgeries: list[Any] = [
        None,
        [],
        [good["id"], good["secret"]],
        list(good.items()),
        good["id"],
        {},
        {"id": good["id"]},
        {**good, "extra": 1},
        {**good, "secret": not good["secret"]},
        {**good, "id": good["id"].upper()},
        {**good, "id": int(good["id"], 16)},
        {**good, "id": float("nan")},
        "<missing>",
    ]
    for forged in forgeries:
        edited = copy.deepcopy(parts)
        if forged == "<missing>":
            del edited[1]["digest_key"]
        else:
            edited[1]["digest_key"] = forged
        result, _ = merge_partials(edited, SUITE, CONFIG)
        assert result.verdict is Verdict.ERROR, (forged, result.message)
        assert stats.KEY_ENV in result.message, result.message


@pytest.mark.parametrize(
    "relabel",
    ["first-whole", "every-whole", "second-whole", "Shard", "missing", "whole-with-space"],
)
def test_shard_partial_relabelled_out_of_shard_mode_does_not_pass(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, relabel: str
) -> None:
    """A partial relabelled out of mode 'shard' cannot skip the key check: error, not pass."""
    parts = _partials(tmp_path, monkeypatch, [SECRET, "another worker's secret"])
    assert merge_partials(parts, SUITE, CONFIG)[0].verdict is Verdict.ERROR  # the key check
    edited = copy.deepcopy(parts)
    if relabel == "first-whole":
        edited[0] = _forged_whole(edited[0])
    elif relabel == "every-whole":
        edited = [_forged_whole(p) for p in edited]
    elif relabel == "second-whole":
        edited[1] = _forged_whole(edited[1])
    elif relabel == "missing":
        del edited[1]["mode"]
    else:
        edited[1]["mode"] = {"Shard": "Shard", "whole-with-space": "whole "}[relabel]
    result, _ = merge_partials(edited, SUITE, CONFIG)  # second-whole: KeyError escapes today
    assert result.verdict is Verdict.ERROR, result.message


_KEYED = ["str", "object-str", "object-int", "object-mixed", "category-str"]
_PANDAS_UNKEYED = ["int64", "uint8", "float64", "bool", "datetime", "datetime-tz", "timedelta",
            "Int64", "boolean", "category-int", "complex"]  # fmt: skip


def _column(kind: str) -> pd.Series:
    n = 12
    return {
        "str": pd.Series([f"v{i % 5}" for i in range(n)]),
        "object-str": pd.Series([f"v{i % 5}" for i in range(n)], dtype=object),
        "object-int": pd.Series([i % 5 for i in range(n)], dtype=object),
        "object-mixed": pd.Series(
            [i % 5 if i % 2 else f"v{i % 5}" for i in range(n)], dtype=object
        ),
        "category-str": pd.Series([f"v{i % 5}" for i in range(n)], dtype="category"),
        "int64": pd.Series(np.arange(n) % 5),
        "uint8": pd.Series(np.arange(n) % 5, dtype="uint8"),
        "float64": pd.Series((np.arange(n) % 5) / 4),
        "bool": pd.Series(np.arange(n) % 2 == 0),
        "datetime": pd.Series(pd.date_range("2020-01-01", periods=5, freq="D")[np.arange(n) % 5]),
        "datetime-tz": pd.Series(
            pd.date_range("2020-01-01", periods=5, freq="D", tz="UTC")[np.arange(n) % 5]
        ),
        "timedelta": pd.Series(pd.to_timedelta(np.arange(n) % 5, unit="s")),
        "Int64": pd.Series([None if i % 5 == 0 else i % 5 for i in range(n)], dtype="Int64"),
        "boolean": pd.Series(
            [None if i % 3 == 0 else i % 2 == 0 for i in range(n)], dtype="boolean"
        ),
        "category-int": pd.Series(np.arange(n) % 5, dtype="category"),
        "complex": pd.Series((np.arange(n) % 5) + 1j),
    }[kind]


@pytest.mark.parametrize(
    "kind",
    _KEYED + _PANDAS_UNKEYED,
)
def test_row_hash_key_reaches_every_dtype(monkeypatch: pytest.MonkeyPatch, kind: str) -> None:
    """Under the secret, no row hash of any dtype is pandas' public hash or a guess's."""
    frame = pd.DataFrame({"feature": _column(kind)})
    monkeypatch.setenv(stats.KEY_ENV, SECRET)
    part = ss.duplicate_part(frame, None, PoisoningConfig(), stats.digest_key(SOURCE))
    monkeypatch.setenv(stats.KEY_ENV, "a reader's guess of the secret")
    guess = ss.duplicate_part(frame, None, PoisoningConfig(), stats.digest_key(SOURCE))
    public = {int(h) for h in pd.util.hash_pandas_object(frame, index=False).to_numpy()}
    assert part["rows"] == 12 and len(_published(part)) == len(public)  # still counts
    assert _published(part).isdisjoint(public)
    assert _published(part).isdisjoint(_published(guess))


def _public(value: Any) -> int:
    return int(pd.util.hash_array(np.array([value]))[0])


def _prefix(numbers: list[Any], columns: int) -> tuple[int, int]:
    """pandas' combine_hash_arrays over a row's leading (public) column hashes."""
    out, mult = 0x345678, 1000003
    for i, value in enumerate(numbers):
        out = ((out ^ _public(value)) * mult) % M64
        mult = (mult + 82520 + 2 * (columns - i)) % M64
    return out, mult


def _text_part(row_hash: int, numbers: list[Any]) -> int:
    """The (keyed) hash of a row's last, text column, recovered from the row hash."""
    out, mult = _prefix(numbers, len(numbers) + 1)
    return (((row_hash - 97531) * pow(mult, -1, M64)) % M64) ^ out


def _row_hash(numbers: list[Any], text_part: int) -> int:
    out, mult = _prefix(numbers, len(numbers) + 1)
    return (((out ^ text_part) * mult) + 97531) % M64


def test_known_records_are_not_confirmed_through_the_numeric_part_of_mixed_rows(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Two known (age, income) records sharing a diagnosis cannot be confirmed in the data."""
    n = 200
    frame = pd.DataFrame(
        {
            "age": pd.Series([18 + (i * 7) % 70 for i in range(n)], dtype="int64"),
            "income": pd.Series([1000.0 + (i * 37) % 5000 for i in range(n)], dtype="float64"),
            "diagnosis": [("J45", "E11", "I10", "F32")[i % 4] for i in range(n)],
        }
    )
    first = [np.int64(frame.age[0]), np.float64(frame.income[0])]  # both "J45"
    second = [np.int64(frame.age[4]), np.float64(frame.income[4])]
    public_row = int(pd.util.hash_pandas_object(frame.head(1), index=False).iloc[0])
    assert _row_hash(first, _public("J45")) == public_row  # the combine is pandas' own
    monkeypatch.setenv(stats.KEY_ENV, SECRET)
    part = ss.duplicate_part(frame, None, PoisoningConfig(), stats.digest_key(SOURCE))
    published = _published(part)
    candidates = {_text_part(h, first) for h in published}
    confirmed = [c for c in candidates if _row_hash(second, c) in published]
    assert confirmed == []


def test_sip_key_is_sixteen_utf8_bytes_and_every_byte_counts() -> None:
    """_sip_key always yields 16 UTF-8 bytes, distinct per label, all used (NULs too)."""
    keys = [hashlib.sha256(i.to_bytes(4, "big")).digest() for i in range(3000)]
    keys += [b"", b"\x00" * 32, b"\xff" * 32, os.urandom(32)]
    values = np.array(["x", "y"], dtype=object)
    seen = set()
    for key in keys[:5] + keys[-4:]:
        for label in (b"0", b"1", b"rows"):
            hashed = pd.util.hash_array(values, hash_key=stats._sip_key(key, label))
            seen.add(tuple(int(h) for h in hashed))
    assert len(seen) == 27  # nine keys, three labels: all different
    for key in keys:
        for label in (b"0", b"1", b"rows"):
            sub = stats._sip_key(key, label)
            assert len(sub) == 16 and len(sub.encode("utf-8")) == 16
    nul_a, nul_b = "\x00" * 15 + "a", "\x00" * 15 + "b"
    assert list(pd.util.hash_array(values, hash_key=nul_a)) != list(
        pd.util.hash_array(values, hash_key=nul_b)
    )


def test_key_fingerprint_reveals_neither_the_key_nor_the_secret(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """key_id holds no part of the key, its subkeys or the secret; it tracks secret and input."""
    monkeypatch.setenv(stats.KEY_ENV, SECRET)
    key = stats.digest_key(SOURCE)
    ident = stats.key_id(key)
    assert set(ident) == {"id", "secret"} and ident["secret"] is True
    assert len(ident["id"]) == 16 and int(ident["id"], 16) >= 0
    secret_forms = {SECRET, SECRET.encode().hex(), hashlib.sha256(SECRET.encode()).hexdigest()}
    subkeys = [stats._sip_key(key, label).encode().hex() for label in (b"0", b"1", b"rows")]
    subkeys += [stats.column_key(key, c).hex() for c in ("email", "")]
    for hidden in [key.hex(), *subkeys, *secret_forms]:
        assert ident["id"] not in hidden and ident["id"][:8] not in hidden
    assert json.dumps(ident).find(SECRET) < 0
    assert stats.key_id(stats.digest_key(SOURCE)) == ident
    assert stats.key_id(stats.digest_key("cd" * 32))["id"] != ident["id"]
    monkeypatch.setenv(stats.KEY_ENV, SECRET + " ")
    assert stats.key_id(stats.digest_key(SOURCE))["id"] != ident["id"]
    monkeypatch.delenv(stats.KEY_ENV)
    assert stats.key_id(stats.digest_key(SOURCE))["secret"] is False


def test_colliding_and_unicode_column_names_give_the_single_task_verdict(
    tmp_path: Path,
) -> None:
    """Colliding/unicode column names give the single-task verdict or fail closed."""
    shards = _shards(tmp_path, pd.DataFrame({"x": range(100)}), 2, "names")
    values = [f"v{i % 50}" for i in range(100)]  # every value twice: not unique
    for names in ([1, "1"], ["名前", "b"], ["e\u0301", "é"]):
        frame = pd.DataFrame({"a": values, "b": values})
        frame.columns = pd.Index(names, dtype=object)
        suite = {"name": "t", "expectations": [{"type": "expect_column_values_to_be_unique",
                                                 "kwargs": {"column": str(names[0])}}]}  # fmt: skip
        single, _ = g.validate_dataset(frame, suite, None, CONFIG)
        parts = [_partial(frame.iloc[s.offset : s.offset + s.rows], s, suite) for s in shards]
        merged, _ = merge_partials(parts, suite, CONFIG)
        assert single.verdict is Verdict.FAIL and merged.verdict is single.verdict, names
        assert merged.metrics["critical_failures"] == single.metrics["critical_failures"] == 1
        assert merged.metrics["duplicates_rate"] == single.metrics["duplicates_rate"]
    key = stats.digest_key(SOURCE)
    names = ["", "1", "e\u0301", "é", "名前", "\udcff", "\ud800", "a\x00", "a"]
    assert len({stats.column_key(key, n) for n in names}) == len(names)
    bad = pd.DataFrame({"b": values})
    bad.columns = pd.Index(["\udcff"], dtype=object)
    bad_value = pd.DataFrame({"b": pd.Series(["\udcff"] + values[1:], dtype=object)})
    for frame in (bad, bad_value):
        with pytest.raises(DataError):
            validate_shard(frame.iloc[:50], shards[0], ROWS_SUITE, None, CONFIG)


def test_column_renamed_in_one_shard_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A column renamed in one shard (digests under another subkey) gives error."""
    monkeypatch.setenv(stats.KEY_ENV, SECRET)
    shards = _shards(tmp_path, COPIED, 2)
    frames = [read_table(s.uri, s.sha256)[0] for s in shards]
    frames[1] = frames[1].rename(columns={"city": "City"})
    parts = [_partial(f, s) for f, s in zip(frames, shards, strict=True)]
    result, _ = merge_partials(parts, SUITE, CONFIG)
    assert result.verdict is Verdict.ERROR and "different columns" in result.message


def test_partial_reusing_another_columns_digests_links_no_columns(tmp_path: Path) -> None:
    """Reusing column A's digests in column B's slot reveals no values shared by A and B."""
    tokens = [7 * i + 3 for i in range(60)]  # numbers: counts of text columns are redacted
    frame = pd.DataFrame({"left": tokens, "right": tokens[::-1]})
    suite = {
        "name": "reuse",
        "expectations": [
            {"type": "expect_column_unique_value_count_to_be_between",
             "kwargs": {"column": column, "min_value": 0, "max_value": 1000}}
            for column in ("left", "right")
        ],
    }  # fmt: skip
    shards = _shards(tmp_path, frame, 2, "reuse")
    parts = [_partial(read_table(s.uri, s.sha256)[0], s, suite) for s in shards]
    assert parts[0]["sensitive"] == []  # the observed counts are kept, not redacted
    honest = merge_partials(parts, suite, CONFIG)[1]["expectations"]
    assert [str(r["observed"]) for r in honest] == ["60", "60"]
    edited = copy.deepcopy(parts)
    edited[1]["aggregates"]["1"] = copy.deepcopy(edited[1]["aggregates"]["0"])
    rows = merge_partials(edited, suite, CONFIG)[1]["expectations"]
    assert str(rows[1]["observed"]) == "60"  # one shared key would have shown 30: the same values


def test_secret_utf8_cannot_encode_fails_the_map_task(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An undecodable secret raises in the shard, never silently keys by the public digest."""
    shards = _shards(tmp_path, BASE, 2, "secret")
    rows, _ = read_table(shards[0].uri, shards[0].sha256)
    monkeypatch.setenv(stats.KEY_ENV, "secret-\udcff")
    with pytest.raises(UnicodeError):
        validate_shard(rows, shards[0], SUITE, None, CONFIG)


@pytest.mark.parametrize(
    "kind", ["int64", "float64", "bool", "datetime", "str", "category", "Int64", "zeros-nans"]
)
def test_duplicates_across_shards_merge_to_the_single_task_verdict_for_every_dtype(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    """Cross-shard copies of any dtype give the single-task duplicate figures and verdict."""
    n = 45
    column = {
        "int64": np.arange(n),
        "float64": np.arange(n) / 4 - 3,
        "bool": np.arange(n) % 2 == 0,
        "datetime": pd.date_range("2020-01-01", periods=n, freq="h"),
        "str": [f"s{i}" for i in range(n)],
        "category": pd.Categorical([f"c{i % 9}" for i in range(n)]),
        "Int64": pd.array([None if i % 7 == 0 else i for i in range(n)], dtype="Int64"),
        "zeros-nans": [(-0.0 if i % 2 else 0.0) if i % 3 else np.nan for i in range(n)],
    }[kind]
    base = pd.DataFrame({"feature": column, "k": np.arange(n) % 3})
    frame = pd.concat([base, base.iloc[::-1]], ignore_index=True)
    monkeypatch.setenv(stats.KEY_ENV, SECRET)
    data = write_table(frame, (tmp_path / "whole.parquet").as_uri())
    whole, _ = read_table(data.uri, data.sha256)
    single, single_details = g.validate_dataset(whole, ROWS_SUITE, None, CONFIG)
    parts = _partials(tmp_path, monkeypatch, [SECRET] * 3, frame, ROWS_SUITE)
    merged, details = merge_partials(parts, ROWS_SUITE, CONFIG)
    assert single.verdict is Verdict.FAIL and merged.verdict is Verdict.FAIL, merged.message
    assert details["screens"]["duplicates"] == single_details["screens"]["duplicates"]
    assert merged.metrics["duplicates_rate"] == single.metrics["duplicates_rate"] >= 0.5
