"""The risk check's encoder: the shipped encoder is the trained one, reads the same
way in training and in the app, and its failures are loud."""

from __future__ import annotations

import gzip
import json
import time

import pytest

from app.modelhub.registry import sha256_of
from app.safety import assess_risk
from app.safety.classifier import risk_model
from app.safety.encoder import (
    ENCODER_FILE,
    TOKENIZER_FILE,
    EncoderFileError,
    RiskEncoder,
    risk_encoder,
    stack,
)
from scripts.risk_data import training_examples
from scripts.train_risk_encoder import ENCODER_OOF, SETTINGS, TOKENIZER_SHA256, digest


def test_the_shipped_encoder_is_the_one_the_model_was_fitted_with():
    meta = risk_model().meta["encoder"]
    assert meta["weight"] > 0
    assert meta["sha256"] == sha256_of(ENCODER_FILE), (
        "risk_encoder.onnx is not the file the thresholds were chosen for")
    assert sha256_of(TOKENIZER_FILE) == TOKENIZER_SHA256
    with gzip.open(ENCODER_OOF, "rt", encoding="utf-8") as f:
        kept = json.load(f)
    # fails when the training lines or the encoder's code change and nobody re-ran
    # `python scripts/train_risk_model.py`
    assert kept["digest"] == digest(training_examples()), (
        "the encoder is stale: run scripts/train_risk_model.py")
    assert kept["onnx_sha256"] == meta["sha256"]
    assert {k: meta[k] for k in SETTINGS} == SETTINGS


def test_it_reads_the_ends_of_a_long_text_and_the_same_text_the_same_way():
    encoder = risk_encoder(risk_model().encoder_tokens)
    short = encoder.ids("i can't do this anymore")
    assert short[0] == encoder.tokenizer.token_to_id("[CLS]")
    assert short[-1] == encoder.tokenizer.token_to_id("[SEP]")
    pasted = "ordinary news about the garden. " * 4000 + "tonight i am going to take all of them"
    ids = encoder.ids(pasted)
    assert len(ids) == SETTINGS["tokens"]
    assert encoder.tokenizer.decode(ids[-10:-1]).endswith("take all of them")
    first = encoder.read(pasted)
    assert all(encoder.read(pasted) == first for _ in range(3))
    assert 0.0 <= first[1] <= 1.0 and 0.0 <= first[0] <= 1.0


def test_the_encoder_moves_the_reading_but_never_decides_alone():
    model = risk_model()
    p = (0.9, 0.05, 0.05)
    assert stack(p, (0.99, 0.99), model.stack_weight)[2] > p[2]
    assert stack(p, (0.01, 0.01), model.stack_weight)[2] < p[2]
    # with both readers certain of opposite things, the stacked reading sits between them
    high = stack((0.01, 0.0, 0.99), (0.01, 0.01), model.stack_weight)
    assert 0.01 < high[2] < 0.99


def test_a_model_without_the_encoder_never_loads_it():
    class Refuses:
        def read(self, text: str):
            raise AssertionError("read without being asked")

    alone = risk_model().without_encoder()
    assert alone.stack_weight == 0
    found = assess_risk("i took 30 of my sleeping pills an hour ago", model=alone, encoder=Refuses())
    assert found.level == "crisis"


def test_a_damaged_encoder_file_is_a_clear_error(tmp_path):
    broken = tmp_path / "risk_encoder.onnx"
    broken.write_bytes(ENCODER_FILE.read_bytes()[:1000])
    with pytest.raises(EncoderFileError, match="risk encoder could not be read"):
        RiskEncoder(broken, TOKENIZER_FILE)
    with pytest.raises(EncoderFileError):
        RiskEncoder(tmp_path / "missing.onnx", TOKENIZER_FILE)


def test_without_the_encoder_the_check_goes_on_at_the_linear_models_own_thresholds(monkeypatch, caplog):
    import app.safety.encoder as encoder_module

    class Refused(encoder_module.RiskEncoder):
        def __init__(self, *args, **kwargs):
            raise EncoderFileError("the risk encoder could not be read: not on this CPU")

    monkeypatch.setattr(encoder_module, "RiskEncoder", Refused)
    with caplog.at_level("ERROR"):
        assert encoder_module.risk_encoder.__wrapped__(64) is None
    assert "the linear model reads alone" in caplog.text

    class Fails:
        def read(self, text: str):
            raise RuntimeError("onnxruntime: bad allocation")

    with caplog.at_level("ERROR"):
        assert encoder_module.encoder_reading("x" * 300, 64, Fails()) is None
    assert "300 characters" in caplog.text and "x" * 20 not in caplog.text  # never the words

    model = risk_model()
    alone = model.without_encoder()
    assert alone.stack_weight == 0
    assert alone.crisis_threshold == model.meta["thresholds_linear_alone"]["crisis"]
    assert model.stack_weight > 0  # the shipped model itself is untouched
    found = assess_risk("i took 30 of my sleeping pills an hour ago", encoder=Fails())
    assert found.level == "crisis"


def test_the_app_decides_as_the_thresholds_were_chosen():
    # train_risk_model.py chose the thresholds on decide(rule level, stack(linear, encoder));
    # the app, with its second thread, must give the same level on every line
    from scripts.train_risk_model import decide

    model = risk_model()
    never = model.without_encoder()
    never.crisis_threshold = never.elevated_threshold = 2.0  # readings only
    encoder = risk_encoder(model.encoder_tokens)
    for example in training_examples()[::97]:
        linear = assess_risk(example.text, model=never)
        stacked = stack(linear.probabilities, encoder.read(example.text), model.stack_weight)
        expected = decide([(linear.level, stacked)], model.crisis_threshold, model.elevated_threshold)
        assert assess_risk(example.text).level == expected, example.text


def test_the_check_is_ready_before_the_first_message(monkeypatch, caplog):
    # the app and `haven chat` load it while the first screen is read or the passphrase
    # typed, so that the first message does not wait a third of a second for it
    import app.conversation.service as service

    risk_model.cache_clear()
    risk_encoder.cache_clear()
    service.prepare_risk_check_early().join(timeout=60)
    assert risk_model.cache_info().currsize == 1
    assert risk_encoder.cache_info().currsize == 1
    assert risk_encoder(risk_model().encoder_tokens) is not None

    def fails() -> None:
        raise RuntimeError("onnxruntime: bad allocation")

    monkeypatch.setattr(service, "prepare_risk_check", fails)
    with caplog.at_level("ERROR"):
        service.prepare_risk_check_early().join(timeout=60)  # logged, never raised
    assert "could not be prepared early" in caplog.text
    assert assess_risk("i took 30 of my sleeping pills an hour ago").level == "crisis"


def test_a_first_message_during_the_early_load_waits_for_it_rather_than_loading_twice(monkeypatch):
    # the early load and a first message can ask for the model and the encoder at the same
    # moment: one load, one copy in memory, the same check for both
    from concurrent.futures import ThreadPoolExecutor

    from app.safety.classifier import RiskModel

    loads: list[int] = []
    real_load = RiskModel.load

    def slow_load(*args, **kwargs):
        loads.append(1)
        time.sleep(0.2)  # a cold disk: the second caller arrives while this one reads
        return real_load(*args, **kwargs)

    monkeypatch.setattr(RiskModel, "load", staticmethod(slow_load))
    risk_model.cache_clear()
    try:
        with ThreadPoolExecutor(2) as pool:
            first, second = pool.map(lambda _: risk_model(), range(2))
        assert first is second
        assert len(loads) == 1
    finally:
        risk_model.cache_clear()
