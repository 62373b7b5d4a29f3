"""airflow-provider-mlsecops: security gates for ML training pipelines on Apache Airflow 3."""

__version__ = "0.1.0"
