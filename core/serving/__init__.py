"""Serving: the guarded champion endpoint, shadow mirroring, fallback and the prediction log."""
