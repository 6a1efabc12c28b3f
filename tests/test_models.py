"""The catalog, settings, and `haven models import/list/use/remove`."""

from __future__ import annotations

import json
import os
import stat
import tomllib

import pytest

from app.modelhub.catalog import Catalog, load_catalog
from app.paths import DataPaths
from app.settings import Settings, SettingsError, load_settings, save_settings
from tests.conftest import run_haven
from tests.gguf_factory import make_gguf


def test_catalog_has_a_default_a_small_one_and_enough_models():
    cat = load_catalog()
    assert len(cat.model) >= 5
    assert cat.default.attention == "standard"
    assert cat.for_small_machines.size_mb < cat.default.size_mb
    for entry in cat.model:
        assert entry.repo and entry.file.endswith(".gguf") and entry.licence
        assert entry.min_ram_gb > entry.size_mb / 1024


def test_catalog_rejects_two_defaults(tmp_path):
    data = tomllib.loads((load_catalog.__globals__["resources"].models_dir() / "catalog.toml")
                        .read_text())
    for entry in data["model"]:
        entry["default"] = True
    with pytest.raises(ValueError, match="exactly one model must be marked default"):
        Catalog.model_validate(data)


def test_settings_round_trip_private_and_validated(haven_home):
    paths = DataPaths.discover().ensure()
    settings = load_settings(paths)
    assert settings.threads >= 1 and settings.n_ctx == 4096
    settings.country = "GB"
    settings.generation.temperature = 0.4
    save_settings(paths, settings)
    assert load_settings(paths) == settings
    assert stat.S_IMODE(os.stat(paths.root).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(paths.settings_file).st_mode) == 0o600
    with pytest.raises(ValueError):
        Settings(n_ctx=10)
    paths.settings_file.write_text("n_ctx = 'lots'\n")
    with pytest.raises(SettingsError, match="delete it to start over"):
        load_settings(paths)


def test_import_list_use_remove(tmp_path, gemma_gguf):
    home = tmp_path / "home"
    no_format = run_haven(home, "models", "import", "--no-prepare", str(gemma_gguf))
    assert no_format.returncode == 2 and "--chat-format" in no_format.stderr

    ok = run_haven(home, "models", "import", "--no-prepare", str(gemma_gguf), "--chat-format", "gemma",
                   "--name", "gemma-test")
    assert ok.returncode == 0, ok.stderr
    assert "talk with gemma-test" in ok.stdout
    assert stat.S_IMODE(os.stat(home / "models" / "gemma-test.gguf").st_mode) == 0o600

    listed = json.loads(run_haven(home, "models", "list", "--json").stdout)
    mine = next(r for r in listed if r["name"] == "gemma-test")
    assert mine["installed"] and mine["selected"] and mine["source"] == "import"
    assert any(r["default"] for r in listed) and any(r["small_machines"] for r in listed)
    # In plain words: whether each model's file is on this computer.
    table = run_haven(home, "models", "list").stdout
    rows = {line[2:].split()[0]: line for line in table.splitlines()[1:] if line.strip()}
    assert rows["gemma-test"].startswith("*") and "imported" in rows["gemma-test"]
    catalog_rows = [row for name, row in rows.items() if name != "gemma-test" and " MB " in row]
    assert catalog_rows and all("not downloaded" in row for row in catalog_rows)
    assert "available" not in table and "the model Haven talks with" in table

    assert run_haven(home, "models", "use", "nope").returncode == 2
    removed = run_haven(home, "models", "remove", "gemma-test")
    assert removed.returncode == 0
    assert not (home / "models" / "gemma-test.gguf").exists()


@pytest.mark.parametrize("kind", ["truncated", "random", "header-only"])
def test_import_refuses_bad_files_in_one_line(tmp_path, kind):
    data = make_gguf(template="{{ x }}")
    path = tmp_path / f"{kind}.gguf"
    path.write_bytes({"truncated": data[:-64], "random": os.urandom(2048),
                      "header-only": data[:24]}[kind])
    result = run_haven(tmp_path / "home", "models", "import", "--no-prepare", str(path))
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert result.stderr.startswith("haven: ")
    assert not list((tmp_path / "home" / "models").glob("*.gguf"))


def test_chat_formats_are_the_engines(tmp_path, gemma_gguf):
    home = tmp_path / "home"
    refused = run_haven(home, "models", "import", "--no-prepare",
                        str(gemma_gguf), "--chat-format", "functionary")
    assert refused.returncode == 2 and "unknown chat format" in refused.stderr
    accepted = run_haven(home, "models", "import", "--no-prepare", str(gemma_gguf), "--chat-format", "phi3",
                         "--name", "as-phi3", "--no-use")
    assert accepted.returncode == 0, accepted.stderr
    bad = run_haven(home, "models", "download", "--no-prepare", "org/repo:file.gguf", "--chat-format", "nope")
    assert bad.returncode == 2 and "unknown chat format" in bad.stderr
