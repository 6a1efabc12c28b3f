"""Which weight buffers llama.cpp may use on this CPU, decided when a model loads.

llama.cpp keeps some weights in "extra" CPU buffers laid out for faster kernels:
``CPU_REPACK`` (interleaved blocks for AVX2/AVX-512/NEON matrix kernels) and, on CPUs with
Intel AMX, ``AMX``. The AMX buffers segfault in ``ggml_backend_amx_mul_mat`` with Q4_K_M
models (llama.cpp issue 20824), so where the CPU has AMX Haven turns the extra buffers off
(``use_extra_bufts = False``, what ``--no-repack`` sets) and pins the weights the repack
kernels take to ``CPU_REPACK`` by name (``tensor_buft_overrides``, like ``--override-tensor``):
the repack speed without AMX. Elsewhere llama.cpp chooses as it always does.

The decision is pure (:func:`choose`, :func:`repack_patterns`) and tested on sample CPUs;
:func:`detect` reads the real CPU (ggml's own report, and /proc/cpuinfo) and :func:`apply`
writes the choice into llama.cpp's model parameters. Only the model process calls those.
"""

from __future__ import annotations

import ctypes
import platform
import re
from dataclasses import dataclass
from pathlib import Path

SETTINGS = ("auto", "on", "off")
AMX_FLAGS = ("amx_tile", "amx_int8", "amx_bf16")

# 2-D weights that llama.cpp multiplies (GGML_OP_MUL_MAT): the only ones a repack buffer may
# hold. Token embeddings are looked up by row (GET_ROWS), so they never go there.
_MATMUL = re.compile(
    r"^(?:blk\.(?P<layer>\d+)\.(?P<kind>attn_(?:q|k|v|qkv|output)|ffn_(?:gate|up|down))"
    r"|(?P<output>output))\.weight$"
)
# ggml types the x86 repack kernels take (ggml-cpu/repack.cpp, ggml_repack_get_optimal_repack_type):
# Q4_0, Q4_K, IQ4_NL and MXFP4 with AVX2, Q2_K with AVX-512, each when rows % 8 == 0.
_X86_REPACK_AVX2 = {2: "Q4_0", 12: "Q4_K", 20: "IQ4_NL", 39: "MXFP4"}
_X86_REPACK_AVX512 = {10: "Q2_K"}


@dataclass(frozen=True)
class CpuFeatures:
    """What the CPU can do: the machine name and its feature flags (/proc/cpuinfo names)."""

    machine: str
    flags: frozenset[str]

    @property
    def x86(self) -> bool:
        return self.machine.lower() in ("x86_64", "amd64", "i686", "i386")

    @property
    def amx(self) -> tuple[str, ...]:
        return tuple(f for f in AMX_FLAGS if f in self.flags)

    @property
    def avx2(self) -> bool:
        return "avx2" in self.flags

    @property
    def avx512(self) -> bool:
        return "avx512f" in self.flags


@dataclass(frozen=True)
class BufferPlan:
    """How to load: llama.cpp's extra buffers on or off, and whether to pin repack weights."""

    name: str  # "llama.cpp default" | "repack without AMX" | "no repack"
    use_extra_bufts: bool
    pin_repack: bool
    reason: str

    def describe(self) -> str:
        return f"{self.name}: {self.reason}"


def choose(setting: str, cpu: CpuFeatures) -> BufferPlan:
    """The buffer plan for ``setting`` (auto/on/off) on ``cpu``."""
    amx = ", ".join(cpu.amx)
    if setting == "off":
        return BufferPlan("no repack", False, False,
                          "repacked weight buffers are off in settings (like --no-repack)")
    if setting == "on":
        warning = (f"; this CPU has AMX ({amx}), whose buffers crash with Q4_K_M models"
                   if cpu.amx else "")
        return BufferPlan("llama.cpp default", True, False,
                          "on in settings: llama.cpp's own choice, AMX included" + warning)
    if setting != "auto":
        raise ValueError(f"unknown buffer setting {setting!r}; use one of {', '.join(SETTINGS)}")
    if cpu.amx:
        return BufferPlan(
            "repack without AMX", False, True,
            f"this CPU has AMX ({amx}); llama.cpp's AMX buffers crash with Q4_K_M models, "
            "so they stay off and the weights the repack kernels take are pinned to CPU_REPACK",
        )
    return BufferPlan("llama.cpp default", True, False,
                      "no AMX on this CPU: llama.cpp repacks weights where its kernels gain")


@dataclass(frozen=True)
class TensorInfo:
    name: str
    shape: tuple[int, ...]  # ggml order: shape[0] is the row length, shape[1] the row count
    ggml_type: int


def repackable(tensor: TensorInfo, cpu: CpuFeatures) -> bool:
    """Whether llama.cpp's x86 repack kernels take ``tensor`` (mirrors repack.cpp)."""
    if not cpu.x86 or len(tensor.shape) != 2 or not _MATMUL.match(tensor.name):
        return False
    if tensor.shape[1] % 8:
        return False
    if tensor.ggml_type in _X86_REPACK_AVX2:
        return cpu.avx2
    if tensor.ggml_type in _X86_REPACK_AVX512:
        return cpu.avx512
    return False


def repack_patterns(tensors: list[TensorInfo], cpu: CpuFeatures) -> list[str]:
    """Regular expressions naming exactly the repackable tensors, one per kind of weight."""
    layers: dict[str, list[int]] = {}
    patterns = []
    for tensor in tensors:
        if not repackable(tensor, cpu):
            continue
        match = _MATMUL.match(tensor.name)
        assert match is not None
        if match.group("output"):
            patterns.append(r"^output\.weight$")
        else:
            layers.setdefault(match.group("kind"), []).append(int(match.group("layer")))
    for kind, numbers in sorted(layers.items()):
        alternatives = "|".join(str(n) for n in sorted(set(numbers)))
        patterns.append(rf"^blk\.({alternatives})\.{kind}\.weight$")
    return patterns


# ---- the real CPU and the real llama.cpp (model process only) ------------------------------

_GGML_FLAGS = {  # ggml_cpu_has_* -> /proc/cpuinfo name
    "amx_int8": "amx_int8", "avx512": "avx512f", "avx2": "avx2", "avx": "avx",
    "avx512_vnni": "avx512_vnni", "neon": "asimd", "sve": "sve",
}


def cpuinfo_flags(text: str) -> frozenset[str]:
    """The feature flags in /proc/cpuinfo text (x86 ``flags``, ARM ``Features``)."""
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            return frozenset(value.split())
    return frozenset()


def _ggml_flags() -> set[str]:
    """What ggml says this CPU (and this build of it) supports."""
    found: set[str] = set()
    try:
        import llama_cpp

        lib = ctypes.CDLL(str(Path(llama_cpp.__file__).parent / "lib" / _lib_name("ggml-cpu")))
    except (ImportError, OSError):
        return found
    for name, flag in _GGML_FLAGS.items():
        fn = getattr(lib, f"ggml_cpu_has_{name}", None)
        if fn is not None:
            fn.restype = ctypes.c_int
            if fn():
                found.add(flag)
    return found


def _lib_name(stem: str) -> str:
    return f"lib{stem}.dylib" if platform.system() == "Darwin" else f"lib{stem}.so"


def detect(ask_ggml: bool = True) -> CpuFeatures:
    """This CPU's features: /proc/cpuinfo's flags and (``ask_ggml``) what ggml reports."""
    flags: set[str] = set()
    try:
        flags |= cpuinfo_flags(Path("/proc/cpuinfo").read_text(errors="replace"))
    except OSError:
        pass
    if ask_ggml:
        flags |= _ggml_flags()
    return CpuFeatures(platform.machine(), frozenset(flags))


class _Override(ctypes.Structure):
    _fields_ = [("pattern", ctypes.c_char_p), ("buft", ctypes.c_void_p)]


def repack_buffer_type() -> int | None:
    """The address of llama.cpp's CPU_REPACK buffer type, or None if this build has none."""
    import llama_cpp
    from llama_cpp._ggml import libggml

    base = ctypes.CDLL(str(Path(llama_cpp.__file__).parent / "lib" / _lib_name("ggml-base")))
    libggml.ggml_backend_dev_by_type.restype = ctypes.c_void_p
    libggml.ggml_backend_dev_by_type.argtypes = [ctypes.c_int]
    base.ggml_backend_dev_backend_reg.restype = ctypes.c_void_p
    base.ggml_backend_dev_backend_reg.argtypes = [ctypes.c_void_p]
    base.ggml_backend_reg_get_proc_address.restype = ctypes.c_void_p
    base.ggml_backend_reg_get_proc_address.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
    base.ggml_backend_buft_name.restype = ctypes.c_char_p
    base.ggml_backend_buft_name.argtypes = [ctypes.c_void_p]
    device = libggml.ggml_backend_dev_by_type(0)  # GGML_BACKEND_DEVICE_TYPE_CPU
    if not device:
        return None
    address = base.ggml_backend_reg_get_proc_address(
        base.ggml_backend_dev_backend_reg(device), b"ggml_backend_dev_get_extra_bufts")
    if not address:
        return None
    extra = ctypes.CFUNCTYPE(ctypes.POINTER(ctypes.c_void_p), ctypes.c_void_p)(address)(device)
    index = 0
    while extra and extra[index]:
        if base.ggml_backend_buft_name(extra[index]) == b"CPU_REPACK":
            return int(extra[index])
        index += 1
    return None


def apply(params, plan: BufferPlan, patterns: list[str]) -> object:
    """Write ``plan`` into llama.cpp model ``params``; keep the returned object alive while loading."""
    params.use_extra_bufts = plan.use_extra_bufts
    if not plan.pin_repack or not patterns:
        return None
    buft = repack_buffer_type()
    if buft is None:
        return None
    table = (_Override * (len(patterns) + 1))()
    encoded = [p.encode() for p in patterns]
    for index, pattern in enumerate(encoded):
        table[index].pattern = pattern
        table[index].buft = buft
    params.tensor_buft_overrides = ctypes.cast(table, ctypes.c_void_p)
    return (table, encoded)


def read_tensors(path: Path) -> list[TensorInfo]:
    """Every tensor's name, shape and type from a GGUF header (the file is already checked)."""
    from app.modelhub.gguf import _KEEP_PREFIXES, _Reader  # noqa: F401 - the same header walk

    size = path.stat().st_size
    with path.open("rb") as handle:
        reader = _Reader(handle, size)
        reader.read(4)
        reader.u32()
        tensor_count = reader.u64()
        kv_count = reader.u64()
        for _ in range(kv_count):
            reader.string(keep=False)
            reader.value(reader.u32(), keep=False)
        tensors = []
        for _ in range(tensor_count):
            name = reader.string() or ""
            dims = reader.u32()
            shape = tuple(reader.u64() for _ in range(dims))
            ggml_type = reader.u32()
            reader.u64()
            tensors.append(TensorInfo(name, shape, ggml_type))
    return tensors
