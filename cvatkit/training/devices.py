"""The devices a run may train on, counted without loading TensorFlow."""

from __future__ import annotations

import os

CPU_REPLICAS_ENV = "CVATKIT_CPU_REPLICAS"
"""Split the CPU into this many logical devices and count them as GPUs: checks
multi-GPU runs (num-clones > 1) on a machine without GPUs."""


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
