"""Lowering rules for the ops of the backward graph: unbroadcast, scatters, conv and pool backprop.

Each rule computes what the op's NumPy reference computes (graphflow/ops/
gradients_*.py), with every dim that is `None` read from the slots at run
time, so a new batch size re-plans but never recompiles. Where a reference
can fail on data (an index out of range, a gradient that does not fit), the
kernel is checked and fails before it writes anything.

Exactness: the scatters (GatherV2Grad, MaxPoolGrad, AvgPoolGrad) add into
each output cell in the reference's order, so they are bit-for-bit NumPy's:
np.add.at adds index by index, and the pool references add tap by tap,
which for one cell is the windows in *reverse* row-major order, the order
the kernels walk them. Sums that NumPy computes pairwise or with BLAS
(SumToShapeOf, the conv backprops) may round differently, as reduction.py's.
The conv backprops keep the reference's NaN/Inf facts: the filter gradient
multiplies taps in the padding as zeros (0 * Inf is NaN, as in the
reference's zero-padded copy); the input gradient adds nothing for taps
that are not read by any output (the reference drops them).

The conv backprops are the ones that compute much. With the channel count
of the vectorized axis known now, they accumulate a register tile (a few
pixels or input channels times up to 4 vectors of channels) over every tap
and store it once, as structured_nn.conv2d does; otherwise a plain loop nest
whose innermost loop walks contiguous channels.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING

from llvmlite import ir

from graphflow.compiler.lowering.irutil import I1, I64, const, for_range, if_then, llvm_type
from graphflow.compiler.lowering.kernels import KernelBuilder, Operand, loop_nest
from graphflow.compiler.lowering.structured_array import (
    _add,
    _known,
    _max,
    _min,
    _mul,
    _product,
    _row_major,
)
from graphflow.compiler.lowering.structured_nn import (
    _TILE_ACCUMULATORS,
    _TILE_PIXELS,
    _TILE_VECTORS,
    _VECTOR_BYTES,
    _channel_range,
    _fold,
    _load_vector,
    _padded_pixel,
    _pixel,
    _spatial,
    _splat,
    _Window,
)
from graphflow.dtypes import DType
from graphflow.graph import Operation
from graphflow.ops.array_ops import _expand_spec

if TYPE_CHECKING:
    from graphflow.compiler.lowering.module import _Lowering
    from graphflow.compiler.lowering.structured import Rule

_CONTRACT = ("contract",)  # fused multiply-add; no nnan/ninf: NaN and Inf must survive


# -- small helpers ---------------------------------------------------------------------------
def _at(b: ir.IRBuilder, pointer: ir.Value, offset: ir.Value) -> ir.Value:
    return pointer if _known(offset) == 0 else b.gep(pointer, [offset], inbounds=True)


def _plus(b: ir.IRBuilder, dtype: DType, x: ir.Value, y: ir.Value) -> ir.Value:
    """x + y as NumPy adds in `dtype` (a bool sum is a logical or)."""
    if dtype.is_floating:
        return b.fadd(x, y)
    if dtype.is_bool:
        return b.or_(x, y)
    return b.add(x, y)


def _zero(dtype: DType) -> ir.Constant:
    return ir.Constant(llvm_type(dtype), 0.0 if dtype.is_floating else 0)


def _zero_fill(kb: KernelBuilder, pointer: ir.Value, count: ir.Value, dtype: DType) -> None:
    b = kb.builder
    with _channel_range(b, count, "zero") as i:
        b.store(_zero(dtype), b.gep(pointer, [i], inbounds=True))


def _fails_unless(kb: KernelBuilder, ok: ir.Value, *words: ir.Value, name: str = "bad") -> None:
    """Fails the checked kernel with `words` (value, position, limit) unless `ok` holds."""
    if isinstance(ok, ir.Constant) and ok.constant:
        return
    with if_then(kb.builder, kb.builder.not_(ok), name):
        kb.fail(*words)


def _when(
    b: ir.IRBuilder,
    condition: ir.Value,
    accs: list[ir.Value],
    body: Callable[[list[ir.Value]], list[ir.Value]],
    name: str,
) -> list[ir.Value]:
    """`accs = body(accs) if condition else accs`, for values carried in registers."""
    before = b.block
    then = b.function.append_basic_block(f"{name}.then")
    done = b.function.append_basic_block(f"{name}.end")
    b.cbranch(condition, then, done)
    b.position_at_end(then)
    updated = body(accs)
    end = b.block
    b.branch(done)
    b.position_at_end(done)
    out = []
    for old, new in zip(accs, updated):
        phi = b.phi(old.type)
        phi.add_incoming(new, end)
        phi.add_incoming(old, before)
        out.append(phi)
    return out


def _between(b: ir.IRBuilder, value: ir.Value, limit: ir.Value) -> ir.Value:
    """0 <= value < limit."""
    return b.and_(b.icmp_signed(">=", value, const(0)), b.icmp_signed("<", value, limit))


# -- SumToShapeOf, ReshapeToShapeOf ------------------------------------------------------------
def sum_to_shape_of(lowering: _Lowering, op: Operation) -> None:
    """out (like's shape) = x summed over its leading axes and where like has 1 and x not.

    x is walked once in row-major order and added into out read with
    broadcast strides (0 along the summed axes). Checked: like's shape must
    broadcast to x's, as the reference requires.
    """
    x, _ = op.inputs
    (y,) = op.outputs
    kb = KernelBuilder(lowering.module, lowering.kernel_name(op), [x.dtype, y.dtype], checked=True)
    b = kb.builder
    source, target = kb.pointers
    x_dims = kb.dims(lowering.dims(x))
    y_dims = kb.dims(lowering.dims(y))
    lead = len(x_dims) - len(y_dims)
    if lead < 0:
        _fails_unless(kb, ir.Constant(I1, 0), const(len(x_dims)), const(-1), const(len(y_dims)))
    else:
        for axis, d in enumerate(y_dims):
            o = x_dims[lead + axis]
            ok = b.or_(b.icmp_signed("==", d, const(1)), b.icmp_signed("==", d, o))
            _fails_unless(kb, ok, d, const(axis), o)
        _zero_fill(kb, target, _product(b, y_dims), y.dtype)

        def add(bb: ir.IRBuilder, pointers: list[ir.Value], index: list[ir.Value]) -> None:
            total = _plus(bb, y.dtype, bb.load(pointers[1]), bb.load(pointers[0]))
            bb.store(total, pointers[1])

        operands = [Operand(source, x_dims, x.dtype), Operand(target, y_dims, y.dtype)]
        loop_nest(kb, x_dims, operands, add, "sum")
    message = (
        "cannot sum a tensor to the shape of `like`: got a dim of size {value} at axis "
        "{position} of like (-1: like has the larger rank {limit}) against {limit}; expected "
        "a shape that broadcasts to x's (each dim 1 or x's)"
    )
    lowering.call_kernel(kb.finish(), [x, y], op=op, message=message)


def reshape_to_shape_of(lowering: _Lowering, op: Operation) -> None:
    """out = x's elements, row-major, in like's shape: a flat copy of equal element counts."""
    x, _ = op.inputs
    (y,) = op.outputs
    kb = KernelBuilder(lowering.module, lowering.kernel_name(op), [x.dtype, y.dtype], checked=True)
    b = kb.builder
    source, target = kb.pointers
    have = _product(b, kb.dims(lowering.dims(x)))
    want = _product(b, kb.dims(lowering.dims(y)))
    _fails_unless(kb, b.icmp_signed("==", have, want), have, const(0), want)
    with _channel_range(b, want, "copy") as i:
        b.store(b.load(b.gep(source, [i], inbounds=True)), b.gep(target, [i], inbounds=True))
    message = (
        "cannot reshape a tensor of {value} elements to the shape of `like`; expected "
        "{limit} elements"
    )
    lowering.call_kernel(kb.finish(), [x, y], op=op, message=message)


# -- StridedSliceGrad ----------------------------------------------------------------------------
def _slice_range(
    b: ir.IRBuilder, start: int | None, stop: int | None, step: int, dim: ir.Value
) -> tuple[ir.Value, ir.Value]:
    """(first index, count) of Python's range(*slice(start, stop, step).indices(dim))."""
    if _known(dim) is not None:
        r = range(*slice(start, stop, step).indices(_known(dim)))
        return const(r.start), const(len(r))
    lower = const(-1) if step < 0 else const(0)
    upper = b.sub(dim, const(1)) if step < 0 else dim

    def bound(value: int | None, default: ir.Value) -> ir.Value:
        if value is None:
            return default
        if value < 0:
            return _max(b, b.add(dim, const(value)), lower)
        return _min(b, const(value), upper)

    first = bound(start, const(0) if step > 0 else upper)
    last = bound(stop, dim if step > 0 else const(-1))
    span = b.sub(last, first) if step > 0 else b.sub(first, last)
    size = abs(step)
    count = b.sdiv(b.add(span, const(size - 1)), const(size))
    return first, b.select(b.icmp_signed(">", span, const(0)), count, const(0))


def strided_slice_grad(lowering: _Lowering, op: Operation) -> None:
    """out = zeros of like's shape, with g written at like[spec] (g broadcast as NumPy's setitem).

    The slice is a region of out: an offset, a stride per slice axis (step
    times out's stride), dim 1 with stride 0 for a new axis. Checked: int
    indices in range, and g's dims broadcast to the region's (a leading
    extra dim of g must be 1).
    """
    g, _ = op.inputs
    (y,) = op.outputs
    kb = KernelBuilder(lowering.module, lowering.kernel_name(op), [g.dtype, y.dtype], checked=True)
    b = kb.builder
    source, target = kb.pointers
    dims = kb.dims(lowering.dims(y))
    strides = _row_major(b, dims)
    offset: ir.Value = const(0)
    region: list[ir.Value] = []
    region_strides: list[ir.Value] = []
    axis = 0
    for entry in _expand_spec(op.attrs["spec"], len(dims)):
        if entry[0] == "newaxis":
            region.append(const(1))
            region_strides.append(const(0))
            continue
        dim, stride = dims[axis], strides[axis]
        if entry[0] == "int":
            i = entry[1]
            index = const(i) if i >= 0 else _add(b, dim, const(i))
            _fails_unless(kb, _between(b, index, dim), const(i), const(axis), dim, name="index")
            offset = _add(b, offset, _mul(b, index, stride))
        else:
            start, stop, step = entry[1:]
            step = 1 if step is None else step
            first, count = _slice_range(b, start, stop, step, dim)
            offset = _add(b, offset, _mul(b, first, stride))
            region.append(count)
            region_strides.append(_mul(b, const(step), stride))
        axis += 1
    g_dims = kb.dims(lowering.dims(g))
    extra = len(g_dims) - len(region)
    for k, d in enumerate(g_dims):
        if k < extra:
            ok, want = b.icmp_signed("==", d, const(1)), const(1)
        else:
            want = region[k - extra]
            ok = b.or_(b.icmp_signed("==", d, const(1)), b.icmp_signed("==", d, want))
        _fails_unless(kb, ok, d, const(k), want, name="fits")
    _zero_fill(kb, target, _product(b, dims), y.dtype)
    value = Operand(source, g_dims[max(extra, 0) :], g.dtype)  # loop_nest broadcasts it
    place = Operand(_at(b, target, offset), region, y.dtype, region_strides)

    def write(bb: ir.IRBuilder, pointers: list[ir.Value], index: list[ir.Value]) -> None:
        bb.store(bb.load(pointers[0]), pointers[1])

    loop_nest(kb, region, [value, place], write, "slice")
    message = (
        "the gradient does not fit the slice: got {value} at dim {position} of the gradient "
        "(or index {value} into dim {position} of `like`); expected {limit} (a gradient dim "
        "of 1 or the slice's size; an index in [-size, size))"
    )
    lowering.call_kernel(kb.finish(), [g, y], op=op, message=message)


# -- GatherV2Grad ----------------------------------------------------------------------------
def gather_v2_grad(lowering: _Lowering, op: Operation) -> None:
    """out[p, indices[n], m] += g[p, n, m] (out as [P, D, M], g as [P, N, M]), n in order.

    Repeated indices add up in the order of `indices`, as np.add.at does,
    so the result is bit-for-bit the reference's. Checked first: every index
    in [0, D), then g's element count P * N * M.
    """
    g, indices, _ = op.inputs
    (y,) = op.outputs
    kb = KernelBuilder(
        lowering.module,
        lowering.kernel_name(op),
        [g.dtype, indices.dtype, y.dtype],
        checked=True,
    )
    b = kb.builder
    source, index_buffer, target = kb.pointers
    dims = kb.dims(lowering.dims(y))
    axis = op.attrs["axis"] % len(dims)
    outer, size, inner = _product(b, dims[:axis]), dims[axis], _product(b, dims[axis + 1 :])
    count = _product(b, kb.dims(lowering.dims(indices)))

    def load_index(n: ir.Value) -> ir.Value:
        value = b.load(b.gep(index_buffer, [n], inbounds=True), name="index")
        return value if value.type == I64 else b.sext(value, I64)

    with for_range(b, count, "check") as n:
        index = load_index(n)
        # Unsigned: a negative index is a huge one, so one compare checks both ends.
        with if_then(b, b.icmp_unsigned(">=", index, size), "out_of_range"):
            kb.fail(index, n, size)
    have = _product(b, kb.dims(lowering.dims(g)))
    want = _mul(b, _mul(b, outer, count), inner)
    _fails_unless(kb, b.icmp_signed("==", have, want), have, const(-1), want, name="size")
    _zero_fill(kb, target, _product(b, dims), y.dtype)
    with for_range(b, outer, "outer") as p, for_range(b, count, "row") as n:
        row = _at(b, target, _mul(b, _add(b, _mul(b, p, size), load_index(n)), inner))
        grad = _at(b, source, _mul(b, _add(b, _mul(b, p, count), n), inner))
        with _channel_range(b, inner, "add") as m:
            pointer = b.gep(row, [m], inbounds=True)
            value = b.load(b.gep(grad, [m], inbounds=True))
            b.store(_plus(b, y.dtype, b.load(pointer), value), pointer)
    message = (
        "an index is out of range: got {value} at indices.flat[{position}]; expected indices "
        "in [0, {limit}) (position -1: the gradient has {value} elements, expected {limit})"
    )
    lowering.call_kernel(kb.finish(), [g, indices, y], op=op, message=message)


# -- MirrorPadGrad ---------------------------------------------------------------------------
def mirror_pad_grad(lowering: _Lowering, op: Operation) -> None:
    """Folds g's mirrored borders back onto the cells they copy, axis by axis as the reference.

    After folding axes 0..k-1, a cell of axis k gets its core cell of g, plus
    the cell mirrored before it, plus the one mirrored after it (each pad is
    at most one reflection). Evaluating that from the last axis down gives
    out[i] as the reference's nested sums, in its order: up to 3 ** rank
    loads per output element, clamped into g where a mirror does not exist.
    """
    (g,) = op.inputs
    (y,) = op.outputs
    kb = KernelBuilder(lowering.module, lowering.kernel_name(op), [g.dtype, y.dtype])
    b = kb.builder
    source, target = kb.pointers
    g_strides = _row_major(b, kb.dims(lowering.dims(g)))
    dims = kb.dims(lowering.dims(y))
    shift = 1 if op.attrs["mode"] == "REFLECT" else 0
    paddings = op.attrs["paddings"]

    def element(bb: ir.IRBuilder, pointers: list[ir.Value], index: list[ir.Value]) -> None:
        # Per axis: (core index in g, [(index in g, exists)] of its mirrors in the reference order)
        axes = []
        for i, n, (before, after) in zip(index, dims, paddings):
            core = bb.add(i, const(before))
            mirrors = []
            if before:  # padded cell before - 1 - j copies core cell j + shift
                j = bb.sub(i, const(shift))
                exists = _between(bb, j, const(before))
                mirrors.append((bb.select(exists, bb.sub(const(before - 1), j), core), exists))
            if after:  # padded cell j after the core copies core cell n - 1 - shift - j
                j = bb.sub(bb.sub(n, const(1 + shift)), i)
                exists = _between(bb, j, const(after))
                at = bb.add(bb.add(n, const(before)), j)
                mirrors.append((bb.select(exists, at, core), exists))
            axes.append((core, mirrors))

        def value(k: int, chosen: list[ir.Value]) -> ir.Value:
            if k == 0:
                offset: ir.Value = const(0)
                for c, s in zip(chosen, g_strides):
                    offset = _add(bb, offset, _mul(bb, c, s))
                return bb.load(_at(bb, source, offset))
            core, mirrors = axes[k - 1]
            total = value(k - 1, [core, *chosen])
            for at, exists in mirrors:
                term = _plus(bb, y.dtype, total, value(k - 1, [at, *chosen]))
                total = bb.select(exists, term, total)
            return total

        bb.store(value(len(dims), []), pointers[0])

    loop_nest(kb, dims, [Operand(target, dims, y.dtype)], element, "fold")
    lowering.call_kernel(kb.finish(), [g, y])


# -- the shapes of a window op's operands -------------------------------------------------------
_SHAPES_MESSAGE = (
    "the operands' shapes do not agree with the forward op's: got {value} for dim {position} "
    "of the gradient (4: the filter's input channels, 5: a dim of gg); expected {limit}"
)


def _window_out(
    b: ir.IRBuilder,
    size: ir.Value,
    kernel: ir.Value,
    stride: int,
    dilation: int,
    padding: str,
    explicit: tuple[int, int],
) -> ir.Value:
    """nn_ops.window_output's output size, for sizes known at run time (a valid geometry)."""
    if padding == "SAME":
        return b.sdiv(b.add(size, const(stride - 1)), const(stride))
    reach = b.add(b.mul(b.sub(kernel, const(1)), const(dilation)), const(1))
    before, after = explicit if padding == "EXPLICIT" else (0, 0)
    span = b.add(b.sub(b.add(size, const(before + after)), reach), const(stride))
    return b.sdiv(span, const(stride))


def _check_window(
    kb: KernelBuilder,
    in_dims: list[ir.Value],
    pooled: list[ir.Value],
    other: list[ir.Value],
    attrs: dict,
    kernel: list[ir.Value] | None = None,
    channels: ir.Value | None = None,
) -> None:
    """Fails unless `pooled` is the forward op's output shape for input `in_dims`
    (with `channels` output channels, default the input's) and `other` is in_dims.

    The ops' shape rules take the result's shape from one operand without
    relating the others to it; the kernels index every buffer with its own
    dims, so a mismatch would read or write out of bounds.
    """
    b = kb.builder
    kernel = kernel or [const(k) for k in attrs["ksize"]]
    dilations = attrs.get("dilations", (1, 1))
    explicit = attrs.get("explicit_paddings") or ((0, 0), (0, 0))
    want = [in_dims[0]]
    for d in range(2):
        want.append(
            _window_out(
                b,
                in_dims[1 + d],
                kernel[d],
                attrs["strides"][d],
                dilations[d],
                attrs["padding"],
                explicit[d],
            )
        )
    want.append(channels if channels is not None else in_dims[3])
    for axis, (got, expected) in enumerate(zip(pooled, want)):
        _fails_unless(kb, b.icmp_signed("==", got, expected), got, const(axis), expected)
    for got, expected in zip(other, in_dims):
        _fails_unless(kb, b.icmp_signed("==", got, expected), got, const(5), expected)


def _check_conv(
    kb: KernelBuilder,
    in_dims: list[ir.Value],
    f_dims: list[ir.Value],
    out_dims: list[ir.Value],
    attrs: dict,
) -> None:
    b = kb.builder
    _fails_unless(kb, b.icmp_signed("==", f_dims[2], in_dims[3]), f_dims[2], const(4), in_dims[3])
    _check_window(kb, in_dims, out_dims, in_dims, attrs, kernel=f_dims[:2], channels=f_dims[3])


# -- pooling gradients -------------------------------------------------------------------------
def _descending(b: ir.IRBuilder, i: ir.Value, count: ir.Value) -> ir.Value:
    return b.sub(b.sub(count, const(1)), i)


def _max_pool_rule(second: bool) -> Rule:
    def rule(lowering: _Lowering, op: Operation) -> None:
        """MaxPoolGrad / MaxPoolGradGrad: per window and channel, the first maximal tap.

        The taps are visited in the reference's order, those in the padding
        as -inf, and a tap replaces the best if it is larger or NaN while the
        best is not: np.argmax's first max (or first NaN). A padded tap can
        win (a window of -inf): then the gradient goes nowhere. MaxPoolGrad
        adds g to that cell, walking the windows backwards (see the module
        docstring); MaxPoolGradGrad reads gg there.
        """
        x, _, g = op.inputs
        (out,) = op.outputs
        kb = KernelBuilder(
            lowering.module, lowering.kernel_name(op), [x.dtype, g.dtype, out.dtype], checked=True
        )
        b = kb.builder
        ty = llvm_type(out.dtype)
        source, grads, target = kb.pointers
        in_dims = kb.dims(lowering.dims(x))
        # MaxPoolGrad: g is pooled, out is x's shape; MaxPoolGradGrad: gg is x's, out pooled.
        pooled = kb.dims(lowering.dims(out if second else g))
        _check_window(kb, in_dims, pooled, kb.dims(lowering.dims(g if second else out)), op.attrs)
        kh, kw = op.attrs["ksize"]
        rows, cols = _spatial(b, in_dims, pooled, [const(kh), const(kw)], op.attrs)
        channels = in_dims[3]
        lowest = b.alloca(ty, name="padding")
        b.store(ir.Constant(ty, -math.inf), lowest)
        if not second:
            _zero_fill(kb, target, _product(b, in_dims), out.dtype)
        with (
            for_range(b, pooled[0], "n") as n,
            for_range(b, pooled[1], "oh") as i,
            for_range(b, pooled[2], "ow") as j,
        ):
            oh = _descending(b, i, pooled[1]) if not second else i
            ow = _descending(b, j, pooled[2]) if not second else j
            r0, c0 = rows.origin(b, oh), cols.origin(b, ow)
            taps = []
            for a in range(kh):
                r = b.add(r0, const(a))
                for t in range(kw):
                    c = b.add(c0, const(t))
                    inside = b.and_(_between(b, r, rows.size), _between(b, c, cols.size))
                    offset = _pixel(b, in_dims, n, r, c)
                    pointer, step = _padded_pixel(b, inside, source, offset, lowest)
                    taps.append((pointer, step, b.select(inside, offset, const(-1))))
            out_pixel = _pixel(b, pooled, n, oh, ow)
            with _channel_range(b, channels, "ch") as ch:
                best = b.load(b.gep(taps[0][0], [b.mul(ch, taps[0][1])]))
                where = taps[0][2]
                for pointer, step, offset in taps[1:]:
                    value = b.load(b.gep(pointer, [b.mul(ch, step)]))
                    larger = b.fcmp_ordered(">", value, best)
                    nan = b.and_(
                        b.fcmp_unordered("uno", value, value), b.fcmp_ordered("ord", best, best)
                    )
                    take = b.or_(larger, nan)
                    best = b.select(take, value, best)
                    where = b.select(take, offset, where)
                found = b.icmp_signed(">=", where, const(0))
                cell = b.add(where, ch)
                if second:
                    picked = b.load(b.gep(grads, [b.select(found, cell, const(0))]))
                    # The reference sums the window from 0.0: a -0.0 comes out +0.0.
                    picked = b.fadd(picked, ir.Constant(ty, 0.0))
                    value = b.select(found, picked, ir.Constant(ty, 0.0))
                    b.store(value, b.gep(target, [b.add(out_pixel, ch)], inbounds=True))
                else:
                    with if_then(b, found, "route"):
                        pointer = b.gep(target, [cell], inbounds=True)
                        share = b.load(b.gep(grads, [b.add(out_pixel, ch)], inbounds=True))
                        b.store(b.fadd(b.load(pointer), share), pointer)
        lowering.call_kernel(kb.finish(), [x, g, out], op=op, message=_SHAPES_MESSAGE)

    return rule


def avg_pool_grad(lowering: _Lowering, op: Operation) -> None:
    """Each window's gradient, divided by its count of cells inside the input, added to them.

    Windows are walked backwards so each cell adds its shares in the
    reference's order; the division is in g's dtype, as the reference's.
    """
    _, g = op.inputs
    (y,) = op.outputs
    kb = KernelBuilder(lowering.module, lowering.kernel_name(op), [g.dtype, y.dtype], checked=True)
    b = kb.builder
    ty = llvm_type(y.dtype)
    grads, target = kb.pointers
    in_dims = kb.dims(lowering.dims(y))
    pooled = kb.dims(lowering.dims(g))
    _check_window(kb, in_dims, pooled, in_dims, op.attrs)
    kh, kw = (const(k) for k in op.attrs["ksize"])
    rows, cols = _spatial(b, in_dims, pooled, [kh, kw], op.attrs)
    channels = in_dims[3]
    _zero_fill(kb, target, _product(b, in_dims), y.dtype)
    with (
        for_range(b, pooled[0], "n") as n,
        for_range(b, pooled[1], "oh") as i,
        for_range(b, pooled[2], "ow") as j,
    ):
        oh, ow = _descending(b, i, pooled[1]), _descending(b, j, pooled[2])
        r0, c0 = rows.origin(b, oh), cols.origin(b, ow)
        r_lo, c_lo = _max(b, r0, const(0)), _max(b, c0, const(0))
        r_hi = _min(b, b.add(r0, rows.kernel), rows.size)
        c_hi = _min(b, b.add(c0, cols.kernel), cols.size)
        divisor = b.sitofp(b.mul(b.sub(r_hi, r_lo), b.sub(c_hi, c_lo)), ty)
        share_row = b.gep(grads, [_pixel(b, pooled, n, oh, ow)], inbounds=True)
        with for_range(b, r_hi, "r", start=r_lo) as r, for_range(b, c_hi, "c", start=c_lo) as c:
            cell = b.gep(target, [_pixel(b, in_dims, n, r, c)], inbounds=True)
            with _channel_range(b, channels, "ch") as ch:
                pointer = b.gep(cell, [ch], inbounds=True)
                share = b.fdiv(b.load(b.gep(share_row, [ch], inbounds=True)), divisor)
                b.store(b.fadd(b.load(pointer), share), pointer)
    lowering.call_kernel(kb.finish(), [g, y], op=op, message=_SHAPES_MESSAGE)


# -- Conv2DBackpropFilter ----------------------------------------------------------------------
def _vector_chunks(count: int, dtype: DType) -> list[tuple[int, ir.VectorType, int]]:
    """(first channel, vector type, 512-bit vectors in it) covering `count` channels."""
    lanes = _VECTOR_BYTES // dtype.itemsize
    ty = llvm_type(dtype)
    out = []
    for first in range(0, count, lanes * _TILE_VECTORS):
        vector = ir.VectorType(ty, min(lanes * _TILE_VECTORS, count - first))
        out.append((first, vector, -(-vector.count // lanes)))
    return out


def _blocked(
    b: ir.IRBuilder, count: ir.Value, width: int, body: Callable[[ir.Value, int], None], name: str
) -> None:
    """body(start, width) over [0, count) in blocks of `width`, then body(k, 1) for the rest."""
    blocks = b.sdiv(count, const(width))
    with for_range(b, blocks, f"{name}.block") as block:
        body(b.mul(block, const(width)), width)
    with for_range(b, count, f"{name}.rest", start=b.mul(blocks, const(width))) as k:
        body(k, 1)


def conv2d_backprop_filter(lowering: _Lowering, op: Operation) -> None:
    """dF[a, t, ci, co] = sum over output pixels (n, oh, ow) of x[n, r, c, ci] * g[n, oh, ow, co],

    with r = oh * stride - pad + a * dilation (c likewise); a tap in the
    padding reads a zero, as the reference's zero-padded copy.

    With the output channels known now: for each tap (a, t) and each block
    of up to 8 input channels, the block's rows of dF (vectors over co) are
    accumulated in registers over every output pixel, each vector of g
    serving the whole block, and stored once. Otherwise dF is accumulated in
    memory, the innermost loop over co.
    """
    x, _, g = op.inputs
    (y,) = op.outputs
    kb = KernelBuilder(
        lowering.module, lowering.kernel_name(op), [x.dtype, g.dtype, y.dtype], checked=True
    )
    b = kb.builder
    ty = llvm_type(y.dtype)
    source, grads, target = kb.pointers
    in_dims = kb.dims(lowering.dims(x))
    out_dims = kb.dims(lowering.dims(g))
    kh, kw, cin, cout = kb.dims(lowering.dims(y))
    _check_conv(kb, in_dims, [kh, kw, cin, cout], out_dims, op.attrs)
    rows, cols = _spatial(b, in_dims, out_dims, [kh, kw], op.attrs, op.attrs["dilations"])
    zero_slot = b.alloca(ty, name="padding")
    b.store(ir.Constant(ty, 0.0), zero_slot)

    def tap_row(a: ir.Value, oh: ir.Value) -> tuple[ir.Value, ir.Value]:
        r = b.add(rows.origin(b, oh), b.mul(a, const(rows.dilation)))
        return r, _between(b, r, rows.size)

    def input_pixel(n, r, row_inside, t, ow) -> tuple[ir.Value, ir.Value]:
        c = b.add(cols.origin(b, ow), b.mul(t, const(cols.dilation)))
        inside = b.and_(row_inside, _between(b, c, cols.size))
        return _padded_pixel(b, inside, source, _pixel(b, in_dims, n, r, c), zero_slot)

    def weights_row(a: ir.Value, t: ir.Value, ci: ir.Value, first: int) -> ir.Value:
        offset = b.add(b.mul(b.add(b.mul(b.add(b.mul(a, kw), t), cin), ci), cout), const(first))
        return b.gep(target, [offset], inbounds=True)

    def tile(a, t, ci0: ir.Value, block: int, first: int, vector: ir.VectorType) -> None:
        def over_n(n: ir.Value, accs: list[ir.Value]) -> list[ir.Value]:
            def over_oh(oh: ir.Value, accs: list[ir.Value]) -> list[ir.Value]:
                r, row_inside = tap_row(a, oh)

                def over_ow(ow: ir.Value, accs: list[ir.Value]) -> list[ir.Value]:
                    pixel, step = input_pixel(n, r, row_inside, t, ow)
                    offset = b.add(_pixel(b, out_dims, n, oh, ow), const(first))
                    gv = _load_vector(b, b.gep(grads, [offset], inbounds=True), vector, y.dtype)
                    out = []
                    for k, acc in enumerate(accs):
                        channel = b.mul(b.add(ci0, const(k)), step)
                        value = _splat(b, b.load(b.gep(pixel, [channel])), vector)
                        out.append(b.fadd(acc, b.fmul(value, gv, flags=_CONTRACT), flags=_CONTRACT))
                    return out

                return _fold(b, out_dims[2], accs, over_ow, "ow")

            return _fold(b, out_dims[1], accs, over_oh, "oh")

        accs = _fold(b, out_dims[0], [ir.Constant(vector, None)] * block, over_n, "n")
        for k, acc in enumerate(accs):
            pointer = weights_row(a, t, b.add(ci0, const(k)), first)
            b.store(acc, b.bitcast(pointer, vector.as_pointer()), align=y.dtype.itemsize)

    def in_memory() -> None:
        _zero_fill(kb, target, _product(b, [kh, kw, cin, cout]), y.dtype)
        with (
            for_range(b, out_dims[0], "n") as n,
            for_range(b, out_dims[1], "oh") as oh,
            for_range(b, out_dims[2], "ow") as ow,
            for_range(b, kh, "a") as a,
        ):
            r, row_inside = tap_row(a, oh)
            grad_row = b.gep(grads, [_pixel(b, out_dims, n, oh, ow)], inbounds=True)
            with for_range(b, kw, "t") as t:
                pixel, step = input_pixel(n, r, row_inside, t, ow)
                with for_range(b, cin, "ci") as ci:
                    value = b.load(b.gep(pixel, [b.mul(ci, step)]))
                    row = weights_row(a, t, ci, 0)
                    with _channel_range(b, cout, "co") as co:
                        pointer = b.gep(row, [co], inbounds=True)
                        term = b.fmul(value, b.load(b.gep(grad_row, [co], inbounds=True)))
                        b.store(b.fadd(b.load(pointer), term, flags=_CONTRACT), pointer)

    if isinstance(cout, ir.Constant):
        with for_range(b, kh, "a") as a, for_range(b, kw, "t") as t:
            for first, vector, vectors in _vector_chunks(cout.constant, y.dtype):
                block = max(1, min(_TILE_PIXELS, _TILE_ACCUMULATORS // vectors))
                _blocked(
                    b,
                    cin,
                    block,
                    lambda ci0, width, first=first, vector=vector: tile(
                        a, t, ci0, width, first, vector
                    ),
                    "ci",
                )
    else:
        in_memory()
    lowering.call_kernel(kb.finish(), [x, g, y], op=op, message=_SHAPES_MESSAGE)


# -- Conv2DBackpropInput -----------------------------------------------------------------------
def conv2d_backprop_input(lowering: _Lowering, op: Operation) -> None:
    """dx[n, r, c, ci] = sum over the taps (a, t) that read (r, c) from an output pixel
    (oh, ow) of sum_co g[n, oh, ow, co] * f[a, t, ci, co].

    Tap a reads row r from output row oh = (r + pad - a * dilation) / stride
    when that divides exactly and lands in [0, OH); taps reading no output
    add nothing (the reference drops the padding of its scatter).

    With the filter's dims and the input channels known now, the filter is
    first transposed to fT[a, t, co, ci] in the workspace, then a register
    tile of up to 8 neighbouring input pixels of a row times vectors of ci
    accumulates fT rows times g values over every tap and co (a conv2d with
    the flipped, transposed filter). Otherwise dx is accumulated in memory.
    """
    _, f, g = op.inputs
    (y,) = op.outputs
    f_known = all(isinstance(d, int) for d in lowering.dims(f))
    fast = f_known and isinstance(lowering.dims(y)[3], int)
    dtypes = [f.dtype, g.dtype, y.dtype] + ([f.dtype] if fast else [])
    kb = KernelBuilder(lowering.module, lowering.kernel_name(op), dtypes, checked=True)
    b = kb.builder
    ty = llvm_type(y.dtype)
    filters, grads, target = kb.pointers[:3]
    in_dims = kb.dims(lowering.dims(y))
    out_dims = kb.dims(lowering.dims(g))
    kh, kw, cin, cout = kb.dims(lowering.dims(f))
    _check_conv(kb, in_dims, [kh, kw, cin, cout], out_dims, op.attrs)
    rows, cols = _spatial(b, in_dims, out_dims, [kh, kw], op.attrs, op.attrs["dilations"])
    zero_slot = b.alloca(ty, name="nothing")
    b.store(ir.Constant(ty, 0.0), zero_slot)

    def source(window: _Window, position: ir.Value, tap: ir.Value) -> tuple[ir.Value, ir.Value]:
        """(output position, whether tap `tap` of it reads input `position`)."""
        reach = b.sub(b.add(position, window.before), b.mul(tap, const(window.dilation)))
        if window.stride == 1:
            return reach, _between(b, reach, window.out)
        out = b.sdiv(reach, const(window.stride))
        exact = b.icmp_signed("==", b.srem(reach, const(window.stride)), const(0))
        valid = b.and_(b.icmp_signed(">=", reach, const(0)), exact)
        return out, b.and_(valid, b.icmp_signed("<", out, window.out))

    def in_memory() -> None:
        with (
            for_range(b, in_dims[0], "n") as n,
            for_range(b, in_dims[1], "r") as r,
            for_range(b, in_dims[2], "c") as c,
        ):
            cell = b.gep(target, [_pixel(b, in_dims, n, r, c)], inbounds=True)
            _zero_fill(kb, cell, cin, y.dtype)
            with for_range(b, kh, "a") as a:
                oh, row_valid = source(rows, r, a)
                with if_then(b, row_valid, "row"), for_range(b, kw, "t") as t:
                    ow, valid = source(cols, c, t)
                    with if_then(b, valid, "tap"):
                        grad_row = b.gep(grads, [_pixel(b, out_dims, n, oh, ow)], inbounds=True)
                        taps = b.mul(b.add(b.mul(a, kw), t), b.mul(cin, cout))
                        with for_range(b, cout, "co") as co:
                            value = b.load(b.gep(grad_row, [co], inbounds=True))
                            column = b.gep(filters, [b.add(taps, co)], inbounds=True)
                            with _channel_range(b, cin, "ci") as ci:
                                pointer = b.gep(cell, [ci], inbounds=True)
                                w = b.load(b.gep(column, [b.mul(ci, cout)], inbounds=True))
                                term = b.fmul(value, w)
                                b.store(b.fadd(b.load(pointer), term, flags=_CONTRACT), pointer)

    if not fast:
        in_memory()
        lowering.call_kernel(kb.finish(), [f, g, y], op=op, message=_SHAPES_MESSAGE)
        return
    transposed = kb.pointers[3]
    # fT[a, t, co, ci] = f[a, t, ci, co]
    with (
        for_range(b, b.mul(kh, kw), "tap") as tap,
        for_range(b, cout, "co") as co,
        _channel_range(b, cin, "ci") as ci,
    ):
        base = b.mul(tap, b.mul(cin, cout))
        value = b.load(b.gep(filters, [b.add(base, b.add(b.mul(ci, cout), co))], inbounds=True))
        b.store(value, b.gep(transposed, [b.add(base, b.add(b.mul(co, cin), ci))], inbounds=True))

    def tile(n, r, c0: ir.Value, pixels: int, first: int, vector: ir.VectorType) -> None:
        def over_a(a: ir.Value, accs: list[ir.Value]) -> list[ir.Value]:
            oh, row_valid = source(rows, r, a)

            def over_t(t: ir.Value, accs: list[ir.Value]) -> list[ir.Value]:
                reads = []
                any_valid: ir.Value = ir.Constant(I1, 0)
                for p in range(pixels):
                    ow, valid = source(cols, b.add(c0, const(p)), t)
                    valid = b.and_(row_valid, valid)
                    any_valid = b.or_(any_valid, valid)
                    pixel = _pixel(b, out_dims, n, oh, ow)
                    reads.append((*_padded_pixel(b, valid, grads, pixel, zero_slot), valid))
                taps = b.mul(b.add(b.mul(a, kw), t), b.mul(cin, cout))

                def over_co(co: ir.Value, accs: list[ir.Value]) -> list[ir.Value]:
                    row = b.add(b.add(taps, b.mul(co, cin)), const(first))
                    w = _load_vector(b, b.gep(transposed, [row], inbounds=True), vector, y.dtype)
                    out = []
                    for acc, (pixel, step, valid) in zip(accs, reads):
                        value = _splat(b, b.load(b.gep(pixel, [b.mul(co, step)])), vector)
                        total = b.fadd(acc, b.fmul(value, w, flags=_CONTRACT), flags=_CONTRACT)
                        out.append(b.select(valid, total, acc))
                    return out

                return _when(
                    b, any_valid, accs, lambda accs: _fold(b, cout, accs, over_co, "co"), "t"
                )

            return _when(b, row_valid, accs, lambda accs: _fold(b, kw, accs, over_t, "t"), "a")

        zeros = ir.Constant(vector, [ir.Constant(ty, 0.0)] * vector.count)
        accs = _fold(b, kh, [zeros] * pixels, over_a, "a")
        for p, acc in enumerate(accs):
            offset = b.add(_pixel(b, in_dims, n, r, b.add(c0, const(p))), const(first))
            pointer = b.bitcast(b.gep(target, [offset], inbounds=True), vector.as_pointer())
            b.store(acc, pointer, align=y.dtype.itemsize)

    with for_range(b, in_dims[0], "n") as n, for_range(b, in_dims[1], "r") as r:
        for first, vector, vectors in _vector_chunks(cin.constant, y.dtype):
            pixels = max(1, min(_TILE_PIXELS, _TILE_ACCUMULATORS // vectors))
            _blocked(
                b,
                in_dims[2],
                pixels,
                lambda c0, width, first=first, vector=vector: tile(n, r, c0, width, first, vector),
                "c",
            )
    nbytes = math.prod(lowering.dims(f)) * f.dtype.itemsize  # type: ignore[arg-type]
    scratch = lowering.fixed_scratch((op, "transposed filter"), nbytes, lowering.step[op])
    lowering.call_kernel(kb.finish(), [f, g, y, scratch], op=op, message=_SHAPES_MESSAGE)


GRAD_RULES: dict[str, Rule] = {
    "SumToShapeOf": sum_to_shape_of,
    "ReshapeToShapeOf": reshape_to_shape_of,
    "StridedSliceGrad": strided_slice_grad,
    "GatherV2Grad": gather_v2_grad,
    "MirrorPadGrad": mirror_pad_grad,
    "Conv2DBackpropInput": conv2d_backprop_input,
    "Conv2DBackpropFilter": conv2d_backprop_filter,
    "MaxPoolGrad": _max_pool_rule(second=False),
    "MaxPoolGradGrad": _max_pool_rule(second=True),
    "AvgPoolGrad": avg_pool_grad,
}

__all__ = ["GRAD_RULES"]
