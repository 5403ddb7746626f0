"""Matrix multiplication: the MatMul op and `matmul` (also the `@` operator).

MatMul multiplies the last two dims of its operands and broadcasts the dims
before them (the batch dims) as NumPy's matmul does; both operands have rank
2 or more. `transpose_a` / `transpose_b` swap the last two dims of an operand
first. Operands are promoted to one dtype as NumPy does; integer products
wrap around on overflow.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from graphflow import dtypes, errors
from graphflow.dtypes import DType
from graphflow.graph import Tensor
from graphflow.ops.convert import promote
from graphflow.ops.registry import CONTRACTION, apply_op, defop, fail
from graphflow.shapes import Shape, broadcast_shapes
from graphflow.source import user_location

MATMUL_DTYPES = dtypes.NUMERIC_DTYPES


def _matmul_shape(shapes: list[Shape], attrs: Mapping[str, Any]) -> list[Shape]:
    a, b = shapes
    if a.rank < 2 or b.rank < 2:
        raise fail(
            "both operands must have rank 2 or more",
            got=f"shapes {a} and {b}",
            expected="matrices or batches of matrices (use reshape or expand_dims for vectors)",
        )
    m, k_a = (a[-1], a[-2]) if attrs["transpose_a"] else (a[-2], a[-1])
    k_b, n = (b[-1], b[-2]) if attrs["transpose_b"] else (b[-2], b[-1])
    if k_a is not None and k_b is not None and k_a != k_b:
        raise fail(
            "inner dimensions do not match",
            got=f"shapes {a} and {b} (transpose_a={attrs['transpose_a']}, "
            f"transpose_b={attrs['transpose_b']}): {k_a} vs {k_b}",
            expected="the contracted dims of a and b to be equal",
        )
    try:
        batch = broadcast_shapes(a[:-2], b[:-2])
    except ValueError:
        raise fail(
            "batch dimensions cannot be broadcast",
            got=f"shapes {a} and {b}",
            expected="batch dims (all but the last two) that broadcast as in NumPy",
        ) from None
    return [Shape([*batch.dims, m, n])]


def _matmul_dtype(in_dtypes: list[DType], attrs: Mapping[str, Any]) -> list[DType]:
    a, b = in_dtypes
    if a != b:
        raise fail(
            "operands must have one dtype",
            got=f"{a.name} and {b.name}",
            expected="equal dtypes (matmul promotes them)",
        )
    if a not in MATMUL_DTYPES:
        raise fail(
            "unsupported dtype",
            got=a.name,
            expected="one of " + ", ".join(d.name for d in MATMUL_DTYPES),
        )
    return [a]


def _matmul_reference(
    a: np.ndarray, b: np.ndarray, transpose_a: bool, transpose_b: bool
) -> np.ndarray:
    if transpose_a:
        a = np.swapaxes(a, -1, -2)
    if transpose_b:
        b = np.swapaxes(b, -1, -2)
    return np.asarray(np.matmul(a, b), dtype=a.dtype)


defop(
    "MatMul",
    CONTRACTION,
    _matmul_shape,
    dtype=_matmul_dtype,
    reference=_matmul_reference,
    doc="matrix product of the last two dims, batch dims broadcast (NumPy matmul)",
)


def matmul(
    a: Any,
    b: Any,
    transpose_a: bool = False,
    transpose_b: bool = False,
    adjoint_a: bool = False,
    adjoint_b: bool = False,
    a_is_sparse: bool = False,
    b_is_sparse: bool = False,
    name: str | None = None,
) -> Tensor:
    """Multiplies matrix `a` by matrix `b`, batching over leading dims (MatMul op).

    Both operands have rank >= 2; dims before the last two broadcast as in
    NumPy's matmul. For real dtypes the adjoint is the transpose.

    Args:
      a, b: tensors (or data) of float32, float64, int32 or int64, promoted
        to one dtype as in NumPy.
      transpose_a, transpose_b: transpose the last two dims of an operand first.
      adjoint_a, adjoint_b: the same as transpose_a, transpose_b (real dtypes).
      a_is_sparse, b_is_sparse: hints, ignored.
      name: name of the op.

    Returns:
      A tensor of shape batch + [m, n].

    Raises:
      InvalidArgumentError: inner dims that differ, a rank below 2, batch
        dims that do not broadcast, bool operands, or both transpose_x and
        adjoint_x set.
    """
    for t, adj, which in ((transpose_a, adjoint_a, "a"), (transpose_b, adjoint_b, "b")):
        if t and adj:
            raise errors.InvalidArgumentError(
                errors.op_message(
                    "MatMul",
                    name or "MatMul",
                    user_location(),
                    f"transpose_{which} and adjoint_{which} are both set",
                    expected="at most one of them",
                )
            )
    (x, y), dtype = promote(a, b, op_name="matmul")
    if dtype.is_bool:
        raise errors.InvalidArgumentError(
            errors.op_message(
                "MatMul",
                name or "MatMul",
                user_location(),
                "matmul of bool tensors",
                got="bool",
                expected="numbers (cast bools with gf.cast first)",
            )
        )
    attrs = {
        "transpose_a": bool(transpose_a or adjoint_a),
        "transpose_b": bool(transpose_b or adjoint_b),
    }
    return apply_op("MatMul", [x, y], attrs, name=name or "MatMul").outputs[0]


Tensor._operators["matmul"] = matmul
