"""Lowering rules for the array ops: slices, joins, splits, gather, one_hot, tile, pad, shapes.

Most of these ops move elements without arithmetic, so most rules are one
or more *strided copies*: a loop nest over a domain that reads
`source[offset + sum(i_k * stride_k)]` and writes the target the same way
(see `_copy`). Offsets and strides are i64 values folded to constants when
the dims are known at compile time, so a stride of 1 on the innermost axis
stays visible to `loop_nest` and that loop is a contiguous, vectorizable
copy. Reads are strided gathers only where the op makes them so (a step in
a slice, the axis of unstack). Elements are copied as they are stored (bools
as bytes), which is exact for every dtype.

Every rule handles every attr its op accepts: `module._has_lowering` takes
any op of the STRUCTURED table as lowerable.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
from llvmlite import ir

from graphflow.compiler.lowering.irutil import I64, const, for_range, if_then, llvm_type
from graphflow.compiler.lowering.kernels import KernelBuilder, Operand, loop_nest
from graphflow.graph import Operation, Tensor
from graphflow.ops.array_ops import _expand_spec

if TYPE_CHECKING:
    from graphflow.compiler.lowering.module import _Lowering
    from graphflow.compiler.lowering.structured import Rule


# -- index arithmetic folded at compile time -------------------------------------------------
def _known(value: ir.Value) -> int | None:
    return value.constant if isinstance(value, ir.Constant) else None


def _add(b: ir.IRBuilder, x: ir.Value, y: ir.Value) -> ir.Value:
    if _known(x) is not None and _known(y) is not None:
        return const(_known(x) + _known(y))
    if _known(x) == 0:
        return y
    if _known(y) == 0:
        return x
    return b.add(x, y)


def _mul(b: ir.IRBuilder, x: ir.Value, y: ir.Value) -> ir.Value:
    if _known(x) is not None and _known(y) is not None:
        return const(_known(x) * _known(y))
    if _known(x) == 0 or _known(y) == 0:
        return const(0)
    if _known(x) == 1:
        return y
    if _known(y) == 1:
        return x
    return b.mul(x, y)


def _min(b: ir.IRBuilder, x: ir.Value, y: ir.Value) -> ir.Value:
    if _known(x) is not None and _known(y) is not None:
        return const(min(_known(x), _known(y)))
    return b.select(b.icmp_signed("<", x, y), x, y)


def _max(b: ir.IRBuilder, x: ir.Value, y: ir.Value) -> ir.Value:
    if _known(x) is not None and _known(y) is not None:
        return const(max(_known(x), _known(y)))
    return b.select(b.icmp_signed(">", x, y), x, y)


def _product(b: ir.IRBuilder, values: Sequence[ir.Value]) -> ir.Value:
    out: ir.Value = const(1)
    for v in values:
        out = _mul(b, out, v)
    return out


def _row_major(b: ir.IRBuilder, dims: Sequence[ir.Value]) -> list[ir.Value]:
    """Element strides of a C-contiguous buffer of `dims` (the last one the constant 1)."""
    strides: list[ir.Value] = []
    running: ir.Value = const(1)
    for dim in reversed(dims):
        strides.append(running)
        running = _mul(b, running, dim)
    return strides[::-1]


def _dot(b: ir.IRBuilder, xs: Sequence[ir.Value], ys: Sequence[ir.Value]) -> ir.Value:
    out: ir.Value = const(0)
    for x, y in zip(xs, ys):
        out = _add(b, out, _mul(b, x, y))
    return out


def _at(b: ir.IRBuilder, pointer: ir.Value, offset: ir.Value) -> ir.Value:
    # Not inbounds: an empty region may start one past the end (or before the
    # start, for a reversed slice); such a pointer is never dereferenced.
    return pointer if _known(offset) == 0 else b.gep(pointer, [offset])


# -- the shared kernels ----------------------------------------------------------------------
def _copy(
    kb: KernelBuilder, domain: list[ir.Value], source: Operand, target: Operand, name: str
) -> None:
    """target[i] = source[i] over `domain`, each through its own offset pointer and strides."""

    def element(b: ir.IRBuilder, pointers: list[ir.Value], index: list[ir.Value]) -> None:
        b.store(b.load(pointers[0]), pointers[1])

    loop_nest(kb, domain, [source, target], element, name)


def _fill(
    kb: KernelBuilder, domain: list[ir.Value], target: Operand, value: ir.Value, name: str
) -> None:
    def element(b: ir.IRBuilder, pointers: list[ir.Value], index: list[ir.Value]) -> None:
        b.store(value, pointers[0])

    loop_nest(kb, domain, [target], element, name)


def _dense(
    kb: KernelBuilder,
    index: int,
    dims: list[ir.Value],
    t: Tensor,
    offset: ir.Value | None = None,
    strides: list[ir.Value] | None = None,
) -> Operand:
    """Pointer `index` of the kernel at `offset`, walked with `strides` (default row-major)."""
    b = kb.builder
    pointer = kb.pointers[index] if offset is None else _at(b, kb.pointers[index], offset)
    return Operand(pointer, dims, t.dtype, strides if strides is not None else _row_major(b, dims))


def _live(lowering: _Lowering, t: Tensor) -> bool:
    """Whether anything reads `t` or fetches it (dead outputs of a split are not written)."""
    return t in lowering.last_use


# -- slices ----------------------------------------------------------------------------------
def slice_(lowering: _Lowering, op: Operation) -> None:
    """out = x[begin_0 : begin_0 + size_0, ...]: a block read with x's strides."""
    (x,), (y,) = op.inputs, op.outputs
    kb = KernelBuilder(lowering.module, lowering.kernel_name(op), [x.dtype, y.dtype])
    b = kb.builder
    in_strides = _row_major(b, kb.dims(lowering.dims(x)))
    out_dims = kb.dims(lowering.dims(y))
    offset = _dot(b, [const(v) for v in op.attrs["begin"]], in_strides)
    source = _dense(kb, 0, out_dims, x, offset, in_strides)
    _copy(kb, out_dims, source, _dense(kb, 1, out_dims, y), "slice")
    lowering.call_kernel(kb.finish(), [x, y])


def _slice_start(b: ir.IRBuilder, start: int | None, step: int, dim: ir.Value) -> ir.Value:
    """Python's slice(start, _, step).indices(dim)[0], for a dim perhaps known only at run time.

    The element count along the axis is the output's dim (the shape rule
    computes it with Python's own slice.indices); only the start is needed here.
    """
    if _known(dim) is not None:
        return const(slice(start, None, step).indices(_known(dim))[0])
    last = b.sub(dim, const(1)) if step < 0 else dim  # the largest start Python allows
    if start is None:
        return const(0) if step > 0 else last
    if start >= 0:
        return _min(b, const(start), last)
    return _max(b, b.add(dim, const(start)), const(-1 if step < 0 else 0))


def strided_slice(lowering: _Lowering, op: Operation) -> None:
    """out = x[spec]: each slice contributes start * stride to the offset, step * stride to
    its axis' stride; an int only to the offset; a new axis a dim of 1 with stride 0."""
    (x,), (y,) = op.inputs, op.outputs
    kb = KernelBuilder(lowering.module, lowering.kernel_name(op), [x.dtype, y.dtype])
    b = kb.builder
    in_dims = kb.dims(lowering.dims(x))
    in_strides = _row_major(b, in_dims)
    out_dims = kb.dims(lowering.dims(y))
    offset: ir.Value = const(0)
    strides: list[ir.Value] = []
    axis = 0
    for entry in _expand_spec(op.attrs["spec"], len(in_dims)):
        kind = entry[0]
        if kind == "newaxis":
            strides.append(const(0))
            continue
        dim, stride = in_dims[axis], in_strides[axis]
        if kind == "int":
            # In range: the planner ran the shape rule on the run-time shapes.
            index = const(entry[1]) if entry[1] >= 0 else _add(b, dim, const(entry[1]))
            offset = _add(b, offset, _mul(b, index, stride))
        else:
            start, _, step = entry[1:]
            step = 1 if step is None else step
            start_index = _slice_start(b, start, step, dim)
            offset = _add(b, offset, _mul(b, start_index, stride))
            strides.append(_mul(b, const(step), stride))
        axis += 1
    source = _dense(kb, 0, out_dims, x, offset, strides)
    _copy(kb, out_dims, source, _dense(kb, 1, out_dims, y), "slice")
    lowering.call_kernel(kb.finish(), [x, y])


# -- joins and splits ------------------------------------------------------------------------
def concat(lowering: _Lowering, op: Operation) -> None:
    """Each input is copied into its region of the output, at its running offset on the axis."""
    values, (y,) = list(op.inputs), op.outputs
    axis = op.attrs["axis"] % y.shape.rank
    kb = KernelBuilder(
        lowering.module, lowering.kernel_name(op), [*(t.dtype for t in values), y.dtype]
    )
    b = kb.builder
    out_strides = _row_major(b, kb.dims(lowering.dims(y)))
    start: ir.Value = const(0)
    for k, x in enumerate(values):
        dims = kb.dims(lowering.dims(x))
        target = _dense(kb, len(values), dims, y, _mul(b, start, out_strides[axis]), out_strides)
        _copy(kb, dims, _dense(kb, k, dims, x), target, f"part{k}_")
        start = _add(b, start, dims[axis])
    lowering.call_kernel(kb.finish(), [*values, y])


def pack(lowering: _Lowering, op: Operation) -> None:
    """Input k is written to out[..., k, ...]: the output's strides without the new axis."""
    values, (y,) = list(op.inputs), op.outputs
    axis = op.attrs["axis"] % y.shape.rank
    kb = KernelBuilder(
        lowering.module, lowering.kernel_name(op), [*(t.dtype for t in values), y.dtype]
    )
    b = kb.builder
    out_strides = _row_major(b, kb.dims(lowering.dims(y)))
    strides = out_strides[:axis] + out_strides[axis + 1 :]
    for k, x in enumerate(values):
        dims = kb.dims(lowering.dims(x))
        target = _dense(kb, len(values), dims, y, _mul(b, const(k), out_strides[axis]), strides)
        _copy(kb, dims, _dense(kb, k, dims, x), target, f"part{k}_")
    lowering.call_kernel(kb.finish(), [*values, y])


def unpack(lowering: _Lowering, op: Operation) -> None:
    """Output k is x[..., k, ...]: x's strides without the axis, offset k * stride."""
    (x,) = op.inputs
    axis = op.attrs["axis"] % x.shape.rank
    outputs = [t for t in op.outputs if _live(lowering, t)]
    kb = KernelBuilder(
        lowering.module, lowering.kernel_name(op), [x.dtype, *(t.dtype for t in outputs)]
    )
    b = kb.builder
    in_strides = _row_major(b, kb.dims(lowering.dims(x)))
    strides = in_strides[:axis] + in_strides[axis + 1 :]
    for index, y in enumerate(outputs, start=1):
        k = op.outputs.index(y)
        dims = kb.dims(lowering.dims(y))
        source = _dense(kb, 0, dims, x, _mul(b, const(k), in_strides[axis]), strides)
        _copy(kb, dims, source, _dense(kb, index, dims, y), f"part{k}_")
    lowering.call_kernel(kb.finish(), [x, *outputs])


def split(lowering: _Lowering, op: Operation) -> None:
    """Output k is the block of x that starts after outputs 0..k-1 along the axis."""
    (x,) = op.inputs
    axis = op.attrs["axis"] % x.shape.rank
    outputs = [t for t in op.outputs if _live(lowering, t)]
    kb = KernelBuilder(
        lowering.module, lowering.kernel_name(op), [x.dtype, *(t.dtype for t in outputs)]
    )
    b = kb.builder
    in_strides = _row_major(b, kb.dims(lowering.dims(x)))
    start: ir.Value = const(0)
    index = 0
    for k, y in enumerate(op.outputs):
        dims = kb.dims(lowering.dims(y))
        if y in outputs:
            index += 1
            source = _dense(kb, 0, dims, x, _mul(b, start, in_strides[axis]), in_strides)
            _copy(kb, dims, source, _dense(kb, index, dims, y), f"part{k}_")
        start = _add(b, start, dims[axis])
    lowering.call_kernel(kb.finish(), [x, *outputs])


# -- gather and one_hot ----------------------------------------------------------------------
def gather(lowering: _Lowering, op: Operation) -> None:
    """out[p, n, m] = params[p, indices[n], m], params viewed as [P, D, M], indices as [N].

    A checked kernel: every index is validated first, in order, so the error
    names the first bad index as the reference does, even when the output is
    empty; then each gathered row of M elements is a contiguous copy.
    """
    params, indices = op.inputs
    (y,) = op.outputs
    axis = op.attrs["axis"] % params.shape.rank
    kb = KernelBuilder(
        lowering.module,
        lowering.kernel_name(op),
        [params.dtype, indices.dtype, y.dtype],
        checked=True,
    )
    b = kb.builder
    source, index_buffer, target = kb.pointers
    params_dims = kb.dims(lowering.dims(params))
    outer = _product(b, params_dims[:axis])
    size = params_dims[axis]
    inner = _product(b, params_dims[axis + 1 :])
    count = _product(b, kb.dims(lowering.dims(indices)))

    def load_index(n: ir.Value) -> ir.Value:
        value = b.load(b.gep(index_buffer, [n], inbounds=True), name="index")
        return value if value.type == I64 else b.sext(value, I64)

    with for_range(b, count, "check") as n:
        index = load_index(n)
        # Unsigned: a negative index is a huge one, so one compare checks both ends.
        with if_then(b, b.icmp_unsigned(">=", index, size), "out_of_range"):
            kb.fail(index, n, size)
    with for_range(b, outer, "outer") as p, for_range(b, count, "row") as n:
        row = _add(b, _mul(b, p, size), load_index(n))
        start = b.gep(source, [_mul(b, row, inner)], inbounds=True)
        end = b.gep(target, [_mul(b, _add(b, _mul(b, p, count), n), inner)], inbounds=True)
        with for_range(b, inner, "copy") as m:
            value = b.load(b.gep(start, [m], inbounds=True))
            b.store(value, b.gep(end, [m], inbounds=True))
    # The same facts as the reference's message; a position into indices of
    # rank > 1 is given flat.
    where = "indices[{position}]" if indices.shape.rank == 1 else "indices.flat[{position}]"
    message = (
        f"index out of range; got {where} = {{value}}; expected indices in [0, {{limit}}) "
        f"(dim {axis} of params)"
    )
    lowering.call_kernel(kb.finish(), [params, indices, y], op=op, message=message)


def one_hot(lowering: _Lowering, op: Operation) -> None:
    """out[p, k, q] = on if indices[p, q] == k else off, the new axis of depth k at `axis`.

    An index outside [0, depth) equals no k: its row is all off_value, as in
    the reference. With the new axis last the domain is [P, depth] and the
    index is read once per row (stride 0); otherwise the inner loop walks q,
    contiguous in both buffers.
    """
    indices, on, off = op.inputs
    (y,) = op.outputs
    rank = indices.shape.rank
    axis = rank if op.attrs["axis"] == -1 else op.attrs["axis"]
    kb = KernelBuilder(
        lowering.module, lowering.kernel_name(op), [indices.dtype, on.dtype, off.dtype, y.dtype]
    )
    b = kb.builder
    dims = kb.dims(lowering.dims(indices))
    outer, inner = _product(b, dims[:axis]), _product(b, dims[axis:])
    depth = const(op.attrs["depth"])
    on_value = b.load(kb.pointers[1], name="on")
    off_value = b.load(kb.pointers[2], name="off")
    if axis == rank:
        domain, index_strides = [outer, depth], [const(1), const(0)]
    else:
        domain, index_strides = [outer, depth, inner], [inner, const(0), const(1)]
    source = Operand(kb.pointers[0], domain, indices.dtype, index_strides)
    target = Operand(kb.pointers[3], domain, y.dtype, _row_major(b, domain))

    def element(b: ir.IRBuilder, pointers: list[ir.Value], index: list[ir.Value]) -> None:
        value = b.load(pointers[0])
        value = value if value.type == I64 else b.sext(value, I64)
        hot = b.icmp_signed("==", value, index[1])
        b.store(b.select(hot, on_value, off_value), pointers[1])

    loop_nest(kb, domain, [source, target], element, "hot")
    lowering.call_kernel(kb.finish(), [indices, on, off, y])


# -- tile, broadcast_to, pad -----------------------------------------------------------------
def tile(lowering: _Lowering, op: Operation) -> None:
    """Output axis k of size m * d, walked as two axes (repeat r, position i): x[i] lands at
    r * d + i. The domain interleaves them, (r_0, i_0, r_1, i_1, ...), so the innermost
    loop copies a row of x contiguously; axes repeated once drop their r."""
    (x,), (y,) = op.inputs, op.outputs
    kb = KernelBuilder(lowering.module, lowering.kernel_name(op), [x.dtype, y.dtype])
    b = kb.builder
    in_dims = kb.dims(lowering.dims(x))
    in_strides = _row_major(b, in_dims)
    out_strides = _row_major(b, kb.dims(lowering.dims(y)))
    domain: list[ir.Value] = []
    source_strides: list[ir.Value] = []
    target_strides: list[ir.Value] = []
    for m, d, s, t in zip(op.attrs["multiples"], in_dims, in_strides, out_strides):
        if m != 1:
            domain.append(const(m))
            source_strides.append(const(0))
            target_strides.append(_mul(b, d, t))
        domain.append(d)
        source_strides.append(s)
        target_strides.append(t)
    source = Operand(kb.pointers[0], domain, x.dtype, source_strides)
    target = Operand(kb.pointers[1], domain, y.dtype, target_strides)
    _copy(kb, domain, source, target, "tile")
    lowering.call_kernel(kb.finish(), [x, y])


def broadcast_to(lowering: _Lowering, op: Operation) -> None:
    """out = x read with broadcast strides (0 on x's dims of 1, and on the leading new axes)."""
    (x,), (y,) = op.inputs, op.outputs
    kb = KernelBuilder(lowering.module, lowering.kernel_name(op), [x.dtype, y.dtype])
    out_dims = kb.dims(lowering.dims(y))
    source = kb.operand(0, lowering.dims(x), x.dtype)  # no strides: loop_nest broadcasts it
    _copy(kb, out_dims, source, _dense(kb, 1, out_dims, y), "bcast")
    lowering.call_kernel(kb.finish(), [x, y])


def pad(lowering: _Lowering, op: Operation) -> None:
    """Each output axis is three intervals: `before`, the input's d, `after`.

    Every combination of intervals (those of static width 0 skipped) is one
    region, written by one loop nest: the input's interval is a copy, a
    padding interval is the constant (CONSTANT) or the input read backwards
    from the edge (REFLECT skips the edge element, SYMMETRIC repeats it; the
    shape rule bounds the paddings so one reflection suffices, as in np.pad).
    Each output element is written once.
    """
    x, value = op.inputs
    (y,) = op.outputs
    mode = op.attrs["mode"]
    kb = KernelBuilder(lowering.module, lowering.kernel_name(op), [x.dtype, value.dtype, y.dtype])
    b = kb.builder
    in_dims = kb.dims(lowering.dims(x))
    in_strides = _row_major(b, in_dims)
    out_strides = _row_major(b, kb.dims(lowering.dims(y)))
    constant = b.load(kb.pointers[1], name="constant")
    edge = 0 if mode == "SYMMETRIC" else 1  # how far from the edge the mirror starts
    # Per axis: (width, first output position, first input position or None, input step).
    axes: list[list[tuple[ir.Value, ir.Value, ir.Value | None, int]]] = []
    for d, (before, after) in zip(in_dims, op.attrs["paddings"]):
        intervals = []
        mirror = mode != "CONSTANT"
        if before:
            intervals.append(
                (const(before), const(0), const(before - 1 + edge) if mirror else None, -1)
            )
        intervals.append((d, const(before), const(0), 1))
        if after:
            right = _add(b, d, const(-1 - edge)) if mirror else None
            intervals.append((const(after), _add(b, d, const(before)), right, -1))
        axes.append(intervals)
    for number, region in enumerate(itertools.product(*axes)):
        domain = [width for width, _, _, _ in region]
        offset = _dot(b, [first for _, first, _, _ in region], out_strides)
        target = _dense(kb, 2, domain, y, offset, out_strides)
        if any(start is None for _, _, start, _ in region):
            _fill(kb, domain, target, constant, f"pad{number}_")
            continue
        source_offset = _dot(b, [start for _, _, start, _ in region], in_strides)
        source_strides = [_mul(b, const(step), s) for (_, _, _, step), s in zip(region, in_strides)]
        source = _dense(kb, 0, domain, x, source_offset, source_strides)
        _copy(kb, domain, source, target, f"pad{number}_")
    lowering.call_kernel(kb.finish(), [x, value, y])


# -- shape queries and range -----------------------------------------------------------------
def _store_ints(kb: KernelBuilder, values: Sequence[ir.Value], t: Tensor) -> None:
    """out[k] = values[k] (i64), narrowed to the output's int dtype."""
    b = kb.builder
    ty = llvm_type(t.dtype)
    for k, v in enumerate(values):
        narrowed = v if ty == I64 else b.trunc(v, ty)
        b.store(narrowed, b.gep(kb.pointers[0], [const(k)], inbounds=True))


def shape(lowering: _Lowering, op: Operation) -> None:
    """The run-time dims of the input (constants where known; the rest from the slots)."""
    (x,), (y,) = op.inputs, op.outputs
    kb = KernelBuilder(lowering.module, lowering.kernel_name(op), [y.dtype])
    _store_ints(kb, kb.dims(lowering.dims(x)), y)
    lowering.call_kernel(kb.finish(), [y])


def size(lowering: _Lowering, op: Operation) -> None:
    (x,), (y,) = op.inputs, op.outputs
    kb = KernelBuilder(lowering.module, lowering.kernel_name(op), [y.dtype])
    _store_ints(kb, [_product(kb.builder, kb.dims(lowering.dims(x)))], y)
    lowering.call_kernel(kb.finish(), [y])


def rank(lowering: _Lowering, op: Operation) -> None:
    (x,), (y,) = op.inputs, op.outputs
    kb = KernelBuilder(lowering.module, lowering.kernel_name(op), [y.dtype])
    _store_ints(kb, [const(x.shape.rank)], y)
    lowering.call_kernel(kb.finish(), [y])


def range_(lowering: _Lowering, op: Operation) -> None:
    """np.arange's own fill, in the output dtype: out[0] = start, out[1] = start + delta
    (each rounded to the dtype, start + delta computed in Python as np.arange does), and
    out[i] = out[0] + i * (out[1] - out[0]) for i >= 2. A float step is thus the rounded
    difference of the first two values, and the results are bit-for-bit NumPy's."""
    (y,) = op.outputs
    (count,) = y.shape.as_list()
    start, delta = op.attrs["start"], op.attrs["delta"]
    dtype = y.dtype
    seeds = np.zeros(2, dtype.np)
    seeds[0] = start
    if count >= 2:
        seeds[1] = start + delta
    ty = llvm_type(dtype)
    kb = KernelBuilder(lowering.module, lowering.kernel_name(op), [dtype])
    b = kb.builder
    if dtype.is_floating:
        first, second = (ir.Constant(ty, float(v)) for v in seeds)
        step = ir.Constant(ty, float(seeds[1] - seeds[0]))
    else:
        first, second = (ir.Constant(ty, int(v)) for v in seeds)
        step = ir.Constant(ty, _wrapped(int(seeds[1]) - int(seeds[0]), ty.width))
    with for_range(b, const(count), "iota") as i:
        if dtype.is_floating:
            value = b.fadd(first, b.fmul(b.sitofp(i, ty), step))
        else:
            value = b.add(first, b.mul(i if ty == I64 else b.trunc(i, ty), step))
        value = b.select(b.icmp_signed("==", i, const(0)), first, value)
        value = b.select(b.icmp_signed("==", i, const(1)), second, value)
        b.store(value, b.gep(kb.pointers[0], [i], inbounds=True))
    lowering.call_kernel(kb.finish(), [y])


def _wrapped(value: int, bits: int) -> int:
    """`value` as a signed integer of `bits` bits (two's complement wrap, as NumPy's fill)."""
    half = 1 << (bits - 1)
    return (value + half) % (1 << bits) - half


ARRAY_RULES: dict[str, Rule] = {
    "Slice": slice_,
    "StridedSlice": strided_slice,
    "ConcatV2": concat,
    "Pack": pack,
    "Unpack": unpack,
    "Split": split,
    "GatherV2": gather,
    "OneHot": one_hot,
    "Tile": tile,
    "BroadcastTo": broadcast_to,
    "PadV2": pad,
    "Shape": shape,
    "Size": size,
    "Rank": rank,
    "Range": range_,
}
