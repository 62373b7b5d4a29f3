"""Red team, trust chain: the audit log's history cannot be rewritten or cut silently.

The attacker can write the evidence store (the log and its head file) but not the signed
records' contents or, for the anchor tests, the registry. Each test edits, reorders,
removes or truncates entries and checks that ``mlsecops audit verify`` and
``verify-promotion`` say so; a trailing blank line is not an attack and must not block.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mlsecops_provider.core.evidence import Verdict
from mlsecops_provider.core.promotion.audit_log import AuditEntry, local_log_path
from mlsecops_provider.core.promotion.verify import verify_promotion
from tests.core.promotion import test_promotion
from tests.core.promotion.test_promotion import World, new_version, run_promotion

world = test_promotion.world  # the module-scoped fixture: MLflow, keys, evidence store


def _audit_verify(cli: Callable[..., Any], world: World, *extra: str) -> Any:
    args = ["audit", "verify", "--log", world.audit.uri, "--tracking-uri"]
    return cli([*args, world.settings.tracking_uri, *extra])


def _promote_two(world: World, name: str) -> None:
    for i in range(2):
        candidate = new_version(world, name, 60 + i)
        result, _ = run_promotion(world, candidate, f"run-{name}-{i}")
        assert result.verdict is Verdict.PASS, result.message


def _verify(world: World, name: str) -> Any:
    return verify_promotion(
        name,
        "champion",
        world.keys.public_path.read_bytes(),
        world.settings.tracking_uri,
        audit_log_uri=world.audit.uri,
    )


class _Tamper:
    """Save and restore the log and its head around one attack (the world is shared)."""

    def __init__(self, world: World) -> None:
        self.log = local_log_path(world.audit.uri)
        self.head = Path(f"{self.log}.head.json")
        self.saved = (self.log.read_bytes(), self.head.read_bytes())

    def lines(self) -> list[bytes]:
        return self.saved[0].rstrip().split(b"\n")

    def write(self, lines: list[bytes], head: bool = True) -> None:
        self.log.write_bytes(b"".join(line + b"\n" for line in lines))
        if not head:
            self.head.unlink()

    def __enter__(self) -> _Tamper:
        return self

    def __exit__(self, *exc: object) -> None:
        self.log.write_bytes(self.saved[0])
        self.head.write_bytes(self.saved[1])


def test_truncated_log_with_its_head_deleted_is_detected(
    world: World, cli: Callable[..., Any]
) -> None:
    """Cutting the last entries and deleting the head file is caught by the registry anchors."""
    _promote_two(world, "audit-truncate")
    with _Tamper(world) as tamper:
        tamper.write(tamper.lines()[:-1], head=False)
        done = _audit_verify(cli, world)
        assert done.code == 1 and "BROKEN" in done.out and "truncated" in done.out
        assert "tags" in done.out  # names the anchor that caught it
        check = _verify(world, "audit-truncate")
        assert not check.verified and check.code == "audit" and "truncated" in check.reason
        # without the registry the cut is invisible: that is why the anchors exist
        assert _audit_verify(cli, world, "--no-registry").code == 0


def test_log_rewritten_as_a_new_valid_chain_is_detected(
    world: World, cli: Callable[..., Any]
) -> None:
    """A recomputed chain (edited details, fresh hashes, new head) breaks the anchors' hashes."""
    _promote_two(world, "audit-rewrite")
    with _Tamper(world) as tamper:
        entries = [json.loads(line) for line in tamper.lines()]
        entries[0]["details"] = {**entries[0]["details"], "actor": "nobody"}
        prev, forged = "0" * 64, []
        for data in entries:
            entry = AuditEntry(**{**data, "prev_hash": prev, "hash": ""})
            entry = AuditEntry(**{**entry.body(), "hash": entry.computed_hash()})
            forged.append(entry.line().rstrip(b"\n"))
            prev = entry.hash
        tamper.write(forged, head=False)
        done = _audit_verify(cli, world)
        assert done.code == 1 and "rewritten" in done.out
        assert not _verify(world, "audit-rewrite").verified


def test_edited_reordered_and_removed_entries_are_detected(
    world: World, cli: Callable[..., Any]
) -> None:
    """Each of edit, swap and delete-in-the-middle breaks the chain (exit 1, one reason)."""
    _promote_two(world, "audit-edit")
    with _Tamper(world) as tamper:
        lines = tamper.lines()
        edited = json.loads(lines[0])
        edited["details"]["version"] = "99"
        attacks = {
            "edited": [json.dumps(edited, sort_keys=True).encode(), *lines[1:]],
            "reordered": [lines[1], lines[0], *lines[2:]],
            "removed": [lines[0], *lines[2:]],
        }
        for name, forged in attacks.items():
            tamper.write(forged)
            done = _audit_verify(cli, world, "--no-registry")
            assert done.code == 1 and "BROKEN" in done.out, name


def test_trailing_blank_line_is_not_corruption(world: World, cli: Callable[..., Any]) -> None:
    """An editor's trailing newline/blank line neither breaks verify nor blocks promotions."""
    _promote_two(world, "audit-blank")
    path = local_log_path(world.audit.uri)
    path.write_bytes(path.read_bytes() + b"\n  \n")
    assert _audit_verify(cli, world).code == 0
    candidate = new_version(world, "audit-blank", 62)
    result, _ = run_promotion(world, candidate, "run-audit-blank-2")
    assert result.verdict is Verdict.PASS, result.message
    assert _audit_verify(cli, world).code == 0
    assert _verify(world, "audit-blank").verified


def test_refusal_entry_cannot_be_dropped_between_two_promotions(world: World) -> None:
    """Deleting a refusal from the middle breaks the chain even with the head file gone."""
    name = "audit-refusal"
    _promote_two(world, name)
    candidate = new_version(world, name, 63)
    refused, _ = run_promotion(
        world, candidate, "run-refused", verdicts={"dependency_audit": "fail"}
    )
    assert refused.verdict is Verdict.FAIL
    _promote_two(world, name)
    with _Tamper(world) as tamper:
        lines = tamper.lines()
        kinds = [json.loads(line)["kind"] for line in lines]
        at = max(i for i, k in enumerate(kinds) if k == "refusal")
        tamper.write([*lines[:at], *lines[at + 1 :]], head=False)
        report = world.audit.verify()
        assert not report.ok and "line" in report.problem
