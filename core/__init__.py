"""Airflow-free library: evidence, storage, lineage and the security gates."""
