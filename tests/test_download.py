"""Downloads through the real huggingface_hub client against a fake hub on 127.0.0.1."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import pytest

from tests.conftest import ROOT, haven_env, run_haven
from tests.fake_hub import FakeHub
from tests.gguf_factory import make_gguf

REPO, FILE = "haven-test/tiny-GGUF", "tiny-q4_k_m.gguf"
DATA = make_gguf(tensors=(("big", (768, 1024)), ("out", (64, 64))), template="{{ x }}")  # ~3 MB


@pytest.fixture
def hub():
    with FakeHub() as running:
        yield running


def hub_env(home, hub_url: str, **extra):
    env = haven_env(home, HF_ENDPOINT=hub_url)
    env.pop("HF_HUB_OFFLINE", None)
    env.update(extra)
    return env


def installed(home) -> list[dict]:
    path = home / "models" / "installed.json"
    return json.loads(path.read_text())["models"] if path.exists() else []


def model_file(home, name: str | None = None):
    """The installed file of a model (the only one, or the one called ``name``)."""
    models = installed(home)
    found = [m for m in models if name is None or m["name"] == name]
    assert len(found) == 1, models
    return home / "models" / found[0]["file"]


def gets(hub) -> list[dict]:
    return [r for r in hub.requests if r["method"] == "GET"]


def test_download_shows_progress_verifies_and_sends_no_token(tmp_path, hub):
    home = tmp_path / "home"
    hub.add(REPO, FILE, DATA)
    result = run_haven(home, "models", "download", "--no-prepare", f"{REPO}:{FILE}",
                       env=hub_env(home, hub.url, HF_TOKEN="hf_secret_should_not_be_sent"))
    assert result.returncode == 0, result.stderr
    assert "MB/s" in result.stderr and "ETA" in result.stderr and "verifying sha256" in result.stderr
    assert "sha256 verified" in result.stdout
    assert model_file(home).read_bytes() == DATA
    assert [m["name"] for m in installed(home)] == ["tiny-q4_k_m"]
    table = run_haven(home, "models", "list").stdout
    row = next(line for line in table.splitlines() if "tiny-q4_k_m" in line)
    assert " downloaded" in row and "not downloaded" not in row
    assert not list((home / "models" / ".downloads").glob("*"))
    for request in hub.requests:
        assert "Authorization" not in request["headers"]
        assert "telemetry" not in request["path"]


def test_a_dropped_connection_is_resumed_not_restarted(tmp_path, hub):
    home = tmp_path / "home"
    hub.add(REPO, FILE, DATA, cut_after=[1_600_000])
    result = run_haven(home, "models", "download", "--no-prepare",
                       f"{REPO}:{FILE}", env=hub_env(home, hub.url))
    assert result.returncode == 0, result.stderr
    ranges = [g["headers"].get("Range") for g in gets(hub)]
    assert ranges[0] is None
    assert ranges[1] == "bytes=1048576-"  # from the last whole 1 MiB chunk written, not 0
    assert model_file(home).read_bytes() == DATA


def test_ctrl_c_leaves_a_partial_that_the_next_run_resumes(tmp_path, hub):
    home = tmp_path / "home"
    hosted = hub.add(REPO, FILE, DATA, stall_after=1_500_000)
    child = subprocess.Popen(
        [sys.executable, "-m", "app", "models", "download", "--no-prepare", f"{REPO}:{FILE}"], cwd=ROOT,
        env=hub_env(home, hub.url), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        # a test run started in the background inherits SIGINT ignored; a person's Ctrl-C is not
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    assert hosted.stalled.wait(60), "the download never started"
    downloads = home / "models" / ".downloads"
    deadline = time.monotonic() + 60  # on a busy machine the first bytes reach disk later
    while time.monotonic() < deadline and not any(
            p.stat().st_size > 0 for p in downloads.glob("*.partial")):
        time.sleep(0.1)
    child.send_signal(signal.SIGINT)
    _, err = child.communicate(timeout=60)
    assert child.returncode == 130
    assert "paused" in err and "Traceback" not in err
    partials = list((home / "models" / ".downloads").glob("*.partial"))
    assert len(partials) == 1 and 0 < partials[0].stat().st_size < len(DATA)
    assert not list((home / "models").glob("*.gguf")), "no half file may pose as a model"
    assert installed(home) == []

    hosted.stall_after = None
    hosted.release.set()
    have = partials[0].stat().st_size
    again = run_haven(home, "models", "download", "--no-prepare",
                      f"{REPO}:{FILE}", env=hub_env(home, hub.url))
    assert again.returncode == 0, again.stderr
    assert f"resumed at {have / 1e6:.1f} MB" in again.stderr
    assert gets(hub)[-1]["headers"].get("Range") == f"bytes={have}-"
    assert model_file(home).read_bytes() == DATA


def test_a_sha256_mismatch_is_refused_and_nothing_is_installed(tmp_path, hub):
    home = tmp_path / "home"
    hub.add(REPO, FILE, DATA, sha256="0" * 64)
    result = run_haven(home, "models", "download", "--no-prepare",
                       f"{REPO}:{FILE}", env=hub_env(home, hub.url))
    assert result.returncode == 2
    assert "does not match the hub's sha256" in result.stderr
    assert "Traceback" not in result.stderr
    assert installed(home) == []
    assert not list((home / "models").rglob("*.gguf"))
    assert not list((home / "models" / ".downloads").glob("*"))


def test_an_unreachable_hub_says_how_to_import_instead(tmp_path):
    home = tmp_path / "home"
    result = run_haven(home, "models", "download", "--no-prepare", f"{REPO}:{FILE}",
                       env=hub_env(home, "http://127.0.0.1:9"))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert "cannot reach the model hub (no connection)" in lines[-1]
    assert "haven models import" in lines[-1]
    assert not lines[-1].startswith("haven: Haven")  # the name once, not twice
    assert "Error" not in lines[-1]  # plain words, never "(ConnectError)"
    assert "Traceback" not in result.stderr


def test_unknown_repo_and_file_get_clear_messages(tmp_path, hub):
    home = tmp_path / "home"
    hub.add(REPO, FILE, DATA)
    missing_repo = run_haven(home, "models", "download", "--no-prepare", "nobody/nothing:x.gguf",
                             env=hub_env(home, hub.url))
    assert missing_repo.returncode == 2 and "no public model repository" in missing_repo.stderr
    missing_file = run_haven(home, "models", "download", "--no-prepare", f"{REPO}:other.gguf",
                             env=hub_env(home, hub.url))
    assert missing_file.returncode == 2 and "has no file" in missing_file.stderr


def test_offline_mode_refuses_to_download(tmp_path, hub):
    home = tmp_path / "home"
    hub.add(REPO, FILE, DATA)
    result = run_haven(home, "models", "download", "--no-prepare", f"{REPO}:{FILE}",
                       env=hub_env(home, hub.url, HF_HUB_OFFLINE="1"))
    assert result.returncode == 2 and "HF_HUB_OFFLINE" in result.stderr
    assert hub.requests == []


def test_a_bad_spec_is_explained(tmp_path):
    result = run_haven(tmp_path / "home", "models", "download", "--no-prepare", "not-a-model")
    assert result.returncode == 2 and "REPO_ID:FILENAME" in result.stderr
