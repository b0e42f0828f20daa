"""The devices a run may train on, counted without loading TensorFlow."""

from __future__ import annotations

import os
from pathlib import Path

CPU_REPLICAS_ENV = "CVATKIT_CPU_REPLICAS"
"""Split the CPU into this many logical devices and count them as GPUs: checks
multi-GPU runs (num-clones > 1) on a machine without GPUs."""
CPUINFO = Path("/proc/cpuinfo")
BFLOAT16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")
"""CPU flags (Linux's names) of bfloat16 arithmetic in hardware: AVX512-BF16's dot
products and AMX's tiles."""


def count_gpus() -> int:
    """GPUs this process may use, without loading TensorFlow."""
    replicas = os.environ.get(CPU_REPLICAS_ENV)
    if replicas:
        return int(replicas)
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        ids = [d for d in visible.split(",") if d.strip() and d.strip() != "-1"]
        return len(ids)
    try:
        return len(os.listdir("/proc/driver/nvidia/gpus"))
    except OSError:
        return 0


def cpu_bfloat16_flags() -> tuple[str, ...]:
    """Which of ``BFLOAT16_CPU_FLAGS`` this machine's CPU has (none where ``CPUINFO``
    cannot be read: not Linux)."""
    try:
        text = CPUINFO.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ()
    flags = set()
    for line in text.splitlines():
        name, _, value = line.partition(":")
        if name.strip() == "flags":
            flags.update(value.split())
    return tuple(f for f in BFLOAT16_CPU_FLAGS if f in flags)
