"""Sensitive attributes kept apart from the model's data: an access-limited evaluation copy.

The attributes a fairness check needs (sex, age band, region, ...) are often the very ones
de-identification removes, and they must never become model inputs. They live in a separate
table of just the row key and those columns (:func:`evaluation_copy`), written to its own
location (an access-limited bucket or prefix) with its digest; the fairness gate joins it to
the evaluation rows by the key (:func:`join_sensitive`) and nothing else reads it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mlsecops_provider.core.errors import DataError

if TYPE_CHECKING:
    import pandas as pd


def evaluation_copy(frame: pd.DataFrame, key: str, columns: tuple[str, ...]) -> pd.DataFrame:
    """Only the row key and the sensitive columns (the key must identify each row)."""
    missing = [c for c in (key, *columns) if c not in frame.columns]
    if missing:
        raise DataError(f"cannot build the sensitive evaluation copy: no column(s) {missing}")
    if frame[key].isna().any() or frame[key].duplicated().any():
        raise DataError(f"row key {key!r} has missing or duplicate values")
    return frame[[key, *columns]].reset_index(drop=True)


def join_sensitive(
    rows: pd.DataFrame, sensitive: pd.DataFrame, key: str, columns: tuple[str, ...]
) -> pd.DataFrame:
    """The evaluation rows with the sensitive columns joined by ``key`` (every row must match).

    A sensitive column already present in ``rows`` is a design error (it would be a model's
    data): it is refused rather than silently replaced.
    """
    if key not in rows.columns:
        raise DataError(f"the evaluation rows have no row key column {key!r}")
    clash = [c for c in columns if c in rows.columns]
    if clash:
        raise DataError(
            f"sensitive column(s) {clash} are in the evaluation rows themselves: keep them only "
            "in the evaluation copy"
        )
    copy = evaluation_copy(sensitive, key, columns)
    joined = rows.merge(copy, on=key, how="left", validate="many_to_one", indicator=True)
    unmatched = int((joined.pop("_merge") != "both").sum())
    if unmatched:
        raise DataError(f"{unmatched} evaluation row(s) have no entry in the sensitive copy")
    return joined
