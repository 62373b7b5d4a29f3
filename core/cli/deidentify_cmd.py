"""``mlsecops deidentify``: write a de-identified copy of a dataset and verify it.

Exit 0 when the residual PII is within the policy's ``max_residual_rate``, 1 when it is
above (OUT is then not written), 2 when the policy, key, input or output cannot be used.
Every check that needs no data runs before the input is read; OUT is written atomically.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from typing import Any

from mlsecops_provider.core.cli.main import EXIT_FAIL, EXIT_PASS

FINDINGS_SHOWN = 10


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "deidentify",
        help="de-identify PII in a dataset (Presidio) and verify the output",
        description="Detect PII per column (and per value in free text), transform it as the "
        "policy says (redact, mask, replace, drop, pseudonymize) into a new dataset, then "
        "scan the output again. Exit 0 residual under the threshold, 1 above, 2 error.",
    )
    parser.add_argument("input", metavar="IN", help="dataset path or URI (Parquet or CSV)")
    parser.add_argument(
        "output", metavar="OUT", help="output path or URI (.csv: CSV, else Parquet)"
    )
    parser.add_argument("--policy", metavar="FILE", help="policy YAML (default: shipped policy)")
    parser.add_argument("--report", metavar="FILE", help="write the full JSON report here")
    parser.add_argument(
        "--key-env", metavar="VAR", help="environment variable holding the pseudonymisation key"
    )
    parser.add_argument("--json", action="store_true", help="print the compact summary as JSON")
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    from mlsecops_provider.core.data.datasets import read_table, table_bytes
    from mlsecops_provider.core.errors import ConfigError
    from mlsecops_provider.core.pii.gate import Deidentifier, PIIConfig, resolve_key
    from mlsecops_provider.core.policy import load_policy
    from mlsecops_provider.core.storage import normalise_uri, sha256_bytes, storage_for

    source, target = normalise_uri(args.input), normalise_uri(args.output)
    if source == target:
        raise ConfigError(f"{target}: OUT must differ from IN (the input is never changed)")
    out_storage = storage_for(target)
    config = PIIConfig.from_policy(load_policy(args.policy))
    deidentifier = Deidentifier.prepare(config, resolve_key(config, args.key_env))
    frame, ref = read_table(source)
    outcome = deidentifier.run(frame, {"input": f"sha256:{ref.sha256}"})
    data = table_bytes(outcome.frame, "csv" if target.lower().endswith(".csv") else "parquet")
    result = replace(
        outcome.result,
        subjects={**outcome.result.subjects, "output": f"sha256:{sha256_bytes(data)}"},
    )
    written = not result.verdict.blocks
    if written:
        out_storage.write_bytes(target, data)
    if args.report:
        report = {
            "result": result.to_dict(),
            "details": outcome.details,
            "output": {"uri": target, "written": written},
        }
        _write(args.report, json.dumps(report, indent=2, sort_keys=True, default=str).encode())
    if args.json:
        print(json.dumps(result.summary(), indent=2, sort_keys=True, default=str))
    else:
        _print_text(result.to_dict(), outcome.details, target if written else None)
    return EXIT_FAIL if result.verdict.blocks else EXIT_PASS


def _write(target: str, data: bytes) -> None:
    from mlsecops_provider.core.storage import normalise_uri, storage_for

    uri = normalise_uri(target)
    storage_for(uri).write_bytes(uri, data, "application/json")


def _print_text(result: dict[str, Any], details: dict[str, Any], written: str | None) -> None:
    metrics = result["metrics"]
    print(f"{result['gate']}: {result['verdict'].upper()} - {result['message']}")
    print(
        f"  rows={metrics['rows']} rows/s={metrics['rows_per_second']} "
        f"entities transformed={metrics['entities_transformed']}"
    )
    for column, strategy in details["strategies"].items():
        print(f"  {column}: {strategy}")
    for finding in result["findings"][:FINDINGS_SHOWN]:
        print(
            f"  residual {finding['severity']:<4} {finding['column']}: "
            f"{finding['rows_with_pii']}/{finding['rows_scanned']} rows {finding['entity_types']}"
        )
    print(f"  output: {written}" if written else "  output: not written (gate failed)")
