"""Shape-alike models for ``haven bench --shape NAME``: a catalog model's exact architecture
(layers, widths, heads, vocabulary) and its real tokenizer and chat template, with random
weights, quantized to Q4_K_M by llama.cpp's own quantizer and cached after the first build.

Same compute and memory per token as the real model, so it measures speed and memory on a
machine that cannot download the real one; it says nothing about quality (it talks noise).

The tokenizer comes from the tokenizer-only GGUFs that llama.cpp keeps in
``models/ggml-vocab-*.gguf`` (shipped in llama-cpp-python's source distribution, at
``vendor/llama.cpp/models/``). Writing needs the ``gguf`` package (the ``bench`` extra).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

# The real Llama 3.2 Instruct template, as in the published GGUFs (tools left out).
LLAMA32_TEMPLATE = (
    "{{- bos_token }}\n"
    "{%- if not date_string is defined %}{%- set date_string = \"26 Jul 2024\" %}{%- endif %}\n"
    "{%- if messages[0]['role'] == 'system' %}\n"
    "    {%- set system_message = messages[0]['content']|trim %}\n"
    "    {%- set messages = messages[1:] %}\n"
    "{%- else %}\n"
    "    {%- set system_message = \"\" %}\n"
    "{%- endif %}\n"
    "{{- \"<|start_header_id|>system<|end_header_id|>\\n\\n\" }}\n"
    "{{- \"Cutting Knowledge Date: December 2023\\n\" }}\n"
    "{{- \"Today Date: \" + date_string + \"\\n\\n\" }}\n"
    "{{- system_message }}\n"
    "{{- \"<|eot_id|>\" }}\n"
    "{%- for message in messages %}\n"
    "    {{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'"
    " + message['content'] | trim + '<|eot_id|>' }}\n"
    "{%- endfor %}\n"
    "{%- if add_generation_prompt %}\n"
    "    {{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}\n"
    "{%- endif %}\n"
)


@dataclass(frozen=True)
class Shape:
    name: str  # the catalog name
    arch: str
    layers: int
    embd: int
    ffn: int
    heads: int
    heads_kv: int
    head_dim: int
    vocab: str  # ggml-vocab-<vocab>.gguf
    template: str
    eos: int
    context_length: int
    rope_base: float = 500000.0
    rms_eps: float = 1e-5


SHAPES: dict[str, Shape] = {
    "llama-3.2-3b-instruct": Shape("llama-3.2-3b-instruct", "llama", 28, 3072, 8192, 24, 8,
                                   128, "llama-bpe", LLAMA32_TEMPLATE, 128009, 131072),
    "llama-3.2-1b-instruct": Shape("llama-3.2-1b-instruct", "llama", 16, 2048, 8192, 32, 8,
                                   64, "llama-bpe", LLAMA32_TEMPLATE, 128009, 131072),
}
LLAMA_FTYPE_MOSTLY_Q4_K_M = 15


class ShapeError(Exception):
    """One line for the person running the bench."""


def shape(name: str) -> Shape:
    try:
        return SHAPES[name]
    except KeyError:
        raise ShapeError(f"no shape called {name!r} (known: {', '.join(SHAPES)})") from None


def vocab_file(vocab: str, cache: Path, given: Path | None = None) -> Path:
    """The tokenizer-only GGUF ``ggml-vocab-<vocab>.gguf``: ``given`` (a file or a folder
    holding it, or an unpacked/packed llama-cpp-python sdist), else the cached copy, else
    taken from llama-cpp-python's sdist (fetched with pip once, same version as installed)."""
    name = f"ggml-vocab-{vocab}.gguf"
    cached = cache / name
    if given is not None:
        found = _find_vocab(given, name)
        if found is None:
            raise ShapeError(f"{name} is not in {given}")
        return found
    if cached.is_file():
        return cached
    import llama_cpp

    with tempfile.TemporaryDirectory(prefix="haven-sdist-") as folder:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--no-binary",
             ":all:", "--no-build-isolation", "-d", folder,
             f"llama-cpp-python=={llama_cpp.__version__}"],
            capture_output=True, text=True)
        archives = list(Path(folder).glob("llama_cpp_python-*.tar.gz"))
        if not archives:
            raise ShapeError("could not fetch llama-cpp-python's source for its tokenizer "
                             "files; pass --vocab with a folder holding " + name)
        found = _find_vocab(archives[0], name, into=cache)
    if found is None:
        raise ShapeError(f"llama-cpp-python's source has no {name}")
    return found


def _find_vocab(where: Path, name: str, into: Path | None = None) -> Path | None:
    if where.is_file() and where.name == name:
        return where
    if where.is_dir():
        return next(iter(sorted(where.rglob(name))), None)
    if where.is_file() and where.name.endswith(".tar.gz"):
        into = into or where.parent
        into.mkdir(parents=True, exist_ok=True)
        with tarfile.open(where) as archive:
            for member in archive.getmembers():
                if member.name.endswith(f"/models/{name}") and member.isfile():
                    source = archive.extractfile(member)
                    assert source is not None
                    (into / name).write_bytes(source.read())
                    return into / name
    return None


def build(name: str, cache: Path, vocab: Path | None = None,
          progress: Callable[[str], None] = lambda _line: None) -> Path:
    """The Q4_K_M shape-alike of catalog model ``name`` in ``cache`` (built if missing)."""
    spec = shape(name)
    cache.mkdir(parents=True, exist_ok=True)
    out = cache / f"{name}-shape-Q4_K_M.gguf"
    if out.is_file():
        return out
    source = vocab_file(spec.vocab, cache, vocab)
    f16 = cache / f"{name}-shape-F16.gguf.partial"
    try:
        progress(f"writing random weights in {name}'s shape")
        _write_f16(spec, source, f16)
        progress("quantizing to Q4_K_M with llama.cpp's quantizer")
        partial = out.with_suffix(".partial")
        _quantize(f16, partial)
        os.replace(partial, out)
    finally:
        f16.unlink(missing_ok=True)
        out.with_suffix(".partial").unlink(missing_ok=True)
    return out


def _tensors(s: Shape, n_vocab: int) -> list[tuple[str, tuple[int, ...]]]:
    """(name, numpy shape) in llama.cpp's names; numpy shapes are ggml's reversed."""
    q = s.heads * s.head_dim
    kv = s.heads_kv * s.head_dim
    out = [("token_embd.weight", (n_vocab, s.embd))]  # tied: no output.weight, as Llama 3.2
    for i in range(s.layers):
        b = f"blk.{i}"
        out += [(f"{b}.attn_norm.weight", (s.embd,)),
                (f"{b}.attn_q.weight", (q, s.embd)),
                (f"{b}.attn_k.weight", (kv, s.embd)),
                (f"{b}.attn_v.weight", (kv, s.embd)),
                (f"{b}.attn_output.weight", (s.embd, q)),
                (f"{b}.ffn_norm.weight", (s.embd,)),
                (f"{b}.ffn_gate.weight", (s.ffn, s.embd)),
                (f"{b}.ffn_up.weight", (s.ffn, s.embd)),
                (f"{b}.ffn_down.weight", (s.embd, s.ffn))]
    out.append(("output_norm.weight", (s.embd,)))
    return out


def _write_f16(s: Shape, vocab_path: Path, path: Path) -> None:
    try:
        import gguf
    except ImportError:
        raise ShapeError("writing it needs the gguf package: pip install gguf "
                         "(or Haven's bench extra)") from None

    reader = gguf.GGUFReader(vocab_path)
    tokens = reader.fields["tokenizer.ggml.tokens"].contents()
    writer = gguf.GGUFWriter(path, s.arch)
    writer.add_name(f"{s.name} (shape-alike, random weights)")
    writer.add_file_type(gguf.LlamaFileType.MOSTLY_F16)
    writer.add_block_count(s.layers)
    writer.add_context_length(s.context_length)
    writer.add_embedding_length(s.embd)
    writer.add_feed_forward_length(s.ffn)
    writer.add_head_count(s.heads)
    writer.add_head_count_kv(s.heads_kv)
    writer.add_key_length(s.head_dim)
    writer.add_value_length(s.head_dim)
    writer.add_rope_dimension_count(s.head_dim)
    writer.add_rope_freq_base(s.rope_base)
    writer.add_layer_norm_rms_eps(s.rms_eps)
    writer.add_vocab_size(len(tokens))
    for key, field in reader.fields.items():  # the real tokenizer, as it is
        if not key.startswith("tokenizer."):
            continue
        kinds = field.types
        value = field.contents()
        if kinds[0] == gguf.GGUFValueType.ARRAY:
            writer.add_key_value(key, value, kinds[0], sub_type=kinds[-1])
        else:
            writer.add_key_value(key, value, kinds[0])
    writer.add_eos_token_id(s.eos)
    writer.add_chat_template(s.template)
    layout = _tensors(s, len(tokens))
    for name, shape_ in layout:
        dtype = np.float32 if len(shape_) == 1 else np.float16
        writer.add_tensor_info(name, shape_, np.dtype(dtype),
                               int(np.prod(shape_)) * np.dtype(dtype).itemsize)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_ti_data_to_file()
    rng = np.random.default_rng(13)
    pool = (rng.standard_normal(1 << 24, dtype=np.float32) * 0.02).astype(np.float16)
    for _name, shape_ in layout:
        if len(shape_) == 1:
            writer.write_tensor_data(np.ones(shape_, dtype=np.float32))
            continue
        start = int(rng.integers(0, pool.size))
        data = np.resize(np.roll(pool, -start), int(np.prod(shape_))).reshape(shape_)
        writer.write_tensor_data(data)
    writer.close()


def _quantize(source: Path, out: Path) -> None:
    import llama_cpp

    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = LLAMA_FTYPE_MOSTLY_Q4_K_M
    params.nthread = max(1, os.cpu_count() or 1)
    code = llama_cpp.llama_model_quantize(str(source).encode(), str(out).encode(), params)
    if code != 0:
        raise ShapeError(f"llama.cpp could not quantize the shape-alike model (code {code})")
