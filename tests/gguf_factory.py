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


# ---- edits of a real GGUF (the test model) ------------------------------------------------


def _walk(data: bytes) -> tuple[list[tuple[str, int, int]], list[tuple[str, int, int, int]], int]:
    """Positions in a GGUF header: (key, start, end) per metadata entry, (name, start, end,
    type_offset) per tensor record, and where the header ends (before the padding)."""
    pos = 4 + 4 + 8 + 8
    tensor_count, kv_count = struct.unpack_from("<QQ", data, 8)
    sizes = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}

    def string(at: int) -> tuple[str, int]:
        (length,) = struct.unpack_from("<Q", data, at)
        return data[at + 8:at + 8 + length].decode(), at + 8 + length

    def value(vtype: int, at: int) -> int:
        if vtype in sizes:
            return at + sizes[vtype]
        if vtype == 8:
            return string(at)[1]
        item_type, count = struct.unpack_from("<IQ", data, at)
        at += 12
        if item_type in sizes:
            return at + sizes[item_type] * count
        for _ in range(count):
            at = value(item_type, at)
        return at

    kvs = []
    for _ in range(kv_count):
        start = pos
        key, pos = string(pos)
        (vtype,) = struct.unpack_from("<I", data, pos)
        pos = value(vtype, pos + 4)
        kvs.append((key, start, pos))
    tensors = []
    for _ in range(tensor_count):
        start = pos
        name, pos = string(pos)
        (dims,) = struct.unpack_from("<I", data, pos)
        pos += 4 + 8 * dims
        tensors.append((name, start, pos + 4 + 8, pos))
        pos += 4 + 8
    return kvs, tensors, pos


def with_template(data: bytes, template: str) -> bytes:
    """``data`` (a whole GGUF) with its ``tokenizer.chat_template`` replaced by ``template``."""
    kvs, tensors, end = _walk(data)
    (alignment_kv,) = [k for k in kvs if k[0] == "general.alignment"] or [None]
    alignment = ALIGN if alignment_kv is None else struct.unpack_from("<I", data, alignment_kv[2] - 4)[0]
    data_start = end + (-end % alignment)
    entries = [data[s:e] for key, s, e in kvs if key != "tokenizer.chat_template"]
    entries.append(_string("tokenizer.chat_template") + struct.pack("<I", 8) + _string(template))
    head = data[:8] + struct.pack("<QQ", len(tensors), len(entries))
    header = head + b"".join(entries) + data[tensors[0][1]:end]
    header += bytes(-len(header) % alignment)
    return header + data[data_start:]


def with_tensor_type(data: bytes, name: str, ggml_type: int) -> bytes:
    """``data`` with tensor ``name`` declared as ``ggml_type`` (its bytes unchanged)."""
    _, tensors, _ = _walk(data)
    (record,) = [t for t in tensors if t[0] == name]
    out = bytearray(data)
    struct.pack_into("<I", out, record[3], ggml_type)
    return bytes(out)
