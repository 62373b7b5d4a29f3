"""A real auth manager with per-DAG permissions, for the gate review's filtering tests.

The simple auth manager grants DAG access by role (and by team, for whole bundles), not per
DAG. This subclass adds a per-user DAG allow-list (``MLSECOPS_TEST_DAG_ACL``, e.g.
``alice=dag_a|dag_b;bob=dag_c``) on top of it; everything else (login, tokens, roles) is the
simple auth manager's own.
"""

from __future__ import annotations

import os
from typing import Any

from airflow.api_fastapi.auth.managers.simple.simple_auth_manager import SimpleAuthManager


def dag_acl() -> dict[str, set[str]]:
    acl: dict[str, set[str]] = {}
    for entry in filter(None, os.environ.get("MLSECOPS_TEST_DAG_ACL", "").split(";")):
        user, _, dags = entry.partition("=")
        acl[user] = set(filter(None, dags.split("|")))
    return acl


class DagListAuthManager(SimpleAuthManager):
    """Simple auth manager whose listed users may read only the DAGs listed for them."""

    def is_authorized_dag(
        self, *, method: Any, user: Any, access_entity: Any = None, details: Any = None
    ) -> bool:
        allowed = dag_acl().get(user.get_name())
        if allowed is not None and (details is None or details.id not in allowed):
            return False
        return super().is_authorized_dag(
            method=method, user=user, access_entity=access_entity, details=details
        )
