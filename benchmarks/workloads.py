"""The workloads W1..W8 of WORKLOADS.md: each a graphflow graph builder and its NumPy baseline.

A `Workload` is the definition (id, description, size, rate unit); `workload.case(scale)`
draws its inputs from a seeded `numpy.random.default_rng` and returns a `Case`: the
graph builder, the NumPy function and the work one call does. `scale` shrinks the
sizes (1.0 is the size of WORKLOADS.md; the tests use a few thousandths).
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

import graphflow as gf

SEED = 0
MLP_SIZES = (784, 512, 512, 10)
LEARNING_RATE = 0.01
LAYERNORM_EPS = 1e-5
PARAMETER_NAMES = ("w1", "b1", "w2", "b2", "w3", "b3")  # the MLP's, in creation order
GELU_C = 0.7978845608  # sqrt(2/pi), as WORKLOADS.md writes it

Built = tuple[gf.Graph, Any, dict[gf.Tensor, np.ndarray]]
NumPyStep = Callable[[], "np.ndarray | list[np.ndarray]"]


@dataclasses.dataclass(frozen=True)
class Case:
    """A workload at one size, its inputs drawn.

    Attributes:
      size: the shapes, as the table shows them.
      work: what one call does in the workload's rate unit: bytes moved (GB/s),
        floating-point operations (GFLOP/s); 0 for a latency or a cold start.
      build: makes a fresh graph; returns (graph, fetches, feeds), `feeds`
        mapping each placeholder to its input array.
      numpy: `numpy(dtype)` prepares the inputs in `dtype` (float32: the NumPy
        contender; float64: the reference) and returns a function of no
        arguments that computes the workload once. It returns the fetched
        values (an array or a list), then the variables after the call.
      variables: the initial values of the graph's variables, in creation
        order; a training step is checked on its updates (after - before).
      arrays: every array the workload is made of, by name ("x", "gamma",
        "w1", "labels", ...): what a peer library builds its own version from.
    """

    size: str
    work: float
    build: Callable[[], Built]
    numpy: Callable[[type], NumPyStep]
    variables: tuple[np.ndarray, ...] = ()
    arrays: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class Workload:
    """One row family of the benchmark table.

    Attributes:
      id: "W1".."W8" ("W5b1" and "W5b256" for the two batches of W5).
      name: a short name for the table.
      description: what the graph computes.
      size: the size of WORKLOADS.md.
      unit: how the rate is counted: "µs" (per-call latency), "GB/s" (bytes
        moved), "GFLOP/s" (matmul FLOP) or "s" (cold start, in a new process).
      case: `case(scale)` draws the inputs at `scale` times the size.
      cold_start: timed in fresh processes (W8) instead of in this one.
    """

    id: str
    name: str
    description: str
    size: str
    unit: str
    case: Callable[[float], Case]
    cold_start: bool = False


def _scaled(n: int, scale: float, minimum: int = 1) -> int:
    return max(minimum, round(n * scale))


def _normal(rng: np.random.Generator, shape: Sequence[int] | int) -> np.ndarray:
    return rng.standard_normal(shape, dtype=np.float32)


def _as(array: np.ndarray, dtype: type) -> np.ndarray:
    """The input in the contender's float dtype (integer inputs stay as they are)."""
    return array.astype(dtype) if array.dtype.kind == "f" else array


def _graph_of(make: Callable[[], tuple[Any, dict[gf.Tensor, np.ndarray]]]) -> Built:
    graph = gf.Graph()
    with graph.as_default():
        fetches, feeds = make()
    return graph, fetches, feeds


# -- W1: dispatch ----------------------------------------------------------------------------
def _add_one(scale: float) -> Case:
    x = _normal(np.random.default_rng(SEED), 1)

    def build() -> Built:
        def make() -> tuple[Any, dict[gf.Tensor, np.ndarray]]:
            xp = gf.placeholder(gf.float32, [1], name="x")
            return xp + 1.0, {xp: x}

        return _graph_of(make)

    def numpy(dtype: type) -> NumPyStep:
        xd = _as(x, dtype)
        return lambda: xd + 1.0

    return Case("x [1]", 0.0, build, numpy, arrays={"x": x})


# -- W2: tanh-GELU ---------------------------------------------------------------------------
def _gelu_expression(x: Any, tanh: Callable[[Any], Any]) -> Any:
    """The same expression for graph tensors and NumPy arrays."""
    return 0.5 * x * (1.0 + tanh(GELU_C * (x + 0.044715 * x * x * x)))


def _gelu(scale: float) -> Case:
    n = _scaled(2**24, scale)
    x = _normal(np.random.default_rng(SEED), n)

    def build() -> Built:
        def make() -> tuple[Any, dict[gf.Tensor, np.ndarray]]:
            xp = gf.placeholder(gf.float32, [n], name="x")
            return _gelu_expression(xp, gf.tanh), {xp: x}

        return _graph_of(make)

    def numpy(dtype: type) -> NumPyStep:
        xd = _as(x, dtype)
        return lambda: _gelu_expression(xd, np.tanh)

    return Case(f"x [{n}]", 8.0 * n, build, numpy, arrays={"x": x})


# -- W3: softmax -----------------------------------------------------------------------------
def _numpy_softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _softmax(scale: float) -> Case:
    rows, cols = _scaled(4096, scale), 1024
    x = _normal(np.random.default_rng(SEED), (rows, cols))

    def build() -> Built:
        def make() -> tuple[Any, dict[gf.Tensor, np.ndarray]]:
            xp = gf.placeholder(gf.float32, [rows, cols], name="x")
            return gf.nn.softmax(xp), {xp: x}

        return _graph_of(make)

    def numpy(dtype: type) -> NumPyStep:
        xd = _as(x, dtype)
        return lambda: _numpy_softmax(xd)

    return Case(f"[{rows}, {cols}]", 8.0 * rows * cols, build, numpy, arrays={"x": x})


# -- W4: layernorm ---------------------------------------------------------------------------
def _layernorm(scale: float) -> Case:
    rows, cols = _scaled(4096, scale), 1024
    rng = np.random.default_rng(SEED)
    x, gamma, beta = _normal(rng, (rows, cols)), _normal(rng, cols), _normal(rng, cols)

    def build() -> Built:
        def make() -> tuple[Any, dict[gf.Tensor, np.ndarray]]:
            xp = gf.placeholder(gf.float32, [rows, cols], name="x")
            gp = gf.placeholder(gf.float32, [cols], name="gamma")
            bp = gf.placeholder(gf.float32, [cols], name="beta")
            mean, variance = gf.nn.moments(xp, axes=[-1], keepdims=True)
            y = (xp - mean) * gf.rsqrt(variance + LAYERNORM_EPS) * gp + bp
            return y, {xp: x, gp: gamma, bp: beta}

        return _graph_of(make)

    def numpy(dtype: type) -> NumPyStep:
        xd, gd, bd = _as(x, dtype), _as(gamma, dtype), _as(beta, dtype)

        def step() -> np.ndarray:
            mean = xd.mean(axis=-1, keepdims=True)
            centered = xd - mean
            variance = (centered * centered).mean(axis=-1, keepdims=True)
            return centered / np.sqrt(variance + LAYERNORM_EPS) * gd + bd

        return step

    return Case(
        f"[{rows}, {cols}], gamma, beta [{cols}]",
        8.0 * rows * cols,
        build,
        numpy,
        arrays={"x": x, "gamma": gamma, "beta": beta},
    )


# -- W5, W6, W8: the MLP ---------------------------------------------------------------------
def _mlp_flop(batch: int) -> float:
    return 2.0 * batch * sum(a * b for a, b in itertools.pairwise(MLP_SIZES))


def _mlp_parameters(rng: np.random.Generator) -> list[np.ndarray]:
    """W1, b1, W2, b2, W3, b3 (He-initialized weights, small biases), float32."""
    parameters = []
    for fan_in, fan_out in itertools.pairwise(MLP_SIZES):
        parameters.append(_normal(rng, (fan_in, fan_out)) * np.float32(np.sqrt(2.0 / fan_in)))
        parameters.append(_normal(rng, fan_out) * np.float32(0.1))
    return parameters


def _mlp_inference(scale: float, batch: int) -> Case:
    batch = _scaled(batch, scale)
    rng = np.random.default_rng(SEED)
    parameters = _mlp_parameters(rng)
    x = _normal(rng, (batch, MLP_SIZES[0]))

    def build() -> Built:
        def make() -> tuple[Any, dict[gf.Tensor, np.ndarray]]:
            xp = gf.placeholder(gf.float32, [batch, MLP_SIZES[0]], name="x")
            h = xp
            for layer in range(3):
                w, b = parameters[2 * layer], parameters[2 * layer + 1]
                h = gf.matmul(h, gf.constant(w, name=f"w{layer + 1}")) + gf.constant(
                    b, name=f"b{layer + 1}"
                )
                if layer < 2:
                    h = gf.nn.relu(h)
            return gf.nn.softmax(h), {xp: x}

        return _graph_of(make)

    def numpy(dtype: type) -> NumPyStep:
        xd = _as(x, dtype)
        w1, b1, w2, b2, w3, b3 = (_as(p, dtype) for p in parameters)

        def step() -> np.ndarray:
            h = np.maximum(xd @ w1 + b1, 0.0)
            h = np.maximum(h @ w2 + b2, 0.0)
            return _numpy_softmax(h @ w3 + b3)

        return step

    arrays = {"x": x, **dict(zip(PARAMETER_NAMES, parameters))}
    return Case(f"x [{batch}, {MLP_SIZES[0]}]", _mlp_flop(batch), build, numpy, arrays=arrays)


def _mlp_training_step(scale: float) -> Case:
    """One SGD step: `gf.train.GradientDescentOptimizer(0.01).minimize(loss)`.

    graphflow derives the backward pass with `gf.gradients`; NumPy's step is
    written by hand: d logits = (softmax - one_hot(labels)) / batch; through
    `h @ w + b`: dW = h^T d, db = sum(d, 0), dh = d W^T; through relu:
    where(h > 0, dh, 0). Both update every variable from the values before
    the step, and the loss is that of the variables before the step.
    """
    batch = _scaled(128, scale)
    classes = MLP_SIZES[-1]
    rng = np.random.default_rng(SEED)
    parameters = _mlp_parameters(rng)
    x = _normal(rng, (batch, MLP_SIZES[0]))
    labels = rng.integers(0, classes, batch, dtype=np.int64)

    def build() -> Built:
        def make() -> tuple[Any, dict[gf.Tensor, np.ndarray]]:
            xp = gf.placeholder(gf.float32, [batch, MLP_SIZES[0]], name="x")
            yp = gf.placeholder(gf.int64, [batch], name="labels")
            w1, b1, w2, b2, w3, b3 = (
                gf.Variable(p, name=n) for p, n in zip(parameters, PARAMETER_NAMES)
            )
            h1 = gf.nn.relu(gf.matmul(xp, w1) + b1)
            h2 = gf.nn.relu(gf.matmul(h1, w2) + b2)
            logits = gf.matmul(h2, w3) + b3
            loss = gf.reduce_mean(
                gf.nn.sparse_softmax_cross_entropy_with_logits(labels=yp, logits=logits)
            )
            train = gf.train.GradientDescentOptimizer(LEARNING_RATE).minimize(loss)
            return [loss, train], {xp: x, yp: labels}

        return _graph_of(make)

    def numpy(dtype: type) -> NumPyStep:
        xd = _as(x, dtype)
        variables = [p.astype(dtype) for p in parameters]  # private copies, updated in place
        one_hot = np.eye(classes, dtype=dtype)[labels]
        lr = dtype(LEARNING_RATE)

        def step() -> list[np.ndarray]:
            w1, b1, w2, b2, w3, b3 = variables
            h1 = np.maximum(xd @ w1 + b1, 0.0)
            h2 = np.maximum(h1 @ w2 + b2, 0.0)
            logits = h2 @ w3 + b3
            top = logits.max(axis=1, keepdims=True)
            e = np.exp(logits - top)
            total = e.sum(axis=1, keepdims=True)
            log_likelihood = logits[np.arange(batch), labels] - (np.log(total) + top)[:, 0]
            loss = -log_likelihood.mean()
            d3 = (e / total - one_hot) / dtype(batch)
            d2 = np.where(h2 > 0, d3 @ w3.T, 0.0)
            d1 = np.where(h1 > 0, d2 @ w2.T, 0.0)
            gradients = (xd.T @ d1, d1.sum(0), h1.T @ d2, d2.sum(0), h2.T @ d3, d3.sum(0))
            for v, g in zip(variables, gradients):
                v -= lr * g
            return [np.asarray(loss, dtype), *variables]

        return step

    return Case(
        f"x [{batch}, {MLP_SIZES[0]}], labels [{batch}] int64",
        3.0 * _mlp_flop(batch),
        build,
        numpy,
        variables=tuple(parameters),
        arrays={"x": x, "labels": labels, **dict(zip(PARAMETER_NAMES, parameters))},
    )


# -- W7: matmul ------------------------------------------------------------------------------
def _matmul(scale: float) -> Case:
    n = _scaled(1024, scale ** (1.0 / 3.0), minimum=8)  # the work scales as n^3
    rng = np.random.default_rng(SEED)
    a, b = _normal(rng, (n, n)), _normal(rng, (n, n))

    def build() -> Built:
        def make() -> tuple[Any, dict[gf.Tensor, np.ndarray]]:
            ap = gf.placeholder(gf.float32, [n, n], name="a")
            bp = gf.placeholder(gf.float32, [n, n], name="b")
            return gf.matmul(ap, bp), {ap: a, bp: b}

        return _graph_of(make)

    def numpy(dtype: type) -> NumPyStep:
        ad, bd = _as(a, dtype), _as(b, dtype)
        return lambda: ad @ bd

    return Case(f"[{n}, {n}]²", 2.0 * n**3, build, numpy, arrays={"a": a, "b": b})


_MLP = "MLP 784→512→512→10, relu, softmax; weights are graph constants"

WORKLOADS: tuple[Workload, ...] = (
    Workload("W1", "x + 1", "y = x + 1", "x [1]", "µs", _add_one),
    Workload(
        "W2",
        "tanh-GELU",
        "tanh-GELU 0.5*x*(1+tanh(0.7978845608*(x+0.044715*x*x*x)))",
        "x [2^24]",
        "GB/s",
        _gelu,
    ),
    Workload("W3", "softmax", "softmax over the last axis", "[4096, 1024]", "GB/s", _softmax),
    Workload(
        "W4",
        "layernorm",
        "layernorm over the last axis (nn.moments, rsqrt), eps=1e-5, gamma and beta fed",
        "[4096, 1024]",
        "GB/s",
        _layernorm,
    ),
    Workload("W5b1", "MLP inference", _MLP, "batch 1", "GFLOP/s", lambda s: _mlp_inference(s, 1)),
    Workload(
        "W5b256", "MLP inference", _MLP, "batch 256", "GFLOP/s", lambda s: _mlp_inference(s, 256)
    ),
    Workload(
        "W6",
        "MLP training step",
        "one SGD step (lr 0.01) of the W5 MLP on its six variables: sparse softmax "
        "cross-entropy with int64 labels, loss fetched; "
        "gf.train.GradientDescentOptimizer(0.01).minimize(loss) (NumPy: backward by hand)",
        "batch 128",
        "GFLOP/s",
        _mlp_training_step,
    ),
    Workload("W7", "matmul", "a @ b", "[1024, 1024]²", "GFLOP/s", _matmul),
    Workload(
        "W8",
        "cold start",
        "cold start: a fresh process imports graphflow, defines W5 (batch 256) and gets the "
        "first result; again with the disk cache filled",
        "batch 256",
        "s",
        lambda s: _mlp_inference(s, 256),
        cold_start=True,
    ),
)


def get(workload_id: str) -> Workload:
    """The workload with this id (case-insensitive).

    Raises:
      KeyError: no workload has this id.
    """
    for w in WORKLOADS:
        if w.id.lower() == workload_id.lower():
            return w
    raise KeyError(f"no workload {workload_id!r}; the workloads are {_ids()}")


def select(ids: Sequence[str] | None) -> list[Workload]:
    """The workloads whose id starts with one of `ids` ("W5" selects both batches), in order.

    Raises:
      KeyError: an id that selects nothing.
    """
    if not ids:
        return list(WORKLOADS)
    chosen = []
    for wanted in ids:
        matches = [w for w in WORKLOADS if w.id.lower().startswith(wanted.lower())]
        if not matches:
            raise KeyError(f"no workload {wanted!r}; the workloads are {_ids()}")
        chosen += [w for w in matches if w not in chosen]
    return [w for w in WORKLOADS if w in chosen]


def _ids() -> str:
    return ", ".join(w.id for w in WORKLOADS)
