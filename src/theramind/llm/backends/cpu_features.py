"""Refuse a llama.cpp build that uses CPU instructions this machine's kernel does not enable.

llama.cpp's default build (`GGML_NATIVE=ON`) compiles for the build machine's CPUID. Where
CPUID reports features the kernel has not enabled (AMX, AVX512-FP16 on some virtual machines),
such a build dies with an illegal instruction as soon as a prompt is longer than a few tokens,
killing the whole process. The features a build uses are fixed at compile time and reported by
`llama_print_system_info()`; this module compares them with the kernel's `/proc/cpuinfo` flags
before a model is loaded, so the failure is an error that says how to rebuild.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

from theramind.errors import ConfigError

log = logging.getLogger(__name__)

# llama.cpp's name for a compile-time feature -> the kernel's /proc/cpuinfo flag.
FEATURE_FLAGS: dict[str, str] = {
    "SSE3": "pni",
    "SSSE3": "ssse3",
    "AVX": "avx",
    "AVX2": "avx2",
    "F16C": "f16c",
    "FMA": "fma",
    "BMI2": "bmi2",
    "AVX_VNNI": "avx_vnni",
    "AVX512": "avx512f",
    "AVX512_VBMI": "avx512vbmi",
    "AVX512_VNNI": "avx512_vnni",
    "AVX512_BF16": "avx512_bf16",
    "AMX_INT8": "amx_int8",
}

PORTABLE_CMAKE_ARGS = (
    "-DLLAVA_BUILD=OFF -DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON"
)
REBUILD_HINT = (
    "rebuild it portable: `bash scripts/install.sh` in a checkout, or "
    f'CMAKE_ARGS="{PORTABLE_CMAKE_ARGS}" pip install --force-reinstall --no-cache-dir '
    "--no-deps llama-cpp-python"
)


def build_features(system_info: str) -> set[str]:
    """Return the features a llama.cpp build reports as compiled in (`NAME = 1`)."""
    return {name for name, on in re.findall(r"([A-Z0-9_]+)\s*=\s*(\d)", system_info) if on == "1"}


def cpu_flags(cpuinfo: str) -> set[str]:
    """Return the kernel's CPU flags from the text of `/proc/cpuinfo` (first processor)."""
    for line in cpuinfo.splitlines():
        if line.startswith("flags"):
            return set(line.partition(":")[2].split())
    return set()


def unsupported(system_info: str, cpuinfo: str) -> list[str]:
    """Return the build's features that the kernel does not report, as `NAME (flag)`."""
    flags = cpu_flags(cpuinfo)
    if not flags:
        return []
    built = build_features(system_info)
    return [
        f"{name} ({flag})"
        for name, flag in FEATURE_FLAGS.items()
        if name in built and flag not in flags
    ]


def check_llama_build(cpuinfo_path: Path = Path("/proc/cpuinfo")) -> None:
    """Raise `ConfigError` when the installed llama.cpp needs instructions this CPU lacks.

    Does nothing where `/proc/cpuinfo` does not exist (not Linux): there is nothing to
    compare with.
    """
    if not cpuinfo_path.is_file():
        return
    import llama_cpp

    raw = llama_cpp.llama_print_system_info()
    info = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
    missing = unsupported(info, cpuinfo_path.read_text(encoding="utf-8", errors="replace"))
    if missing:
        raise ConfigError(
            "the installed llama.cpp was built for CPU instructions this machine does not "
            f"enable: {', '.join(missing)}; any real prompt would crash the process with an "
            f"illegal instruction. {REBUILD_HINT}"
        )
    log.debug("llama.cpp build features all enabled here: %s", info.strip())
