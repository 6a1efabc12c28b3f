"""The trained half of the risk check: fresh against its data, consistent, explainable."""

from __future__ import annotations

from app.safety import assess_conversation, assess_risk
from app.safety.classifier import risk_model
from app.safety.features import feature_counts, sentence_counts, sentences
from app.safety.rules import default_rules, feature_hits
from scripts.risk_data import DATA, held_out_examples, read_file, split, training_examples
from scripts.train_risk_model import counts_of, inputs_digest, left_out_together


def test_the_shipped_model_is_trained_on_the_data_in_the_repo():
    # Fails when the data, the features or the rules change and nobody re-ran
    # `python scripts/train_risk_model.py`.
    assert risk_model().meta["inputs_digest"] == inputs_digest(), (
        "app/safety/data/risk_model.npz is stale: run python scripts/train_risk_model.py")


def test_out_of_fold_leaves_a_writers_messages_and_sessions_out_together():
    # one writer's sessions read by a model trained on their messages would flatter it
    assert (left_out_together("retired/h4a_messages.tsv") == left_out_together("retired/h4a_sequences.tsv")
            == left_out_together("retired/h4a_questions.tsv"))
    assert (left_out_together("extra/w_doses_emergencies.tsv")
            == left_out_together("extra/w_doses_emergencies_sequences.tsv"))
    assert left_out_together("retired/h4a_messages.tsv") != left_out_together("retired/h4b_messages.tsv")
    assert left_out_together("corpus/e_sequences.tsv") != left_out_together("extra/e_emergency_danger.tsv")


def test_held_out_lines_are_never_trained_on():
    trained = {" ".join(e.text.lower().split()) for e in training_examples()}
    held_out = held_out_examples()
    assert len(held_out) > 1000
    assert not any(" ".join(e.text.lower().split()) in trained for e in held_out)
    assert {e.source.split("/")[0] for e in held_out} == {"corpus", "extra", "retired", "heldout"}
    # the sets still held out were never trained on, not even a fifth of them
    assert not [e for e in training_examples() if e.source.startswith("heldout/")]
    # the split is fixed by each line's own text: the same on every run and in any order,
    # about one line in five, and adding lines elsewhere never moves a line across it
    lines = read_file(DATA / "corpus" / "a_young.tsv")
    train, test = split(lines)
    again, test_again = split(list(reversed(lines)))
    assert set(train) == set(again) and set(test) == set(test_again)
    assert 0.15 < len(test) / len(lines) < 0.25


def test_run_time_features_are_the_training_features():
    space = risk_model().space
    rules = default_rules()
    for example in training_examples()[:300]:
        norm = rules.normalise(example.text).text
        for start, end in sentences(norm):
            fast = space.sentence_columns(norm[start:end])
            slow = space.columns(sentence_counts(norm[start:end]))
            order = slow[0].argsort()
            assert fast[0].tolist() == slow[0][order].tolist()
            assert fast[1].tolist() == slow[1][order].tolist()
    text = "I took 40 of my tablets. Sorry mum."
    norm = rules.normalise(text)
    hits = feature_hits(rules.hits(norm))
    assert counts_of(text) == feature_counts(norm.text, [(h.rule.id, h.level) for h in hits])


def test_same_input_same_output():
    text = "been saving my tablets in a sock for weeks. friday."
    first = assess_risk(text)
    assert all(assess_risk(text) == first for _ in range(5))


def test_the_model_says_why():
    found = assess_risk("i took the whole box of my mums sleeping tablets an hour ago, getting drowsy")
    assert found.level == "crisis"
    model_evidence = [e for e in found.evidence if e.rule == "model"]
    assert model_evidence and model_evidence[0].features
    assert found.probabilities is not None and found.probabilities[2] > 0.5


def test_wording_the_rules_never_had():
    # The misses issue 11 lists, none of them in the training data.
    for text in [
        "I'm cutting right now",
        "i took like 30 of my sleeping pills an hour ago",
        "Tonight is my last night alive",
        "how many paracetamol would it take to not wake up",
        "planning to ctb on friday. got everything i need.",
        "Just downed a cup of bleach",
    ]:
        assert assess_risk(text).level == "crisis", text
    for text in ["my stepdad hits my little brother and he's drunk right now",
                 "I'm going to kill my sister's boyfriend, I'm going over there now"]:
        assert assess_risk(text).level in ("elevated", "crisis"), text


def test_a_crisis_buried_in_a_long_message_is_found():
    ordinary = ("Work was busy and I had a long meeting about the budget. The kids had football "
                "and we got a takeaway. My sister rang about Christmas plans. ")
    buried = "I have the pills counted out for tonight and I've written my letters. "
    text = ordinary * 6 + buried + ordinary * 6
    assert assess_risk(text).level == "crisis"


def test_a_plan_told_in_pieces_is_a_crisis():
    session = ["I've been saving them.", "about 60 now.", "friday. nobody will be home"]
    assert assess_conversation(session).level == "crisis"
