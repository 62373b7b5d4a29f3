"""``mlsecops warmup-gate``: is the shadow ready to replace the champion, on real traffic?

Reads the prediction log ``mlsecops serve`` wrote (its chain and batch digests verified) and
compares shadow and champion: agreement, prediction PSI, latency p50/p99 ratios, error and
fallback rates, accuracy where delayed labels arrived (``--labels``, joined by request id).
Exit 0 pass; 1 fail, including "not enough traffic yet" (the reason is printed); 2 the log
cannot be read or verified, or a usage error.
"""

from __future__ import annotations

import argparse
import json
import os
from dataclasses import replace
from typing import Any

EXIT_PASS, EXIT_FAIL = 0, 1
POLICY_ENV = "MLSECOPS_POLICY"


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "warmup-gate",
        help="judge the shadow against the champion on the logged production traffic",
        description="Exit 0 pass; 1 fail or not enough traffic yet; 2 could not check.",
    )
    parser.add_argument("--log", required=True, metavar="URI", help="prediction log URI or path")
    parser.add_argument("--min-requests", type=int, metavar="N", help="override the policy")
    parser.add_argument("--labels", metavar="FILE", help="delayed labels (request_id, label)")
    parser.add_argument("--shadow-version", metavar="V", help="default: the latest in the log")
    parser.add_argument("--policy", metavar="FILE", help=f"policy YAML (default: ${POLICY_ENV})")
    parser.add_argument("--report", metavar="FILE", help="write the full JSON report here")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    from mlsecops_provider.core.errors import ConfigError
    from mlsecops_provider.core.policy import load_policy
    from mlsecops_provider.core.serving.warmup import GATE, WarmupConfig, warmup_gate
    from mlsecops_provider.core.storage import normalise_uri, storage_for

    policy = load_policy(args.policy or os.environ.get(POLICY_ENV) or None)
    config = policy.config(GATE, WarmupConfig)
    if args.min_requests is not None:
        if args.min_requests < 1:
            raise ConfigError(f"--min-requests {args.min_requests}: must be at least 1")
        config = replace(config, min_requests=args.min_requests)
    result = warmup_gate(
        normalise_uri(args.log),
        config,
        labels_uri=normalise_uri(args.labels) if args.labels else None,
        shadow_version=args.shadow_version,
    )
    if args.report:
        uri = normalise_uri(args.report)
        payload = {"result": result.to_dict(), "details": {"config": config.__dict__}}
        data = json.dumps(payload, indent=2, sort_keys=True, default=str).encode()
        storage_for(uri).write_bytes(uri, data, "application/json")
    if args.json:
        print(json.dumps(result.summary(), indent=2, sort_keys=True, default=str))
    else:
        print(f"{result.verdict.value.upper()} {result.message}")
    return EXIT_FAIL if result.verdict.blocks else EXIT_PASS
