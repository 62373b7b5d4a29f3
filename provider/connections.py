"""Airflow connections shared by operators, sensors and triggers: the S3 client factory."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mlsecops_provider.core.errors import ConfigError


def s3_hook_factory(aws_conn_id: str | None) -> Callable[[], Any] | None:
    """A factory for an S3 client through the connection, resolved only when called.

    For triggers: they run in the triggerer's event loop, where the connection is looked up
    in the worker thread that calls the factory.
    """
    if not aws_conn_id:
        return None
    conn_id = aws_conn_id

    def factory() -> Any:
        from airflow.providers.amazon.aws.hooks.s3 import S3Hook

        return S3Hook(aws_conn_id=conn_id).get_conn()

    return factory


def s3_client_factory(aws_conn_id: str | None) -> Callable[[], Any] | None:
    """A factory for an S3 client from an Airflow AWS connection (None: boto3's defaults).

    The connection is checked now, so a missing one is a configuration error of the task.
    """
    if not aws_conn_id:
        return None
    from airflow.sdk import BaseHook
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        BaseHook.get_connection(aws_conn_id)
    except AirflowNotFoundException as err:
        raise ConfigError(f"Airflow connection {aws_conn_id!r} is not defined") from err
    return s3_hook_factory(aws_conn_id)
