"""numexpr: elementwise expressions compiled to its virtual machine; NumPy for the reductions.

numexpr has no matrix product and reduces only over whole arrays, so W3 and W4
use NumPy for the row reductions and numexpr for the elementwise work between
them (as a numexpr user writes them), and W5-W7 are not expressible.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from graphflow.benchmarks.peers import Prepared, Unsupported, kind
from graphflow.benchmarks.workloads import GELU_C, LAYERNORM_EPS, Case

ne: Any = None


def setup(threads: int) -> str:
    """Imports numexpr and sets its thread count; returns its version."""
    global ne
    import numexpr

    numexpr.set_num_threads(threads)
    ne = numexpr
    return numexpr.__version__


def prepare(variant: str, workload_id: str, case: Case) -> Prepared:
    """The workload as numexpr expressions (float32 constants keep float32 results)."""
    a = case.arrays
    f32 = np.float32
    family = kind(workload_id)
    if family == "W1":
        x, one = a["x"], f32(1)
        return Prepared(lambda: ne.evaluate("x + one", local_dict={"x": x, "one": one}))
    if family == "W2":
        names = {"x": a["x"], "half": f32(0.5), "one": f32(1), "c": f32(GELU_C), "k": f32(0.044715)}
        expression = "half * x * (one + tanh(c * (x + k * x * x * x)))"
        return Prepared(lambda: ne.evaluate(expression, local_dict=names))
    if family == "W3":
        x = a["x"]

        def softmax() -> np.ndarray:
            top = x.max(axis=-1, keepdims=True)
            e = ne.evaluate("exp(x - top)", local_dict={"x": x, "top": top})
            total = e.sum(axis=-1, keepdims=True)
            return ne.evaluate("e / total", local_dict={"e": e, "total": total})

        return Prepared(softmax)
    if family == "W4":
        x, gamma, beta, eps = a["x"], a["gamma"], a["beta"], f32(LAYERNORM_EPS)

        def layernorm() -> np.ndarray:
            mean = x.mean(axis=-1, keepdims=True)
            centered = ne.evaluate("x - mean", local_dict={"x": x, "mean": mean})
            squares = ne.evaluate("c * c", local_dict={"c": centered})
            names = {
                "c": centered,
                "variance": squares.mean(axis=-1, keepdims=True),
                "eps": eps,
                "gamma": gamma,
                "beta": beta,
            }
            return ne.evaluate("c / sqrt(variance + eps) * gamma + beta", local_dict=names)

        return Prepared(layernorm)
    raise Unsupported("numexpr has no matrix product")
