"""The poisoning screens over shards: per-shard partial figures and their merge.

Each map task reads the (whole, trusted) reference, so everything fixed by the reference is
the same in every shard: PSI bins (reference quantiles), the KS grid, reference categories
and label classes, the median/MAD of the outlier screen, the reference row hashes.

* ``drift``: PSI counts per bin add up (exact); KS from CDF counts on the reference grid
  (exact statistic and p-value when the reference has at most ``KS_GRID`` distinct values
  in the column, else a lower bound with its error bound ``ks_error_bound`` in the figures;
  a decision the bound could flip is taken as drifted: fail closed);
* ``label_shift``: class counts add up (exact TVD/PSI, up to summation order);
* ``outliers`` with the reference basis: flagged rows add up (exact); with the batch basis
  (median/MAD of the whole batch) the screen is ``skipped`` ("not computed on shards"), as
  is the isolation-forest rate;
* ``duplicates``: the distinct row hashes of each shard (same hash as the single task) are
  united: rows repeating an earlier row anywhere in the table, or a reference row (exact).

Categories and labels new to the reference are keyed by value digests, never raw values.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from mlsecops_provider.core.errors import DataError
from mlsecops_provider.core.shards import buckets, stats
from mlsecops_provider.core.validation import poisoning as p
from mlsecops_provider.core.validation.poisoning import PoisoningConfig, ScreenResult

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

NOT_ON_SHARDS = "not computed on shards"


def _category_counts(
    ref: pd.Series, cur: pd.Series, key: bytes, normalize: bool = False
) -> dict[str, Any]:
    ref_counts = ref.value_counts(dropna=False)
    cur_counts = cur.value_counts(dropna=False)
    where = ref_counts.index.get_indexer(cur_counts.index)
    known = {
        str(int(i)): int(n) for i, n in zip(where, cur_counts.to_numpy(), strict=True) if i >= 0
    }
    new = [
        (v, int(n))
        for v, i, n in zip(cur_counts.index, where, cur_counts.to_numpy(), strict=True)
        if i < 0
    ]
    digests = stats.value_digests([v for v, _ in new], stats.column_key(key, str(cur.name)))
    return {
        "ref": [int(n) for n in ref_counts.to_numpy()],
        "known": known,
        "new": {d.hex(): n for d, (_, n) in zip(digests.tolist(), new, strict=True)},
    }


def _merge_categories(parts: Sequence[Mapping[str, Any]]) -> tuple[np.ndarray, np.ndarray, int]:
    """Reference and batch counts over the union of categories (reference order first)."""
    import numpy as np

    ref = np.array(parts[0]["ref"], dtype="float64")
    cur = np.zeros(len(ref))
    new: dict[str, int] = {}
    for part in parts:
        for index, count in part["known"].items():
            cur[int(index)] += count
        for digest, count in part["new"].items():
            new[digest] = new.get(digest, 0) + count
    extra = sorted(new.values(), reverse=True)
    return (
        np.append(ref, np.zeros(len(extra))),
        np.append(cur, np.array(extra, dtype="float64")),
        len(extra),
    )


def _numeric_part(ref: pd.Series, cur: pd.Series, config: PoisoningConfig) -> dict[str, Any]:
    import numpy as np

    ref_f, cur_f = p._floats(ref), p._floats(cur)
    ref_ok = ref_f[~np.isnan(ref_f)]
    inner = np.linspace(0.0, 1.0, config.psi_bins + 1)[1:-1]
    edges = np.unique(np.quantile(ref_ok, inner)) if len(ref_ok) else np.empty(0)
    out: dict[str, Any] = {
        "type": "numeric",
        "ref_bins": stats.bin_counts(ref_f, edges),
        "bins": stats.bin_counts(cur_f, edges),
    }
    if len(ref_ok):
        grid, exact = stats.ks_grid(ref_f)
        out.update(exact=exact, ref_cdf=stats.cdf_counts(ref_f, grid))
        out["cdf"] = stats.cdf_counts(cur_f, grid)
    return out


def drift_part(
    frame: pd.DataFrame, reference: pd.DataFrame | None, config: PoisoningConfig, key: bytes
) -> dict[str, Any]:
    if reference is None:
        return {"skipped": "no reference dataset"}
    columns: dict[str, Any] = {}
    for col in p._screened_columns(reference, config):
        if col not in frame.columns:
            columns[col] = {"type": "missing"}
        elif p._is_numeric(reference[col]) and p._is_numeric(frame[col]):
            columns[col] = _numeric_part(reference[col], frame[col], config)
        elif p._is_numeric(reference[col]) != p._is_numeric(frame[col]):
            columns[col] = {"type": "changed"}
        elif reference[col].nunique(dropna=False) > config.max_categories:
            reason = f"more than {config.max_categories} categories"
            columns[col] = {"type": "skipped", "reason": reason}
        else:
            columns[col] = {
                "type": "categorical",
                **_category_counts(reference[col], frame[col], key),
            }
    return {"columns": columns, "reference_columns": [str(c) for c in reference.columns]}


def _merge_numeric(parts: Sequence[Mapping[str, Any]], config: PoisoningConfig) -> dict[str, Any]:
    import numpy as np

    ref_bins = np.array(parts[0]["ref_bins"], dtype="int64")
    bins = np.sum([np.array(x["bins"], dtype="int64") for x in parts], axis=0)
    figures: dict[str, Any] = {"column_type": "numeric", "psi": p._psi_from_counts(ref_bins, bins)}
    ks_flag = False
    if "ref_cdf" in parts[0]:
        ref_cdf = stats.merge_cdf_counts([parts[0]["ref_cdf"]])
        cur_cdf = stats.merge_cdf_counts([x["cdf"] for x in parts])
        if ref_cdf["n"] and cur_cdf["n"]:
            d, bound, d_hi = stats.ks_from_counts(ref_cdf, cur_cdf, bool(parts[0]["exact"]))
            d, pvalue = stats.ks_pvalue(d, ref_cdf["n"], cur_cdf["n"])
            figures.update(ks_statistic=d, ks_pvalue=pvalue)
            ks_flag = pvalue < config.ks_pvalue and d >= config.ks_min_statistic
            if bound:
                _, p_hi = stats.ks_pvalue(d_hi, ref_cdf["n"], cur_cdf["n"])
                flag_hi = p_hi < config.ks_pvalue and d_hi >= config.ks_min_statistic
                figures.update(ks_error_bound=bound, ks_uncertain=flag_hi != ks_flag)
                ks_flag = ks_flag or flag_hi  # the bound could flip it: fail closed
    figures["drifted"] = bool(figures["psi"] > config.psi_threshold or ks_flag)
    return figures


def merge_drift(
    parts: Sequence[Mapping[str, Any]], config: PoisoningConfig, batch_columns: list[str]
) -> ScreenResult:
    if "skipped" in parts[0]:
        return ScreenResult("drift", "skipped", reason=parts[0]["skipped"])
    columns: dict[str, Any] = {}
    skipped: dict[str, str] = {}
    findings: list[dict[str, Any]] = []
    in_order = [c for c in parts[0]["reference_columns"] if c in parts[0]["columns"]]
    for col in in_order:
        pieces = [x["columns"][col] for x in parts]
        kind = pieces[0]["type"]
        if kind == "missing":
            findings.append({"screen": "drift", "column": col, "reason": "missing from batch"})
            continue
        if kind == "skipped":
            skipped[col] = pieces[0]["reason"]
            continue
        if kind == "changed":
            figures: dict[str, Any] = {"column_type": "changed", "psi": None, "drifted": True}
        elif kind == "numeric":
            figures = _merge_numeric(pieces, config)
        else:
            ref, cur, new = _merge_categories(pieces)
            psi = p._psi_from_counts(ref, cur)
            figures = {"column_type": "categorical", "psi": psi, "new_categories": new,
                       "drifted": bool(psi > config.psi_threshold)}  # fmt: skip
        columns[col] = figures
        if figures["drifted"]:
            findings.append({"screen": "drift", "column": col, **p._rounded(figures)})
    screened = [
        c for c in batch_columns if c not in set(config.exclude_columns) | {config.label_column}
    ]
    psis = [f["psi"] for f in columns.values() if f["psi"] is not None]
    metrics = {
        "columns_screened": len(columns),
        "columns_drifted": sum(f["drifted"] for f in columns.values()),
        "max_psi": round(max(psis), 6) if psis else None,
        "columns": {c: p._rounded(f) for c, f in columns.items()},
        "skipped_columns": skipped,
        "new_columns": sorted(set(screened) - set(parts[0]["reference_columns"])),
    }
    return ScreenResult("drift", p._status(bool(findings)), metrics, findings)


def label_part(
    frame: pd.DataFrame, reference: pd.DataFrame | None, config: PoisoningConfig, key: bytes
) -> dict[str, Any]:
    label = config.label_column
    if label is None:
        return {"skipped": "no label column given"}
    if reference is None:
        return {"skipped": "no reference dataset"}
    if label not in reference.columns:
        raise DataError(f"screens: label column {label!r} is missing from the reference dataset")
    if label not in frame.columns:
        return {"missing": True}
    return _category_counts(reference[label], frame[label], key)


def merge_label(parts: Sequence[Mapping[str, Any]], config: PoisoningConfig) -> ScreenResult:
    import numpy as np

    label = config.label_column
    if "skipped" in parts[0]:
        return ScreenResult("label_shift", "skipped", reason=parts[0]["skipped"])
    if any(x.get("missing") for x in parts):
        finding = {"screen": "label_shift", "column": label, "reason": "missing from batch"}
        return ScreenResult("label_shift", "fail", {}, [finding])
    ref, cur, _ = _merge_categories(parts)
    pr, qr = ref / ref.sum(), cur / cur.sum()
    tvd = float(0.5 * np.abs(pr - qr).sum())
    psi = p._psi_from_counts(pr, qr)
    metrics = {"tvd": round(tvd, 6), "psi": round(psi, 6), "classes": len(ref)}
    failed = tvd > config.label_shift_threshold
    findings = [{"screen": "label_shift", "column": label, **metrics}] if failed else []
    return ScreenResult("label_shift", p._status(failed), metrics, findings)


def outlier_part(
    frame: pd.DataFrame, reference: pd.DataFrame | None, config: PoisoningConfig
) -> tuple[dict[str, Any], np.ndarray | None]:
    """The shard's outlier counts and mask (reference basis only: rows judged one by one)."""
    if reference is None or config.outlier_basis != "reference":
        return {"skipped": NOT_ON_SHARDS + " (median/MAD of the whole batch)"}, None
    screen, mask = p.outlier_screen(frame, reference, replace(config, isolation_forest=False))
    metrics = screen.metrics  # lists keep the column order through sorted-key JSON
    columns = [[c, int(n)] for c, n in metrics["columns"].items()]
    skipped = [[c, why] for c, why in metrics["skipped_columns"].items()]
    return {"rows": metrics["rows"], "columns": columns, "skipped_columns": skipped}, mask


def merge_outliers(
    parts: Sequence[Mapping[str, Any]], config: PoisoningConfig, rows_total: int
) -> ScreenResult:
    if "skipped" in parts[0]:
        return ScreenResult("outliers", "skipped", reason=parts[0]["skipped"])
    per_column: dict[str, int] = {}
    for part in parts:
        for col, n in part["columns"]:
            per_column[col] = per_column.get(col, 0) + int(n)
    rows = sum(int(x["rows"]) for x in parts)
    rate = rows / rows_total
    metrics: dict[str, Any] = {
        "rate": round(rate, 6),
        "rows": rows,
        "columns": per_column,
        "skipped_columns": dict(parts[0]["skipped_columns"]),
        "basis": "reference",
    }
    if config.isolation_forest:
        metrics["isolation_forest_rate"] = None
        metrics["isolation_forest"] = NOT_ON_SHARDS
    failed = rate > config.outlier_rate_threshold
    top = sorted((c for c, n in per_column.items() if n), key=lambda c: -per_column[c])
    findings = [{"screen": "outliers", "rate": metrics["rate"], "rows": rows, "columns": top}]
    return ScreenResult("outliers", p._status(failed), metrics, findings if failed else [])


def duplicate_part(
    frame: pd.DataFrame, reference: pd.DataFrame | None, config: PoisoningConfig, key: bytes
) -> dict[str, Any]:
    import numpy as np

    columns = p._screened_columns(frame, config)
    if not columns:
        return {"skipped": "no feature columns to compare"}
    hashes = np.unique(stats.row_hashes(frame, columns, key)).astype("<u8")
    in_ref = np.zeros(len(hashes), dtype=bool)
    basis = "batch"
    if reference is not None and set(columns) <= set(map(str, reference.columns)):
        in_ref = np.isin(hashes, stats.row_hashes(reference, columns, key))
        basis = "batch and reference"
    all_rows = stats.row_hashes(frame, columns, key)
    of_reference = int(np.isin(all_rows, hashes[in_ref]).sum()) if in_ref.any() else 0
    return {
        "rows": len(frame),
        "in_ref": stats.pack(hashes[in_ref]),
        "not_in_ref": stats.pack(hashes[~in_ref]),
        "of_reference": of_reference,
        "columns_hashed": len(columns),
        "basis": basis,
    }


def merge_duplicates(parts: Sequence[Mapping[str, Any]], config: PoisoningConfig) -> ScreenResult:
    if "skipped" in parts[0]:
        return ScreenResult("duplicates", "skipped", reason=parts[0]["skipped"])
    rows = sum(int(x["rows"]) for x in parts)
    not_ref = buckets.distinct_count([x["not_in_ref"] for x in parts], "<u8")
    in_ref = buckets.distinct_count([x["in_ref"] for x in parts], "<u8")
    of_reference = sum(int(x["of_reference"]) for x in parts)
    duplicated = rows - not_ref
    rate = duplicated / rows
    metrics = {
        "rate": round(rate, 6),
        "rows": int(duplicated),
        "within_batch": int(rows - not_ref - in_ref),
        "of_reference": of_reference,
        "columns_hashed": parts[0]["columns_hashed"],
        "basis": parts[0]["basis"],
    }
    failed = rate > config.duplicate_rate_threshold
    findings = [{"screen": "duplicates", **metrics}] if failed else []
    return ScreenResult("duplicates", p._status(failed), metrics, findings)
