"""A hand-written stand-in for the task instance our operators read (no mock.patch)."""

from __future__ import annotations

import uuid
from typing import Any


class FakeTaskInstance:
    """dag_id, run_id, try_number and xcom_push: all our operators use of ``context["ti"]``."""

    def __init__(self, run_id: str | None = None, dag_id: str = "secure_training") -> None:
        self.dag_id = dag_id
        self.run_id = run_id or f"manual__{uuid.uuid4().hex[:8]}"
        self.try_number = 1
        self.xcom: dict[str, Any] = {}

    def xcom_push(self, key: str, value: Any) -> None:
        self.xcom[key] = value
