"""Read and check a GGUF file's header without loading the model.

A GGUF file is: magic ``GGUF``, a version, tensor and metadata counts, the metadata
key/values, one info record per tensor (name, shape, type, offset), padding to the
alignment, then the tensor data. :func:`inspect_gguf` reads everything up to the
data and checks that the file is long enough to hold every tensor the header
announces, so a truncated download or copy is refused before llama.cpp sees it.

Hand-written rather than the ``gguf`` package: that reader memory-maps the whole
file and fails on a truncated one with a numpy error, while Haven needs to read only
the header of a multi-GB file and to say precisely what is wrong.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

MAGIC = b"GGUF"
SUPPORTED_VERSIONS = (2, 3)
DEFAULT_ALIGNMENT = 32
MAX_STRING = 64 * 1024 * 1024  # a sane bound: no key, name or template is this long
MAX_COUNT = 1 << 32

# ggml type id -> (elements per block, bytes per block), as in ggml/gguf-py GGML_QUANT_SIZES.
GGML_TYPE_SIZES: dict[int, tuple[int, int]] = {
    0: (1, 4), 1: (1, 2), 2: (32, 18), 3: (32, 20), 6: (32, 22), 7: (32, 24),
    8: (32, 34), 9: (32, 36), 10: (256, 84), 11: (256, 110), 12: (256, 144),
    13: (256, 176), 14: (256, 210), 15: (256, 292), 16: (256, 66), 17: (256, 74),
    18: (256, 98), 19: (256, 50), 20: (32, 18), 21: (256, 110), 22: (256, 82),
    23: (256, 136), 24: (1, 1), 25: (1, 2), 26: (1, 4), 27: (1, 8), 28: (1, 8),
    29: (256, 56), 30: (1, 2), 34: (256, 54), 35: (256, 66), 39: (32, 17),
}

# metadata value types
_SCALARS = {
    0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?",
    10: "<Q", 11: "<q", 12: "<d",
}
_STRING, _ARRAY = 8, 9
# metadata worth keeping in memory (big token arrays are skipped, not stored)
_KEEP_PREFIXES = ("general.", "tokenizer.chat_template", "tokenizer.ggml.model")


class GGUFError(Exception):
    """The file is not a usable GGUF model; the message says why in one line."""


@dataclass
class GGUFInfo:
    path: Path
    version: int
    tensor_count: int
    metadata: dict[str, object] = field(default_factory=dict)
    data_offset: int = 0
    required_size: int = 0
    file_size: int = 0

    @property
    def architecture(self) -> str:
        return str(self.metadata.get("general.architecture", ""))

    @property
    def name(self) -> str:
        return str(self.metadata.get("general.name", "")) or self.path.stem

    @property
    def chat_template(self) -> str | None:
        template = self.metadata.get("tokenizer.chat_template")
        return template if isinstance(template, str) and template.strip() else None

    @property
    def context_length(self) -> int | None:
        value = self.metadata.get(f"{self.architecture}.context_length")
        return int(value) if isinstance(value, int) else None


class _Reader:
    def __init__(self, handle: BinaryIO, file_size: int) -> None:
        self.handle = handle
        self.file_size = file_size

    def read(self, n: int) -> bytes:
        data = self.handle.read(n)
        if len(data) != n:
            raise GGUFError("the file ends inside its header (truncated or not a GGUF model)")
        return data

    def scalar(self, fmt: str):
        return struct.unpack(fmt, self.read(struct.calcsize(fmt)))[0]

    def u32(self) -> int:
        return self.scalar("<I")

    def u64(self) -> int:
        return self.scalar("<Q")

    def string(self, keep: bool = True) -> str | None:
        length = self.u64()
        if length > MAX_STRING or self.handle.tell() + length > self.file_size:
            raise GGUFError("the header holds an impossible string length (corrupt file)")
        if not keep:
            self.handle.seek(length, 1)
            return None
        return self.read(length).decode("utf-8", errors="replace")

    def value(self, vtype: int, keep: bool):
        if vtype in _SCALARS:
            return self.scalar(_SCALARS[vtype])
        if vtype == _STRING:
            return self.string(keep)
        if vtype == _ARRAY:
            item_type = self.u32()
            count = self.u64()
            if count > MAX_COUNT:
                raise GGUFError("the header holds an impossible array length (corrupt file)")
            if item_type in _SCALARS:
                size = struct.calcsize(_SCALARS[item_type])
                if self.handle.tell() + size * count > self.file_size:
                    raise GGUFError("the file ends inside its header (truncated)")
                self.handle.seek(size * count, 1)
                return None
            for _ in range(count):
                self.value(item_type, keep=False)
            return None
        raise GGUFError(f"unknown metadata type {vtype} in the header (corrupt file)")


def inspect_gguf(path: Path) -> GGUFInfo:
    """Read the header of ``path`` and check the file is complete. Raises :class:`GGUFError`."""
    try:
        file_size = path.stat().st_size
        handle = path.open("rb")
    except FileNotFoundError as exc:
        raise GGUFError(f"no such file: {path}") from exc
    except IsADirectoryError as exc:
        raise GGUFError(f"{path} is a folder, not a GGUF file") from exc
    except OSError as exc:
        raise GGUFError(f"cannot read {path}: {exc.strerror}") from exc
    with handle:
        return _inspect(path, _Reader(handle, file_size), file_size)


def _inspect(path: Path, reader: _Reader, file_size: int) -> GGUFInfo:
    if file_size < 24 or reader.read(4) != MAGIC:
        raise GGUFError(f"{path.name} is not a GGUF model file")
    version = reader.u32()
    if version not in SUPPORTED_VERSIONS:
        raise GGUFError(f"{path.name} uses GGUF version {version}; Haven reads versions 2 and 3")
    tensor_count = reader.u64()
    kv_count = reader.u64()
    if tensor_count == 0 or tensor_count > 1_000_000 or kv_count > 1_000_000:
        raise GGUFError(f"{path.name} has an implausible header (corrupt file)")

    info = GGUFInfo(path=path, version=version, tensor_count=tensor_count, file_size=file_size)
    for _ in range(kv_count):
        key = reader.string() or ""
        keep = key.startswith(_KEEP_PREFIXES) or key.endswith(".context_length")
        value = reader.value(reader.u32(), keep)
        if keep:
            info.metadata[key] = value
    if not info.architecture:
        raise GGUFError(f"{path.name} does not say which model architecture it holds")

    end = 0
    for _ in range(tensor_count):
        reader.string(keep=False)
        n_dims = reader.u32()
        if n_dims > 8:
            raise GGUFError(f"{path.name} has a tensor with {n_dims} dimensions (corrupt file)")
        elements = 1
        for _ in range(n_dims):
            elements *= reader.u64()
        ggml_type = reader.u32()
        offset = reader.u64()
        block, type_size = GGML_TYPE_SIZES.get(ggml_type, (1, 0))
        end = max(end, offset + (elements // block) * type_size)

    alignment = info.metadata.get("general.alignment", DEFAULT_ALIGNMENT)
    alignment = alignment if isinstance(alignment, int) and alignment > 0 else DEFAULT_ALIGNMENT
    here = reader.handle.tell()
    info.data_offset = here + (-here % alignment)
    info.required_size = info.data_offset + end
    if file_size < info.required_size:
        have = file_size / info.required_size
        raise GGUFError(
            f"{path.name} is incomplete: it holds {file_size:,} of the "
            f"{info.required_size:,} bytes its header announces ({have:.0%}); "
            "download or copy it again"
        )
    return info
