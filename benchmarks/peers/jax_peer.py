"""JAX: each workload as a `jax.jit` function called on NumPy arrays, results read back as NumPy.

W5's weights are captured as constants of the traced function, as the
workload defines them. W6 uses `jax.value_and_grad` and an SGD update in the
same jitted step; the parameters stay JAX arrays between steps (donated, so
updated in place), as a JAX training loop keeps them.
"""

from __future__ import annotations

import os
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

jax: Any = None
jnp: Any = None


def setup(threads: int) -> str:
    """Imports JAX on the CPU; with one thread, XLA's CPU backend runs single-threaded."""
    global jax, jnp
    if threads == 1:
        flags = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
        os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " " + flags).strip()
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    import jax as jax_module
    import jax.numpy as jax_numpy

    jax, jnp = jax_module, jax_numpy
    return jax_module.__version__


def _mlp_logits(x: Any, parameters: Any) -> Any:
    w1, b1, w2, b2, w3, b3 = parameters
    h = jax.nn.relu(x @ w1 + b1)
    h = jax.nn.relu(h @ w2 + b2)
    return h @ w3 + b3


def prepare(variant: str, workload_id: str, case: Case) -> Prepared:
    """The workload as a jitted function of the fed arrays."""
    family = kind(workload_id)
    a = case.arrays
    if family == "W6":
        return _training_step(a)
    if family == "W1":
        fn, fed = (lambda x: x + 1.0), ("x",)
    elif family == "W2":
        fn, fed = (
            (lambda x: 0.5 * x * (1.0 + jnp.tanh(GELU_C * (x + 0.044715 * x * x * x)))),
            ("x",),
        )
    elif family == "W3":
        fn, fed = (lambda x: jax.nn.softmax(x, axis=-1)), ("x",)
    elif family == "W4":

        def fn(x: Any, gamma: Any, beta: Any) -> Any:
            mean = jnp.mean(x, axis=-1, keepdims=True)
            variance = jnp.mean(jnp.square(x - mean), axis=-1, keepdims=True)
            return (x - mean) * jax.lax.rsqrt(variance + LAYERNORM_EPS) * gamma + beta

        fed = ("x", "gamma", "beta")
    elif family == "W5":
        weights = [jnp.asarray(a[n]) for n in PARAMETER_NAMES]
        fn, fed = (lambda x: jax.nn.softmax(_mlp_logits(x, weights), axis=-1)), ("x",)
    else:  # W7
        fn, fed = (lambda x, y: x @ y), ("a", "b")
    jitted = jax.jit(fn)
    arrays = [a[n] for n in fed]
    return Prepared(lambda: np.asarray(jitted(*arrays)))


def _training_step(a: dict[str, np.ndarray]) -> Prepared:
    x, labels = a["x"], a["labels"]

    def loss_fn(parameters: Any, x: Any, labels: Any) -> Any:
        logits = _mlp_logits(x, parameters)
        log_p = jax.nn.log_softmax(logits, axis=-1)
        return -jnp.mean(jnp.take_along_axis(log_p, labels[:, None], axis=-1))

    def step(parameters: Any, x: Any, labels: Any) -> Any:
        loss, gradients = jax.value_and_grad(loss_fn)(parameters, x, labels)
        updated = [p - LEARNING_RATE * g for p, g in zip(parameters, gradients)]
        return loss, updated

    jitted = jax.jit(step, donate_argnums=0)
    state = {"parameters": [jnp.asarray(a[n]) for n in PARAMETER_NAMES]}

    def call() -> np.ndarray:
        loss, state["parameters"] = jitted(state["parameters"], x, labels)
        return np.asarray(loss)

    return Prepared(call, lambda: [np.asarray(p) for p in state["parameters"]])
