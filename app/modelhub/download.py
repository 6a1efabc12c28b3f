"""Download a GGUF from the Hugging Face Hub with ``huggingface_hub``, resumable and verified.

What happens, in order:

1. Ask the hub (``get_paths_info``) for the file's size and sha256, and (a HEAD through
   ``get_hf_file_metadata``) for the commit and the download location. No token is ever
   sent (``token=False``) and telemetry is off.
2. Stream the bytes with ``huggingface_hub``'s own ``http_get`` into
   ``models/.downloads/<sha256>.partial``. A dropped connection is retried from where it
   stopped (an HTTP Range request) within the run. Haven keeps the partial file between
   runs too (recent ``huggingface_hub`` releases throw theirs away), so a download cut by
   Ctrl-C, a closed laptop or a lost connection continues where it left off next time.
3. Check the sha256 of the whole file against the hub's. A mismatch deletes the partial.
4. Only then move it into ``models/`` and list it as installed. A ``.partial`` file never
   has a ``.gguf`` name and is never listed, so it cannot pose as a model.
"""

from __future__ import annotations

import hashlib
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("HF_HUB_DISABLE_IMPLICIT_TOKEN", "1")

from app.fileio import disk_full, os_reason, space_shortfall  # noqa: E402
from app.modelhub.catalog import CatalogEntry  # noqa: E402
from app.modelhub.formats import unknown_format  # noqa: E402
from app.modelhub.gguf import GGUFError, inspect_gguf  # noqa: E402
from app.modelhub.registry import NAME_RULE, InstalledModel, ModelRegistry, valid_name  # noqa: E402
from app.paths import DataPaths  # noqa: E402

ProgressCallback = Callable[["DownloadProgress"], None]
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


class DownloadError(Exception):
    """A download failed; the message is one clear line for the user.

    ``in_app`` says the same in the app's words: where the command line's message names a
    command (``haven models import PATH``), the app's names the place on its screens, since
    no screen of the app shows command-line syntax."""

    def __init__(self, message: str, in_app: str | None = None) -> None:
        super().__init__(message)
        self.in_app = in_app or message


#: Where a file the person already has is imported: on the command line, and in the app.
IMPORT_COMMAND = "haven models import PATH"
IMPORT_IN_APP = "Models → Import…"


def _or_import(message: str, how: str) -> DownloadError:
    """``message`` followed by the way to import a file instead, in each front end's words."""
    return DownloadError(f"{message}{how}: {IMPORT_COMMAND}",
                         in_app=f"{message}{how} with {IMPORT_IN_APP}")


@dataclass
class DownloadProgress:
    phase: str  # "download" | "verify"
    done: int
    total: int
    started: float
    resumed_from: int = 0

    @property
    def fraction(self) -> float:
        return self.done / self.total if self.total else 0.0

    @property
    def rate(self) -> float:
        elapsed = time.monotonic() - self.started
        return (self.done - self.resumed_from) / elapsed if elapsed > 0 else 0.0

    @property
    def eta(self) -> float | None:
        rate = self.rate
        return (self.total - self.done) / rate if rate > 0 else None


@dataclass
class RemoteFile:
    repo: str
    filename: str
    revision: str
    size: int
    sha256: str
    url: str


_REPO = re.compile(r"^[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*$")
_REPO_FILE_PART = re.compile(r"^[\w.+ -]+$")


def parse_spec(spec: str) -> tuple[str, str]:
    """``org/repo:file.gguf`` (or ``org/repo:folder/file.gguf``) -> (repo, file).

    The file is a path inside the repository: no absolute path, no ``..``, no backslash,
    nothing but plain names. Where Haven keeps it is decided apart (:func:`local_file_name`),
    so no name on the hub can place a file outside the models folder.
    """
    repo, sep, filename = spec.partition(":")
    example = "(e.g. bartowski/Llama-3.2-1B-Instruct-GGUF:Llama-3.2-1B-Instruct-Q4_K_M.gguf)"
    if not sep or not _REPO.match(repo) or ".." in repo or not filename.endswith(".gguf"):
        raise DownloadError(f"{spec!r} is neither a catalog name nor REPO_ID:FILENAME {example}")
    parts = filename.split("/")
    if any(part in ("", ".", "..") or not _REPO_FILE_PART.match(part) for part in parts):
        raise DownloadError(
            f"{filename!r} is not a plain file name in the repository (no '..', no leading "
            f"'/', no backslashes) {example}"
        )
    return repo, filename


def check_request(spec: str, name: str | None) -> tuple[str, str]:
    """Everything about ``download REPO:FILE [--name NAME]`` that can be refused up front."""
    repo, filename = parse_spec(spec)
    if name is not None and not valid_name(name):
        raise DownloadError(f"{name!r} is not a usable model name: {NAME_RULE}")
    return repo, filename


def local_file_name(repo: str, filename: str) -> str:
    """The file's name in ``models/``: readable, one flat name, unique per repo and file.

    Two repositories with the same file name get two files (a short hash of the repo and
    the path tells them apart even where the readable part would be the same).
    """
    readable = re.sub(r"[^A-Za-z0-9._-]+", "-", f"{repo}--{filename.removesuffix('.gguf')}"
                      .replace("/", "--")).strip(".-")[:150] or "model"
    tag = hashlib.sha256(f"{repo}:{filename}".encode()).hexdigest()[:10]
    return f"{readable}-{tag}.gguf"


def default_model_name(filename: str) -> str:
    stem = Path(filename).name.removesuffix(".gguf").lower()
    return re.sub(r"[^a-z0-9._-]+", "-", stem).strip("-.")[:64].rstrip("-.") or "model"


def _hub_unreachable(exc: Exception) -> DownloadError:
    # In plain words: never the exception's class name ("ConnectError") a person cannot use.
    reason = "it did not answer in time" if "timeout" in type(exc).__name__.lower() else (
        "no connection")
    return _or_import(
        f"cannot reach the model hub ({reason}). Check your internet connection and try "
        "again (the download goes on where it stopped), or ", "import a GGUF file you already have"
    )


def resolve_remote(repo: str, filename: str, revision: str = "main") -> RemoteFile:
    """Ask the hub what the file is: size, sha256 and where to fetch it."""
    from huggingface_hub import HfApi, get_hf_file_metadata, hf_hub_url
    from huggingface_hub.constants import is_offline_mode
    from huggingface_hub.errors import (
        EntryNotFoundError,
        HfHubHTTPError,
        OfflineModeIsEnabled,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    if is_offline_mode():
        raise _or_import("HF_HUB_OFFLINE is set, so Haven will not download. Unset it to "
                         "download, or ", "import a GGUF file you already have")
    try:
        infos = HfApi(token=False).get_paths_info(repo, [filename], revision=revision, token=False)
        info = next((i for i in infos if getattr(i, "path", None) == filename), None)
        if info is None:
            raise DownloadError(f"{repo!r} has no file {filename!r}")
        meta = get_hf_file_metadata(
            hf_hub_url(repo, filename, revision=revision), token=False, retry_on_errors=True
        )
    except (RepositoryNotFoundError, RevisionNotFoundError) as exc:
        raise DownloadError(f"the hub has no public model repository {repo!r}") from exc
    except EntryNotFoundError as exc:
        raise DownloadError(f"{repo!r} has no file {filename!r}") from exc
    except OfflineModeIsEnabled as exc:
        raise DownloadError("HF_HUB_OFFLINE is set, so Haven will not download") from exc
    except HfHubHTTPError as exc:
        status = getattr(getattr(exc, "response", None), "status_code", "?")
        if status in (401, 403):
            raise _or_import(
                f"{repo!r} needs a Hugging Face login or licence acceptance; Haven sends no token."
                " Download the file in a browser and ", "import it") from exc
        raise DownloadError(f"the hub answered with an error (HTTP {status}) for {repo!r}") from exc
    except (OSError, ValueError) as exc:
        raise _hub_unreachable(exc) from exc
    except Exception as exc:  # httpx2 transport errors are not OSErrors
        if type(exc).__module__.startswith(("httpx", "httpcore", "httpx2")):
            raise _hub_unreachable(exc) from exc
        raise

    sha256 = info.lfs.sha256 if getattr(info, "lfs", None) else (meta.etag or "")
    size = info.lfs.size if getattr(info, "lfs", None) else info.size
    if not _HEX64.match(sha256 or ""):
        raise _or_import(f"the hub gives no sha256 for {filename!r}, so Haven cannot verify it; "
                         "download it yourself and ", "import it")
    if meta.size is not None and meta.size != size:
        raise DownloadError(f"the hub reports two different sizes for {filename!r}; try later")
    return RemoteFile(
        repo=repo,
        filename=filename,
        revision=meta.commit_hash or revision,
        size=size,
        sha256=sha256,
        url=meta.location,
    )


def partial_path(paths: DataPaths, sha256: str) -> Path:
    return paths.models_dir / ".downloads" / f"{sha256}.partial"


def _progress_class(callback: ProgressCallback | None, state: DownloadProgress):
    from tqdm.auto import tqdm

    class _Progress(tqdm):  # huggingface_hub drives it; we forward to the callback
        def __init__(self, *args, **kwargs):
            kwargs["disable"] = True
            super().__init__(*args, **kwargs)

        def update(self, n=1):
            state.done += n
            if callback:
                callback(state)

    return _Progress


def fetch(
    remote: RemoteFile,
    paths: DataPaths,
    progress: ProgressCallback | None = None,
) -> Path:
    """Download ``remote`` into its partial file (resuming), verify, and return the partial path."""
    from huggingface_hub import constants
    from huggingface_hub.file_download import http_get
    from huggingface_hub.utils import build_hf_headers

    # huggingface_hub buffers 10 MiB per read: a dropped connection loses the unwritten
    # buffer and resumes from the last whole chunk. 1 MiB loses less and moves the bar
    # smoothly.
    constants.DOWNLOAD_CHUNK_SIZE = min(constants.DOWNLOAD_CHUNK_SIZE, 1024 * 1024)

    paths.ensure()
    part = partial_path(paths, remote.sha256)
    part.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    have = part.stat().st_size if part.exists() else 0
    if have > remote.size:
        part.unlink()
        have = 0
    state = DownloadProgress("download", have, remote.size, time.monotonic(), resumed_from=have)
    if progress:
        progress(state)
    if have < remote.size:
        if problem := space_shortfall(part.parent, remote.size - have, "the download"):
            raise DownloadError(problem)
        headers = build_hf_headers(token=False)
        headers["Accept-Encoding"] = "identity"
        try:
            with part.open("ab") as handle:
                http_get(
                    remote.url,
                    handle,
                    resume_size=have,
                    headers=headers,
                    expected_size=remote.size,
                    displayed_filename=remote.filename,
                    tqdm_class=_progress_class(progress, state),
                )
        except OSError as exc:
            if disk_full(exc):
                raise DownloadError(
                    "the disk is full; the download stopped and will resume once there is "
                    "space again"
                ) from exc
            if "Consistency check failed" in str(exc):
                raise DownloadError(
                    "the connection dropped before the file was complete; run the same "
                    "command again to resume"
                ) from exc
            raise _hub_unreachable(exc) from exc
        except Exception as exc:
            if type(exc).__module__.startswith(("httpx", "httpcore", "httpx2")):
                raise DownloadError(
                    "the connection to the hub was lost; run the same command again to "
                    "resume where it stopped"
                ) from exc
            raise
    verify_sha256(part, remote.sha256, progress)
    return part


def verify_sha256(path: Path, expected: str, progress: ProgressCallback | None = None) -> None:
    total = path.stat().st_size
    state = DownloadProgress("verify", 0, total, time.monotonic())
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(4 * 1024 * 1024):
            digest.update(chunk)
            state.done += len(chunk)
            if progress:
                progress(state)
    if digest.hexdigest() != expected:
        path.unlink(missing_ok=True)
        raise DownloadError(
            "the downloaded file does not match the hub's sha256 (damaged in transit); "
            "it was deleted — run the command again to download it afresh"
        )


def install_download(
    paths: DataPaths,
    remote: RemoteFile,
    name: str,
    source: str,
    chat_format: str | None,
    progress: ProgressCallback | None = None,
) -> InstalledModel:
    """Download, verify, move into ``models/`` and register. Returns the installed model."""
    if not valid_name(name):
        raise DownloadError(f"{name!r} is not a usable model name: {NAME_RULE}")
    final = paths.models_dir / local_file_name(remote.repo, remote.filename)
    if final.parent != paths.models_dir:  # cannot happen with a flat name; checked all the same
        raise DownloadError(f"{remote.filename!r} would be stored outside Haven's models folder")
    part = fetch(remote, paths, progress)
    try:
        inspect_gguf(part)
    except GGUFError as exc:
        part.unlink(missing_ok=True)
        raise DownloadError(f"the hub's file is not a usable GGUF model: {exc}") from exc
    try:
        os.replace(part, final)
        os.chmod(final, 0o600)
    except OSError as exc:  # the verified partial stays for the next try
        reason = os_reason(exc)
        raise DownloadError(f"could not move the verified download into place: {reason}") from exc
    found = os.stat(final)
    model = InstalledModel(
        name=name,
        file=final.name,
        size=remote.size,
        sha256=remote.sha256,
        source=source,  # type: ignore[arg-type]
        repo=remote.repo,
        repo_file=remote.filename,
        chat_format=chat_format,
        verified=[found.st_size, found.st_mtime_ns, found.st_ino],
    )
    ModelRegistry(paths).add(model)
    return model


def download_catalog_entry(
    paths: DataPaths, entry: CatalogEntry, progress: ProgressCallback | None = None
) -> InstalledModel:
    remote = resolve_remote(entry.repo, entry.file)
    return install_download(paths, remote, entry.name, "catalog", entry.chat_format, progress)


def download_spec(
    paths: DataPaths,
    spec: str,
    name: str | None = None,
    chat_format: str | None = None,
    progress: ProgressCallback | None = None,
) -> InstalledModel:
    repo, filename = check_request(spec, name)
    if problem := unknown_format(chat_format):
        raise DownloadError(problem)
    remote = resolve_remote(repo, filename)
    model_name = name or default_model_name(filename)
    return install_download(paths, remote, model_name, "hub", chat_format, progress)
