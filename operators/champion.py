"""BootstrapChampionOperator: the first registered version becomes the champion."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow.sdk import BaseOperator

from mlsecops_provider.core.lineage import LineageRecorder
from mlsecops_provider.core.registry import CHAMPION, alias_version, bootstrap_alias
from mlsecops_provider.core.settings import Settings
from mlsecops_provider.operators._runtime import run_key


class BootstrapChampionOperator(BaseOperator):
    """Give the alias to the model's first version; leave an existing champion untouched.

    A champion, once set, moves only through the promotion gate.

    :param model: the registered model from the training task (``{name, version, ...}``).
    :param alias: the registry alias (default ``champion``).
    :return: ``{name, version, alias, alias_version, moved}``.
    """

    template_fields: Sequence[str] = ("model", "alias")

    def __init__(self, *, model: Any, alias: str = CHAMPION, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.model = model
        self.alias = alias

    def execute(self, context: Any) -> dict[str, Any]:
        settings = Settings.from_env()
        lineage = LineageRecorder(settings)
        name, version = str(self.model["name"]), str(self.model["version"])
        moved = bootstrap_alias(lineage.client, name, version, self.alias)
        current = alias_version(lineage.client, name, self.alias)
        lineage.set_tags(
            lineage.run_for(run_key(context)),
            {
                "mlsecops.champion_bootstrap": "moved" if moved else "kept",
                "mlsecops.champion_version": current,
            },
        )
        self.log.info(
            "%s@%s -> version %s (%s)", name, self.alias, current, "set" if moved else "unchanged"
        )
        return {
            "name": name,
            "version": version,
            "alias": self.alias,
            "alias_version": current,
            "moved": moved,
        }
