"""Airflow-free library: evidence, storage, lineage and the security gates."""

# `import core` from the repository root would load a second copy of every class
if __name__ != "mlsecops_provider.core":
    raise ImportError(f"import this package as mlsecops_provider.core, not as {__name__}")
