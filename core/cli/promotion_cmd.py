"""``mlsecops verify-promotion``, ``mlsecops audit verify`` and ``mlsecops rollback``.

``verify-promotion`` is what a consumer runs before loading ``models:/NAME@ALIAS``: exit 0
when the version's signed record verifies with the given public key and the model files
match it; 1 when the model or the evidence changed, the key is wrong, or the version has no
signed record (the reason is printed); 2 when it could not check.
``audit verify`` checks the hash chain of the audit log (1: an edited or deleted line).
``rollback`` moves the alias back to ``previous-champion`` once that version verifies.
"""

from __future__ import annotations

import argparse
import getpass
import json
from pathlib import Path
from typing import Any

from mlsecops_provider.core.cli.contract import EXIT_FAIL, EXIT_PASS, check_tracking_uri
from mlsecops_provider.core.errors import ConfigError
from mlsecops_provider.core.tracking.registry import CHAMPION


def register(subparsers: Any) -> None:
    verify = subparsers.add_parser(
        "verify-promotion",
        help="verify the signed promotion record of NAME@ALIAS",
        description="Exit 0 verified; 1 model or evidence changed, wrong key, or no signed "
        "record; 2 could not check.",
    )
    verify.add_argument("--registered-model", required=True, metavar="NAME")
    verify.add_argument("--alias", default=CHAMPION, metavar="ALIAS")
    verify.add_argument("--public-key", required=True, metavar="PEM", help="public key file")
    verify.add_argument("--tracking-uri", metavar="URI", help="default: MLFLOW_TRACKING_URI")
    verify.add_argument(
        "--log", metavar="URI", help="audit log to check (default: <evidence>/audit/audit.jsonl)"
    )
    verify.add_argument(
        "--no-audit-log",
        action="store_true",
        help="skip the audit-log check (e.g. without evidence access); an alias moved by hand "
        "to an older signed version then still verifies",
    )
    verify.add_argument("--json", action="store_true", help="print the result as JSON")
    verify.set_defaults(handler=run_verify)

    audit = subparsers.add_parser("audit", help="the promotion audit log")
    audit_commands = audit.add_subparsers(dest="audit_command", metavar="COMMAND")
    audit_verify = audit_commands.add_parser(
        "verify", help="check the hash chain", description="Exit 0 intact, 1 broken, 2 error."
    )
    audit_verify.add_argument("--log", metavar="URI", help="default: <evidence>/audit/audit.jsonl")
    audit_verify.add_argument("--tracking-uri", metavar="URI", help="default: MLFLOW_TRACKING_URI")
    audit_verify.add_argument(
        "--no-registry",
        action="store_true",
        help="do not check the anchors (audit seq/hash) the registry's model versions carry",
    )
    audit_verify.set_defaults(handler=run_audit_verify)

    back = subparsers.add_parser(
        "rollback",
        help="move ALIAS back to the previous champion (verified first)",
        description="Exit 0 rolled back, 1 refused (nothing to roll back to, or the target "
        "does not verify), 2 error.",
    )
    back.add_argument("--registered-model", required=True, metavar="NAME")
    back.add_argument("--alias", default=CHAMPION, metavar="ALIAS")
    back.add_argument("--previous-alias", default="previous-champion", metavar="ALIAS")
    back.add_argument(  # --key: the former spelling
        "--public-key",
        "--key",
        dest="public_key",
        required=True,
        metavar="PEM",
        help="public key file that must verify the target",
    )
    back.add_argument("--reason", default="", help="why, for the audit log")
    back.add_argument("--tracking-uri", metavar="URI", help="default: MLFLOW_TRACKING_URI")
    back.add_argument("--log", metavar="URI", help="audit log (default: in the evidence store)")
    back.set_defaults(handler=run_rollback)


def _read_key(path: str) -> bytes:
    try:
        return Path(path).expanduser().read_bytes()
    except OSError as err:
        raise ConfigError(f"public key file {path}: cannot read ({err.strerror})") from err


def _log_uri(explicit: str | None) -> str:
    """``--log`` (it must exist: a typo is not an empty log), else the evidence store's log."""
    from mlsecops_provider.core.promotion.audit_log import default_log_uri
    from mlsecops_provider.core.settings import Settings
    from mlsecops_provider.core.storage import normalise_uri, storage_for

    if not explicit:
        return default_log_uri(Settings.from_env().evidence_uri)
    uri = normalise_uri(explicit)
    if not storage_for(uri).exists(uri):
        raise ConfigError(f"--log {explicit}: no such audit log")
    return uri


def run_verify(args: argparse.Namespace) -> int:
    from mlsecops_provider.core.promotion.verify import verify_promotion

    key = _read_key(args.public_key)
    check_tracking_uri(args.tracking_uri)
    check = verify_promotion(
        args.registered_model,
        args.alias,
        key,
        args.tracking_uri,
        audit_log_uri=None if args.no_audit_log else _log_uri(args.log),
    )
    points_at = f"v{check.version}" if check.version else "(unset)"
    target = f"{check.registered_model}@{check.alias} -> {points_at}"
    if args.json:
        print(json.dumps(check.to_dict(), indent=2))
    elif check.verified:
        print(
            f"VERIFIED {target}: model sha256:{check.model_sha256}, "
            f"signed by key {check.key_id}, record {check.evidence_uri}"
        )
    else:
        print(f"FAILED {target} ({check.code}): {check.reason}")
    return EXIT_PASS if check.verified else EXIT_FAIL


def run_audit_verify(args: argparse.Namespace) -> int:
    from mlsecops_provider.core.promotion.audit_log import AuditLog
    from mlsecops_provider.core.promotion.verify import registry_anchors

    uri = _log_uri(args.log)
    if args.tracking_uri and not args.no_registry:
        check_tracking_uri(args.tracking_uri)  # an explicit registry must be usable
    anchors = [] if args.no_registry else registry_anchors(uri, args.tracking_uri)
    report = AuditLog(uri).verify(anchors)
    if not report.ok:
        print(f"BROKEN {uri}: {report.problem}")
        return EXIT_FAIL
    last = report.last
    head = f"last #{last.seq} {last.kind} hash {last.hash}" if last else "empty"
    lag = f" (head file lags by {report.head_lag})" if report.head_lag else ""
    reached = f", reaches {len(anchors)} registry anchor(s)" if anchors else ""
    print(f"OK {uri}: {len(report.entries)} entries, {head}{lag}{reached}")
    return EXIT_PASS


def run_rollback(args: argparse.Namespace) -> int:
    from mlsecops_provider.core.promotion.audit_log import AuditLog
    from mlsecops_provider.core.promotion.record import consumer_settings
    from mlsecops_provider.core.promotion.rollback import rollback
    from mlsecops_provider.core.promotion.signing import PublicKey

    key = PublicKey.from_pem(_read_key(args.public_key), where=f"public key file {args.public_key}")
    check_tracking_uri(args.tracking_uri)
    result = rollback(
        consumer_settings(args.tracking_uri),
        args.registered_model,
        {key.key_id: key},
        audit=AuditLog(_log_uri(args.log)),
        alias=args.alias,
        previous_alias=args.previous_alias,
        actor=f"cli:{getpass.getuser()}",
        reason=args.reason,
    )
    name = f"{result.registered_model}@{result.alias}"
    if result.rolled_back:
        print(f"ROLLED BACK {name}: v{result.from_version} -> v{result.to_version}")
        return EXIT_PASS
    print(f"REFUSED rollback of {name}: {result.reason}")
    return EXIT_FAIL
