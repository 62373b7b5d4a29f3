"""The answering logic: profile check, champion with timeout, fallback, log and mirror.

:meth:`ServingService.answer` is the only path from a parsed request to an answer. The
champion runs on its own thread pool with a timeout; the fallback on another (a stuck
champion cannot starve it). The answer is the served model's predictions formatted by
MLflow; the log rows and the shadow's work are handed to :class:`ShadowMirror`, which
never blocks.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mlsecops_provider.core.evidence import utcnow
from mlsecops_provider.core.serving.config import ServingConfig
from mlsecops_provider.core.serving.loading import ServedModel
from mlsecops_provider.core.serving.metrics import ServingMetrics
from mlsecops_provider.core.serving.mirror import ShadowMirror
from mlsecops_provider.core.serving.prediction_log import INPUT_PREFIX, PredictionLog
from mlsecops_provider.core.serving.profile import TrainingProfile
from mlsecops_provider.core.serving.protocol import (
    RequestRejected,
    answer_body,
    enforce_schema,
)

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Answer:
    body: str
    version: str
    fallback: str  # "" when the champion answered, else why the fallback did
    rows: int


class ServingService:
    def __init__(
        self,
        champion: ServedModel,
        *,
        fallback: ServedModel | None = None,
        shadow: ServedModel | None = None,
        profile: TrainingProfile | None = None,
        config: ServingConfig | None = None,
        prediction_log: PredictionLog | None = None,
        seed: int | None = None,
        shadow_runner: Any = None,
    ) -> None:
        self.champion, self.fallback, self.shadow = champion, fallback, shadow
        self.profile = profile
        self.config = config or ServingConfig()
        self.log = prediction_log
        self.metrics = ServingMetrics()
        workers = self.config.predict_workers
        self._champion_pool = ThreadPoolExecutor(workers, thread_name_prefix="champion")
        self._fallback_pool = ThreadPoolExecutor(
            max(1, workers // 2), thread_name_prefix="fallback"
        )
        self.mirror = ShadowMirror(
            shadow,
            prediction_log,
            self.metrics,
            sample_rate=self.config.shadow_sample_rate,
            queue_size=self.config.shadow_queue_size,
            seed=seed,
            runner=shadow_runner,
            batch_max=self.config.shadow_batch_max,
            batch_wait_s=self.config.shadow_batch_wait_s,
        )
        self._started = False

    def start(self) -> None:
        if self._started:
            return
        self._started = True
        if self.log is not None:
            self.log.start()
        self.mirror.start()

    def close(self) -> None:
        self.mirror.close()
        if self.log is not None:
            self.log.close()
        self._champion_pool.shutdown(wait=False, cancel_futures=True)
        self._fallback_pool.shutdown(wait=False, cancel_futures=True)

    def describe(self) -> dict[str, Any]:
        models = {m.role: m.describe() for m in (self.champion, self.fallback, self.shadow) if m}
        return {"status": "ok", "models": models, "shadow_queue": self.mirror.queue.qsize()}

    # ------------------------------------------------------------------ checks

    def validate(
        self, frame: pd.DataFrame, enforced: bool = False
    ) -> tuple[pd.DataFrame, Any, dict[str, list[Any]]]:
        """Schema, types and size (RequestRejected); the frame and its out-of-profile mask.

        ``enforced``: the frame is already what MLflow's schema enforcement returns
        (:class:`~mlsecops_provider.core.serving.fastparse.FastFrames` built it).
        """
        if len(frame) > self.config.max_rows:
            raise RequestRejected(
                413, f"at most {self.config.max_rows} rows per request", "too_many_rows"
            )
        check = None
        if self.profile is not None:
            problem, check = self.profile.inspect(frame)
            if problem:
                raise RequestRejected(422, problem, "schema")
        model_input = frame
        if not enforced:
            flavor = getattr(self.champion.pyfunc, "loader_module", None)
            model_input = enforce_schema(frame, self.champion.input_schema, flavor)
        if check is None:
            return model_input, None, {}
        for kind, count in check.violations.items():
            self.metrics.profile_violations.labels(kind).inc(count)
        out = check.out_of_profile
        if out:
            self.metrics.out_of_profile_rows.inc(out)
            if self.config.out_of_profile == "reject":
                kinds = ", ".join(sorted(check.violations))
                raise RequestRejected(
                    422,
                    f"{out} row(s) outside the champion's training profile ({kinds})",
                    "out_of_profile",
                )
        return model_input, check.rows_out if out else None, check.values

    # ------------------------------------------------------------------ answering

    async def answer(
        self,
        frame: pd.DataFrame,
        request_id: str,
        enforced: bool = False,
        request_body: bytes | None = None,
    ) -> Answer:
        model_input, rows_out, checked = self.validate(frame, enforced)
        reason, champion_raw, error = "", None, ""
        champion_ms: tuple[float | None, float | None] = (None, None)
        if rows_out is not None and self.config.out_of_profile == "fallback":
            reason = "out_of_profile"
        else:
            try:
                champion_raw, champion_ms = await self._run(
                    self.champion, model_input, self._champion_pool
                )
            except TimeoutError:
                reason, error = "timeout", "timeout"
            except Exception as err:  # any champion failure is a fallback case
                log.warning(
                    "champion v%s failed: %s: %s", self.champion.version, type(err).__name__, err
                )
                reason, error = "error", type(err).__name__
            if reason and reason not in self.config.fallback_on:
                raise RequestRejected(503, f"the champion failed ({reason})", "champion_failed")
        served, raw = self.champion, champion_raw
        if reason:
            served, raw = await self._fall_back(reason, model_input)
        body, values = answer_body(raw)
        if len(values) != len(frame):
            raise RequestRejected(
                500, f"the model returned {len(values)} predictions for {len(frame)} rows", "model"
            )
        champion_values: list[str | None] = (
            list(values) if served is self.champion else [None] * len(values)
        )
        rows = self._log_rows(
            frame,
            request_id,
            served,
            values,
            champion_values,
            champion_ms,
            error,
            reason,
            rows_out,
            checked,
        )
        self.mirror.submit(model_input, rows, request_body)
        return Answer(body, served.version, reason, len(frame))

    async def _fall_back(self, reason: str, frame: pd.DataFrame) -> tuple[ServedModel, Any]:
        if self.fallback is None:
            raise RequestRejected(
                503, f"the champion failed ({reason}) and there is no fallback", "no_fallback"
            )
        self.metrics.fallbacks.labels(reason).inc()
        try:
            raw, _ = await self._run(self.fallback, frame, self._fallback_pool)
        except Exception as err:
            log.error("fallback v%s failed too: %s", self.fallback.version, type(err).__name__)
            raise RequestRejected(
                503, f"the champion failed ({reason}) and so did the fallback", "fallback_failed"
            ) from err
        return self.fallback, raw

    async def _run(
        self, model: ServedModel, frame: Any, pool: ThreadPoolExecutor
    ) -> tuple[Any, tuple[float, float]]:
        def timed() -> tuple[Any, float, float]:
            started, cpu = time.perf_counter(), time.thread_time()
            raw = model.predict_enforced(frame)
            return raw, time.perf_counter() - started, time.thread_time() - cpu

        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(pool, timed)
        raw, elapsed, cpu = await asyncio.wait_for(future, self.config.champion_timeout_s)
        self.metrics.latency.labels(model.role, model.version).observe(elapsed)
        return raw, (elapsed * 1000.0, cpu * 1000.0)

    def _log_rows(
        self,
        frame: pd.DataFrame,
        request_id: str,
        served: ServedModel,
        values: list[str],
        champion_values: list[str | None],
        champion_ms: tuple[float | None, float | None],
        error: str,
        reason: str,
        rows_out: Any,
        checked: dict[str, list[Any]],
    ) -> list[dict[str, Any]]:
        now = utcnow()
        data = checked or frame.to_dict("list")
        names = sorted(data)
        logged = [c for c in self.config.log_columns if c in frame.columns]
        rows = []
        for i in range(len(frame)):
            record = {name: data[name][i] for name in names}
            digest = hashlib.sha256(
                json.dumps(record, sort_keys=True, default=str).encode()
            ).hexdigest()
            row = {
                "request_id": request_id, "row": i, "time": now, "inputs_sha256": digest,
                "champion_version": self.champion.version, "served_version": served.version,
                "served_prediction": values[i], "champion_prediction": champion_values[i],
                "champion_latency_ms": champion_ms[0], "champion_cpu_ms": champion_ms[1],
                "champion_error": error, "fallback": reason,
                "out_of_profile": bool(rows_out[i]) if rows_out is not None else False,
                "champion_sha256": self.champion.digest,
                "shadow_version": self.shadow.version if self.shadow else None,
                "shadow_sha256": self.shadow.digest if self.shadow else None,
            }  # fmt: skip
            for column in logged:
                row[f"{INPUT_PREFIX}{column}"] = str(frame[column].iloc[i])
            rows.append(row)
        return rows
