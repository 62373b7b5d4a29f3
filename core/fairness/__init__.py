"""Fairness gate: per-group metrics (Fairlearn), disparities with bootstrap intervals, rules."""
