"""Importing the attack gates, their CLI modules and operators loads no heavy library."""

from __future__ import annotations

import subprocess
import sys


def test_light_import() -> None:
    code = (
        "import sys\n"
        "from mlsecops_provider.core.attacks import backdoor, evasion, gate, privacy, runner\n"
        "from mlsecops_provider.core.cli import adversarial_cmd, backdoor_cmd, privacy_cmd\n"
        "heavy = {'art', 'mlflow', 'sklearn', 'numpy', 'pandas', 'scipy'}\n"
        "assert not heavy & set(sys.modules), heavy & set(sys.modules)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
