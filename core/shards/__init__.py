"""Datasets in shards: split, addressed by URI + digest, checked for a complete cover."""
