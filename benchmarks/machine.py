"""Where a benchmark ran, printed above its table: figures from one machine never compare with another's.

    CPU, cores the process may use, the vector ISA the CPU offers (what XLA's CPU code generation can use), the
    accelerator if any, and the versions of Python and the libraries that decide the compiled program.
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import time

ISA_FLAGS = ("sse4_2", "avx", "avx2", "fma", "avx512f", "avx512_bf16", "amx_tile", "asimd", "sve")
"""The /proc/cpuinfo flags that change what XLA's CPU backend emits, when the CPU has them."""
PACKAGES = ("jax", "jaxlib", "flax", "optax", "gymnax", "rejax")


def cpu_model() -> str:
    """The CPU's model name (Linux's /proc/cpuinfo), else what `platform` knows."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith(("model name", "Model")):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def isa_flags() -> list[str]:
    """The flags of `ISA_FLAGS` the CPU reports (empty where /proc/cpuinfo is not there)."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line.split(":", 1)[1].split() for line in f if line.startswith(("flags", "Features"))), [])
    except OSError:
        return []
    return [flag for flag in ISA_FLAGS if flag in flags]


def versions() -> str:
    found = []
    for name in PACKAGES:
        try:
            found.append(f"{name} {importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            pass
    return ", ".join(found)


def header() -> str:
    """Three lines: the machine, the accelerator and compiler settings, the software; and the date."""
    import jax

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    device = jax.devices()[0]
    accelerator = "none" if device.platform == "cpu" else f"{device.device_kind} ({device.platform})"
    return "\n".join([
        f"- machine: {cpu_model()}, {cores} cores usable of {os.cpu_count()}, {platform.machine()}; "
        f"ISA: {' '.join(isa_flags()) or 'unknown'}",
        f"- accelerator: {accelerator}; XLA_FLAGS: {os.environ.get('XLA_FLAGS') or '(none)'}",
        f"- software: Python {platform.python_version()}, {versions()}; {time.strftime('%Y-%m-%d %H:%M %Z')}",
    ])


if __name__ == "__main__":
    print(header())
