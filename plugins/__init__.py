"""mlsecops_provider package."""
