"""Attack: crash the shadow's process (or the mirror) with request bodies the server accepted,
now that the process parses raw bodies itself: deep nesting in ``params``, huge and
non-finite numbers, unicode and NUL in text, many rows, a batch mixing every format; and get
something other than strings and numbers back into the server from the process.

Proves: the real spawned process answers every accepted body with the predictions the
shadow gives it alone and stays alive; a reply holding anything but strings (predictions,
errors) and a number (CPU seconds) is refused by the parent with RuntimeError.
"""

from __future__ import annotations

import json
import multiprocessing
import threading
from pathlib import Path
from typing import Any

import pytest

from mlsecops_provider.core.serving.isolated import RequestBodies, ShadowProcess
from mlsecops_provider.core.serving.loading import ServedModel
from tests.security._shadow_bodies import (
    body,
    child_predict,
    regression_model,
    request_rows,
    server_view,
)


@pytest.fixture(scope="module")
def shadow(tmp_path_factory: pytest.TempPathFactory) -> ServedModel:
    return regression_model(tmp_path_factory.mktemp("shadow-process") / "model")


def _nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def _attack_bodies() -> list[bytes]:
    rows = request_rows(3, 4)
    names = ["age", "income", "segment"]
    out = [
        body("records", rows),
        (
            '{"dataframe_records": ' + json.dumps(rows) + ', "params": ' + _nested(900) + "}"
        ).encode(),
        json.dumps({"dataframe_records": [{**rows[0], "income": 1e308}]}).encode(),
        json.dumps({"dataframe_records": [{**rows[0], "income": 2**80}]}).encode(),
        b'{"dataframe_records": [{"age": 30, "income": NaN, "segment": "retail"}]}',
        b'{"dataframe_records": [{"age": 30, "income": Infinity, "segment": "retail"}]}',
        json.dumps(
            {"dataframe_records": [{**rows[1], "segment": "\x00\u202e\U0001f600" * 50}]}
        ).encode(),
        json.dumps(
            {"dataframe_split": {"columns": names, "data": [[1, 2.0, "x"]] * 2000}}
        ).encode(),
        body("inputs", rows),
        body("split_text_index", rows),
        body("split", request_rows(5, 8)),
        body("split_index", request_rows(2, 9)),
    ]
    return out


@pytest.mark.slow
def test_the_shadow_process_survives_accepted_bodies(shadow: ServedModel) -> None:
    """Every body the server accepts gets, from the spawned process, the shadow's own
    predictions for it (in process, alone); the process answers again afterwards."""
    assert shadow.files is not None
    bodies = [b for b in _attack_bodies() if server_view(shadow, b) is not None]
    assert len(bodies) >= 9  # most of the attack bodies are accepted by the server
    scorer = RequestBodies(shadow.input_schema, shadow.pyfunc.loader_module, shadow.pyfunc)
    runner = ShadowProcess(shadow.files, "shadow v3")
    try:
        results, cpu = runner.predict_bodies(bodies)
        assert cpu is not None and cpu >= 0
        for raw, result in zip(bodies, results, strict=True):
            alone, _ = scorer.score([raw], child_predict(shadow))
            assert result == alone[0]
        again, _ = runner.predict_bodies(bodies[::-1])
        assert again == results[::-1]
        assert runner._process.is_alive()
    finally:
        runner.close()


class _Alive:
    def is_alive(self) -> bool:
        return True


def _fake_child(reply: bytes) -> ShadowProcess:
    """A ShadowProcess whose other end is a thread answering ``reply`` once."""
    parent, child = multiprocessing.Pipe()

    def answer() -> None:
        child.recv_bytes()
        child.send_bytes(reply)

    threading.Thread(target=answer, daemon=True).start()
    runner = object.__new__(ShadowProcess)
    runner._conn, runner._process = parent, _Alive()  # type: ignore[assignment]
    return runner


@pytest.mark.parametrize(
    "reply",
    [
        {"results": [[{"__reduce__": "os.system"}]], "cpu": 0.1},
        {"results": [[1.5]], "cpu": 0.1},
        {"results": [[["nested"]]], "cpu": 0.1},
        {"results": [None], "cpu": 0.1},
        {"results": [["a"], ["b"]], "cpu": 0.1},  # two answers for one request
        {"results": [], "cpu": 0.1},
        {"results": [["a"]], "cpu": "0.1"},
        {"results": [["a"]], "cpu": [0.1]},
        {"results": {"0": ["a"]}, "cpu": 0.1},
        {"cpu": 0.1},
        {"error": {"nested": ["not", "a", "string"]}},
    ],
)
def test_the_parent_refuses_replies_that_are_not_strings_and_numbers(reply: Any) -> None:
    """Anything but one string list (or error string) per body and a number is refused."""
    runner = _fake_child(json.dumps(reply).encode())
    with pytest.raises(RuntimeError):
        runner.predict_bodies([b"{}"])


@pytest.mark.parametrize("raw", [b"not json", b"[1, 2]", b'"error"', b"[" * 100000 + b"]" * 100000])
def test_an_unparsable_reply_raises_for_the_mirror_to_record(raw: bytes) -> None:
    """A reply that is no JSON object raises (the mirror records an error), never returns."""
    runner = _fake_child(raw)
    with pytest.raises(Exception):  # noqa: B017,PT011 - any error; the mirror catches Exception
        runner.predict_bodies([b"{}"])


def test_a_well_formed_reply_passes_as_strings(tmp_path: Path) -> None:
    """Control: a reply of strings and a number is returned as such."""
    runner = _fake_child(json.dumps({"results": [["1.5"], "ValueError: x"], "cpu": 0.25}).encode())
    assert runner.predict_bodies([b"{}", b"{}"]) == ([["1.5"], "ValueError: x"], 0.25)
