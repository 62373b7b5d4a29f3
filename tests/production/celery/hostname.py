"""``[core] hostname_callable`` of the test's Celery workers: each names itself.

Both workers run on one machine, so the FQDN Airflow records as ``ti.hostname`` would be the
same for both; the test gives each worker ``MLSECOPS_CI_HOSTNAME`` and this callable (copied
onto the workers' ``PYTHONPATH`` as ``mlsecops_ci_hostname``) reports it.
"""

from __future__ import annotations

import os
import socket


def task_hostname() -> str:
    return os.environ.get("MLSECOPS_CI_HOSTNAME") or socket.getfqdn()
