"""A non-editable install must carry the catalog and the prompts inside the wheel."""

from __future__ import annotations

import subprocess
import sys
import zipfile

from tests.conftest import ROOT


def test_the_wheel_ships_models_and_prompts(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "-q", "-w", str(tmp_path), str(ROOT)], check=True, capture_output=True)
    wheel = next(tmp_path.glob("haven-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    for required in ("app/_data/models/catalog.toml", "app/_data/prompts/companion.md",
                     "app/_data/prompts/safety/rules.toml", "app/_data/prompts/safety/resources.toml",
                     "app/_data/prompts/techniques/distortions.toml", "app/cli/main.py",
                     "app/icons/haven.svg", "app/safety/data/risk_model.npz",
                     "app/safety/data/risk_encoder.onnx", "app/safety/data/risk_encoder_tokenizer.json"):
        assert required in names, required
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    assert "haven = app.cli.main:main" in zipfile.ZipFile(wheel).read(entry_points).decode()
