"""A llama.cpp build that needs instructions the kernel does not enable is refused up front."""

from __future__ import annotations

from pathlib import Path

import pytest

from theramind.errors import ConfigError
from theramind.llm.backends import cpu_features
from theramind.llm.backends.cpu_features import check_llama_build, unsupported

NATIVE_BUILD = (
    "CPU : SSE3 = 1 | SSSE3 = 1 | AVX = 1 | AVX2 = 1 | F16C = 1 | FMA = 1 | BMI2 = 1 | "
    "AVX512 = 1 | AVX512_VBMI = 1 | AVX512_VNNI = 1 | AVX512_BF16 = 1 | AMX_INT8 = 1 | "
    "LLAMAFILE = 1 | OPENMP = 1 | REPACK = 1 |"
)
PORTABLE_BUILD = (
    "CPU : SSE3 = 1 | SSSE3 = 1 | AVX = 1 | AVX2 = 1 | F16C = 1 | FMA = 1 | BMI2 = 1 | "
    "LLAMAFILE = 1 | OPENMP = 1 | REPACK = 1 |"
)
# A kernel that enables AVX512 but not AMX (what CPUID claims is not what the kernel allows).
CPUINFO = (
    "processor\t: 0\nmodel name\t: x86-64 test CPU\n"
    "flags\t\t: fpu sse sse2 pni ssse3 fma avx f16c avx2 bmi2 avx512f avx512vbmi "
    "avx512_vnni avx512_bf16\n"
)


def test_a_native_build_with_amx_is_refused_where_the_kernel_lacks_amx() -> None:
    assert unsupported(NATIVE_BUILD, CPUINFO) == ["AMX_INT8 (amx_int8)"]


def test_a_portable_build_passes() -> None:
    assert unsupported(PORTABLE_BUILD, CPUINFO) == []


def test_a_build_needing_avx2_is_refused_on_a_cpu_without_it() -> None:
    old_cpu = "flags\t\t: fpu sse sse2 pni ssse3 avx\n"
    assert unsupported(PORTABLE_BUILD, old_cpu) == [
        "AVX2 (avx2)",
        "F16C (f16c)",
        "FMA (fma)",
        "BMI2 (bmi2)",
    ]


def test_the_error_says_how_to_rebuild(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import llama_cpp

    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(CPUINFO)
    monkeypatch.setattr(llama_cpp, "llama_print_system_info", lambda: NATIVE_BUILD.encode())
    with pytest.raises(ConfigError) as err:
        check_llama_build(cpuinfo)
    assert "AMX_INT8" in str(err.value)
    assert "GGML_NATIVE=OFF" in str(err.value) and "--no-cache-dir" in str(err.value)


def test_the_installed_build_runs_on_this_machine() -> None:
    check_llama_build()  # raises if the installed wheel was built for another CPU


def test_no_cpuinfo_means_nothing_to_compare(tmp_path: Path) -> None:
    check_llama_build(tmp_path / "missing")
    assert cpu_features.cpu_flags("no flags here") == set()
