"""Issue 15: recall from the journal, and the person's patterns (real SQLCipher journals)."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest

from app.insights import MINIMUM, chart, insights, recall, render_text
from app.insights.recall import estimate_tokens
from app.store import Journal
from app.store.records import AutomaticThought, ThoughtRecord
from tests.conftest import PASSPHRASE, run_haven
from tests.month_journal import DAYS, FIRST_DAY, UNRATED, at, rated_days, seed

SAME_THEME = "I have to present the quarterly figures to my team on Friday and I'm dreading it"
UNRELATED = "What's a good recipe for banana bread?"


@pytest.fixture(scope="module")
def month(tmp_path_factory):
    """One journal with a month of entries, shared by the read-only tests below."""
    journal = Journal.create(tmp_path_factory.mktemp("month") / "journal.db", PASSPHRASE)
    ids = seed(journal)
    yield journal, ids
    journal.close()


@pytest.fixture
def fresh(tmp_path):
    journal = Journal.create(tmp_path / "journal.db", PASSPHRASE)
    yield journal
    journal.close()


# ---- recall -------------------------------------------------------------------------------


def test_recall_brings_back_the_thought_record_on_the_same_theme(month):
    journal, ids = month
    found = recall(journal, SAME_THEME)
    recalled = {item.ref_id for item in found.items}
    assert ids["record_presentation"] in recalled
    assert "your thought record of 27 October" in found.labels
    item = next(i for i in found.items if i.ref_id == ids["record_presentation"])
    assert "everyone will see I'm incompetent" in item.text  # the hot thought
    assert "most people will be listening to the figures" in item.text  # the balanced one
    assert found.note_line().startswith("Haven remembered: ")
    assert "your thought record of 27 October" in found.note_line()
    # other themes stay out
    assert ids["record_sister"] not in recalled and ids["record_sleep"] not in recalled


def test_recall_finds_nothing_for_an_unrelated_message(month):
    journal, _ = month
    found = recall(journal, UNRELATED)
    assert not found and found.block == "" and found.note_line() == ""
    assert journal.recall(UNRELATED) == []
    assert not recall(journal, "Thanks, that helps a bit.")


def test_a_session_that_reached_crisis_is_never_recalled(month):
    journal, ids = month
    crisis_ids = {ids["session_14"], ids["record_crisis"]}
    # its words are the closest match there is, and still nothing comes back
    assert recall(journal, "I keep going back to the bridge near the office").items == ()
    for text in (SAME_THEME, "the presentation at work after the bridge",
                 "I stood near the office bridge for a long time after work"):
        hits = journal.recall(text, limit=10)
        assert not crisis_ids & {h.ref_id for h in hits}
        assert not crisis_ids & {i.ref_id for i in recall(journal, text, limit=10).items}


def test_a_crisis_message_recalls_nothing(month):
    journal, _ = month
    text = ("I'm going to kill myself tonight after the presentation of the quarterly figures "
            "at work, I have the pills ready")
    assert journal.recall(text)  # the journal has matches ...
    assert recall(journal, text).items == ()  # ... and Haven brings none of them back
    assert recall(journal, SAME_THEME, risk_level="crisis").items == ()


def test_recall_leaves_out_the_current_session_and_what_the_prompt_already_has(month):
    journal, ids = month
    first = {i.ref_id for i in recall(journal, SAME_THEME).items}
    assert ids["session_1"] in first
    assert ids["session_1"] not in {
        i.ref_id for i in recall(journal, SAME_THEME, session_id=ids["session_1"]).items}
    # the presentation record belongs to session 1 too
    assert ids["record_presentation"] not in {
        i.ref_id for i in recall(journal, SAME_THEME, session_id=ids["session_1"]).items}
    assert ids["session_1"] not in {
        i.ref_id for i in recall(journal, SAME_THEME, exclude_ids={ids["session_1"]}).items}


@pytest.mark.parametrize("budget", [120, 200, 384, 1000])
def test_the_block_stays_within_its_budget(month, budget):
    journal, _ = month
    for text in (SAME_THEME, "My sister hasn't called me back again",
                 "I couldn't sleep again, lying awake at three"):
        found = recall(journal, text, budget=budget)
        assert estimate_tokens(found.block) <= budget
        assert found.tokens == estimate_tokens(found.block)


def test_the_token_estimate_never_under_counts_the_real_tokenizer(month, gemma_gguf):
    from llama_cpp import Llama

    journal, _ = month
    vocab = Llama(model_path=str(gemma_gguf), vocab_only=True, verbose=False)
    for text in (SAME_THEME, "My sister hasn't called me back again",
                 "I couldn't sleep again, lying awake at three"):
        found = recall(journal, text)
        assert found
        real = len(vocab.tokenize(found.block.encode(), add_bos=False, special=False))
        assert real <= found.tokens <= found.budget


def test_the_recall_index_follows_edits_and_deletes(fresh):
    record = fresh.save_thought_record(ThoughtRecord(
        situation="the dentist appointment on Monday",
        automatic_thoughts=[AutomaticThought(text="the dentist will find something awful",
                                             hot=True)],
        balanced_thought="my teeth have been fine for years"))
    message = "I'm nervous about the dentist appointment"
    assert [h.ref_id for h in fresh.recall(message)] == [record.id]
    edited = ThoughtRecord.model_validate({
        **record.model_dump(), "situation": "a job interview on Monday",
        "automatic_thoughts": [{"text": "they will not hire me", "hot": True}],
        "balanced_thought": "I have the experience they want"})
    fresh.save_thought_record(edited)
    assert fresh.recall(message) == []
    assert [h.ref_id for h in fresh.recall("nervous about the job interview")] == [record.id]
    note = fresh.add_note("Walked by the river with the dog this morning")
    assert [h.ref_id for h in fresh.recall("a walk by the river with the dog")] == [note.id]


def test_a_journal_from_before_recall_is_indexed_when_it_is_opened(tmp_path):
    from app.store import schema

    path = tmp_path / "journal.db"
    old = Journal.create(path, PASSPHRASE, version=schema.LATEST_VERSION - 1)
    old.add_note("Walked by the river with the dog this morning")
    old.close()
    journal = Journal.open(path, PASSPHRASE)
    try:
        assert journal.version == schema.LATEST_VERSION
        assert [h.kind for h in journal.recall("a walk by the river with the dog")] == ["note"]
    finally:
        journal.close()


def test_the_recall_index_is_encrypted_on_disk(tmp_path):
    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    journal = Journal.create(home / "journal.db", PASSPHRASE)
    marker = "quokka-tangerine-9931"
    journal.add_note(f"Thinking about {marker} again")
    assert journal.recall(f"the {marker} thing")
    for path in [p for p in home.rglob("*") if p.is_file()]:
        assert marker.encode() not in path.read_bytes(), path
    journal.close()
    for path in [p for p in home.rglob("*") if p.is_file()]:
        assert marker.encode() not in path.read_bytes(), path


# ---- figures --------------------------------------------------------------------------------


def test_the_figures_of_a_month_each_say_what_they_rest_on(month):
    journal, _ = month
    result = insights(journal)
    assert all(f.shown for f in result.figures)
    by = {f.key: f for f in result.figures}
    assert by["mood_by_day"].entries == DAYS - len(UNRATED)
    assert [d.day for d in result.mood_days] == rated_days()
    assert "24 days you rated it" in by["mood_by_day"].text
    sessions = by["mood_sessions"]
    assert sessions.entries == 7 and "over 7 sessions" in sessions.text
    assert sessions.value["change"] == pytest.approx((2 + 1 + 2 + 1 + 0 + 2 + 1) / 7, abs=0.01)
    assert "rose by 1.3" in sessions.text
    traps = by["traps"]
    assert traps.entries == 5 and traps.value["traps"][0]["key"] == "mind_reading"
    assert traps.text.startswith("The thinking traps you spotted most, in 5 thought records: "
                                 "Mind reading (3)")
    belief = by["belief"]
    assert belief.entries == 5
    assert belief.value["hot"] == pytest.approx((85 + 75 + 90 + 95 + 50) / 5)
    assert belief.value["balanced"] == pytest.approx((60 + 65 + 55 + 20 + 70) / 5)
    steps = by["steps"]  # six steps with a session after them; each was asked about
    assert steps.entries == 6 and steps.value == {"planned": 6, "followed_up": 6, "pending": 1}


def test_no_figure_is_shown_from_fewer_than_three_entries(fresh):
    for score in (4, 6):
        session = fresh.start_session(mood_before=score)
        fresh.update_session(session.id, mood_after=score + 1, next_step="a walk",
                             ended=at(0))
        fresh.add_mood(score, session_id=session.id)
    fresh.save_thought_record(ThoughtRecord(
        situation="x", automatic_thoughts=[AutomaticThought(text="y", hot=True, belief=90)],
        balanced_thought="z", balanced_belief=40, distortions=["labelling"]))
    result = insights(fresh)
    assert MINIMUM == 3
    for figure in result.figures:
        assert not figure.shown and figure.value is None and figure.entries < MINIMUM
        assert "not shown yet" in figure.text
    text = render_text(result)
    assert "Nothing to show yet" in text and "┤" not in text  # no chart from two days
    assert "there are 2 so far" in result.figure("mood_sessions").text
    assert "there is 1 so far" in result.figure("traps").text


# ---- the chart --------------------------------------------------------------------------------


def _marked_columns(drawn: str) -> tuple[list[bool], list[str]]:
    lines = drawn.splitlines()
    axis = next(i for i, line in enumerate(lines) if "└" in line)
    plot = lines[axis - 11:axis]
    used = lines[axis].count("─")
    return [any(chart.MARK in row[4 + i: 5 + i] for row in plot) for i in range(used)], lines


@pytest.mark.parametrize("width", [40, 65, 80, 120])
def test_the_chart_draws_a_value_only_on_days_with_ratings(month, width):
    journal, _ = month
    days = insights(journal).mood_days
    drawn = chart.render(days, width)
    marked, lines = _marked_columns(drawn)
    cell = len(marked) // DAYS
    assert cell >= 1 and len(marked) == cell * DAYS
    for day in range(DAYS):
        has_mark = any(marked[day * cell:(day + 1) * cell])
        assert has_mark == (day not in UNRATED), (width, day)
    assert all(len(line) <= width for line in lines)
    # axes: 0 to 10 up the side, dates along the bottom
    assert lines[0].startswith("10 ┤") and lines[10].startswith(" 0 ┤")
    assert lines[-1].lstrip().startswith("25 Oct")
    assert re.search(r"\b\d{1,2} Nov\b", lines[-1])


def test_days_before_the_first_rating_are_empty_not_zero(month):
    journal, _ = month
    days = insights(journal).mood_days
    first = FIRST_DAY - timedelta(days=60)
    values, starts = chart.columns(days, 40, first=first, last=days[-1].day)
    assert len(values) <= 40
    for value, start in zip(values, starts, strict=True):
        if start + timedelta(days=2) < FIRST_DAY:
            assert value is None  # no rating: nothing drawn, never a 0
    drawn = chart.render(days, 45, first=first, last=days[-1].day)
    assert drawn.splitlines()[10].count(chart.MARK) == 0  # nothing at 0 ("very low")


# ---- the command line and the export ---------------------------------------------------------


def test_haven_insights_prints_the_figures(haven_home):
    haven_home.mkdir(mode=0o700)
    journal = Journal.create(haven_home / "journal.db", PASSPHRASE)
    seed(journal)
    journal.close()
    done = run_haven(haven_home, "insights", "--json")
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    by = {f["key"]: f for f in data["figures"]}
    assert set(by) == {"mood_by_day", "mood_sessions", "traps", "belief", "feelings", "steps"}
    assert by["mood_sessions"]["entries"] == 7 and by["mood_sessions"]["shown"]
    assert len(by["mood_by_day"]["value"]["days"]) == DAYS - len(UNRATED)
    text = run_haven(haven_home, "insights", "--width", "80")
    assert text.returncode == 0, text.stderr
    assert "10 ┤" in text.stdout and " 0 ┤" in text.stdout and "25 Oct" in text.stdout
    assert "After talking, your mood rose by 1.3 on average over 7 sessions" in text.stdout
    assert all(len(line) <= 80 for line in text.stdout.splitlines())
    ranged = json.loads(run_haven(haven_home, "insights", "--json", "--since", "2026-11-10")
                        .stdout)
    assert {f["key"]: f["entries"] for f in ranged["figures"]}["mood_sessions"] == 2
    bad = run_haven(haven_home, "insights", "--width", "5")
    assert bad.returncode == 2 and bad.stderr.startswith("haven: ")


def test_haven_insights_without_a_journal_is_one_line(haven_home):
    done = run_haven(haven_home, "insights")
    assert done.returncode == 2 and done.stderr.startswith("haven: ")
    assert len(done.stderr.strip().splitlines()) == 1


def test_the_export_carries_the_figures(month):
    from app.export.document import collect, parse, render, to_markdown

    journal, _ = month
    doc = collect(journal, None, None)
    md = to_markdown(doc)
    assert "## Insights" in md
    assert "After talking, your mood rose by 1.3 on average over 7 sessions" in md
    assert "Mind reading (3)" in md and "10 ┤" in md
    assert parse(render(doc, "both")).model_dump() == doc.model_dump()


# ---- Haven's words ----------------------------------------------------------------------------


def test_the_words_are_checked_when_loaded(tmp_path):
    import shutil

    from app.insights.words import Words, WordsError
    from app.resources import prompts_dir

    folder = tmp_path / "prompts"
    shutil.copytree(prompts_dir(), folder)
    Words(folder)  # the shipped files load
    words_file = folder / "insights.toml"
    good = words_file.read_text(encoding="utf-8")
    words_file.write_text(good.replace("your thought record of $date",
                                       "your thought record of $when"), encoding="utf-8")
    with pytest.raises(WordsError, match=r"recall.thought_record.*unknown placeholders: when"):
        Words(folder)
    words_file.write_text(good.replace('title = "Your patterns"\n', ""), encoding="utf-8")
    with pytest.raises(WordsError, match="insights.title"):
        Words(folder)
    words_file.write_text(good, encoding="utf-8")
    (folder / "memory_recall.md").write_text("", encoding="utf-8")
    with pytest.raises(WordsError, match="memory_recall.md is empty"):
        Words(folder)


def test_haven_insights_with_broken_words_is_one_line(haven_home, monkeypatch, tmp_path,
                                                      capsys):
    import shutil

    from app.resources import prompts_dir

    folder = tmp_path / "prompts"
    shutil.copytree(prompts_dir(), folder)
    (folder / "insights.toml").write_text("[recall]\n", encoding="utf-8")
    from app.cli.main import main
    from app.insights import words as words_module

    words_module.words.cache_clear()
    monkeypatch.setattr("app.resources.prompts_dir", lambda: folder)
    try:
        code = main(["insights"])
    finally:
        words_module.words.cache_clear()
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("haven: ") and "insights.toml" in err
    assert len(err.strip().splitlines()) == 1


def test_what_the_person_types_is_never_search_syntax(fresh):
    fresh.add_note("walking the dog near the river")
    for text in ('"', "NEAR(dog river)", "dog* OR river:", "river' AND dog", "", "  ",
                 "🙂 dog river", "dog river)) --"):
        found = fresh.recall(text)  # never an FTS5 syntax error
        assert [h.kind for h in found] == (["note"] if "dog" in text else [])
