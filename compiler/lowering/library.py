"""Library functions: code shared by many graphs, compiled once and called by name.

A generated GEMM (with its epilogue) is the bulk of a graph's IR and of its
LLVM time, and graphs repeat the same ones: every dense layer with bias and
relu. So the lowering does not emit a GEMM into the graph's module; it
declares it by a symbol derived from everything the GEMM's code depends on
(`fingerprint`) and hands the JIT a `LibraryFunction` that can emit it. The
JIT loads each symbol once per process, from the disk cache when it can,
before the module that calls it; the emitter runs only when neither has it.

The fingerprint must change whenever the emitted code would: it covers the
description of the function and the source of the lowering package itself
(`code_fingerprint`), so editing a lowering never reuses stale machine code.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import pathlib
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from graphflow.dtypes import DType
from graphflow.ops.fused_ops import FusedBody
from graphflow.shapes import Shape


@dataclasses.dataclass(frozen=True)
class LibraryFunction:
    """A function a module calls by `symbol`; `emit()` returns a module defining it.

    `pipeline` names the JIT's IR pipeline for it (see `JIT.optimize`).
    """

    symbol: str
    emit: Callable[[], str]
    pipeline: str = "O3"


@functools.cache
def code_fingerprint() -> str:
    """A digest of the lowering package's source (read once per process)."""
    h = hashlib.sha256()
    folder = pathlib.Path(__file__).parent
    for path in sorted(folder.glob("*.py")):
        h.update(path.name.encode())
        h.update(path.read_bytes())
    return h.hexdigest()


def fingerprint(*parts: Any) -> str:
    """A digest of `parts` (canonical text of each) and of the lowering code."""
    h = hashlib.sha256(code_fingerprint().encode())
    for part in parts:
        h.update(_canonical(part).encode())
        h.update(b"\0")
    return h.hexdigest()


def body_description(body: FusedBody) -> list[Any]:
    """What a fused body's code depends on: op types, attrs, wiring, dtypes.

    Names, source lines and static shapes are left out: kernels read sizes
    and strides at run time, so bodies differing only in those share code.
    """
    return [
        (
            node.op_type,
            sorted((k, _canonical(v)) for k, v in node.attrs.items()),
            node.inputs,
            [dtype.name for dtype, _ in node.outputs],
        )
        for node in body.nodes
    ] + [("outputs", body.outputs, body.pattern)]


def _canonical(value: Any) -> str:
    if isinstance(value, np.ndarray | np.generic):
        array = np.asarray(value)
        digest = hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()
        return f"array({array.dtype.str}, {array.shape}, {digest})"
    if isinstance(value, DType):
        return f"dtype({value.name})"
    if isinstance(value, Shape):
        return f"shape({value})"
    if isinstance(value, FusedBody):
        return _canonical(body_description(value))
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k!r}: {_canonical(v)}" for k, v in sorted(value.items())) + "}"
    if isinstance(value, list | tuple):
        return "(" + ", ".join(_canonical(v) for v in value) + ")"
    if isinstance(value, str | int | float | bool | type(None)):
        return repr(value)
    return f"{type(value).__name__}({value!s})"


def unique(functions: Iterable[LibraryFunction]) -> tuple[LibraryFunction, ...]:
    """The functions, each symbol once, in first-seen order."""
    seen: dict[str, LibraryFunction] = {}
    for f in functions:
        seen.setdefault(f.symbol, f)
    return tuple(seen.values())
