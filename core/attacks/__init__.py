"""Attacks on a candidate model before it ships: membership inference, evasion, backdoors."""
