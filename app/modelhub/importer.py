"""Import a GGUF file the user already has: check it whole, copy it in, list it."""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from pathlib import Path

from app.fileio import hold, os_reason, remove_if_stale, space_shortfall
from app.modelhub.formats import unknown_format
from app.modelhub.gguf import GGUFError, inspect_gguf
from app.modelhub.registry import NAME_RULE, InstalledModel, ModelRegistry, valid_name
from app.paths import PRIVATE_FILE, DataPaths


class ImportError_(Exception):
    """The file cannot be imported; one clear line. ``in_app``: the same without
    command-line syntax (the app's screens show none)."""

    def __init__(self, message: str, in_app: str | None = None) -> None:
        super().__init__(message)
        self.in_app = in_app or message


def default_name(path: Path) -> str:
    name = re.sub(r"[^a-z0-9._-]+", "-", path.stem.lower()).strip("-.") or "model"
    return name[:64]


def import_gguf(
    paths: DataPaths, source: Path, name: str | None = None, chat_format: str | None = None
) -> InstalledModel:
    try:
        info = inspect_gguf(source)
    except GGUFError as exc:
        raise ImportError_(str(exc)) from exc
    name = name or default_name(source)
    if not valid_name(name):
        raise ImportError_(f"{name!r} is not a usable name: {NAME_RULE}")
    if problem := unknown_format(chat_format):
        raise ImportError_(problem)
    if info.chat_template is None and chat_format is None:
        raise ImportError_(
            f"{source.name} has no chat template of its own; say which format it uses with "
            "--chat-format (e.g. chatml, llama-3, gemma, phi3)",
            in_app=f"{source.name} has no chat template of its own; choose the family it "
            "belongs to from the list",
        )
    paths.ensure()
    final = paths.models_dir / f"{name}.gguf"
    if problem := space_shortfall(paths.models_dir, info.file_size, "copying the model in"):
        raise ImportError_(problem)
    digest = hashlib.sha256()
    for stale in paths.models_dir.glob(".*.partial"):  # an import that was killed midway
        remove_if_stale(stale)
    fd, tmp = tempfile.mkstemp(dir=paths.models_dir, prefix=f".{name}.", suffix=".partial")
    try:
        hold(fd)
        os.fchmod(fd, PRIVATE_FILE)
        with os.fdopen(fd, "wb") as out, source.open("rb") as src:
            while chunk := src.read(4 * 1024 * 1024):
                digest.update(chunk)
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, final)
        found = os.stat(final)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        reason = os_reason(exc)
        raise ImportError_(f"could not copy {source.name} into Haven's folder: {reason}") from exc
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    model = InstalledModel(
        name=name,
        file=final.name,
        size=info.file_size,
        sha256=digest.hexdigest(),
        source="import",
        chat_format=chat_format,
        verified=[found.st_size, found.st_mtime_ns, found.st_ino],
    )
    ModelRegistry(paths).add(model)
    return model
