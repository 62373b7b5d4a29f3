"""Sensors for new dataset versions and drift."""

# `import sensors` from the repository root would load a second copy of every class
if __name__ != "mlsecops_provider.sensors":
    raise ImportError(f"import this package as mlsecops_provider.sensors, not as {__name__}")
