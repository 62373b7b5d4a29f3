"""Compatibility shim, installed as ``sitecustomize`` on the Airflow components' PYTHONPATH.

apache-airflow-providers-celery 3.26.0 (the newest) imports ``retry`` from
``celery.backends.database``, which celery 5.7.0 removed: with the versions pinned in
constraints.txt the CeleryExecutor cannot even be imported. Until the pins agree (celery
5.6.x, or a provider release for 5.7), this puts back celery 5.6's decorator (retry a
database operation up to three times). With a celery that has ``retry`` it does nothing.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any


def _install() -> None:
    try:
        import celery.backends.database as database
        from sqlalchemy.exc import DatabaseError, InvalidRequestError
        from sqlalchemy.orm.exc import StaleDataError
    except ImportError:
        return
    if hasattr(database, "retry"):
        return
    errors = (DatabaseError, InvalidRequestError, StaleDataError)
    log = logging.getLogger("celery.backends.database")

    def retry(fun: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fun)
        def _inner(*args: Any, **kwargs: Any) -> Any:
            max_retries = kwargs.pop("max_retries", 3)
            for retries in range(max_retries):
                try:
                    return fun(*args, **kwargs)
                except errors:
                    log.warning("Failed operation %s, %d retries left", fun.__name__,
                                max_retries - retries - 1, exc_info=True)  # fmt: skip
                    if retries + 1 >= max_retries:
                        raise
            return None

        return _inner

    database.retry = retry  # type: ignore[attr-defined]


_install()
