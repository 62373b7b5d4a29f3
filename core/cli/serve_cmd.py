"""``mlsecops serve``: the champion behind a guarded endpoint, the shadow mirrored.

The champion and the fallback load only after their signed promotion verifies with
``--public-key``; the shadow only with a passing model scan of its exact digest. Anything
that does not verify refuses to start: exit 2 with one line on stderr. Otherwise it serves
until interrupted (exit 0).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from mlsecops_provider.core.errors import ConfigError

EXIT_PASS = 0
POLICY_ENV = "MLSECOPS_POLICY"


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "serve",
        help="serve the verified champion, mirror the shadow, fall back on failure",
        description="POST /invocations in MLflow's scoring protocol, GET /health, GET /metrics. "
        "Refuses to start (exit 2) unless the champion and fallback verify and the shadow "
        "has a passing scan of its digest.",
    )
    parser.add_argument("--registered-model", required=True, metavar="NAME")
    parser.add_argument(
        "--public-key", required=True, metavar="PEM", help="public key file that must verify"
    )
    parser.add_argument("--champion-alias", default="champion", metavar="ALIAS")
    parser.add_argument("--shadow-alias", default="shadow", metavar="ALIAS")
    parser.add_argument("--no-shadow", action="store_true", help="do not load a shadow")
    parser.add_argument("--fallback-alias", default="previous-champion", metavar="ALIAS")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5000)
    parser.add_argument("--log", metavar="URI", help="prediction log (default: evidence store)")
    parser.add_argument("--token-env", metavar="VAR", help="require this bearer token")
    parser.add_argument("--tracking-uri", metavar="URI", help="default: MLFLOW_TRACKING_URI")
    parser.add_argument("--policy", metavar="FILE", help=f"policy YAML (default: ${POLICY_ENV})")
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    from mlsecops_provider.core.policy import load_policy
    from mlsecops_provider.core.serving.app import create_app
    from mlsecops_provider.core.serving.server import ServeOptions, build_service, read_token, run

    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    try:
        key = Path(args.public_key).expanduser().read_bytes()
    except OSError as err:
        raise ConfigError(
            f"public key file {args.public_key}: cannot read ({err.strerror})"
        ) from err
    token = read_token(args.token_env)
    options = ServeOptions(
        registered_model=args.registered_model,
        public_key_pem=key,
        champion_alias=args.champion_alias,
        shadow_alias=None if args.no_shadow else args.shadow_alias,
        fallback_alias=args.fallback_alias,
        log_uri=args.log,
        token_env=args.token_env,
        tracking_uri=args.tracking_uri,
    )
    policy = load_policy(args.policy or os.environ.get(POLICY_ENV) or None)
    service = build_service(options, policy)
    models = service.describe()["models"]
    shown = ", ".join(f"{role} v{m['version']}" for role, m in models.items())
    print(
        f"SERVING {args.registered_model} ({shown}) on http://{args.host}:{args.port}", flush=True
    )
    run(create_app(service, token), args.host, args.port)
    return EXIT_PASS
