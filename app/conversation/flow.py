"""The shape of a session, as a small state machine (testable without a model).

    check-in  ->  focus  ->  work (free talk | thought record | activation | questions)
              ->  closing summary (+ optional between-session step)  ->  closing mood  ->  ended

Nothing is forced: every step can be skipped, the person can start talking at any
point (which moves straight on to the work), and they can leave at any time.
"""

from __future__ import annotations

import copy
import enum


class Step(enum.Enum):
    CHECKIN = "check-in"
    FOCUS = "what to work on"
    WORK = "work"
    CLOSING = "closing summary"
    NEXT_STEP = "between-session step"
    CLOSING_MOOD = "closing mood"
    ENDED = "ended"


class Mode(enum.Enum):
    FREE_TALK = "free_talk"
    THOUGHT_RECORD = "thought_record"
    ACTIVATION = "behavioural_activation"
    SOCRATIC = "socratic"

    @property
    def label(self) -> str:
        return {
            Mode.FREE_TALK: "Just talk",
            Mode.THOUGHT_RECORD: "Work through a thought (thought record)",
            Mode.ACTIVATION: "Plan something small to do (activation)",
            Mode.SOCRATIC: "Look at a thought from other angles",
        }[self]


class FlowError(Exception):
    pass


class SessionFlow:
    def __init__(self) -> None:
        self.step = Step.CHECKIN
        self.mode = Mode.FREE_TALK
        self.mood_before: int | None = None
        self.mood_after: int | None = None
        self.next_step: str | None = None
        self.history: list[Step] = [Step.CHECKIN]
        self._checked_in = False

    def _go(self, step: Step) -> None:
        self.step = step
        self.history.append(step)

    @property
    def ended(self) -> bool:
        return self.step is Step.ENDED

    # ---- events ------------------------------------------------------------------------

    def record_mood(self, score: int) -> str:
        """A mood rating: the check-in at the start, the closing rating at the end."""
        if self.step in (Step.CHECKIN, Step.FOCUS) or (
            self.step is Step.WORK and self.mood_before is None and not self._checked_in
        ):
            self.mood_before = score
            self._checked_in = True
            if self.step is Step.CHECKIN:
                self._go(Step.FOCUS)
            return "before"
        if self.closing:
            self.mood_after = score
            self._go(Step.ENDED)
            return "after"
        raise FlowError("a mood rating fits at the start or the end of a session")

    def skip(self) -> None:
        """Skip the current step."""
        transitions = {
            Step.CHECKIN: Step.FOCUS,
            Step.FOCUS: Step.WORK,
            Step.CLOSING: Step.NEXT_STEP,
            Step.NEXT_STEP: Step.CLOSING_MOOD,
            Step.CLOSING_MOOD: Step.ENDED,
        }
        if self.step in transitions:
            self._go(transitions[self.step])

    def user_message(self) -> None:
        """The person wrote something: whatever the step, the conversation goes on."""
        if self.step in (Step.CHECKIN, Step.FOCUS):
            self._go(Step.WORK)
        elif self.step is Step.ENDED:
            raise FlowError("this session has ended; start a new one")

    @property
    def closing(self) -> bool:
        """The closing steps (summary, step, closing mood) are under way."""
        return self.step in (Step.CLOSING, Step.NEXT_STEP, Step.CLOSING_MOOD)

    def choose_mode(self, mode: Mode) -> bool:
        """Work this way from the next message. Ignored while the session closes (False):
        the closing steps run to their end, and the next session starts with a choice."""
        if self.step is Step.ENDED:
            raise FlowError("this session has ended; start a new one")
        if self.closing:
            return False
        self.mode = mode
        if self.step is not Step.WORK:
            self._go(Step.WORK)
        return True

    def begin_closing(self) -> None:
        if self.step is Step.ENDED:
            return
        self._go(Step.CLOSING)

    def set_next_step(self, text: str | None) -> None:
        if self.step not in (Step.CLOSING, Step.NEXT_STEP):
            raise FlowError("a between-session step is chosen while closing")
        self.next_step = (text or "").strip() or None
        self._go(Step.CLOSING_MOOD)

    def leave(self) -> None:
        """Early exit: end now, whatever the step."""
        if self.step is not Step.ENDED:
            self._go(Step.ENDED)

    def after_message(self) -> SessionFlow:
        """A copy of this flow as it will be once the person's next message arrives (a
        message moves a check-in on to the work): what a prefill before Enter reads, so the
        prompt it evaluates is the one the reply will have (issue 13)."""
        ahead = copy.deepcopy(self)
        if not ahead.ended:
            ahead.user_message()
        return ahead

    # ---- what the model should be doing ----------------------------------------------------

    def technique(self) -> str | None:
        """The technique prompt (``prompts/techniques/<name>.md``) for this moment, if any."""
        if self.step in (Step.CHECKIN, Step.FOCUS):
            return "checkin" if self._checked_in else None
        if self.step is Step.WORK:
            return None if self.mode is Mode.FREE_TALK else self.mode.value
        if self.step is Step.CLOSING:
            return "closing_summary"
        if self.step is Step.NEXT_STEP:
            return "between_session"
        return None
