"""TensorFlow: a TF1 Session (tf.compat.v1), tf.function, and tf.function(jit_compile=True) (XLA).

Each workload is written with TensorFlow's own ops (tf.nn.softmax,
tf.nn.moments, tf.matmul, ...). W6 uses TensorFlow's autodiff and SGD: in
the Session, `GradientDescentOptimizer(0.01).minimize(loss)`; in a
tf.function, a GradientTape and `assign_sub` on each variable.
"""

from __future__ import annotations

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

tf: Any = None


def setup(threads: int) -> str:
    """Imports TensorFlow with `threads` intra-op threads and one inter-op thread."""
    global tf
    import os

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # no banner on stderr per process
    import tensorflow

    tensorflow.config.threading.set_intra_op_parallelism_threads(threads)
    tensorflow.config.threading.set_inter_op_parallelism_threads(1)
    tf = tensorflow
    return tensorflow.__version__


def _forward(family: str, a: dict[str, np.ndarray], inputs: dict[str, Any]) -> Any:
    """The forward graph of a workload from TF tensors `inputs` (constants from `a`)."""
    if family == "W1":
        return inputs["x"] + 1.0
    if family == "W2":
        x = inputs["x"]
        return 0.5 * x * (1.0 + tf.tanh(GELU_C * (x + 0.044715 * x * x * x)))
    if family == "W3":
        return tf.nn.softmax(inputs["x"], axis=-1)
    if family == "W4":
        x = inputs["x"]
        mean, variance = tf.nn.moments(x, axes=[-1], keepdims=True)
        return (x - mean) * tf.math.rsqrt(variance + LAYERNORM_EPS) * inputs["gamma"] + inputs[
            "beta"
        ]
    if family == "W5":
        return tf.nn.softmax(_mlp_logits(inputs["x"], [tf.constant(a[n]) for n in PARAMETER_NAMES]))
    if family == "W7":
        return tf.matmul(inputs["a"], inputs["b"])
    raise KeyError(family)


def _mlp_logits(x: Any, parameters: list[Any]) -> Any:
    w1, b1, w2, b2, w3, b3 = parameters
    h = tf.nn.relu(tf.matmul(x, w1) + b1)
    h = tf.nn.relu(tf.matmul(h, w2) + b2)
    return tf.matmul(h, w3) + b3


def _loss(x: Any, labels: Any, parameters: list[Any]) -> Any:
    logits = _mlp_logits(x, parameters)
    return tf.reduce_mean(
        tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)
    )


_FED = {"W4": ("x", "gamma", "beta"), "W6": ("x", "labels"), "W7": ("a", "b")}


def prepare(variant: str, workload_id: str, case: Case) -> Prepared:
    """The workload in a TF1 Session ("session"), tf.function ("function") or XLA ("xla")."""
    family = kind(workload_id)
    a = case.arrays
    fed = _FED.get(family, ("x",))
    if variant == "session":
        return _session(family, a, fed)
    return _function(family, a, fed, jit_compile=variant == "xla")


def _session(family: str, a: dict[str, np.ndarray], fed: tuple[str, ...]) -> Prepared:
    v1 = tf.compat.v1
    graph = tf.Graph()
    with graph.as_default():
        placeholders = {n: v1.placeholder(tf.as_dtype(a[n].dtype), a[n].shape, n) for n in fed}
        if family == "W6":
            variables = [tf.Variable(a[n], name=n) for n in PARAMETER_NAMES]
            loss = _loss(placeholders["x"], placeholders["labels"], variables)
            train = v1.train.GradientDescentOptimizer(LEARNING_RATE).minimize(loss)
            fetches: Any = [loss, train]
            init = v1.global_variables_initializer()
        else:
            fetches, variables, init = _forward(family, a, placeholders), [], None
    config = v1.ConfigProto(
        intra_op_parallelism_threads=tf.config.threading.get_intra_op_parallelism_threads(),
        inter_op_parallelism_threads=1,
    )
    session = v1.Session(graph=graph, config=config)
    if init is not None:
        session.run(init)
    feed_dict = {placeholders[n]: a[n] for n in fed}
    if family == "W6":
        return Prepared(lambda: session.run(fetches, feed_dict)[0], lambda: session.run(variables))
    return Prepared(lambda: session.run(fetches, feed_dict))


def _function(
    family: str, a: dict[str, np.ndarray], fed: tuple[str, ...], jit_compile: bool
) -> Prepared:
    arrays = [a[n] for n in fed]
    if family == "W6":
        variables = [tf.Variable(a[n], name=n) for n in PARAMETER_NAMES]

        @tf.function(jit_compile=jit_compile)
        def step(x: Any, labels: Any) -> Any:
            with tf.GradientTape() as tape:
                loss = _loss(x, labels, variables)
            gradients = tape.gradient(loss, variables)
            for v, g in zip(variables, gradients):
                v.assign_sub(LEARNING_RATE * g)
            return loss

        return Prepared(lambda: step(*arrays).numpy(), lambda: [v.numpy() for v in variables])

    def forward(*tensors: Any) -> Any:
        return _forward(family, a, dict(zip(fed, tensors)))

    compiled: Callable[..., Any] = tf.function(forward, jit_compile=jit_compile)
    return Prepared(lambda: compiled(*arrays).numpy())
