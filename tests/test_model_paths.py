"""Model files stay inside models/, one per repo and file, verified before use (issue 17,
item 4). Downloads go through the real huggingface_hub client against the fake hub."""

from __future__ import annotations

import json

import pytest

from app.modelhub.download import DownloadError, local_file_name, parse_spec
from app.modelhub.registry import ModelRegistry, RegistryError
from app.paths import DataPaths
from app.runtime import selected_model_spec
from app.settings import Settings
from tests.conftest import run_haven
from tests.fake_hub import FakeHub
from tests.gguf_factory import make_gguf
from tests.test_download import hub_env, installed, model_file

ONE = make_gguf(tensors=(("a", (64, 64)),), template="{{ one }}")
TWO = make_gguf(tensors=(("b", (64, 64)),), template="{{ two }}")


@pytest.fixture
def hub():
    with FakeHub() as running:
        yield running


def everything_under(folder) -> set:
    return {p for p in folder.rglob("*")}


def test_a_download_name_cannot_climb_out_of_the_models_folder(tmp_path, hub):
    home = tmp_path / "a" / "b" / "home"
    hub.add("org/repo", "../../../x.gguf", ONE)
    hub.add("org/repo", "/etc/x.gguf", ONE)
    for spec in ("org/repo:../../../x.gguf", "org/repo:sub/../../x.gguf", "org/repo:/etc/x.gguf",
                 "org/../repo:x.gguf", "org/repo:sub\\..\\x.gguf"):
        result = run_haven(home, "models", "download", "--no-prepare", spec, env=hub_env(home, hub.url))
        assert result.returncode == 2, (spec, result.stderr)
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert "sha256 verified" not in result.stdout
    assert not [p for p in tmp_path.rglob("*.gguf")]
    assert installed(home) == []
    assert not [r for r in hub.requests if r["method"] == "GET"]


def test_a_file_in_a_repo_folder_downloads_into_one_flat_name(tmp_path, hub):
    home = tmp_path / "home"
    hub.add("org/repo", "sub/dir/model.gguf", ONE)
    result = run_haven(home, "models", "download", "--no-prepare", "org/repo:sub/dir/model.gguf",
                       env=hub_env(home, hub.url))
    assert result.returncode == 0, result.stderr
    path = model_file(home)
    assert path.parent == home / "models" and path.read_bytes() == ONE
    assert [m["name"] for m in installed(home)] == ["model"]
    assert not list((home / "models" / ".downloads").glob("*"))


def test_two_repos_with_one_file_name_keep_their_own_bytes(tmp_path, hub):
    home = tmp_path / "home"
    hub.add("alice/models", "model-q4.gguf", ONE)
    hub.add("mallory/models", "model-q4.gguf", TWO)
    env = hub_env(home, hub.url)
    assert run_haven(home, "models", "download", "--no-prepare",
                     "alice/models:model-q4.gguf", "--name", "one",
                     env=env).returncode == 0
    assert run_haven(home, "models", "download", "--no-prepare",
                     "mallory/models:model-q4.gguf", "--name", "two",
                     env=env).returncode == 0
    assert model_file(home, "one") != model_file(home, "two")
    assert model_file(home, "one").read_bytes() == ONE  # not overwritten by the second repo
    assert model_file(home, "two").read_bytes() == TWO
    paths = DataPaths(home)
    spec = selected_model_spec(paths, Settings(model="one"))
    assert spec.path.read_bytes() == ONE
    assert local_file_name("a/b", "x.gguf") != local_file_name("a-b", "x.gguf")


def test_download_checks_its_name_as_import_does(tmp_path, hub):
    home = tmp_path / "home"
    hub.add("org/repo", "m.gguf", ONE)
    for bad in ("../evil", "Evil", "a/b", ".hidden", "x" * 65):
        result = run_haven(home, "models", "download", "--no-prepare", "org/repo:m.gguf", "--name", bad,
                           env=hub_env(home, hub.url))
        assert result.returncode == 2 and "not a usable model name" in result.stderr, result.stderr
    assert hub.requests == []  # refused before asking the hub anything
    with pytest.raises(DownloadError):
        parse_spec("org/repo:a//b.gguf")


def test_a_tampered_installed_list_cannot_reach_outside(tmp_path):
    home = tmp_path / "home"
    paths = DataPaths(home).ensure()
    victim = tmp_path / "victim.txt"
    victim.write_text("my file")
    outside = tmp_path / "victim.gguf"
    outside.write_text("my other file")
    entry = {"size": 7, "sha256": "0" * 64, "source": "import"}
    paths.installed_models.write_text(json.dumps({"models": [
        {**entry, "name": "victim", "file": "../../victim.txt"},
        {**entry, "name": "abs", "file": str(outside)},
        {**entry, "name": "up", "file": "../victim.gguf"},
    ]}))
    for name in ("victim", "abs", "up"):
        result = run_haven(home, "models", "remove", name)
        assert result.returncode == 2 and "no installed model" in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
    assert victim.read_text() == "my file" and outside.read_text() == "my other file"
    listed = run_haven(home, "models", "list")
    assert listed.returncode == 0 and "victim" not in listed.stdout


def test_a_model_file_is_verified_before_use(tmp_path, hub):
    home = tmp_path / "home"
    hub.add("org/repo", "m.gguf", ONE)
    assert run_haven(home, "models", "download", "--no-prepare", "org/repo:m.gguf", "--name", "one",
                     env=hub_env(home, hub.url)).returncode == 0
    paths = DataPaths(home)
    registry = ModelRegistry(paths)
    path = model_file(home)
    assert registry.path_of(registry.get("one")) == path  # the file verified at install
    # the same size, other bytes (another model swapped in, or damage)
    path.write_bytes(TWO[: len(ONE)].ljust(len(ONE), b"\0"))
    with pytest.raises(RegistryError, match="does not match its sha256"):
        selected_model_spec(paths, Settings(model="one"))
    used = run_haven(home, "models", "use", "one")
    assert used.returncode == 2 and "does not match its sha256" in used.stderr
    path.write_bytes(ONE)  # put right again: it verifies, and is remembered as verified
    assert selected_model_spec(paths, Settings(model="one")).path == path
    assert registry.get("one").verified is not None
