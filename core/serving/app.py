"""The ASGI app: ``POST /invocations`` (MLflow's scoring protocol), ``/health``, ``/metrics``.

Guards run before any model work, cheapest first: bearer token (401), rate limit per client
(429), body size (413), content type (415), JSON and schema (400/422), then the training
profile. A refused request gets one line of JSON (``{"error_code", "message"}``), is counted,
and is never logged as a prediction. Answers carry ``X-Model-Version`` (the version that
answered), ``X-Fallback`` (``true``/``false``), ``X-Fallback-Reason`` and ``X-Request-Id``.
"""

from __future__ import annotations

import hashlib
import logging
import re
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

# at module level: FastAPI resolves the routes' annotations in this module's globals
from fastapi import Request
from fastapi.responses import JSONResponse, Response

from mlsecops_provider.core.serving.fastparse import FastFrames
from mlsecops_provider.core.serving.limits import BearerToken, RateLimiter
from mlsecops_provider.core.serving.protocol import (
    RequestRejected,
    check_content_type,
    parse_request,
)

if TYPE_CHECKING:
    from fastapi import FastAPI

    from mlsecops_provider.core.serving.service import Answer, ServingService

log = logging.getLogger(__name__)
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")
_CODES = {
    400: "BAD_REQUEST", 401: "UNAUTHENTICATED", 413: "REQUEST_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE", 422: "INVALID_PARAMETER_VALUE", 429: "REQUEST_LIMIT_EXCEEDED",
    500: "INTERNAL_ERROR", 503: "TEMPORARILY_UNAVAILABLE",
}  # fmt: skip


def error_response(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    import json

    body = json.dumps(
        {"error_code": _CODES.get(status, "ERROR"), "message": message.splitlines()[0]}
    )
    return Response(body, status_code=status, media_type="application/json", headers=headers)


async def read_limited(request: Request, limit: int) -> bytes:
    """The body, refusing (413) a declared or streamed size over ``limit`` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > limit):
        raise RequestRejected(413, f"the body is larger than {limit} bytes", "too_large")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise RequestRejected(413, f"the body is larger than {limit} bytes", "too_large")
        chunks.append(chunk)
    return b"".join(chunks)


class Guard:
    """The checks before any model work: token, rate, size, content type, parsing."""

    def __init__(self, service: ServingService, token: str | None) -> None:
        self.service = service
        self.bearer = BearerToken(token) if token else None
        self.limiter = RateLimiter(service.config.rate_per_second, service.config.burst)
        champion = service.champion
        self.fast = FastFrames(
            champion.input_schema, getattr(champion.pyfunc, "loader_module", None)
        )

    def client_key(self, request: Request) -> str:
        auth = request.headers.get("authorization")
        if self.bearer is not None and auth:
            return "token:" + hashlib.sha256(auth.encode()).hexdigest()[:16]
        return "addr:" + (request.client.host if request.client else "?")

    async def check(self, request: Request) -> tuple[Any, str, bool, bytes]:
        """The request as a DataFrame, its id, whether the frame is already schema-enforced
        (:class:`FastFrames`) and the raw body; RequestRejected otherwise."""
        if self.bearer is not None and not self.bearer.allows(request.headers.get("authorization")):
            raise RequestRejected(401, "a valid bearer token is required", "unauthenticated")
        if not self.limiter.allow(self.client_key(request)):
            raise RequestRejected(429, "too many requests; slow down", "rate_limited")
        body = await read_limited(request, self.service.config.max_body_bytes)
        check_content_type(request.headers.get("content-type"))
        champion = self.service.champion
        frame, enforced = parse_request(body, champion.input_schema, champion.columns, self.fast)
        given = request.headers.get("x-request-id", "")
        request_id = given if _REQUEST_ID.fullmatch(given) else uuid.uuid4().hex
        return frame, request_id, enforced, body


def refused(service: ServingService, err: RequestRejected) -> Response:
    service.metrics.requests.labels(str(err.status)).inc()
    service.metrics.rejected.labels(err.reason).inc()
    extra = {"WWW-Authenticate": "Bearer"} if err.status == 401 else None
    if err.status == 429:
        extra = {"Retry-After": "1"}
    return error_response(err.status, str(err), extra)


def answered(service: ServingService, answer: Answer, request_id: str, started: float) -> Response:
    service.metrics.requests.labels("200").inc()
    service.metrics.request_latency.observe(time.perf_counter() - started)
    headers = {
        "X-Model-Version": answer.version,
        "X-Fallback": "true" if answer.fallback else "false",
        "X-Request-Id": request_id,
    }
    if answer.fallback:
        headers["X-Fallback-Reason"] = answer.fallback
    return Response(answer.body, status_code=200, media_type="application/json", headers=headers)


def create_app(service: ServingService, token: str | None = None) -> FastAPI:
    """The app around a ready service (started here, closed at shutdown)."""
    from fastapi import FastAPI

    guard = Guard(service, token)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        service.start()
        yield
        service.close()

    app = FastAPI(
        title="mlsecops serve", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None
    )
    service.start()

    @app.post("/invocations")
    async def invocations(request: Request) -> Response:
        started = time.perf_counter()
        try:
            frame, request_id, enforced, body = await guard.check(request)
            answer = await service.answer(frame, request_id, enforced, body)
        except RequestRejected as err:
            return refused(service, err)
        return answered(service, answer, request_id, started)

    @app.get("/health")
    @app.get("/ping")
    async def health() -> JSONResponse:
        return JSONResponse(service.describe())

    @app.get("/metrics")
    async def metrics_endpoint() -> Response:
        data, content_type = service.metrics.exposition()
        return Response(data, media_type=content_type)

    @app.exception_handler(Exception)
    async def unexpected(_: Request, err: Exception) -> Response:
        log.error("unexpected error: %s: %s", type(err).__name__, err)
        service.metrics.requests.labels("500").inc()
        return error_response(500, f"internal error ({type(err).__name__})")

    return app
