"""Attack: a JSON string with an escaped lone surrogate (``"\\ud800"``) in a text column of
a plain request. ``json.loads`` accepts it; pandas' text dtype (pyarrow) cannot encode it.

Proves: in the shadow's process a batch holding such a body is scored one by one (the body
fails alone, the others keep their predictions), and on the server's direct path
``FastFrames.frame`` returns None so MLflow's path answers 422 (it raised
UnicodeEncodeError and the request got a 500 before the fix).
"""

from __future__ import annotations

import json

import pytest

from mlsecops_provider.core.serving.fastparse import FastFrames
from mlsecops_provider.core.serving.isolated import RequestBodies
from mlsecops_provider.core.serving.loading import ServedModel
from mlsecops_provider.core.serving.protocol import RequestRejected, parse_body, parse_request
from tests.security._shadow_bodies import body, child_predict, regression_model, request_rows

SURROGATE = b'{"dataframe_records": [{"age": 30, "income": 1.5, "segment": "\\ud800"}]}'


@pytest.fixture(scope="module")
def shadow(tmp_path_factory: pytest.TempPathFactory) -> ServedModel:
    return regression_model(tmp_path_factory.mktemp("surrogate") / "model")


def test_mlflows_path_refuses_the_surrogate_with_422(shadow: ServedModel) -> None:
    """Control: without the direct parser the body is a 422 (schema) refusal."""
    with pytest.raises(RequestRejected) as caught:
        parse_body(SURROGATE, shadow.input_schema, shadow.columns)
    assert caught.value.status == 422


def test_a_surrogate_body_in_a_shadow_batch_fails_only_itself(shadow: ServedModel) -> None:
    """The joined frame cannot be built; the batch is scored one by one: an error string for
    the surrogate body, each other body its own predictions."""
    scorer = RequestBodies(shadow.input_schema, shadow.pyfunc.loader_module, shadow.pyfunc)
    bodies = [body("records", request_rows(2, s)) for s in range(4)]
    bodies.insert(2, SURROGATE)
    results, _ = scorer.score(bodies, child_predict(shadow))
    assert isinstance(results[2], str)
    for i, raw in enumerate(bodies):
        if i != 2:
            assert results[i] == scorer.score([raw], child_predict(shadow))[0][0]


def test_the_direct_parser_hands_a_surrogate_to_mlflows_path(shadow: ServedModel) -> None:
    """The server's direct parser returns None for it (MLflow's path then refuses: 422)."""
    fast = FastFrames(shadow.input_schema, shadow.pyfunc.loader_module)
    assert fast.enabled
    payload = json.loads(SURROGATE)["dataframe_records"]
    assert fast.frame("dataframe_records", payload) is None
    with pytest.raises(RequestRejected) as caught:
        parse_request(SURROGATE, shadow.input_schema, shadow.columns, fast)
    assert caught.value.status == 422


def test_the_surrogate_survives_json_decoding() -> None:
    """The surrogate survives JSON decoding (the attack's premise)."""
    assert json.loads(SURROGATE)["dataframe_records"][0]["segment"] == "\ud800"
