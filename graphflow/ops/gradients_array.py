"""Gradient rules of the array ops, and the ops the backward graph of indexing needs.

The gradient of a view (reshape, transpose, expand/squeeze, slices, tile,
broadcast) is built from compiled views and pads wherever the static shapes
determine them. Where they do not (several `None` dims, a slice bound
relative to an unknown end), the ops declared here do the work at run time:
ReshapeToShapeOf, StridedSliceGrad; GatherV2Grad (a scatter-add) and
MirrorPadGrad always.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from graphflow import errors
from graphflow.dtypes import DType
from graphflow.graph import Operation, Tensor
from graphflow.ops import array_ops
from graphflow.ops.array_ops import _expand_spec, _numpy_index
from graphflow.ops.gradients_math import Grads, op_output, unbroadcast, zeros_like
from graphflow.ops.registry import STRUCTURED, InferenceError, defop, set_gradient
from graphflow.shapes import Shape


def _first_input_dtype(in_dtypes: list[DType], attrs: Mapping[str, Any]) -> list[DType]:
    return [in_dtypes[0]]


def _like_shape(shapes: list[Shape], attrs: Mapping[str, Any]) -> list[Shape]:
    return [shapes[1]]


def _unsupported(op: Operation, what: str, expected: str) -> errors.UnimplementedError:
    return errors.UnimplementedError(
        errors.op_message(op.type, op.name, op.location, what, expected=expected), op
    )


# -- ReshapeToShapeOf --------------------------------------------------------------------------
def _reshape_to_shape_of(x: np.ndarray, like: np.ndarray) -> np.ndarray:
    if x.size != like.size:
        raise errors.InvalidArgumentError(
            f"cannot reshape a tensor of shape {x.shape} to shape {like.shape}; expected "
            f"{like.size} elements"
        )
    return x.reshape(like.shape).copy()


defop(
    "ReshapeToShapeOf",
    STRUCTURED,
    _like_shape,
    dtype=_first_input_dtype,
    reference=_reshape_to_shape_of,
    unknown_rank_ok=True,
    doc="x's elements in the shape of `like` at run time (the gradient of a reshape)",
)
set_gradient(
    "ReshapeToShapeOf",
    lambda op, grads: [op_output("ReshapeToShapeOf", [grads[0], op.inputs[0]]), None],
)


def reshape_like(g: Tensor, x: Tensor) -> Tensor:
    """`g` in the shape of `x`: a compiled Reshape when at most one dim is unknown."""
    dims = x.shape.dims
    if dims is not None:
        unknown = sum(d is None for d in dims)
        if unknown == 0 or (unknown == 1 and 0 not in dims):
            return array_ops.reshape(g, [-1 if d is None else d for d in dims])
    return op_output("ReshapeToShapeOf", [g, x])


set_gradient("Reshape", lambda op, grads: [reshape_like(grads[0], op.inputs[0])])


def _transpose_grad(op: Operation, grads: list[Tensor | None]) -> Grads:
    perm = op.attrs["perm"]
    if perm is None:
        return [array_ops.transpose(grads[0])]
    rank = len(perm)
    inverse = [0] * rank
    for i, p in enumerate(perm):
        inverse[p % rank] = i
    return [array_ops.transpose(grads[0], inverse)]


set_gradient("Transpose", _transpose_grad)
set_gradient("ExpandDims", lambda op, grads: [array_ops.squeeze(grads[0], [op.attrs["axis"]])])


def _squeeze_grad(op: Operation, grads: list[Tensor | None]) -> Grads:
    g = grads[0]
    assert g is not None
    axes = op.attrs["axis"]
    if axes is not None and op.inputs[0].shape.rank is not None:
        for a in sorted(axes):
            g = array_ops.expand_dims(g, a)
        return [g]
    return [reshape_like(g, op.inputs[0])]


set_gradient("Squeeze", _squeeze_grad)


# -- slices: StridedSliceGrad and the compiled pad path -----------------------------------------
def _strided_slice_grad(g: np.ndarray, like: np.ndarray, spec: tuple) -> np.ndarray:
    out = np.zeros(like.shape, dtype=g.dtype)
    try:
        out[_numpy_index(spec)] = g
    except (ValueError, IndexError) as e:
        raise errors.InvalidArgumentError(
            f"the gradient of shape {g.shape} does not fit the slice {spec} of shape "
            f"{like.shape}: {e}"
        ) from None
    return out


defop(
    "StridedSliceGrad",
    STRUCTURED,
    _like_shape,
    dtype=_first_input_dtype,
    reference=_strided_slice_grad,
    doc="zeros of the shape of `like` with g written at the slice `spec` (a slice's gradient)",
)
set_gradient(
    "StridedSliceGrad",
    lambda op, grads: [
        op_output("StridedSlice", [grads[0]], {"spec": op.attrs["spec"]}),
        None,
    ],
)


def _pad_path(g: Tensor, x: Tensor, spec: tuple) -> Tensor | None:
    """The slice gradient as squeeze/expand_dims/pad (all compiled), if the shapes allow it."""
    dims = x.shape.dims
    if dims is None:
        return None
    try:
        entries = _expand_spec(spec, len(dims))
    except InferenceError:
        return None
    squeeze_out: list[int] = []
    expand_in: list[int] = []
    pads: list[tuple[int, int]] = []
    out_axis = 0
    in_axis = 0
    for entry in entries:
        kind = entry[0]
        if kind == "newaxis":
            squeeze_out.append(out_axis)
            out_axis += 1
            continue
        d = dims[in_axis]
        if kind == "int":
            if d is None and entry[1] < 0:
                return None
            if d is None:
                return None  # the pad after the index depends on the unknown size
            i = entry[1] % d
            expand_in.append(in_axis)
            pads.append((i, d - i - 1))
        else:
            start, stop, step = entry[1:]
            if step not in (None, 1):
                return None
            if d is not None:
                begin, end, _ = slice(start, stop).indices(d)
                end = max(end, begin)
                pads.append((begin, d - end))
            elif (start is None or start >= 0) and stop is None:
                pads.append((start or 0, 0))
            else:
                return None
            out_axis += 1
        in_axis += 1
    if squeeze_out:
        g = array_ops.squeeze(g, squeeze_out)
    for a in expand_in:
        g = array_ops.expand_dims(g, a)
    if any(p != (0, 0) for p in pads):
        g = array_ops.pad(g, pads)
    return g


def slice_gradient(g: Tensor, x: Tensor, spec: tuple) -> Tensor:
    """The gradient of x[spec]: g placed in zeros of x's shape."""
    path = _pad_path(g, x, spec)
    if path is not None:
        return path
    return op_output("StridedSliceGrad", [g, x], {"spec": spec})


def _slice_spec(op: Operation) -> tuple:
    return tuple(
        ("slice", b, None if s == -1 else b + s, 1)
        for b, s in zip(op.attrs["begin"], op.attrs["size"])
    )


set_gradient("Slice", lambda op, grads: [slice_gradient(grads[0], op.inputs[0], _slice_spec(op))])
set_gradient(
    "StridedSlice",
    lambda op, grads: [slice_gradient(grads[0], op.inputs[0], op.attrs["spec"])],
)


# -- joins and splits ----------------------------------------------------------------------------
def _concat_grad(op: Operation, grads: list[Tensor | None]) -> Grads:
    g = grads[0]
    assert g is not None
    axis = op.attrs["axis"]
    if len(op.inputs) == 1:
        return [g]
    rank = op.inputs[0].shape.rank
    sizes = [t.shape[axis] if rank is not None else None for t in op.inputs]
    if sum(s is None for s in sizes) > 1:
        raise _unsupported(
            op,
            "the gradient of a concat of several inputs of unknown size along the axis",
            "at most one input whose size along the axis is unknown",
        )
    parts = array_ops.split(g, [-1 if s is None else s for s in sizes], axis=axis)
    return list(parts)


def _pack_grad(op: Operation, grads: list[Tensor | None]) -> Grads:
    g = grads[0]
    assert g is not None
    return list(array_ops.unstack(g, num=len(op.inputs), axis=op.attrs["axis"]))


def _filled(op: Operation, grads: list[Tensor | None]) -> list[Tensor]:
    """The output gradients with zeros for the outputs nothing depends on."""
    return [zeros_like(t) if g is None else g for t, g in zip(op.outputs, grads)]


set_gradient("ConcatV2", _concat_grad)
set_gradient("Pack", _pack_grad)
set_gradient(
    "Unpack", lambda op, grads: [array_ops.stack(_filled(op, grads), axis=op.attrs["axis"])]
)
set_gradient(
    "Split", lambda op, grads: [array_ops.concat(_filled(op, grads), axis=op.attrs["axis"])]
)


# -- gather: GatherV2Grad, a scatter-add ----------------------------------------------------------
def _gather_grad_reference(
    g: np.ndarray, indices: np.ndarray, like: np.ndarray, axis: int
) -> np.ndarray:
    out = np.zeros(like.shape, dtype=g.dtype)
    size = like.shape[axis]
    if ((indices < 0) | (indices >= size)).any():
        raise errors.InvalidArgumentError(
            f"an index is out of range; expected indices in [0, {size})"
        )
    moved = np.moveaxis(out, axis, 0)  # a view: adding into it adds into out
    grad = np.moveaxis(
        g.reshape((*like.shape[:axis], indices.size, *like.shape[axis + 1 :])), axis, 0
    )
    np.add.at(moved, indices.reshape(-1), grad)
    return out


def _gather_grad_shape(shapes: list[Shape], attrs: Mapping[str, Any]) -> list[Shape]:
    return [shapes[2]]


defop(
    "GatherV2Grad",
    STRUCTURED,
    _gather_grad_shape,
    dtype=_first_input_dtype,
    reference=_gather_grad_reference,
    doc="zeros of the shape of `like` with g's slices added at `indices` along axis "
    "(a gather's gradient; repeated indices add up)",
)
set_gradient(
    "GatherV2Grad",
    lambda op, grads: [
        array_ops.gather(grads[0], op.inputs[1], axis=op.attrs["axis"]),
        None,
        None,
    ],
)


def _gather_grad(op: Operation, grads: list[Tensor | None]) -> Grads:
    params, indices = op.inputs
    g = op_output("GatherV2Grad", [grads[0], indices, params], {"axis": op.attrs["axis"]})
    return [g, None]


set_gradient("GatherV2", _gather_grad)


# -- pad, tile, broadcast_to -------------------------------------------------------------------
def _mirror_pad_grad_shape(shapes: list[Shape], attrs: Mapping[str, Any]) -> list[Shape]:
    dims = shapes[0].dims
    assert dims is not None
    return [Shape([None if d is None else d - a - b for d, (a, b) in zip(dims, attrs["paddings"])])]


def _mirror_pad_grad(g: np.ndarray, paddings: tuple, mode: str) -> np.ndarray:
    """Folds the mirrored borders of g back onto the cells they copy (TF's MirrorPadGrad)."""
    out = g.copy()
    shift = 1 if mode == "REFLECT" else 0
    for axis, (before, after) in enumerate(paddings):
        moved = np.moveaxis(out, axis, 0)
        n = moved.shape[0] - before - after
        core = moved[before : before + n].copy()
        for j in range(before):  # padded cell before - 1 - j copies core cell j + shift
            core[j + shift] += moved[before - 1 - j]
        for j in range(after):  # padded cell j after the core copies core cell n-1-shift-j
            core[n - 1 - shift - j] += moved[before + n + j]
        out = np.moveaxis(core, 0, axis)
    return np.ascontiguousarray(out)


defop(
    "MirrorPadGrad",
    STRUCTURED,
    _mirror_pad_grad_shape,
    reference=_mirror_pad_grad,
    doc="folds the mirrored borders back onto the cells they copy (a REFLECT/SYMMETRIC "
    "pad's gradient)",
)
set_gradient(
    "MirrorPadGrad",
    lambda op, grads: [
        array_ops.pad(grads[0], op.attrs["paddings"], mode=op.attrs["mode"]),
    ],
)


def _pad_grad(op: Operation, grads: list[Tensor | None]) -> Grads:
    g = grads[0]
    assert g is not None
    paddings, mode = op.attrs["paddings"], op.attrs["mode"]
    if mode != "CONSTANT":
        attrs = {"paddings": paddings, "mode": mode}
        return [op_output("MirrorPadGrad", [g], attrs), None]
    spec = tuple(("slice", a, -b if b else None, 1) for a, b in paddings)
    gx = op_output("StridedSlice", [g], {"spec": spec}) if spec else g
    # Every padded cell holds the constant: its gradient is the rest of g's sum.
    return [gx, _sum_all(g) - _sum_all(gx)]


def _sum_all(t: Tensor) -> Tensor:
    axes = None if t.shape.rank is None else tuple(range(t.shape.rank))
    return op_output("Sum", [t], {"axis": axes, "keepdims": False})


set_gradient("PadV2", _pad_grad)


def _tile_grad(op: Operation, grads: list[Tensor | None]) -> Grads:
    g = grads[0]
    assert g is not None
    x = op.inputs[0]
    multiples = op.attrs["multiples"]
    dims = x.shape.dims
    assert dims is not None
    if sum(d is None for d in dims) > 1:
        raise _unsupported(
            op,
            "the gradient of tile of a tensor with several dims of unknown size",
            "an input with at most one unknown dim",
        )
    # [m0 * d0, m1 * d1, ...] -> [m0, d0, m1, d1, ...], summed over the m axes.
    split: list[int] = []
    for m, d in zip(multiples, dims):
        split += [m, -1 if d is None else d]
    summed = op_output(
        "Sum",
        [array_ops.reshape(g, split)],
        {"axis": tuple(range(0, 2 * len(dims), 2)), "keepdims": False},
    )
    return [summed]


set_gradient("Tile", _tile_grad)
set_gradient(
    "BroadcastTo",
    lambda op, grads: [unbroadcast(grads[0], op.inputs[0], [op.outputs[0]])],
)
