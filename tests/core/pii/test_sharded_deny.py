"""The deny list as keyed digests matches exactly what the list in clear matches."""

from __future__ import annotations

import pytest

from mlsecops_provider.core.errors import ConfigError
from mlsecops_provider.core.pii.names import DenyDigests, DenySet, NameRules

NAMES = ["Quinn Zorblatt", "Ida Wendelgast", "O'Neil-Brady", "li", "JOHN SMITH", "Mary-Kate Ash"]
TEXTS = [
    "per zorblatt the account is fine",
    "thanks wendelgast for the help",
    "Spoke with Ida about it; Zorblatt's note is attached",
    "li said john smith and mary-kate would call",
    "Nothing to see here, Mr. Unknown Person.",
    "o'neil-brady paid; quinn too",
]
KEY = b"deny-list-test-key-0123456789abcd"


def _rules(table: DenySet | DenyDigests) -> NameRules:
    return NameRules(dictionary=frozenset({"the", "account", "is", "fine", "help"}), table=table)


def test_digests_match_what_the_clear_list_matches() -> None:
    """Same spans and same whole-value hits with digests as with the words in clear."""
    clear = DenySet()
    clear.add(NAMES)
    digests = DenyDigests.build(KEY, clear.words, clear.values)
    for text in TEXTS:
        assert _rules(digests).find(text) == _rules(clear).find(text), text
    for value in [*NAMES, "quinn  zorblatt", "Someone Else"]:
        assert _rules(digests).is_value(value) == _rules(clear).is_value(value), value
    assert _rules(digests).find(TEXTS[0])  # the deny list is what catches it
    assert not NameRules(dictionary=_rules(clear).dictionary).find(TEXTS[0])


def test_digests_hold_no_word_and_depend_on_the_key() -> None:
    """No word in clear in the digests; another key gives other digests (no match)."""
    clear = DenySet()
    clear.add(NAMES)
    digests = DenyDigests.build(KEY, clear.words, clear.values)
    dumped = " ".join(sorted(digests.words | digests.values))
    assert not [w for w in clear.words if w in dumped]
    other = DenyDigests.build(b"another-key-0123456789abcdefghij", clear.words, clear.values)
    assert not digests.words & other.words
    assert DenyDigests(other.key, digests.words, digests.values).has_word("zorblatt") is False


def test_a_plan_refuses_another_key() -> None:
    """A shard task with a key other than the plan's is refused, not run with a deny list
    that would silently match nothing."""
    from mlsecops_provider.core.pii.gate import PIIConfig, config_summary
    from mlsecops_provider.core.pii.names import digest_key, keyed_digest
    from mlsecops_provider.core.pii.shard_plan import KEY_CHECK, ShardPlan

    config = PIIConfig(seed=1)
    plan = ShardPlan({"key_check": keyed_digest(digest_key(KEY), "k", KEY_CHECK),
                      "policy": config_summary(config), "deny": None})  # fmt: skip
    assert plan.check(KEY, config) is None
    with pytest.raises(ConfigError, match="key differs"):
        plan.check(b"x" * 32, config)
    with pytest.raises(ConfigError, match="pseudonymisation key"):
        plan.check(b"short", config)
