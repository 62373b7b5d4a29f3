"""NewDatasetTrigger: poll a prefix in the triggerer until a dataset version is not known."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from mlsecops_provider.connections import s3_hook_factory
from mlsecops_provider.core.data.versions import DEFAULT_SUFFIXES, VersionWatcher
from mlsecops_provider.core.errors import MLSecOpsError

CLASSPATH = "mlsecops_provider.sensors.triggers.new_dataset.NewDatasetTrigger"


class NewDatasetTrigger(BaseTrigger):
    """Fire when the newest object under a prefix has a SHA-256 not in ``known_sha256``.

    Listing and hashing are blocking (boto3, file I/O) and run in a thread; the wait between
    polls is ``asyncio.sleep``. The digest of an unchanged object (same URI and ETag) is
    computed once. The event is ``{status: success, uri, sha256, etag}`` or
    ``{status: error, message}``.

    :param prefix_uri: ``file://`` or ``s3://`` prefix (or one object).
    :param known_sha256: digests already trained on (from lineage, read by the sensor).
    :param suffixes: file name suffixes that count as datasets.
    :param aws_conn_id: Airflow AWS connection for ``s3://`` (None: boto3's defaults).
    :param poke_interval: seconds between polls.
    """

    def __init__(
        self,
        *,
        prefix_uri: str,
        known_sha256: Sequence[str] = (),
        suffixes: Sequence[str] = DEFAULT_SUFFIXES,
        aws_conn_id: str | None = None,
        poke_interval: float = 60.0,
    ) -> None:
        super().__init__()
        self.prefix_uri = prefix_uri
        self.known_sha256 = sorted(set(known_sha256))
        self.suffixes = list(suffixes)
        self.aws_conn_id = aws_conn_id
        self.poke_interval = float(poke_interval)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            CLASSPATH,
            {
                "prefix_uri": self.prefix_uri,
                "known_sha256": list(self.known_sha256),
                "suffixes": list(self.suffixes),
                "aws_conn_id": self.aws_conn_id,
                "poke_interval": self.poke_interval,
            },
        )

    def _watcher(self) -> VersionWatcher:
        factory = s3_hook_factory(self.aws_conn_id)
        return VersionWatcher(self.prefix_uri, tuple(self.suffixes), factory)

    async def run(self) -> AsyncIterator[TriggerEvent]:
        watcher = self._watcher()
        known = set(self.known_sha256)
        self.log.info(
            "Watching %s for a dataset version not in %d known", self.prefix_uri, len(known)
        )
        while True:
            try:
                found = await asyncio.to_thread(watcher.check, known)
            except MLSecOpsError as err:
                yield TriggerEvent({"status": "error", "message": f"{type(err).__name__}: {err}"})
                return
            if found is not None:
                yield TriggerEvent({"status": "success", **found.to_xcom(), "etag": found.etag})
                return
            await asyncio.sleep(self.poke_interval)
