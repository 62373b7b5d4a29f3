"""MLflow's scoring protocol: requests parsed and answers formatted by MLflow's own code.

A JSON body holds exactly one of ``dataframe_split``, ``dataframe_records``, ``instances``
or ``inputs`` (and optionally ``params``, which sklearn models ignore). Parsing goes through
``mlflow.pyfunc.scoring_server.infer_and_parse_data`` with the champion's input schema, and
answers through its ``predictions_to_json``: ``{"predictions": [...]}``, the bytes MLflow's
server writes. Error messages are ours: one line, never echoing the request's values.
"""

from __future__ import annotations

import json
from io import StringIO
from typing import TYPE_CHECKING, Any

from mlsecops_provider.core.errors import DataError

if TYPE_CHECKING:
    import pandas as pd

FORMATS = ("dataframe_split", "dataframe_records", "instances", "inputs")
JSON_TYPE = "application/json"


class RequestRejected(DataError):
    """A request the server refuses; ``status`` is the HTTP status to answer with."""

    def __init__(self, status: int, message: str, reason: str = "bad_request") -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason


def check_content_type(content_type: str | None) -> None:
    parts = [p.strip().lower() for p in (content_type or "").split(";")]
    if parts[0] != JSON_TYPE:
        raise RequestRejected(415, f"content type must be {JSON_TYPE}", "content_type")
    for parameter in parts[1:]:
        key, _, value = parameter.partition("=")
        if key.strip() != "charset" or value.strip() not in ("utf-8", "utf8"):
            raise RequestRejected(415, "only charset=utf-8 is supported", "content_type")


def decode_body(body: bytes) -> tuple[str, Any]:
    """The request's format key and its payload; :class:`RequestRejected` (400) otherwise."""
    try:
        decoded = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError) as err:  # RecursionError: nesting
        raise RequestRejected(400, f"malformed JSON ({type(err).__name__})", "malformed") from err
    if not isinstance(decoded, dict):
        raise RequestRejected(400, f"the body must be a JSON object with one of {list(FORMATS)}")
    keys = [k for k in decoded if k in FORMATS]
    if len(keys) != 1:
        raise RequestRejected(400, f"the body must have exactly one of {list(FORMATS)}")
    return keys[0], decoded[keys[0]]


def parse_request(
    body: bytes, input_schema: Any, columns: tuple[str, ...] | None, fast: Any = None
) -> tuple[pd.DataFrame, bool]:
    """The request's DataFrame and whether it is already schema-enforced (``fast``, a
    :class:`~mlsecops_provider.core.serving.fastparse.FastFrames`, built it)."""
    key, payload = decode_body(body)
    if fast is not None:
        frame = fast.frame(key, payload)
        if frame is not None:
            return frame, True
    return parse_payload(key, payload, input_schema, columns), False


def parse_body(body: bytes, input_schema: Any, columns: tuple[str, ...] | None) -> pd.DataFrame:
    """A DataFrame from a scoring request; :class:`RequestRejected` (400/422) otherwise."""
    key, payload = decode_body(body)
    return parse_payload(key, payload, input_schema, columns)


def parse_payload(
    key: str, payload: Any, input_schema: Any, columns: tuple[str, ...] | None
) -> pd.DataFrame:
    """MLflow's ``infer_and_parse_data`` on ``{key: payload}``, as a DataFrame."""
    import pandas as pd
    from mlflow.exceptions import MlflowException
    from mlflow.pyfunc.scoring_server import infer_and_parse_data

    try:
        data = infer_and_parse_data({key: payload}, input_schema)
    except (MlflowException, ValueError, TypeError, KeyError, IndexError, AttributeError) as err:
        raise RequestRejected(
            422, f"{key}: not a table of the model's inputs ({_kind(err)})", "schema"
        ) from err
    if isinstance(data, dict):
        data = _frame_from_dict(data)
    elif not isinstance(data, pd.DataFrame):
        data = _frame_from_array(data, columns)
    if len(data) == 0:
        raise RequestRejected(400, "the request has no rows", "empty")
    return data


def _kind(err: Exception) -> str:
    return "schema mismatch" if "schema" in str(err).lower() else type(err).__name__


def _frame_from_dict(data: dict[str, Any]) -> pd.DataFrame:
    import pandas as pd

    try:
        return pd.DataFrame(data)
    except ValueError:
        try:
            return pd.DataFrame([data])
        except ValueError as err:
            raise RequestRejected(422, "inputs: columns of different lengths", "schema") from err


def _frame_from_array(data: Any, columns: tuple[str, ...] | None) -> pd.DataFrame:
    import numpy as np
    import pandas as pd

    array = np.asarray(data, dtype=object)
    if array.ndim == 1:
        array = array.reshape(1, -1)
    if array.ndim != 2 or columns is None or array.shape[1] != len(columns):
        want = len(columns) if columns else "?"
        raise RequestRejected(422, f"instances: expected rows of {want} values", "schema")
    frame = pd.DataFrame(array, columns=list(columns))
    return frame.infer_objects()


def enforce_schema(
    frame: pd.DataFrame, input_schema: Any, flavor: str | None = None
) -> pd.DataFrame:
    """MLflow's schema enforcement, as its pyfunc applies it (422 on a mismatch)."""
    if input_schema is None:
        return frame
    from mlflow.models.utils import _enforce_schema

    try:
        return _enforce_schema(frame, input_schema, flavor)
    except Exception as err:
        message = str(err).split("\n", 1)[0]
        detail = message.split("Error:", 1)[-1].strip()[:200] if "Error:" in message else ""
        suffix = f": {detail}" if detail and "'" not in detail else ""
        raise RequestRejected(
            422, f"the input does not match the model's schema{suffix}", "schema"
        ) from err


def answer_body(raw: Any) -> tuple[str, list[str]]:
    """MLflow's answer body and each prediction's JSON, from one conversion.

    ``predictions_to_json`` writes ``json.dump({"predictions": obj}, cls=NumpyEncoder)``; for
    a list that is the items' JSON joined by ``", "`` (json's default separator), so the body
    is built from the items (a non-list answer goes through MLflow's function itself).
    """
    from mlflow.utils.proto_json_utils import NumpyEncoder, _get_jsonable_obj

    obj = _get_jsonable_obj(raw, pandas_orient="records")
    if not isinstance(obj, list):
        return predictions_json(raw), [json.dumps(obj, cls=NumpyEncoder)]
    values = [json.dumps(v, cls=NumpyEncoder) for v in obj]
    return '{"predictions": [' + ", ".join(values) + "]}", values


def predictions_json(raw: Any) -> str:
    """The body MLflow's scoring server returns for these predictions."""
    from mlflow.pyfunc.scoring_server import predictions_to_json

    out = StringIO()
    predictions_to_json(raw, out)
    return out.getvalue()
