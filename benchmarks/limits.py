"""The machine: its description, and the limits each result is read against (WORKLOADS.md).

- memory bandwidth: a large `np.copyto` into a reused array, bytes read + written per second;
- the FLOP rate of NumPy's BLAS on a large float32 GEMM (into a reused output);
- the dispatch floor: NumPy's `x + 1` on one float32 element.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import os
import pathlib
import platform
import subprocess
from typing import Any

import numpy as np

from graphflow.benchmarks.timing import Budget, measure

THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


@dataclasses.dataclass(frozen=True)
class Limits:
    """What this machine does at best, as NumPy reaches it.

    Attributes:
      copy_gbs: GB/s (1e9 bytes) read + written by `np.copyto` of `copy_bytes`.
      copy_bytes: the size of the array copied.
      gemm_gflops: GFLOP/s of NumPy's float32 `matmul` of two [gemm_n, gemm_n].
      gemm_n: the GEMM's size.
      dispatch_us: microseconds of NumPy's `x + 1` on a float32 [1].
    """

    copy_gbs: float
    copy_bytes: int
    gemm_gflops: float
    gemm_n: int
    dispatch_us: float


def measure_limits(budget: Budget, scale: float = 1.0) -> Limits:
    """Measures the limits (a few seconds); `scale` < 1 shrinks the arrays (for tests)."""
    elements = max(2**16, round(2**26 * scale))  # 256 MiB: far beyond the caches
    source = np.random.default_rng(0).standard_normal(elements, dtype=np.float32)
    target = np.zeros_like(source)  # touched now: no page faults while timed
    copy = measure(lambda: np.copyto(target, source), budget)

    n = max(64, round(2048 * scale ** (1.0 / 3.0)))
    rng = np.random.default_rng(1)
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    c = np.zeros((n, n), np.float32)
    gemm = measure(lambda: np.matmul(a, b, out=c), budget)

    x = np.ones(1, np.float32)
    dispatch = measure(lambda: x + 1, budget)
    return Limits(
        copy_gbs=2 * source.nbytes / copy.median / 1e9,
        copy_bytes=source.nbytes,
        gemm_gflops=2.0 * n**3 / gemm.median / 1e9,
        gemm_n=n,
        dispatch_us=dispatch.median * 1e6,
    )


def describe_machine() -> dict[str, Any]:
    """The CPU, cores, threads and versions a run was measured with."""
    cpu = "unknown"
    try:
        for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        cpu = platform.processor() or "unknown"
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        usable = os.cpu_count()
    return {
        "cpu": cpu,
        "llvm_host_cpu": _llvm_host_cpu(),
        "cores": os.cpu_count(),
        "cores_usable": usable,
        "threads": {name: os.environ.get(name) for name in THREAD_VARIABLES},
        "platform": platform.platform(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "numpy_blas": _numpy_blas(),
        "llvmlite": importlib.metadata.version("llvmlite"),
        "graphflow": importlib.metadata.version("graphflow"),
        "graphflow_source": _source_revision(),
    }


def _llvm_host_cpu() -> str:
    import llvmlite.binding as llvm

    return llvm.get_host_cpu_name()


def _numpy_blas() -> str:
    try:
        config = np.show_config(mode="dicts")
        blas = config["Build Dependencies"]["blas"]
        return f"{blas.get('name', '?')} {blas.get('version', '')}".strip()
    except (TypeError, KeyError, AttributeError):  # NumPy < 1.26 has no mode="dicts"
        return "unknown"


def _source_revision() -> str | None:
    """The git commit of graphflow's source, "+dirty" when the tree has changes; None if not git."""
    import graphflow

    folder = pathlib.Path(graphflow.__file__).resolve().parent
    try:
        head = subprocess.run(
            ["git", "-C", str(folder), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
        )
        if head.returncode != 0:
            return None
        status = subprocess.run(
            ["git", "-C", str(folder), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return head.stdout.strip() + ("+dirty" if status.stdout.strip() else "")
