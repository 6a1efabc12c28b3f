"""Haven's log never holds the person's words and never follows a planted link (issue 17,
items 6 and 8)."""

from __future__ import annotations

import logging
import os
import stat

from app.logs import setup_logging
from tests.conftest import PASSPHRASE

SECRET = "my secret words about my brother"


def test_a_logged_error_keeps_its_type_and_place_never_its_text(tmp_path):
    log_file = tmp_path / "logs" / "haven.log"
    setup_logging(log_file)
    log = logging.getLogger("haven.test")

    def template_that_raises(content):  # what a hostile chat template does
        raise ValueError(f"template error: {content}")

    try:
        try:
            template_that_raises(SECRET)
        except ValueError as inner:
            raise RuntimeError(f"generation failed for {SECRET}") from inner
    except RuntimeError:
        log.exception("generation failed")
    for handler in logging.getLogger().handlers:
        handler.flush()
    text = log_file.read_text()
    assert "generation failed" in text
    assert "builtins.ValueError (message not logged)" in text
    assert "builtins.RuntimeError (message not logged)" in text
    assert "template_that_raises" in text  # where it happened is kept
    assert "secret" not in text


async def test_the_app_logs_a_failed_session_end_without_the_persons_words(tmp_path):
    """The app's own last-chance log line on shutdown, with an error that quotes the person."""
    from tests.test_tui import make_app, send, unlock

    home = tmp_path / "home"
    app, _ = make_app(home)
    setup_logging(app.paths.log_file)
    async with app.run_test() as pilot:
        await unlock(pilot)
        await send(pilot, SECRET)

    def end_session():
        raise ValueError(f"could not end: {SECRET}")

    app.companion.end_session = end_session
    app.shutdown()
    for handler in logging.getLogger().handlers:
        handler.flush()
    text = app.paths.log_file.read_text()
    assert "could not end the session cleanly (ValueError)" in text
    assert "secret" not in text


def test_a_symlinked_log_is_not_followed(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("my own file\n")
    os.chmod(victim, 0o644)
    logs = tmp_path / "home" / "logs"
    logs.mkdir(parents=True)
    (logs / "haven.log").symlink_to(victim)
    from tests.conftest import run_haven

    result = run_haven(tmp_path / "home", "journal", "note", "hello")
    assert result.returncode == 0, result.stderr
    assert victim.read_text() == "my own file\n"  # not appended to
    assert stat.S_IMODE(victim.stat().st_mode) == 0o644  # not chmod'ed
    log_file = logs / "haven.log"
    assert not log_file.is_symlink() and log_file.is_file()
    assert stat.S_IMODE(log_file.stat().st_mode) == 0o600
    assert PASSPHRASE not in log_file.read_text()
