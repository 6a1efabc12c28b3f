"""``haven doctor``: what Haven sees on this machine, and whether the model loads."""

from __future__ import annotations

import argparse
import os
import platform
import stat
import sys
import time
from importlib import metadata

import psutil

from app.cli.common import Context
from app.fileio import free_bytes
from app.llm import buffers
from app.modelhub.registry import ModelRegistry
from app.runtime import NoModelSelected, quiet_terminal, selected_model_spec

LIBRARIES = ("llama-cpp-python", "huggingface-hub", "textual", "sqlcipher3", "pydantic", "pyrage",
             "platformdirs")


def register(sub) -> None:
    p = sub.add_parser("doctor", help="check this machine, the data folder and the model",
                       description="Checks versions, CPU, RAM, disk, the data folder's "
                       "permissions and that the selected model loads. Touches the network "
                       "only with --online.")
    p.add_argument("--online", action="store_true", help="also check the model hub is reachable")
    p.set_defaults(func=cmd_doctor)


def _line(label: str, value: str, ok: bool | None = None) -> None:
    mark = {True: "ok ", False: "!! ", None: "   "}[ok]
    print(f"{mark} {label:<22} {value}")


def cmd_doctor(args: argparse.Namespace) -> int:
    ctx = Context()
    quiet_terminal(ctx.paths)
    problems = 0
    _line("Python", f"{platform.python_version()} ({sys.executable})", sys.version_info >= (3, 11))
    for lib in LIBRARIES:
        try:
            version = metadata.version(lib)
            _line(lib, version, True)
        except metadata.PackageNotFoundError:
            _line(lib, "missing", False)
            problems += 1
    cores = psutil.cpu_count(logical=False) or os.cpu_count()
    _line("CPU", f"{cores} physical cores, {os.cpu_count()} threads; Haven uses "
          f"{ctx.settings.threads}")
    cpu = buffers.detect(ask_ggml=False)  # the model process asks ggml too, when it loads
    _line("CPU features", _features(cpu))
    vm = psutil.virtual_memory()
    _line("RAM", f"{vm.total / 1024**3:.1f} GB total, {vm.available / 1024**3:.1f} GB available")
    free = free_bytes(ctx.paths.root)
    _line("Free disk", f"{free / 1024**3:.1f} GB", free > 3 * 1024**3)

    root_mode = stat.S_IMODE(ctx.paths.root.stat().st_mode)
    _line("Data folder", f"{ctx.paths.root} ({oct(root_mode)})", root_mode == 0o700)
    problems += root_mode != 0o700
    loose = [p for p in ctx.paths.root.rglob("*")
             if p.is_file() and stat.S_IMODE(p.stat().st_mode) & 0o077]
    _line("File permissions", "owner only" if not loose else
          f"{len(loose)} files readable by others: {', '.join(str(p) for p in loose[:3])}",
          not loose)
    problems += bool(loose)
    _line("Journal", "present (encrypted)" if ctx.paths.journal.exists() else "not created yet")

    partials = list((ctx.paths.models_dir / ".downloads").glob("*.partial"))
    if partials:
        size = sum(p.stat().st_size for p in partials) / 1e6
        _line("Paused downloads", f"{len(partials)} ({size:.0f} MB), resumed on the next download")
    installed = ModelRegistry(ctx.paths).all()
    _line("Installed models", ", ".join(m.name for m in installed) or "none")
    try:
        spec = selected_model_spec(ctx.paths, ctx.settings)
    except NoModelSelected as exc:
        _line("Selected model", str(exc), False)
        problems += 1
    else:
        _line("Selected model", f"{spec.name} ({spec.path})")
        from app.llm import Engine

        engine = Engine()
        started = time.perf_counter()
        try:
            engine.load(spec).result()
            _line("Model loads", f"yes, in {time.perf_counter() - started:.1f}s "
                  f"(context {engine.n_ctx} tokens)", True)
            _line("Weight buffers", engine.buffers or "unknown")
        except Exception as exc:
            _line("Model loads", f"no: {exc}", False)
            _line("Weight buffers", buffers.choose(ctx.settings.weight_repack, cpu).describe())
            problems += 1
        finally:
            engine.close()
    if args.online:
        problems += not _check_hub()
    else:
        _line("Model hub", "not checked (use --online)")
    print()
    print("Everything looks fine." if not problems else f"{problems} problem(s) found above.")
    return 0 if not problems else 1


def _features(cpu: buffers.CpuFeatures) -> str:
    if not cpu.flags:
        return f"{cpu.machine} (no feature list on this system)"
    shown = [f for f in ("avx2", "avx512f", "avx512_vnni", "asimd", "sve") if f in cpu.flags]
    amx = f"AMX ({', '.join(cpu.amx)})" if cpu.amx else "no AMX"
    return f"{cpu.machine}: {', '.join(shown) or 'none of avx2/avx512/neon'}; {amx}"


def _check_hub() -> bool:
    from huggingface_hub import HfApi

    try:
        HfApi(token=False).model_info("bartowski/Llama-3.2-1B-Instruct-GGUF", token=False)
        _line("Model hub", "reachable", True)
        return True
    except Exception as exc:
        _line("Model hub", f"not reachable ({_plain_reason(exc)})", False)
        return False


def _plain_reason(exc: Exception) -> str:
    """Why the hub could not be reached, in words a person can act on (not "ConnectError")."""
    name = type(exc).__name__.lower()
    if "timeout" in name:
        return "it did not answer in time"
    if "http" in name and getattr(exc, "response", None) is not None:
        return f"it answered with an error, HTTP {exc.response.status_code}"
    return "no connection"
