"""The Companion's entry points for prefill before Enter (issue 13), on the real 270M GGUF
and a real journal: what the model evaluated is counted in tokens, never timed."""

from __future__ import annotations

import pytest

from app.conversation.companion import Companion
from app.conversation.events import Token
from app.llm import Engine, ModelSpec
from app.settings import GenerationSettings, Settings
from app.store import Journal
from tests.conftest import PASSPHRASE

pytestmark = pytest.mark.model


class Recording(Engine):
    def __init__(self) -> None:
        super().__init__()
        self.chats = []
        self.prefills = []

    def chat(self, request):
        stream = super().chat(request)
        self.chats.append(stream)
        return stream

    def prefill(self, request, draft=""):
        self.prefills.append(draft)
        return super().prefill(request, draft)


@pytest.fixture(scope="module")
def engine(gemma_gguf):
    running = Recording()
    running.load(ModelSpec(gemma_gguf, "gemma", "gemma", n_ctx=2048, threads=2)).result(120)
    yield running
    running.close()


@pytest.fixture
def companion(tmp_path, engine):
    journal = Journal.create(tmp_path / "journal.db", PASSPHRASE)
    settings = Settings(country="GB", generation=GenerationSettings(max_tokens=16, seed=3))
    yield Companion(journal=journal, engine=engine, settings=settings)
    journal.close()


def send(companion, engine, text):
    events = list(companion.send(text))
    assert any(isinstance(e, Token) for e in events)
    return engine.chats[-1].wait(60)


def test_typing_is_prefilled_so_enter_evaluates_only_the_last_words(companion, engine):
    companion.start_session()
    opening = companion.prefill().result(120)  # the system prompt, as soon as the model is up
    assert opening.status == "done" and opening.prompt_tokens > 100
    text = "Work has been a lot this week and I keep replaying one meeting in my head."
    for end in range(10, len(text), 12):  # debounced, while typing
        assert companion.prefill(text[:end]).result(60).status == "done"
    reply = send(companion, engine, text)
    assert reply.prompt_tokens > opening.prompt_tokens
    assert reply.evaluated_prompt_tokens < 16  # the last words and the template's tail
    # after the reply, the history is made ready for the next message
    ready = companion.prepare_next().result(120)
    assert ready.status == "not needed" and ready.prefill.status == "done"
    second = send(companion, engine, "Mostly the part where nobody answered my question.")
    assert second.reused_prompt_tokens >= ready.prompt_tokens - 1
    assert second.evaluated_prompt_tokens < 24


def test_a_flagged_draft_never_reaches_the_model(companion, engine):
    companion.start_session()
    before = len(engine.prefills)
    assert companion.prefill("I want to kill myself tonight, I have the pills") is None
    assert companion.prefill("I feel hopeless and I don't want to be here anymore") is None
    assert len(engine.prefills) == before


def test_the_system_prompt_puts_what_never_changes_first(companion):
    from app.conversation.flow import Mode

    companion.start_session()
    companion.record_mood(4)
    plain = companion.system_prompt()
    companion.choose_mode(Mode.THOUGHT_RECORD)
    with_technique = companion.system_prompt()
    base = companion.prompts.render("companion.md")
    assert plain.startswith(base) and with_technique.startswith(base)
    assert "4 out of 10" in plain.splitlines()[-1]  # the mood, which changes, comes last


def test_the_first_message_after_a_check_in_evaluates_only_its_own_tail(tmp_path, engine):
    """The first message as the app meets it (HavenService → Companion → Engine): the
    session opens, the person checks in with a mood, the model has evaluated the system
    prompt, then they type and press Enter without a pause. Their message moves the check-in
    on to the talk, which changes the system prompt; the prefill already read it as it will
    be, so Enter evaluates the message and the template's closing tokens, nothing before."""
    from app.conversation.service import HavenService
    from app.paths import DataPaths

    paths = DataPaths(tmp_path / "home").ensure()
    journal = Journal.create(paths.journal, PASSPHRASE)
    svc = HavenService(paths, Settings(country="GB", generation=GenerationSettings(
        max_tokens=16, seed=3)), journal, engine_factory=lambda spec: engine, start=False)
    svc.companion.engine = engine
    try:
        svc.new_session()
        svc.record_mood(5)
        ready = svc.prefill().result(120)
        assert ready.status == "done" and ready.prompt_tokens > 100
        text = "Work has been a lot this week and I keep replaying one meeting in my head."
        assert any(isinstance(e, Token) for e in svc.send(text))
        reply = engine.chats[-1].wait(60)
        own = engine.count_tokens(text).result(60)
        assert reply.reused_prompt_tokens >= ready.prompt_tokens
        assert reply.evaluated_prompt_tokens <= own + 8  # its own words and the tail only
    finally:
        svc.companion.engine = None  # the module's engine: closed by its fixture
        svc.shutdown()


def test_only_havens_own_prompt_may_be_kept_on_disk_never_a_persons_words(companion):
    earlier = companion.journal.start_session()
    companion.journal.update_session(earlier.id, ended=earlier.started,
                                     summary="You talked about the allotment and your brother.",
                                     next_step="phone Marek on Sunday")
    companion.start_session()
    request = companion._next_request(companion.session)
    own = companion.prompts.render("companion.md")
    assert "Marek" in request.system  # the memory is in the prompt...
    assert request.system[: request.shared_prefix] == own  # ...and never in the shared part
