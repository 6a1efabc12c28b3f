"""The weight-buffer decision on sample CPUs, and that pinning matches llama.cpp's own repack."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from app.llm.buffers import CpuFeatures, TensorInfo, choose, cpuinfo_flags, repack_patterns
from tests.conftest import ROOT

SAPPHIRE_RAPIDS = CpuFeatures("x86_64", cpuinfo_flags(
    "flags : fpu sse2 avx avx2 fma f16c avx512f avx512bw avx512_vnni avx512_bf16 amx_bf16 "
    "amx_tile amx_int8"))
ICE_LAKE = CpuFeatures("x86_64", cpuinfo_flags("flags : fpu sse2 avx avx2 fma f16c avx512f avx512_vnni"))
HASWELL = CpuFeatures("x86_64", cpuinfo_flags("flags : fpu sse2 avx avx2 fma f16c"))
GRAVITON = CpuFeatures("aarch64", cpuinfo_flags("Features : fp asimd asimddp i8mm sve"))

# Shapes and types as in a Llama 3.2 Q4_K_M file (ggml order: row length, rows).
LLAMA_LAYER = [
    TensorInfo("token_embd.weight", (3072, 128256), 14),
    TensorInfo("blk.0.attn_norm.weight", (3072,), 0),
    TensorInfo("blk.0.attn_q.weight", (3072, 3072), 12),
    TensorInfo("blk.0.attn_k.weight", (3072, 1024), 12),
    TensorInfo("blk.0.attn_v.weight", (3072, 1024), 14),
    TensorInfo("blk.0.attn_output.weight", (3072, 3072), 12),
    TensorInfo("blk.0.ffn_gate.weight", (3072, 8192), 12),
    TensorInfo("blk.0.ffn_up.weight", (3072, 8192), 12),
    TensorInfo("blk.0.ffn_down.weight", (8192, 3072), 14),
    TensorInfo("blk.1.ffn_down.weight", (8192, 3072), 12),
    TensorInfo("blk.1.attn_q.weight", (3072, 3070), 12),  # rows not a multiple of 8
    TensorInfo("output.weight", (3072, 128256), 2),
]


def test_amx_cpu_keeps_amx_off_and_pins_repack():
    plan = choose("auto", SAPPHIRE_RAPIDS)
    assert plan.use_extra_bufts is False and plan.pin_repack
    assert "amx_tile, amx_int8, amx_bf16" in plan.reason


@pytest.mark.parametrize("cpu", [ICE_LAKE, HASWELL, GRAVITON], ids=["avx512", "avx2", "arm"])
def test_without_amx_llama_cpp_chooses(cpu):
    plan = choose("auto", cpu)
    assert plan.use_extra_bufts is True and not plan.pin_repack
    assert "no AMX" in plan.reason


@pytest.mark.parametrize("cpu", [SAPPHIRE_RAPIDS, ICE_LAKE, HASWELL, GRAVITON])
def test_the_setting_overrides_the_choice(cpu):
    off = choose("off", cpu)
    assert not off.use_extra_bufts and not off.pin_repack and "settings" in off.reason
    on = choose("on", cpu)
    assert on.use_extra_bufts and not on.pin_repack
    assert ("crash" in on.reason) == bool(cpu.amx)  # on an AMX CPU, say what it risks
    with pytest.raises(ValueError):
        choose("maybe", cpu)


def test_pinned_weights_are_those_the_x86_repack_kernels_take():
    patterns = repack_patterns(LLAMA_LAYER, SAPPHIRE_RAPIDS)
    assert sorted(patterns) == sorted([r"^output\.weight$",
                                       r"^blk\.(0)\.attn_k\.weight$",
                                       r"^blk\.(0)\.attn_output\.weight$",
                                       r"^blk\.(0)\.attn_q\.weight$",
                                       r"^blk\.(0)\.ffn_gate\.weight$",
                                       r"^blk\.(1)\.ffn_down\.weight$",
                                       r"^blk\.(0)\.ffn_up\.weight$"])
    # Q6_K, norms, embeddings (looked up, not multiplied) and odd row counts stay plain;
    # ARM's kernels differ and are never pinned (no AMX there).
    assert repack_patterns(LLAMA_LAYER, GRAVITON) == []
    assert repack_patterns([TensorInfo("blk.0.ffn_up.weight", (3072, 8192), 10)], HASWELL) == []
    assert repack_patterns([TensorInfo("blk.0.ffn_up.weight", (3072, 8192), 10)], ICE_LAKE)


def test_cpuinfo_flags_are_read_on_x86_and_arm():
    x86 = "processor\t: 0\nflags\t\t: fpu avx2 amx_tile amx_int8\nbugs\t\t: spectre\n"
    arm = "processor\t: 0\nFeatures\t: fp asimd sve\n"
    assert {"amx_tile", "amx_int8", "avx2"} <= cpuinfo_flags(x86)
    assert CpuFeatures("x86_64", cpuinfo_flags(x86)).amx == ("amx_tile", "amx_int8")
    assert cpuinfo_flags(arm) == {"fp", "asimd", "sve"}
    assert cpuinfo_flags("") == frozenset()


PINNED = textwrap.dedent("""
    import ctypes, sys
    import llama_cpp, llama_cpp.llama_cpp as lc
    from pathlib import Path
    from app.llm import buffers
    path, pin = Path(sys.argv[1]), sys.argv[2] == "pin"
    lines = []
    @llama_cpp.llama_log_callback
    def cb(level, text, data):
        lines.append(text.decode(errors="replace"))
    llama_cpp.llama_log_set(cb, ctypes.c_void_p(0))
    cpu = buffers.detect()
    plan = buffers.BufferPlan("t", not pin, pin, "")
    patterns = buffers.repack_patterns(buffers.read_tensors(path), cpu) if pin else []
    original, keep = lc.llama_model_default_params, []
    def ours():
        params = original()
        keep.append(buffers.apply(params, plan, patterns))
        return params
    lc.llama_model_default_params = ours
    llm = llama_cpp.Llama(model_path=str(path), n_ctx=256, n_threads=2, verbose=False)
    out = llm.create_completion("Hello", max_tokens=4, temperature=0.0)
    print([l.strip() for l in "".join(lines).splitlines() if "model buffer size" in l])
""")


@pytest.mark.model
def test_pinning_puts_the_same_weights_in_cpu_repack_as_llama_cpp(gemma_gguf):
    """With the extra buffers off (as on an AMX CPU) and the weights pinned by name, the
    repack buffer holds exactly what llama.cpp's own choice puts there, and the model runs."""
    sizes = {}
    for mode in ("default", "pin"):
        result = subprocess.run([sys.executable, "-c", PINNED, str(gemma_gguf), mode], cwd=ROOT,
                                capture_output=True, text=True, timeout=180)
        assert result.returncode == 0, result.stderr[-2000:]
        sizes[mode] = result.stdout.strip()
    assert "CPU_REPACK" in sizes["default"]
    assert sizes["pin"] == sizes["default"]
