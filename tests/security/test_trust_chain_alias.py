"""Red team, trust chain: an alias must point where the last signed move put it.

The attacker can write the MLflow registry (move aliases, set tags) but holds no signing
key. Every version they point an alias at carries a valid signed record, so only the
alias binding and the audit log can tell a signed move from a hand-made one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from mlsecops_provider.core.evidence import Verdict
from mlsecops_provider.core.promotion.verify import verify_promotion
from mlsecops_provider.core.tracking.registry import alias_version
from tests.core.promotion import test_promotion
from tests.core.promotion.test_promotion import (
    Candidate,
    World,
    new_version,
    run_promotion,
)

world = test_promotion.world  # the module-scoped fixture: MLflow, keys, evidence store


def _verify(world: World, name: str, alias: str, *, audit: bool = True) -> Any:
    return verify_promotion(
        name,
        alias,
        world.keys.public_path.read_bytes(),
        world.settings.tracking_uri,
        audit_log_uri=world.audit.uri if audit else None,
    )


def _cli_verify(cli: Callable[..., Any], world: World, name: str, alias: str, *extra: str) -> Any:
    return cli(
        [
            "verify-promotion",
            "--registered-model",
            name,
            "--alias",
            alias,
            "--public-key",
            world.keys.public_path,
            "--tracking-uri",
            world.settings.tracking_uri,
            "--log",
            world.audit.uri,
            *extra,
        ]
    )


@pytest.fixture()
def three(world: World, request: pytest.FixtureRequest) -> tuple[Candidate, ...]:
    """v1, v2, v3 promoted in turn: champion v3, previous-champion v2."""
    name = f"alias-{request.node.name.removeprefix('test_')[:40]}"
    versions = []
    for i in range(3):
        candidate = new_version(world, name, 40 + i)
        result, _ = run_promotion(world, candidate, f"run-{name}-{i}")
        assert result.verdict is Verdict.PASS, result.message
        versions.append(candidate)
    return tuple(versions)


def test_champion_moved_back_by_hand_fails_naming_the_move(
    world: World, three: tuple[Candidate, ...], cli: Callable[..., Any]
) -> None:
    """An alias moved by hand to an older signed version fails; --no-audit-log is the gap."""
    first, _, third = three
    name = first.name
    assert _verify(world, name, "champion").verified
    world.client.set_registered_model_alias(name, "champion", first.version)
    check = _verify(world, name, "champion")
    assert not check.verified and check.code == "alias_moved"
    assert f"points at v{first.version}" in check.reason and f"to v{third.version}" in check.reason
    done = _cli_verify(cli, world, name, "champion")
    assert done.code == 1 and "FAILED" in done.out and "(alias_moved)" in done.out
    # documented limit: without the audit log the hand-moved alias still verifies
    assert _verify(world, name, "champion", audit=False).verified
    assert _cli_verify(cli, world, name, "champion", "--no-audit-log").code == 0


def test_alias_other_than_the_signed_one_fails(
    world: World, three: tuple[Candidate, ...], cli: Callable[..., Any]
) -> None:
    """A record signed for @champion does not verify under another alias (e.g. @production)."""
    name, version = three[2].name, three[2].version
    world.client.set_registered_model_alias(name, "production", version)
    check = _verify(world, name, "production")
    assert not check.verified and check.code == "wrong_alias"
    assert f"signed record is for {name}@champion, not @production" in check.reason
    assert _cli_verify(cli, world, name, "production", "--no-audit-log").code == 1


def test_previous_champion_verifies_only_as_the_version_the_champion_replaced(
    world: World, three: tuple[Candidate, ...]
) -> None:
    """previous-champion is valid only as the version the champion's signed record replaced."""
    first, second, _ = three
    name = first.name
    assert alias_version(world.client, name, "previous-champion") == second.version
    check = _verify(world, name, "previous-champion")
    assert check.verified, check.reason
    world.client.set_registered_model_alias(name, "previous-champion", first.version)
    check = _verify(world, name, "previous-champion")
    assert not check.verified and check.code == "previous_alias"
    assert f"replaced v{second.version}" in check.reason


def test_rolled_back_champion_and_its_previous_verify_after_a_signed_rollback(
    world: World, three: tuple[Candidate, ...], cli: Callable[..., Any]
) -> None:
    """After a rollback (audited, anchored) champion and previous-champion both verify."""
    first, second, _ = three
    name = first.name
    done = cli(
        [
            "rollback",
            "--registered-model",
            name,
            "--public-key",
            world.keys.public_path,
            "--tracking-uri",
            world.settings.tracking_uri,
            "--log",
            world.audit.uri,
        ]
    )
    assert done.code == 0, done.out + done.err
    assert alias_version(world.client, name, "champion") == second.version
    assert alias_version(world.client, name, "previous-champion") == first.version
    assert _verify(world, name, "champion").verified
    assert _verify(world, name, "previous-champion").verified
    tags = world.client.get_model_version(name, second.version).tags
    assert tags["mlsecops.rollback.audit_seq"] == str(world.audit.entries()[-1].seq)


def test_borrowed_record_tags_fail_on_the_subject(world: World) -> None:
    """Copying a signed version's record tags onto an unsigned version does not verify."""
    from mlsecops_provider.core.promotion.record import PROMOTION_TAGS

    signed = new_version(world, "borrow", 50)
    assert run_promotion(world, signed, "run-borrow")[0].verdict is Verdict.PASS
    unsigned = new_version(world, "borrow", 51)
    tags = world.client.get_model_version("borrow", signed.version).tags
    for tag in (*PROMOTION_TAGS, "mlsecops.promotion.audit_seq", "mlsecops.promotion.audit_hash"):
        world.client.set_model_version_tag("borrow", unsigned.version, tag, tags[tag])
    world.client.set_registered_model_alias("borrow", "champion", unsigned.version)
    check = _verify(world, "borrow", "champion", audit=False)
    assert not check.verified and check.code == "wrong_subject"


def test_hand_move_covered_by_a_forged_audit_entry_fails(
    world: World, three: tuple[Candidate, ...]
) -> None:
    """Registry + evidence-store attacker: a well-chained forged promotion entry is not enough."""
    first, second, third = three
    name = first.name
    tags = world.client.get_model_version(name, first.version).tags
    world.client.set_registered_model_alias(name, "champion", first.version)
    forged = world.audit.append(  # the chain has no key: anyone who can write it can append
        "promotion",
        {
            "registered_model": name,
            "version": first.version,
            "alias": "champion",
            "previous_version": third.version,
            "evidence_uri": tags["mlsecops.promotion.evidence_uri"],
            "evidence_sha256": tags["mlsecops.promotion.evidence_sha256"],
        },
    )
    for tag, value in (("audit_seq", str(forged.seq)), ("audit_hash", forged.hash)):
        world.client.set_model_version_tag(name, first.version, f"mlsecops.promotion.{tag}", value)
    check = _verify(world, name, "champion")
    assert not check.verified and check.code == "audit", check.reason
    assert "not a move the gate made" in check.reason


def test_forged_rollback_entry_to_an_older_version_fails(
    world: World, three: tuple[Candidate, ...]
) -> None:
    """A forged rollback can only claim the champion's own predecessor, never an older one."""
    first, second, third = three
    name = first.name
    world.client.set_registered_model_alias(name, "champion", first.version)
    world.audit.append(
        "rollback",
        {
            "registered_model": name,
            "alias": "champion",
            "from_version": third.version,
            "to_version": first.version,
        },
    )
    check = _verify(world, name, "champion")
    assert not check.verified and check.code == "audit", check.reason
    assert f"replaced v{second.version}" in check.reason
