"""Start the Textual app with the terminal kept clean (native logs go to Haven's log)."""

from __future__ import annotations

from app.paths import DataPaths
from app.runtime import quiet_terminal
from app.settings import load_settings


def run_tui() -> int:
    paths = DataPaths.discover().ensure()
    quiet_terminal(paths)
    settings = load_settings(paths)
    from app.tui.app import HavenApp

    app = HavenApp(paths, settings)
    try:
        app.run()
    finally:
        app.shutdown()
    return app.return_code or 0
