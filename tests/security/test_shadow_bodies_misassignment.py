"""Attack: in a batch of raw request bodies scored by the shadow's process
(``RequestBodies``: the first alone, plain ones joined into one frame by
``FastFrames.joined``), get rows of one request credited to another, or get a request
predicted differently from how the shadow predicts it alone: requests of different sizes,
formats the direct parser takes or refuses, a bad request or a malformed body among them,
bodies with duplicate keys, the same body repeated, any order.

Proves: each request's logged predictions equal the shadow's predictions for that request
alone (and for the frame the server parses from the same body), a bad body fails only
itself, and permuting a batch permutes its results.
"""

from __future__ import annotations

import json
import random
from typing import Any

import pytest

from mlsecops_provider.core.serving.isolated import RequestBodies
from mlsecops_provider.core.serving.loading import ServedModel
from tests.security._shadow_bodies import (
    body,
    child_predict,
    regression_model,
    request_rows,
    server_view,
)

PLAIN = ["records", "split", "split_index"]
OTHER = ["split_text_index", "split_reordered", "instances", "inputs", "records_float_age"]


@pytest.fixture(scope="module")
def shadow(tmp_path_factory: pytest.TempPathFactory) -> ServedModel:
    return regression_model(tmp_path_factory.mktemp("shadow-bodies") / "model")


def _scorer(model: ServedModel) -> RequestBodies:
    return RequestBodies(model.input_schema, model.pyfunc.loader_module, model.pyfunc)


def _alone(scorer: RequestBodies, model: ServedModel, raw: bytes) -> list[str] | str:
    results, _ = scorer.score([raw], child_predict(model))
    return results[0]


def _batch(formats: list[str], seed: int) -> list[bytes]:
    rng = random.Random(seed)
    return [body(f, request_rows(rng.randint(1, 6), seed * 100 + i)) for i, f in enumerate(formats)]


@pytest.mark.parametrize(
    "formats",
    [
        PLAIN * 4,  # all joined
        ["inputs", *PLAIN * 3],  # the first is not plain, the rest joined
        [*PLAIN, "split_text_index", *PLAIN],  # one not plain: one by one
        OTHER + PLAIN,
        ["records"] * 2,  # too few to join
    ],
)
def test_each_request_gets_its_own_predictions(shadow: ServedModel, formats: list[str]) -> None:
    """Joined or one by one, request i is credited exactly its own rows' predictions."""
    scorer = _scorer(shadow)
    assert scorer.fast.enabled
    bodies = _batch(formats, seed=len(formats))
    results, _ = scorer.score(bodies, child_predict(shadow))
    assert len(results) == len(bodies)
    for raw, result in zip(bodies, results, strict=True):
        assert result == _alone(scorer, shadow, raw) == server_view(shadow, raw)
    flat = [v for r in results for v in r]
    assert len(set(flat)) == len(flat)  # every row distinct: a shifted slice would show


def test_permuting_a_batch_permutes_its_results(shadow: ServedModel) -> None:
    """Order-independence: a shuffled batch gives the same result per request."""
    scorer = _scorer(shadow)
    bodies = _batch(PLAIN * 5, seed=3)
    base = dict(zip(bodies, scorer.score(bodies, child_predict(shadow))[0], strict=True))
    for seed in range(4):
        shuffled = list(bodies)
        random.Random(seed).shuffle(shuffled)
        results, _ = scorer.score(shuffled, child_predict(shadow))
        assert results == [base[b] for b in shuffled]


@pytest.mark.parametrize("bad_at", [0, 1, 3, 5])
def test_a_bad_or_malformed_body_fails_only_itself(shadow: ServedModel, bad_at: int) -> None:
    """A value the schema refuses, a malformed body, an empty table: errors (strings) for
    those requests only; the others keep their own predictions."""
    scorer = _scorer(shadow)
    bodies = _batch(PLAIN * 2, seed=9)
    bad = [
        json.dumps({"dataframe_records": [{"age": "old", "income": 1.0, "segment": "a"}]}),
        "{not json",
        json.dumps({"dataframe_records": []}),
        json.dumps({"dataframe_split": {"columns": ["age", "income", "segment"], "data": [[1]]}}),
    ]
    for attack in bad:
        batch = list(bodies)
        batch[bad_at] = attack.encode()
        results, _ = scorer.score(batch, child_predict(shadow))
        assert isinstance(results[bad_at], str)
        for i, raw in enumerate(batch):
            if i != bad_at:
                assert results[i] == _alone(scorer, shadow, raw)


def test_duplicate_keys_and_repeats_parse_as_the_server_parses(shadow: ServedModel) -> None:
    """A body with two ``dataframe_records`` keys (JSON keeps the last, as the server) and the
    same body several times in one batch: each scored as the server parsed it."""
    scorer = _scorer(shadow)
    first, second = request_rows(2, 1), request_rows(3, 2)
    twice = (
        '{"dataframe_records": ' + json.dumps(first) + ', "dataframe_records": '
        + json.dumps(second) + "}"
    ).encode()  # fmt: skip
    plain = body("records", request_rows(4, 3))
    batch = [plain, twice, plain, twice, twice, plain]
    results, _ = scorer.score(batch, child_predict(shadow))
    want: dict[bytes, Any] = {plain: server_view(shadow, plain), twice: server_view(shadow, twice)}
    assert want[twice] is not None and len(want[twice]) == 3  # the last key's rows
    assert results == [want[b] for b in batch]
