"""Assets the DAGs use: policies, expectation suites, the sample-data generator."""

# `import include` from the repository root would load a second copy of every class
if __name__ != "mlsecops_provider.include":
    raise ImportError(f"import this package as mlsecops_provider.include, not as {__name__}")
