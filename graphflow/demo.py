"""`graphflow demo`: build a classifier, optimize it, draw it, run it compiled and interpreted.

The demo is what a new user runs first. It builds an MLP classifier
(784→512→256→10, each hidden layer dense + layernorm + GELU, a softmax
output; weights drawn from a seed), prints what each optimization pass did,
writes the graph as built and as optimized as Graphviz DOT (and SVG when
Graphviz's `dot` is on PATH), runs the graph compiled and interpreted, checks
both against each other and against NumPy in float64, and prints a table of
times. It needs no network and, JIT compilation with an empty cache
included, takes a few seconds.

This module sits with the command line, on top of the compiler and the
runtime: the core package never imports it.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import os
import pathlib
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any, TextIO

import numpy as np

import graphflow as gf

SEED = 0
LAYER_SIZES = (784, 512, 256, 10)
BATCH = 256
LAYERNORM_EPS = 1e-5
TOLERANCE = 1e-5  # on probabilities in [0, 1]: float32 rounding is ~1e-7
DEFAULT_OUT = "graphflow-demo"


class DemoError(Exception):
    """A failure the demo reports as one line (an unwritable folder, Graphviz failing)."""


@dataclasses.dataclass(frozen=True)
class Classifier:
    """The demo's graph and what is needed to run it and check it.

    Attributes:
      graph: the graph as built.
      x: the input placeholder, [None, 784] float32.
      probs: the class probabilities, [None, 10].
      init: the op that initializes the variables.
      parameters: the initial value of every variable, by variable name.
    """

    graph: gf.Graph
    x: gf.Tensor
    probs: gf.Tensor
    init: gf.Operation
    parameters: dict[str, np.ndarray]


def build_classifier(seed: int = SEED) -> Classifier:
    """The MLP classifier: dense → layernorm → GELU per hidden layer, softmax on top.

    Weights are He-initialized from `numpy.random.default_rng(seed)`, so the
    graph is the same on every machine; layernorm's gamma and beta start at 1
    and 0 as in a fresh model.
    """
    rng = np.random.default_rng(seed)
    parameters: dict[str, np.ndarray] = {}
    graph = gf.Graph()
    with graph.as_default():
        x = gf.placeholder(gf.float32, [None, LAYER_SIZES[0]], name="x")
        h = x
        hidden = len(LAYER_SIZES) - 2
        for layer, (fan_in, fan_out) in enumerate(itertools.pairwise(LAYER_SIZES), 1):
            with gf.name_scope(f"dense{layer}"):
                w0 = rng.standard_normal((fan_in, fan_out)) * math.sqrt(2.0 / fan_in)
                w = _variable(w0.astype(np.float32), "w", parameters)
                b = _variable(np.zeros(fan_out, np.float32), "b", parameters)
                h = gf.matmul(h, w) + b
            if layer > hidden:
                break
            with gf.name_scope(f"layernorm{layer}"):
                gamma = _variable(np.ones(fan_out, np.float32), "gamma", parameters)
                beta = _variable(np.zeros(fan_out, np.float32), "beta", parameters)
                mean, variance = gf.nn.moments(h, axes=[-1], keepdims=True)
                h = (h - mean) * gf.rsqrt(variance + LAYERNORM_EPS) * gamma + beta
            with gf.name_scope(f"gelu{layer}"):
                h = gf.nn.gelu(h)
        probs = gf.nn.softmax(h, name="probs")
        init = gf.global_variables_initializer()
    return Classifier(graph, x, probs, init, parameters)


def _variable(value: np.ndarray, name: str, parameters: dict[str, np.ndarray]) -> gf.Variable:
    """A variable initialized to `value`, recorded in `parameters` under its full name."""
    variable = gf.Variable(value, name=name)
    parameters[variable.op.name] = value
    return variable


def numpy_reference(parameters: dict[str, np.ndarray], x: np.ndarray) -> np.ndarray:
    """The classifier in NumPy float64 (erf-GELU as `gf.nn.gelu`), the reference of both modes."""
    from math import erf

    erf_v = np.vectorize(erf, otypes=[np.float64])
    h = x.astype(np.float64)
    layers = len(LAYER_SIZES) - 1
    for layer in range(1, layers + 1):
        w = parameters[f"dense{layer}/w"].astype(np.float64)
        h = h @ w + parameters[f"dense{layer}/b"]
        if layer == layers:
            break
        mean = h.mean(axis=-1, keepdims=True)
        variance = ((h - mean) ** 2).mean(axis=-1, keepdims=True)
        h = (h - mean) / np.sqrt(variance + LAYERNORM_EPS)
        h = h * parameters[f"layernorm{layer}/gamma"] + parameters[f"layernorm{layer}/beta"]
        h = 0.5 * h * (1.0 + erf_v(h / math.sqrt(2.0)))
    e = np.exp(h - h.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


@dataclasses.dataclass(frozen=True)
class Agreement:
    """How far the two modes are from each other and from float64 NumPy."""

    max_difference: float  # max |compiled - interpreted|
    compiled_error: float  # max |compiled - reference| / max |reference|
    interpreted_error: float
    same_classes: bool  # argmax equal on every row
    tolerance: float

    @property
    def ok(self) -> bool:
        return (
            self.max_difference <= self.tolerance
            and self.compiled_error <= self.tolerance
            and self.interpreted_error <= self.tolerance
            and self.same_classes
        )


def check_agreement(
    compiled: np.ndarray,
    interpreted: np.ndarray,
    reference: np.ndarray,
    tolerance: float = TOLERANCE,
) -> Agreement:
    """Compares the two modes' probabilities with each other and with the reference.

    A NaN anywhere makes the differences NaN, and NaN is never within tolerance.
    """
    if compiled.shape != reference.shape or interpreted.shape != reference.shape:
        return Agreement(math.inf, math.inf, math.inf, False, tolerance)
    scale = float(np.max(np.abs(reference))) or 1.0

    def worst(a: np.ndarray, b: np.ndarray) -> float:
        d = np.abs(a.astype(np.float64) - b.astype(np.float64))
        return math.nan if np.isnan(d).any() else float(d.max(initial=0.0))

    same = bool(np.array_equal(compiled.argmax(axis=-1), interpreted.argmax(axis=-1)))
    return Agreement(
        worst(compiled, interpreted),
        worst(compiled, reference) / scale,
        worst(interpreted, reference) / scale,
        same,
        tolerance,
    )


@dataclasses.dataclass(frozen=True)
class Timed:
    """One row of the time table (seconds per call)."""

    label: str
    first: float | None
    median: float
    minimum: float
    maximum: float
    repetitions: int


def _time(label: str, fn: Callable[[], Any], first: float | None) -> Timed:
    from graphflow.benchmarks.timing import Budget, measure

    budget = Budget(warmup=0.2, seconds=1.0, min_repetitions=10, max_repetitions=200, repetition=0)
    t = measure(fn, budget)
    return Timed(label, first, t.median, t.min, t.max, t.repetitions)


def _ms(seconds: float | None) -> str:
    return "" if seconds is None else f"{seconds * 1e3:.2f} ms"


def _render_svg(dot_file: pathlib.Path) -> pathlib.Path | None:
    """Renders `dot_file` to SVG next to it; None when Graphviz's `dot` is not on PATH."""
    binary = shutil.which("dot")
    if binary is None:
        return None
    svg = dot_file.with_suffix(".svg")
    done = subprocess.run(
        [binary, "-Tsvg", str(dot_file), "-o", str(svg)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise DemoError(f"Graphviz's dot failed on {dot_file}: {' '.join(done.stderr.split())}")
    return svg


def _write(path: pathlib.Path, text: str) -> None:
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as e:
        raise DemoError(f"cannot write {path}: {e.strerror or e}") from None


def run_demo(
    out: str | os.PathLike[str] = DEFAULT_OUT, batch: int = BATCH, stream: TextIO | None = None
) -> int:
    """Runs the demo, printing to `stream`; returns 0, or 1 when the two modes disagree.

    Args:
      out: the folder for the DOT (and SVG) files; created if missing.
      batch: rows of input fed to the classifier.
      stream: where the report goes.

    Raises:
      DemoError: the folder or a file cannot be written, or Graphviz fails.
    """
    from graphflow.compiler.pipeline import optimize

    def say(text: str = "") -> None:
        print(text, file=stream or sys.stdout, flush=True)

    start = time.perf_counter()
    folder = pathlib.Path(out)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DemoError(f"cannot create the output folder {folder}: {e.strerror or e}") from None

    model = build_classifier()
    sizes = "→".join(map(str, LAYER_SIZES))
    say(f"graphflow demo: an MLP classifier {sizes} (dense, layernorm, GELU; softmax),")
    say(f"weights from seed {SEED}, a batch of {batch} inputs; files go to {folder.resolve()}")
    say()

    say("1. The optimization passes (nodes before -> after, and what changed):")
    result = optimize(model.probs, feeds=[model.x], graph=model.graph)
    say(_indent(result.report_text()))
    first, last = result.report[0].nodes_before, result.report[-1].nodes_after
    say(f"   {first} nodes as built -> {last} after optimization ({len(result.fused_ops())} fused)")
    say()

    say("2. The graph, as Graphviz DOT:")
    drawings = {
        "as-built": gf.to_dot(model.probs, [model.x], graph=model.graph),
        "optimized": gf.to_dot(model.probs, [model.x], optimized=True, graph=model.graph),
    }
    written = []
    for name, text in drawings.items():
        path = folder / f"graph-{name}.dot"
        _write(path, text)
        written.append(path)
    for path in list(written):
        svg = _render_svg(path)
        if svg is not None:
            written.append(svg)
    for path in written:
        say(f"   wrote {path}")
    if shutil.which("dot") is None:
        say(
            "   SVG not written: Graphviz's `dot` is not on PATH (install Graphviz, e.g. "
            "apt-get install graphviz, or render the .dot files at https://dreampuf.github.io)"
        )
    say()

    say("3. Running it compiled and interpreted:")
    inputs = np.random.default_rng(SEED + 1).standard_normal((batch, LAYER_SIZES[0]))
    inputs = inputs.astype(np.float32)
    feeds = {model.x: inputs}
    outputs: dict[str, np.ndarray] = {}
    rows: list[Timed] = []
    for mode in ("compiled", "interpreted"):
        session = gf.Session(graph=model.graph, mode=mode)
        session.run(model.init)
        begin = time.perf_counter()
        outputs[mode] = session.run(model.probs, feeds)
        first_call = time.perf_counter() - begin
        info = session.cache_info()
        if mode == "compiled" and info.fallbacks:
            say(f"   note: compiled mode fell back to the interpreter: {'; '.join(info.fallbacks)}")
        rows.append(
            _time(f"graphflow {mode}", lambda s=session: s.run(model.probs, feeds), first_call)
        )
        session.close()

    reference = numpy_reference(model.parameters, inputs)
    agreement = check_agreement(outputs["compiled"], outputs["interpreted"], reference)
    verdict = "agree" if agreement.ok else "DISAGREE"
    say(
        f"   compiled and interpreted {verdict}: max |difference| "
        f"{agreement.max_difference:.1e} (tolerance {agreement.tolerance:.0e}); "
        f"error against NumPy float64: compiled {agreement.compiled_error:.1e}, "
        f"interpreted {agreement.interpreted_error:.1e}; "
        f"same predicted class on {'every' if agreement.same_classes else 'NOT every'} row"
    )
    say()

    blas = os.environ.get("OMP_NUM_THREADS") or "its default"
    say(f"4. Time per call, batch of {batch}: median after a warm-up. The first call compiles,")
    say("   unless the JIT cache already holds the code. The interpreter's matmuls use")
    say(f"   NumPy's BLAS with OMP_NUM_THREADS={blas}; `graphflow bench` times one thread.")
    say()
    say(_table(rows))
    compiled, interpreted = rows[0], rows[1]
    say()
    say(
        f"   speedup of compiled over interpreted: {interpreted.median / compiled.median:.1f}x "
        f"(medians on this machine, this run)"
    )
    say(f"   demo finished in {time.perf_counter() - start:.1f} s")
    if not agreement.ok:
        say("error: compiled and interpreted results disagree; please report this as a bug")
        return 1
    return 0


def _indent(text: str) -> str:
    return "\n".join("   " + line for line in text.splitlines())


def _table(rows: list[Timed]) -> str:
    header = ("mode", "first call", "median", "min", "max", "runs", "vs interpreted")
    interpreted = next(r.median for r in rows if r.label == "graphflow interpreted")
    body = [
        (
            r.label,
            _ms(r.first),
            _ms(r.median),
            _ms(r.minimum),
            _ms(r.maximum),
            str(r.repetitions),
            f"{interpreted / r.median:.1f}x",
        )
        for r in rows
    ]
    widths = [max(len(row[i]) for row in [header, *body]) for i in range(len(header))]
    lines = []
    for k, row in enumerate([header, *body]):
        cells = [row[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(row[1:], widths[1:])]
        lines.append("   " + "  ".join(cells))
        if k == 0:
            lines.append("   " + "  ".join("-" * w for w in widths))
    return "\n".join(lines)
