"""Loading the risk check before it is needed."""

from __future__ import annotations

from app.safety.assess import assess_risk


def prepare_risk_check() -> None:
    """Load the rules, the model and the encoder, and read one short text, so that the first
    message a person sends is not the one that waits for them (about a third of a second on
    a fast machine). Safe to call from any thread, more than once."""
    assess_risk("Getting ready.")
