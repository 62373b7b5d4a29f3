"""The one contract every ``mlsecops`` subcommand keeps.

- **Exit codes**: 0 the gate passed (or only warned), 1 a gate failed, 2 usage error, bad
  input, or the check could not decide (verdict ``error``; fail closed).
- **Errors** are exactly one line on stderr, ``mlsecops <command>: error: <message>``, and
  no traceback; ``mlsecops --debug`` or ``MLSECOPS_DEBUG=1`` prints the traceback too.
- **Flags** mean the same everywhere: ``--policy FILE`` (default ``MLSECOPS_POLICY``, else
  the shipped policy), ``--report FILE`` (the full JSON report, a path, ``file://`` or
  ``s3://``), ``--label COL`` (the label column of the data), ``--exclude COL`` (a column
  left out of the screens, repeatable), ``--public-key PEM`` (a public key file that must
  verify), ``--json`` (print the compact summary as JSON).

Subcommand modules add their flags with the ``add_*`` helpers here, load the policy with
:func:`load_cli_policy`, write with :func:`write_report` / :func:`write_output` and return
:func:`exit_code` of their verdict.
"""

from __future__ import annotations

import os
import sys

from mlsecops_provider.core.errors import ConfigError

TYPE_CHECKING = False  # not typing's: importing typing costs every command's start-up
if TYPE_CHECKING:
    import argparse  # loaded only where a parser is built: start-up time of light commands
    from collections.abc import Iterable
    from typing import Any

    from mlsecops_provider.core.evidence import Verdict
    from mlsecops_provider.core.policy import Policy

EXIT_PASS, EXIT_FAIL, EXIT_ERROR = 0, 1, 2
DEBUG_ENV = "MLSECOPS_DEBUG"
POLICY_ENV = "MLSECOPS_POLICY"

CONTRACT_HELP = f"""\
exit codes (every subcommand):
  {EXIT_PASS}  pass, or warnings only
  {EXIT_FAIL}  a gate failed (the findings are printed)
  {EXIT_ERROR}  usage error, bad input, or could not decide (verdict error): fail closed
errors are one line on stderr; --debug or {DEBUG_ENV}=1 also prints the traceback.
shared flags: --policy FILE (default ${POLICY_ENV}, else the shipped policy),
  --report FILE (JSON report; path, file:// or s3://), --label COL (label column),
  --exclude COL (left out of the screens), --public-key PEM (key that must verify)."""

_VERDICT_EXIT = {"pass": EXIT_PASS, "warn": EXIT_PASS, "fail": EXIT_FAIL}


class UsageError(ConfigError):
    """An argument is wrong (unknown column, out-of-range number): exit 2."""


def exit_code(verdict: Verdict | str) -> int:
    """0 pass/warn, 1 fail, 2 error or anything unknown (fail closed)."""
    return _VERDICT_EXIT.get(str(getattr(verdict, "value", verdict)), EXIT_ERROR)


def debug_enabled(args: argparse.Namespace | None = None) -> bool:
    if args is not None and getattr(args, "debug", False):
        return True
    return os.environ.get(DEBUG_ENV, "").strip().lower() in ("1", "true", "yes")


def one_line(text: str) -> str:
    """The message on one line (library errors, e.g. YAML's, may span several)."""
    return " ".join(str(text).split()) or "unknown error"


def print_error(command: str | None, message: object) -> None:
    prog = f"mlsecops {command}" if command else "mlsecops"
    print(f"{prog}: error: {one_line(str(message))}", file=sys.stderr)


def report_failure(args: argparse.Namespace | None, err: BaseException) -> int:
    """Print ``err`` as one line (plus the traceback in debug mode); return exit code 2."""
    if debug_enabled(args):
        import traceback  # imported when needed: start-up time of every command

        traceback.print_exception(err, file=sys.stderr)
    message = str(err) or type(err).__name__
    from mlsecops_provider.core.errors import MLSecOpsError

    parsing = sys.modules.get("argparse")  # an argparse error implies argparse is loaded
    expected = (MLSecOpsError, parsing.ArgumentTypeError) if parsing else (MLSecOpsError,)
    if not isinstance(err, expected):
        message = f"{type(err).__name__}: {message}"
    print_error(command_name(args), message)
    return EXIT_ERROR


def command_name(args: argparse.Namespace | None) -> str | None:
    if args is None:
        return None
    parts = [getattr(args, "command", None)]
    parts += [v for k, v in sorted(vars(args).items()) if k.endswith("_command") and v]
    return " ".join(str(p) for p in parts if p) or None


# ---------------------------------------------------------------------------- flags


def add_policy(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--policy",
        metavar="FILE",
        help=f"policy YAML (default: ${POLICY_ENV}, else the shipped policy)",
    )


def add_report(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--report", metavar="FILE", help="write the full JSON report here (path or URI)"
    )


def add_json(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print the compact summary as JSON")


def add_label(parser: argparse.ArgumentParser, *, required: bool = False, what: str = "") -> None:
    parser.add_argument(
        "--label",
        required=required,
        metavar="COL",
        help="label column of the data" + (f" ({what})" if what else ""),
    )


def add_exclude(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--exclude",
        action="append",
        default=[],
        metavar="COL",
        help="column left out of the screens (IDs, PII); repeatable",
    )


def add_public_key(parser: argparse.ArgumentParser, *, required: bool = True) -> None:
    parser.add_argument(
        "--public-key", required=required, metavar="PEM", help="public key file that must verify"
    )


def _type_error(message: str) -> Exception:
    """argparse's error for a bad value (argparse is imported only when one is raised)."""
    import argparse

    return argparse.ArgumentTypeError(message)


def rate(text: str) -> float:
    """An argparse type: a fraction in [0, 1]."""
    value = _number(text, float)
    if not 0.0 <= value <= 1.0:
        raise _type_error(f"must be between 0 and 1, got {text}")
    return value


def positive_int(text: str) -> int:
    """An argparse type: an integer of at least 1."""
    value = _number(text, int)
    if value < 1:
        raise _type_error(f"must be at least 1, got {text}")
    return value


def _number(text: str, kind: type[Any]) -> Any:
    try:
        value = kind(text)
    except ValueError:
        raise _type_error(f"not a valid {kind.__name__}: {text!r}") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise _type_error(f"not a finite number: {text!r}")
    return value


# ---------------------------------------------------------------------------- inputs, outputs


def load_cli_policy(path: str | None) -> Policy:
    """``--policy``, else ``MLSECOPS_POLICY``, else the shipped policy (as the operators do)."""
    from mlsecops_provider.core.policy import load_policy

    return load_policy(path or os.environ.get(POLICY_ENV) or None)


def check_columns(
    named: dict[str, Iterable[str | None]], *frames: Any, where: str = "the data"
) -> None:
    """Every column a flag names is in at least one of ``frames``; else a usage error."""
    present: set[str] = set()
    for frame in frames:
        if frame is not None:
            present.update(str(c) for c in frame.columns)
    for flag, columns in named.items():
        missing = [c for c in columns if c and c not in present]
        if missing:
            raise UsageError(
                f"{flag} {', '.join(missing)}: no such column in {where} "
                f"(columns: {', '.join(sorted(present)[:20])})"
            )


def write_output(target: str, data: bytes, content_type: str | None = None) -> str:
    """Write ``data`` to a path, ``file://`` or ``s3://`` URI; return the URI."""
    from mlsecops_provider.core.storage import normalise_uri, storage_for

    uri = normalise_uri(target)
    storage_for(uri).write_bytes(uri, data, content_type)
    return uri


def write_report(target: str | None, payload: Any) -> str | None:
    """``--report``: the payload as sorted, indented JSON (None: nothing written)."""
    if not target:
        return None
    import json

    data = json.dumps(payload, indent=2, sort_keys=True, default=str).encode()
    return write_output(target, data, "application/json")


def gate_report(result: Any, details: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """The report layout every gate subcommand writes: ``{result, details, ...}``."""
    return {"result": result.to_dict(), "details": details, **extra}


def print_summary(result: Any) -> None:
    """``--json``: the GateResult's compact summary."""
    import json

    print(json.dumps(result.summary(), indent=2, sort_keys=True, default=str))


def check_model_uris(args: argparse.Namespace) -> None:
    """Any ``models:/`` or ``runs:/`` argument needs a usable tracking store: check it first."""
    values = [v for v in vars(args).values() if isinstance(v, str)]
    if any(v.startswith(("models:/", "runs:/")) for v in values):
        check_tracking_uri(getattr(args, "tracking_uri", None))


def check_tracking_uri(uri: str | None = None) -> str:
    """The tracking URI, checked before MLflow sees it (a bad sqlite path fails fast)."""
    from mlsecops_provider.core.settings import Settings, check_tracking_uri

    return check_tracking_uri(uri or Settings.from_env().tracking_uri)
