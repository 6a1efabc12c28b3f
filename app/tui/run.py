"""Start the Textual app with the terminal kept clean (native logs go to Haven's log)."""

from __future__ import annotations

from app.cli.common import Context
from app.runtime import quiet_terminal


def run_tui() -> int:
    ctx = Context()
    quiet_terminal(ctx.paths)
    from app.tui.app import HavenApp

    app = HavenApp(ctx.paths, ctx.settings)
    try:
        app.run()
    finally:
        app.shutdown()
    return app.return_code or 0
