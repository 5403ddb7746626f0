"""PyTorch: eager mode and `torch.compile` (Inductor), NumPy in through `torch.from_numpy`.

Forward workloads run under `torch.inference_mode()`. W6 uses PyTorch's
autograd and `torch.optim.SGD(lr=0.01)`: forward and loss (compiled for
torch.compile), `loss.backward()`, `optimizer.step()`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
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

torch: Any = None


def setup(threads: int) -> str:
    """Imports PyTorch with `threads` intra-op threads and one inter-op thread."""
    global torch
    import torch as torch_module

    torch_module.set_num_threads(threads)
    with contextlib.suppress(RuntimeError):  # already set in this process
        torch_module.set_num_interop_threads(1)
    torch = torch_module
    return torch_module.__version__


def _mlp_logits(x: Any, parameters: list[Any]) -> Any:
    w1, b1, w2, b2, w3, b3 = parameters
    h = torch.relu(x @ w1 + b1)
    h = torch.relu(h @ w2 + b2)
    return h @ w3 + b3


def _forward(family: str, a: dict[str, np.ndarray]) -> tuple[Callable[..., Any], tuple[str, ...]]:
    if family == "W1":
        return (lambda x: x + 1.0), ("x",)
    if family == "W2":
        return (lambda x: 0.5 * x * (1.0 + torch.tanh(GELU_C * (x + 0.044715 * x * x * x)))), ("x",)
    if family == "W3":
        return (lambda x: torch.softmax(x, dim=-1)), ("x",)
    if family == "W4":

        def layernorm(x: Any, gamma: Any, beta: Any) -> Any:
            mean = x.mean(dim=-1, keepdim=True)
            variance = (x - mean).square().mean(dim=-1, keepdim=True)
            return (x - mean) * torch.rsqrt(variance + LAYERNORM_EPS) * gamma + beta

        return layernorm, ("x", "gamma", "beta")
    if family == "W5":
        weights = [torch.from_numpy(a[n].copy()) for n in PARAMETER_NAMES]
        return (lambda x: torch.softmax(_mlp_logits(x, weights), dim=-1)), ("x",)
    return (lambda x, y: x @ y), ("a", "b")


def prepare(variant: str, workload_id: str, case: Case) -> Prepared:
    """The workload in eager mode ("eager") or through torch.compile ("compile")."""
    family = kind(workload_id)
    a = case.arrays
    if family == "W6":
        return _training_step(a, compiled=variant == "compile")
    fn, fed = _forward(family, a)
    if variant == "compile":
        fn = torch.compile(fn)
    arrays = [a[n] for n in fed]

    def call() -> np.ndarray:
        with torch.inference_mode():
            return fn(*[torch.from_numpy(v) for v in arrays]).numpy()

    return Prepared(call)


def _training_step(a: dict[str, np.ndarray], compiled: bool) -> Prepared:
    parameters = [torch.from_numpy(a[n].copy()).requires_grad_() for n in PARAMETER_NAMES]
    optimizer = torch.optim.SGD(parameters, lr=LEARNING_RATE)
    x, labels = a["x"], a["labels"]

    def loss_fn(x: Any, labels: Any) -> Any:
        return torch.nn.functional.cross_entropy(_mlp_logits(x, parameters), labels)

    forward = torch.compile(loss_fn) if compiled else loss_fn

    def call() -> np.ndarray:
        optimizer.zero_grad(set_to_none=True)
        loss = forward(torch.from_numpy(x), torch.from_numpy(labels))
        loss.backward()
        optimizer.step()
        return loss.detach().numpy()

    return Prepared(call, lambda: [p.detach().numpy().copy() for p in parameters])
