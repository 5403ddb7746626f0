"""PyTensor: each workload as a compiled `pytensor.function` (default C backend), floatX float32.

W5's weights are graph constants; W6 keeps the six parameters in shared
variables and updates them with `pytensor.grad` and SGD updates of the
function, the way PyTensor trains.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from graphflow.benchmarks.peers import Prepared, kind
from graphflow.benchmarks.workloads import (
    GELU_C,
    LAYERNORM_EPS,
    LEARNING_RATE,
    PARAMETER_NAMES,
    Case,
)

pytensor: Any = None
pt: Any = None


def setup(threads: int) -> str:
    """Imports PyTensor with floatX float32 (its BLAS reads the thread variables)."""
    global pytensor, pt
    import pytensor as pytensor_module
    import pytensor.tensor as tensor

    pytensor_module.config.floatX = "float32"
    pytensor, pt = pytensor_module, tensor
    return pytensor_module.__version__


def _input(name: str, array: np.ndarray) -> Any:
    return pt.tensor(name=name, dtype=array.dtype.name, shape=array.shape)


def _mlp_logits(x: Any, parameters: list[Any]) -> Any:
    w1, b1, w2, b2, w3, b3 = parameters
    h = pt.maximum(pt.dot(x, w1) + b1, 0)
    h = pt.maximum(pt.dot(h, w2) + b2, 0)
    return pt.dot(h, w3) + b3


def prepare(variant: str, workload_id: str, case: Case) -> Prepared:
    """The workload as a compiled pytensor.function of the fed arrays."""
    family = kind(workload_id)
    a = case.arrays
    if family == "W6":
        return _training_step(a)
    fed = {"W4": ("x", "gamma", "beta"), "W7": ("a", "b")}.get(family, ("x",))
    inputs = {n: _input(n, a[n]) for n in fed}
    if family == "W1":
        y = inputs["x"] + np.float32(1)
    elif family == "W2":
        x = inputs["x"]
        y = 0.5 * x * (1.0 + pt.tanh(GELU_C * (x + 0.044715 * x * x * x)))
    elif family == "W3":
        y = pt.special.softmax(inputs["x"], axis=-1)
    elif family == "W4":
        x = inputs["x"]
        mean = x.mean(axis=-1, keepdims=True)
        variance = pt.sqr(x - mean).mean(axis=-1, keepdims=True)
        y = (x - mean) / pt.sqrt(variance + LAYERNORM_EPS) * inputs["gamma"] + inputs["beta"]
    elif family == "W5":
        weights = [pt.constant(a[n]) for n in PARAMETER_NAMES]
        y = pt.special.softmax(_mlp_logits(inputs["x"], weights), axis=-1)
    else:  # W7
        y = pt.dot(inputs["a"], inputs["b"])
    function = pytensor.function(list(inputs.values()), y)
    arrays = [a[n] for n in fed]
    return Prepared(lambda: function(*arrays))


def _training_step(a: dict[str, np.ndarray]) -> Prepared:
    x, labels = _input("x", a["x"]), _input("labels", a["labels"])
    parameters = [pytensor.shared(a[n].copy(), name=n) for n in PARAMETER_NAMES]
    log_p = pt.special.log_softmax(_mlp_logits(x, parameters), axis=-1)
    loss = -log_p[pt.arange(labels.shape[0]), labels].mean()
    gradients = pytensor.grad(loss, parameters)
    updates = [(p, p - np.float32(LEARNING_RATE) * g) for p, g in zip(parameters, gradients)]
    function = pytensor.function([x, labels], loss, updates=updates)
    xa, ya = a["x"], a["labels"]
    return Prepared(lambda: function(xa, ya), lambda: [p.get_value() for p in parameters])
