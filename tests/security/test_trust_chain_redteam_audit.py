"""Red team, trust chain (second pass): forks and malformed entries in the audit log.

The attacker can write the evidence store (the log and its head file). Each test forges
lines the way a hand-written forger would and checks that ``mlsecops audit verify`` says
BROKEN (exit 1, one reason) and never crashes or says OK.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from mlsecops_provider.core.promotion.audit_log import GENESIS, AuditEntry, verify_chain
from tests.core.promotion import test_promotion
from tests.core.promotion.test_promotion import World
from tests.security.test_trust_chain_audit import _audit_verify, _promote_two, _Tamper

world = test_promotion.world  # the module-scoped fixture: MLflow, keys, evidence store


def _entry(seq: int, prev: str, details: Any, kind: str = "promotion") -> bytes:
    body = {"seq": seq, "time": "t", "kind": kind, "details": details, "prev_hash": prev}
    text = json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
    import hashlib

    return json.dumps({**body, "hash": hashlib.sha256(text).hexdigest()}).encode()


def test_forked_log_with_a_duplicate_seq_is_broken(world: World, cli: Callable[..., Any]) -> None:
    """Two entries with the same seq and prev_hash (a fork) are not both accepted."""
    _promote_two(world, "rt-audit-fork")
    with _Tamper(world) as tamper:
        lines = tamper.lines()
        last = AuditEntry(**json.loads(lines[-1]))
        twin = AuditEntry(**{**last.body(), "details": {**last.details, "version": "99"}})
        twin = AuditEntry(**{**twin.body(), "hash": twin.computed_hash()})
        tamper.write([*lines, twin.line().rstrip(b"\n")])
        done = _audit_verify(cli, world, "--no-registry")
        assert done.code == 1 and "BROKEN" in done.out and "seq" in done.out, done.out


def test_entry_with_details_of_the_wrong_type_is_broken_not_a_crash() -> None:
    """A well-chained entry whose details are not an object is a broken chain (no traceback)."""
    for details in ("a string", ["a", "list"], 7):
        report = verify_chain(_entry(1, GENESIS, details) + b"\n")
        assert not report.ok and "details" in report.problem, (details, report.problem)


def test_entry_with_a_boolean_seq_is_broken() -> None:
    """``true`` is not seq 1, although Python's bool is an int."""
    report = verify_chain(_entry(True, GENESIS, {}) + b"\n")  # type: ignore[arg-type]
    assert not report.ok and "seq" in report.problem, report.problem
