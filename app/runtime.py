"""Starting Haven's parts the same way for the app, the line-mode chat and the benchmark."""

from __future__ import annotations

from pathlib import Path

from app.llm import Engine, ModelSpec
from app.logs import capture_native_stderr, setup_logging
from app.modelhub.catalog import catalog
from app.modelhub.registry import ModelRegistry
from app.paths import DataPaths
from app.settings import Settings


def quiet_terminal(paths: DataPaths) -> None:
    """Haven's log file, with native stderr (llama.cpp, SQLCipher) sent there too."""
    setup_logging(paths.log_file)
    capture_native_stderr(paths.log_file)


class NoModelSelected(Exception):
    pass


def selected_model_spec(
    paths: DataPaths, settings: Settings, model_path: Path | None = None,
    chat_format: str | None = None,
) -> ModelSpec:
    """The model to load: ``--model PATH`` if given, else the selected installed model."""
    if model_path is not None:
        return ModelSpec(path=model_path, name=model_path.stem, chat_format=chat_format,
                         n_ctx=settings.n_ctx, threads=settings.threads,
                         repack=settings.weight_repack, prompt_cache=paths.prompt_cache)
    registry = ModelRegistry(paths)
    name = settings.model
    model = registry.get(name) if name else None
    if model is None:
        installed = registry.all()
        if not installed:
            raise NoModelSelected(
                "no model is installed yet: download one with `haven models download "
                f"{catalog().default.name}` or import a GGUF with `haven models import PATH`"
            )
        model = installed[0]
    entry = catalog().get(model.name)
    fmt = chat_format or model.chat_format or (entry.chat_format if entry else None)
    return ModelSpec(path=registry.path_of(model), name=model.name, chat_format=fmt,
                     n_ctx=settings.n_ctx, threads=settings.threads,
                     repack=settings.weight_repack, prompt_cache=paths.prompt_cache)


def start_engine(spec: ModelSpec) -> Engine:
    engine = Engine()
    engine.load(spec)
    return engine
