"""Explainability gate: SHAP attributions per input column, drift from the champion, rules."""
