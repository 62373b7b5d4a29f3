"""``mlsecops deidentify``: write a de-identified copy of a dataset and verify it.

Exit 0 when the residual PII is within the policy's ``max_residual_rate``, 1 when it is
above (OUT is then not written), 2 on a usage error or when the policy, key, input or output
cannot be used (the CLI contract, :mod:`~mlsecops_provider.core.cli.contract`).
Every check that needs no data runs before the input is read; OUT is written atomically.
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from typing import Any

from mlsecops_provider.core.cli import contract

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
        "output",
        metavar="OUT",
        help="output path or URI (.csv: CSV, else Parquet); untransformed columns are kept "
        "as they were (CSV text as read, Parquet types and schema)",
    )
    contract.add_label(parser, what="passed through untouched and unscanned")
    contract.add_policy(parser)
    contract.add_report(parser)
    parser.add_argument(
        "--key-env", metavar="VAR", help="environment variable holding the pseudonymisation key"
    )
    contract.add_json(parser)
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    from mlsecops_provider.core.errors import ConfigError
    from mlsecops_provider.core.pii.gate import Deidentifier, PIIConfig, resolve_key
    from mlsecops_provider.core.pii.io import output_bytes, read_source
    from mlsecops_provider.core.storage import normalise_uri, sha256_bytes, storage_for

    source, target = normalise_uri(args.input), normalise_uri(args.output)
    if source == target:
        raise ConfigError(f"{target}: OUT must differ from IN (the input is never changed)")
    out_storage = storage_for(target)
    config = PIIConfig.from_policy(contract.load_cli_policy(args.policy))
    if args.label:
        config = replace(config, exclude_columns=(*config.exclude_columns, args.label))
    deidentifier = Deidentifier.prepare(config, resolve_key(config, args.key_env))
    read = read_source(source)  # CSV as text: untransformed columns are written back as read
    contract.check_columns({"--label": [args.label]}, read.frame, where="IN")
    outcome = deidentifier.run(read.frame, {"input": f"sha256:{read.ref.sha256}"})
    data = output_bytes(read, outcome, "csv" if target.lower().endswith(".csv") else "parquet")
    result = replace(
        outcome.result,
        subjects={**outcome.result.subjects, "output": f"sha256:{sha256_bytes(data)}"},
    )
    written = not result.verdict.blocks
    if written:
        out_storage.write_bytes(target, data)
    output = {"uri": target, "written": written}
    contract.write_report(args.report, contract.gate_report(result, outcome.details, output=output))
    if args.json:
        contract.print_summary(result)
    else:
        _print_text(result.to_dict(), outcome.details, target if written else None)
    return contract.exit_code(result.verdict)


def _print_text(result: dict[str, Any], details: dict[str, Any], written: str | None) -> None:
    metrics = result["metrics"]
    print(f"{result['gate']}: {result['verdict'].upper()} - {result['message']}")
    print(
        f"  rows={metrics['rows']} rows/s={metrics['rows_per_second']} "
        f"entities transformed={metrics['entities_transformed']}"
    )
    for column, strategy in details["strategies"].items():
        print(f"  {column}: {strategy}")
    for finding in [f for f in result["findings"] if f["kind"] == "residual"][:FINDINGS_SHOWN]:
        print(
            f"  residual {finding['severity']:<4} {finding['column']}: "
            f"{finding['rows_with_pii']}/{finding['rows_scanned']} rows {finding['entity_types']}"
        )
    print(f"  output: {written}" if written else "  output: not written (gate failed)")
