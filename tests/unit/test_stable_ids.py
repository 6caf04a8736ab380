"""Deterministic ids are aggregate ids already stored in users' event logs: each kind's id is pinned.

The values were computed by the code before the ids were unified in domain/ids.py and domain/batches.py;
a change here would orphan every stream of that kind.
"""

from __future__ import annotations

from uuid import UUID

import pytest

from domain.ab_testing import SampleBatch, ab_test_id
from domain.batches import batch_id
from domain.costs import training_job_id
from domain.datasets import dataset_stream_id
from domain.evaluations import PredictionBatch, evaluation_stream_id
from domain.examples import ExampleBatch, rating_stream_id
from domain.ids import FT_NAMESPACE, stable_id
from domain.inference import InferenceBatch
from domain.job_specs import job_stream_id
from domain.pricing import CATALOG_ID
from domain.registry import model_id

RECORD_IDS = ["r-2", "r-1", "r-3"]


def test_the_namespace_of_every_id_is_the_one_stored_logs_were_written_with():
    assert FT_NAMESPACE == UUID("6f1c1d3e-2a57-5b7e-9d0b-3c2f4e8a9b10")


@pytest.mark.parametrize(
    ("id_of", "expected"),
    [
        (model_id, "b96b9aa9-ff2e-53d8-a22e-8e0cf878dbfc"),
        (ab_test_id, "7f3479c1-391f-5ff2-97df-044da5bd8e7f"),
        (training_job_id, "4b73bded-8b08-5a4e-91cb-367360cc1d5f"),
        (dataset_stream_id, "ecc6243b-9fe1-5e04-899b-c443ed1d2ddd"),
        (job_stream_id, "e7a0f485-3c19-5098-b7d2-75464d8689e5"),
        (evaluation_stream_id, "7358ffb0-f213-5724-ae94-97dfb2734aa5"),
        (rating_stream_id, "4072c726-22db-59e6-8c87-2070582fbe3b"),
    ],
)
def test_a_natural_key_maps_to_the_id_it_always_had(id_of, expected):
    assert id_of("support-bot") == UUID(expected)


def test_the_price_catalog_keeps_its_singleton_id():
    assert CATALOG_ID == stable_id("price-catalog") == UUID("b4c5959f-a535-54ab-9616-badd3ecb63e3")


def test_an_inference_batch_id_is_the_one_stored_before():
    records = [{"id": i} for i in RECORD_IDS]
    assert InferenceBatch.create_id(records) == UUID("5c469dde-e14f-5553-bfdd-d802f5a5d456")


def test_an_example_batch_id_is_the_one_stored_before():
    examples = [{"example_id": i} for i in RECORD_IDS]
    assert ExampleBatch.create_id(examples) == UUID("25243ba5-6c09-50c4-b846-d03aedd528f7")


def test_a_sample_batch_id_is_the_one_stored_before_and_belongs_to_its_test():
    samples = [{"sample_id": i} for i in RECORD_IDS]
    assert SampleBatch.create_id("checkout-test", samples) == UUID("b45fd8ee-ba70-5eb4-9b37-0cd5133a279f")
    assert SampleBatch.create_id("other-test", samples) != SampleBatch.create_id("checkout-test", samples)


def test_a_prediction_batch_id_is_the_one_stored_before_and_belongs_to_its_evaluation():
    predictions = [{"example_id": i} for i in RECORD_IDS]
    assert PredictionBatch.create_id("eval-1", predictions) == UUID("2e4bf99e-eb9e-5c9e-8c4d-2111a32285bf")


def test_a_batch_id_ignores_the_order_of_its_records_but_not_their_ids():
    assert batch_id("example-batch", ["b", "a"]) == batch_id("example-batch", ["a", "b"])
    assert batch_id("example-batch", ["a", "b"]) != batch_id("example-batch", ["a", "c"])
    assert batch_id("example-batch", ["a"]) != batch_id("inference-batch", ["a"])
