"""Operators that put the security gates into Airflow DAGs."""

# `import operators` from the repository root would load a second copy of every class
if __name__ != "mlsecops_provider.operators":
    raise ImportError(f"import this package as mlsecops_provider.operators, not as {__name__}")
