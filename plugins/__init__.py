"""The Airflow UI plugin: gate review."""

# `import plugins` from the repository root would load a second copy of every class
if __name__ != "mlsecops_provider.plugins":
    raise ImportError(f"import this package as mlsecops_provider.plugins, not as {__name__}")
