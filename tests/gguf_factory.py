"""Build small, valid GGUF files (header + F32 tensors) for tests of the format check."""

from __future__ import annotations

import struct

ALIGN = 32


def _string(text: str) -> bytes:
    raw = text.encode()
    return struct.pack("<Q", len(raw)) + raw


def make_gguf(
    arch: str = "llama",
    tensors: tuple[tuple[str, tuple[int, ...]], ...] = (("tok_embd", (8, 4)), ("out", (4, 4))),
    template: str | None = None,
    version: int = 3,
) -> bytes:
    kvs = [("general.architecture", 8, _string(arch)), ("general.name", 8, _string("tiny test"))]
    if template:
        kvs.append(("tokenizer.chat_template", 8, _string(template)))
    # an array of strings, as real tokenizers carry
    tokens = b"".join(_string(t) for t in ("<s>", "</s>", "a", "b"))
    kvs.append(("tokenizer.ggml.tokens", 9, struct.pack("<IQ", 8, 4) + tokens))
    out = b"GGUF" + struct.pack("<IQQ", version, len(tensors), len(kvs))
    for key, vtype, value in kvs:
        out += _string(key) + struct.pack("<I", vtype) + value
    offset = 0
    blobs = []
    for name, shape in tensors:
        out += _string(name) + struct.pack("<I", len(shape))
        out += b"".join(struct.pack("<Q", d) for d in shape)
        out += struct.pack("<IQ", 0, offset)  # type F32
        size = 4
        for d in shape:
            size *= d
        blobs.append(bytes(size))
        offset += size + (-size % ALIGN)
    out += bytes(-len(out) % ALIGN)
    for blob in blobs:
        out += blob + bytes(-len(blob) % ALIGN)
    return out
