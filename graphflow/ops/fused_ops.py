"""The Fused op: a region of ops that the compiler made into one node.

Its `body` attribute lists the region's ops in topological order; each body
node reads the fused op's inputs ("arg") or outputs of earlier body nodes
("node"). The interpreter runs a body node by node with the ops' reference
kernels, so every fused graph can be checked against the unfused one; the
LLVM backend lowers a body to one loop nest.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import numpy as np

from graphflow.dtypes import DType
from graphflow.ops.registry import FUSED, defop, get_op_def
from graphflow.shapes import Shape

# An input of a body node: ("arg", index of the fused op's input, 0) or
# ("node", index of an earlier body node, output index).
ValueRef = tuple[str, int, int]


@dataclasses.dataclass(frozen=True, eq=False)
class BodyNode:
    """One op of a fused region."""

    op_type: str
    name: str
    attrs: Mapping[str, Any]
    inputs: tuple[ValueRef, ...]
    outputs: tuple[tuple[DType, Shape], ...]
    location: tuple[str, int] | None = None


@dataclasses.dataclass(frozen=True, eq=False)
class FusedBody:
    """A fused region: its nodes, which node outputs leave it, and its pattern.

    pattern is "elementwise" (one loop over one domain), "reduction" (a
    reduction with elementwise producers and consumers) or "contraction"
    (a matmul or conv2d with an elementwise epilogue).
    """

    nodes: tuple[BodyNode, ...]
    outputs: tuple[ValueRef, ...]
    pattern: str

    def anchor(self) -> BodyNode | None:
        """The reduction or contraction of the region, if any."""
        for node in self.nodes:
            if get_op_def(node.op_type).kind in ("reduction", "contraction"):
                return node
        return None


def _fused_dtype(in_dtypes: list[DType], attrs: Mapping[str, Any]) -> list[DType]:
    body: FusedBody = attrs["body"]
    return [body.nodes[i].outputs[j][0] for _, i, j in body.outputs]


def _fused_shape(shapes: list[Shape], attrs: Mapping[str, Any]) -> list[Shape]:
    body: FusedBody = attrs["body"]
    return [body.nodes[i].outputs[j][1] for _, i, j in body.outputs]


def evaluate_body(body: FusedBody, args: list[np.ndarray]) -> list[np.ndarray]:
    """Runs a body with the reference kernels; frees nothing (bodies are small)."""
    values: list[list[np.ndarray]] = []
    for node in body.nodes:
        inputs = [args[i] if kind == "arg" else values[i][j] for kind, i, j in node.inputs]
        result = get_op_def(node.op_type).reference(*inputs, **node.attrs)  # type: ignore[misc]
        values.append([np.asarray(v) for v in (result if isinstance(result, tuple) else (result,))])
    return [values[i][j] for _, i, j in body.outputs]


defop(
    "Fused",
    FUSED,
    _fused_shape,
    dtype=_fused_dtype,
    reference=lambda *args, body: tuple(evaluate_body(body, list(args))),
    num_outputs=lambda attrs: len(attrs["body"].outputs),
    unknown_rank_ok=True,
    doc="a region of elementwise ops, a reduction or a matmul with its epilogue, as one node",
)
