"""Lowering rules for the nn ops: arg max/min, logsumexp, softmax, cross-entropy, pools, conv2d.

Each rule emits one kernel computing exactly what the op's NumPy reference
computes (graphflow/ops/nn_ops.py, reduction_ops.py), NaN and Inf included:
the same max shift, the same subtractions, exp and log from the vectorizable
math library, and only the order of a sum differing (sums may reassociate,
as in reduction.py).

Two loop shapes serve them:

- *rows*: a buffer seen as [outer, n, inner] around one axis, so a row is n
  elements `inner` apart (contiguous when the axis is the last one, where
  `inner` is the constant 1). Softmax, log-softmax and the cross-entropies
  make three passes over each row with the accumulators in registers: the
  max, the sum of exp(x - max), then the outputs.
- *windows*: NHWC images, output pixel by output pixel, with the innermost
  loop over channels (contiguous in the input, the filter and the output),
  so it vectorizes. Conv2D, the one that computes much, accumulates a tile
  of neighbouring pixels times a few vectors of channels in registers.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING

from llvmlite import ir

from graphflow.compiler.lowering.irutil import I1, I64, const, for_range, if_then, llvm_type
from graphflow.compiler.lowering.kernels import (
    KernelBuilder,
    Operand,
    load_value,
    loop_nest,
    store_value,
)
from graphflow.compiler.lowering.reduction import _combine, _identity
from graphflow.compiler.lowering.scalar import ScalarContext
from graphflow.dtypes import DType
from graphflow.graph import Operation

if TYPE_CHECKING:
    from graphflow.compiler.lowering.module import _Lowering
    from graphflow.compiler.lowering.structured import Rule

_FAST = ("reassoc", "contract")  # no nnan/ninf: NaN and Inf must survive


# -- loops carrying values -------------------------------------------------------------------
def _fold(
    b: ir.IRBuilder,
    count: ir.Value,
    initial: Sequence[ir.Value],
    step: Callable[[ir.Value, list[ir.Value]], list[ir.Value]],
    name: str,
) -> list[ir.Value]:
    """`accs = initial; for k in range(count): accs = step(k, accs)`; returns the final accs.

    The accumulators are phis, so they live in registers and LLVM sees a
    reduction it can vectorize (when the step's flags allow reassociation).
    """
    function = b.function
    before = b.block
    head = function.append_basic_block(f"{name}.head")
    body = function.append_basic_block(f"{name}.body")
    done = function.append_basic_block(f"{name}.done")
    b.branch(head)
    b.position_at_end(head)
    k = b.phi(I64, name=name)
    k.add_incoming(const(0), before)
    accs = []
    for j, value in enumerate(initial):
        acc = b.phi(value.type, name=f"{name}.acc{j}")
        acc.add_incoming(value, before)
        accs.append(acc)
    b.cbranch(b.icmp_signed("<", k, count), body, done)
    b.position_at_end(body)
    updated = step(k, accs)
    latch = b.block
    k.add_incoming(b.add(k, const(1), name=f"{name}.next", flags=["nsw", "nuw"]), latch)
    for acc, value in zip(accs, updated):
        acc.add_incoming(value, latch)
    b.branch(head)
    b.position_at_end(done)
    return accs


@contextlib.contextmanager
def _channel_range(b: ir.IRBuilder, count: ir.Value, name: str) -> Iterator[ir.Value]:
    """`for (k = 0; k < count; ++k)` over channels, kept a loop so that LLVM vectorizes it.

    LLVM fully unrolls a short loop of known trip count (32 channels) before
    its loop vectorizer runs, and no SLP pass runs after it: the channels
    would be computed one by one. The latch's `llvm.loop.unroll.disable`
    stops that; the vectorizer still vectorizes and interleaves the loop.
    """
    function = b.function
    before = b.block
    head = function.append_basic_block(f"{name}.head")
    body = function.append_basic_block(f"{name}.body")
    done = function.append_basic_block(f"{name}.done")
    b.branch(head)
    b.position_at_end(head)
    k = b.phi(I64, name=name)
    k.add_incoming(const(0), before)
    b.cbranch(b.icmp_signed("<", k, count), body, done)
    b.position_at_end(body)
    yield k
    k.add_incoming(b.add(k, const(1), name=f"{name}.next", flags=["nsw", "nuw"]), b.block)
    latch = b.branch(head)
    latch.set_metadata("llvm.loop", _loop_id(b.module))
    b.position_at_end(done)


def _loop_id(module: ir.Module) -> ir.values.MDValue:
    """A fresh loop ID `!N = !{!N, !{!"llvm.loop.unroll.disable"}}`.

    A loop ID refers to itself, which `Module.add_metadata` cannot make: the
    node is made directly, and never passed to add_metadata (its hash would
    recurse).
    """
    disable = module.add_metadata([ir.MetaDataString(module, "llvm.loop.unroll.disable")])
    node = ir.values.MDValue(module, [], name=str(len(module.metadata)))
    node.operands = (node, disable)
    return node


def _product(b: ir.IRBuilder, values: Sequence[ir.Value]) -> ir.Value:
    out: ir.Value = const(1)
    for v in values:
        out = b.mul(out, v)
    return out


def _max(b: ir.IRBuilder, x: ir.Value, y: ir.Value) -> ir.Value:
    return b.select(b.icmp_signed(">", x, y), x, y)


def _min(b: ir.IRBuilder, x: ir.Value, y: ir.Value) -> ir.Value:
    return b.select(b.icmp_signed("<", x, y), x, y)


def _at(b: ir.IRBuilder, pointer: ir.Value, offset: ir.Value) -> ir.Value:
    return b.gep(pointer, [offset], inbounds=True)


# -- rows: softmax, log-softmax, the cross-entropies --------------------------------------------
@dataclasses.dataclass
class _Rows:
    """A row-major buffer seen as [outer, n, inner] around one axis.

    Row (o, i) holds n elements `inner` apart from `start(o, i)`; the result
    of a reduction over the axis goes to `o * inner + i`.
    """

    outer: ir.Value
    n: ir.Value
    inner: ir.Value

    @classmethod
    def around(cls, b: ir.IRBuilder, dims: list[ir.Value], axis: int) -> _Rows:
        return cls(_product(b, dims[:axis]), dims[axis], _product(b, dims[axis + 1 :]))

    def start(self, b: ir.IRBuilder, o: ir.Value, i: ir.Value) -> ir.Value:
        return b.add(b.mul(b.mul(o, self.n), self.inner), i)

    def reduced(self, b: ir.IRBuilder, o: ir.Value, i: ir.Value) -> ir.Value:
        return b.add(b.mul(o, self.inner), i)


class _Row:
    """One row of a float buffer: loads, and the max-shifted passes of the softmax family."""

    def __init__(
        self, ctx: ScalarContext, rows: _Rows, pointer: ir.Value, start: ir.Value, dtype: DType
    ) -> None:
        self.ctx = ctx
        self.rows = rows
        self.pointer = pointer
        self.start = start
        self.dtype = dtype
        self.type = llvm_type(dtype)

    def address(self, k: ir.Value) -> ir.Value:
        b = self.ctx.builder
        return _at(b, self.pointer, b.add(self.start, b.mul(k, self.rows.inner)))

    def load(self, k: ir.Value) -> ir.Value:
        return self.ctx.builder.load(self.address(k))

    def exp(self, x: ir.Value) -> ir.Value:
        return self.ctx.builder.call(self.ctx.math("exp", self.type), [x])

    def log(self, x: ir.Value) -> ir.Value:
        return self.ctx.builder.call(self.ctx.math("log", self.type), [x])

    def max(self) -> ir.Value:
        """np.max(row, initial=-inf): NaN propagates."""
        (peak,) = _fold(
            self.ctx.builder,
            self.rows.n,
            [_identity("Max", self.dtype)],
            lambda k, accs: [_combine(self.ctx, "Max", self.dtype, accs[0], self.load(k))],
            "max",
        )
        return peak

    def exp_sum(self, peak: ir.Value) -> ir.Value:
        """sum(exp(row - peak)) in the row's dtype."""
        b = self.ctx.builder

        def step(k: ir.Value, accs: list[ir.Value]) -> list[ir.Value]:
            return [b.fadd(accs[0], self.exp(b.fsub(self.load(k), peak)), flags=_FAST)]

        (total,) = _fold(b, self.rows.n, [ir.Constant(self.type, 0.0)], step, "sum")
        return total


def _softmax_rule(log: bool) -> Rule:
    def rule(lowering: _Lowering, op: Operation) -> None:
        """Softmax / LogSoftmax along `axis`: per row, the max, sum(exp(x - max)), the outputs.

        Softmax writes exp(x - max) / sum; LogSoftmax writes (x - max) - log(sum).
        """
        (x,) = op.inputs
        (y,) = op.outputs
        kb = KernelBuilder(lowering.module, lowering.kernel_name(op), [x.dtype, y.dtype])
        b = kb.builder
        ctx = ScalarContext(b)
        rows = _Rows.around(b, kb.dims(lowering.dims(x)), op.attrs["axis"])
        source, target = kb.pointers
        with for_range(b, rows.outer, "outer") as o, for_range(b, rows.inner, "inner") as i:
            start = rows.start(b, o, i)
            row = _Row(ctx, rows, source, start, x.dtype)
            out = _Row(ctx, rows, target, start, y.dtype)
            peak = row.max()
            if log:
                lse = row.log(row.exp_sum(peak))
                with for_range(b, rows.n, "write") as k:
                    b.store(b.fsub(b.fsub(row.load(k), peak), lse), out.address(k))
            else:
                # exp once per element: the exponentials go to the output row
                # (in L1 by the time the division pass reads them back).
                def exp_step(k: ir.Value, accs: list[ir.Value]) -> list[ir.Value]:
                    e = row.exp(b.fsub(row.load(k), peak))
                    b.store(e, out.address(k))
                    return [b.fadd(accs[0], e, flags=_FAST)]

                (total,) = _fold(b, rows.n, [ir.Constant(row.type, 0.0)], exp_step, "sum")
                with for_range(b, rows.n, "write") as k:
                    b.store(b.fdiv(out.load(k), total), out.address(k))
        lowering.call_kernel(kb.finish(), [x, y])

    return rule


def sparse_softmax_cross_entropy(lowering: _Lowering, op: Operation) -> None:
    """loss[r] = log(sum(exp(x[r] - max))) - (x[r, label[r]] - max), a checked kernel.

    Every label is checked first, in order, so a bad one fails with the
    value the reference reports (the first), before anything is written.
    """
    logits, labels = op.inputs
    (loss,) = op.outputs
    kb = KernelBuilder(
        lowering.module,
        lowering.kernel_name(op),
        [logits.dtype, labels.dtype, loss.dtype],
        checked=True,
    )
    b = kb.builder
    ctx = ScalarContext(b)
    dims = kb.dims(lowering.dims(logits))
    rows = _Rows.around(b, dims, len(dims) - 1)
    source, label_buffer, target = kb.pointers

    def label(r: ir.Value) -> ir.Value:
        value = b.load(_at(b, label_buffer, r), name="label")
        return value if value.type == I64 else b.sext(value, I64)

    with for_range(b, rows.outer, "check") as r:
        value = label(r)
        # Unsigned: a negative label is a huge one, so one compare checks both ends.
        with if_then(b, b.icmp_unsigned(">=", value, rows.n), "out_of_range"):
            kb.fail(value)
    with for_range(b, rows.outer, "row") as r:
        row = _Row(ctx, rows, source, rows.start(b, r, const(0)), logits.dtype)
        peak = row.max()
        lse = row.log(row.exp_sum(peak))
        picked = b.fsub(row.load(label(r)), peak)
        b.store(b.fsub(lse, picked), _at(b, target, r))
    classes = lowering.dims(logits)[-1]
    bound = f"[0, {classes})" if isinstance(classes, int) else "[0, the number of classes)"
    message = (
        "received a label value of {value} which is outside the valid range of "
        f"{bound}; expected labels in {bound}"
    )
    lowering.call_kernel(kb.finish(), [logits, labels, loss], op=op, message=message)


def softmax_cross_entropy(lowering: _Lowering, op: Operation) -> None:
    """loss = sum(labels * (lse - (x - max))) along `axis`, lse = log(sum(exp(x - max)))."""
    logits, labels = op.inputs
    (loss,) = op.outputs
    kb = KernelBuilder(
        lowering.module, lowering.kernel_name(op), [logits.dtype, labels.dtype, loss.dtype]
    )
    b = kb.builder
    ctx = ScalarContext(b)
    # Labels have the logits' shape (the shape planner checks it at run time).
    rows = _Rows.around(b, kb.dims(lowering.dims(logits)), op.attrs["axis"])
    source, label_buffer, target = kb.pointers
    ty = llvm_type(loss.dtype)
    with for_range(b, rows.outer, "outer") as o, for_range(b, rows.inner, "inner") as i:
        start = rows.start(b, o, i)
        row = _Row(ctx, rows, source, start, logits.dtype)
        probabilities = _Row(ctx, rows, label_buffer, start, labels.dtype)
        peak = row.max()
        lse = row.log(row.exp_sum(peak))

        def step(k: ir.Value, accs: list[ir.Value]) -> list[ir.Value]:
            term = b.fmul(probabilities.load(k), b.fsub(lse, b.fsub(row.load(k), peak)))
            return [b.fadd(accs[0], term, flags=_FAST)]

        (total,) = _fold(b, rows.n, [ir.Constant(ty, 0.0)], step, "xent")
        b.store(total, _at(b, target, rows.reduced(b, o, i)))
    lowering.call_kernel(kb.finish(), [logits, labels, loss])


# -- reductions: arg max/min, logsumexp ----------------------------------------------------------
def _arg_rule(largest: bool) -> Rule:
    def rule(lowering: _Lowering, op: Operation) -> None:
        """ArgMax / ArgMin along `axis`: the first extreme, or the first NaN (NumPy).

        The shape planner rejects an empty axis before this runs, as the
        reference does, so every row has an extreme.
        """
        (x,) = op.inputs
        if op.attrs["axis"] == x.shape.rank - 1:
            _arg_rows(lowering, op, largest)
        else:
            _arg_columns(lowering, op, largest)

    return rule


def _arg_rows(lowering: _Lowering, op: Operation, largest: bool) -> None:
    """Along the last axis: per row, the extreme (a vectorized reduction), then its first index.

    The extreme is NaN if the row holds one (llvm.maximum propagates it), so
    the first element equal to it, or the first NaN, is the answer.
    """
    (x,) = op.inputs
    (y,) = op.outputs
    kb = KernelBuilder(lowering.module, lowering.kernel_name(op), [x.dtype, y.dtype])
    b = kb.builder
    ctx = ScalarContext(b)
    source, target = kb.pointers
    dims = kb.dims(lowering.dims(x))
    rows = _Rows.around(b, dims, len(dims) - 1)
    with for_range(b, rows.outer, "row") as o:
        start = rows.start(b, o, const(0))

        def load(k: ir.Value) -> ir.Value:
            return load_value(b, _at(b, source, b.add(start, k)), x.dtype)

        def extreme(k: ir.Value, accs: list[ir.Value]) -> list[ir.Value]:
            value = load(k)
            if x.dtype.is_bool:
                return [b.or_(accs[0], value) if largest else b.and_(accs[0], value)]
            return [_combine(ctx, "Max" if largest else "Min", x.dtype, accs[0], value)]

        (peak,) = _fold(b, rows.n, [_arg_identity(x.dtype, largest)], extreme, "extreme")

        def found(k: ir.Value) -> ir.Value:
            value = load(k)
            if x.dtype.is_floating:
                return b.or_(
                    b.fcmp_ordered("==", value, peak), b.fcmp_unordered("uno", value, value)
                )
            return b.icmp_unsigned("==", value, peak)

        index = _find_first(b, rows.n, found, "find")
        if y.dtype.itemsize < 8:
            index = b.trunc(index, llvm_type(y.dtype))
        b.store(index, _at(b, target, o))
    lowering.call_kernel(kb.finish(), [x, y])


def _find_first(
    b: ir.IRBuilder, count: ir.Value, found: Callable[[ir.Value], ir.Value], name: str
) -> ir.Value:
    """The first k in [0, count) where `found(k)` holds, or 0 if none does."""
    function = b.function
    before = b.block
    head = function.append_basic_block(f"{name}.head")
    body = function.append_basic_block(f"{name}.body")
    done = function.append_basic_block(f"{name}.done")
    b.branch(head)
    b.position_at_end(head)
    k = b.phi(I64, name=name)
    k.add_incoming(const(0), before)
    b.cbranch(b.icmp_signed("<", k, count), body, done)
    b.position_at_end(body)
    hit = found(k)
    latch = b.block
    k.add_incoming(b.add(k, const(1), name=f"{name}.next", flags=["nsw", "nuw"]), latch)
    b.cbranch(hit, done, head)
    b.position_at_end(done)
    result = b.phi(I64, name=f"{name}.index")
    result.add_incoming(const(0), head)
    result.add_incoming(k, latch)
    return result


def _arg_columns(lowering: _Lowering, op: Operation, largest: bool) -> None:
    """Along another axis: one walk in row-major order keeping (best, index) per output.

    The innermost loop runs over contiguous output elements. An element
    replaces the best if the best is not NaN and the element is NaN or
    strictly better. The best starts at the identity (-inf for argmax),
    which no element beats wrongly: a row of identities keeps index 0.
    """
    (x,) = op.inputs
    (y,) = op.outputs
    axis = op.attrs["axis"]
    step = lowering.step[op]
    kb = KernelBuilder(lowering.module, lowering.kernel_name(op), [x.dtype, y.dtype, x.dtype])
    source, index_buffer, best_buffer = kb.pointers
    dims = kb.dims(lowering.dims(x))
    out_dims = kb.dims(lowering.dims(y))
    acc_dims = [const(1) if a == axis else d for a, d in enumerate(dims)]
    identity = _arg_identity(x.dtype, largest)
    zero = ir.Constant(llvm_type(y.dtype), 0)

    def init(bb: ir.IRBuilder, pointers: list[ir.Value], index: list[ir.Value]) -> None:
        store_value(bb, identity, pointers[0], x.dtype)
        bb.store(zero, pointers[1])

    loop_nest(
        kb,
        out_dims,
        [Operand(best_buffer, out_dims, x.dtype), Operand(index_buffer, out_dims, y.dtype)],
        init,
        "init",
    )

    def visit(bb: ir.IRBuilder, pointers: list[ir.Value], index: list[ir.Value]) -> None:
        value = load_value(bb, pointers[0], x.dtype)
        best = load_value(bb, pointers[1], x.dtype)
        take = _better(bb, value, best, x.dtype, largest)
        store_value(bb, bb.select(take, value, best), pointers[1], x.dtype)
        k = index[axis]
        if y.dtype.itemsize < 8:
            k = bb.trunc(k, llvm_type(y.dtype))
        old = bb.load(pointers[2])
        bb.store(bb.select(take, k, old), pointers[2])

    operands = [
        Operand(source, dims, x.dtype),
        Operand(best_buffer, acc_dims, x.dtype),
        Operand(index_buffer, acc_dims, y.dtype),
    ]
    loop_nest(kb, dims, operands, visit, "arg")
    best = lowering.scratch_pointer((op, "best", 0), x.dtype, step)
    lowering.call_kernel(kb.finish(), [x, y, best])


def _arg_identity(dtype: DType, largest: bool) -> ir.Constant:
    if dtype.is_bool:
        return ir.Constant(I1, 0 if largest else 1)
    return _identity("Max" if largest else "Min", dtype)


def _better(
    b: ir.IRBuilder, value: ir.Value, best: ir.Value, dtype: DType, largest: bool
) -> ir.Value:
    predicate = ">" if largest else "<"
    if dtype.is_floating:
        # A NaN best is final; a NaN value beats any other best.
        best_is_number = b.fcmp_ordered("ord", best, best)
        value_wins = b.or_(
            b.fcmp_unordered("uno", value, value), b.fcmp_ordered(predicate, value, best)
        )
        return b.and_(best_is_number, value_wins)
    if dtype.is_bool:
        return b.icmp_unsigned(predicate, value, best)
    return b.icmp_signed(predicate, value, best)


def logsumexp(lowering: _Lowering, op: Operation) -> None:
    """log(sum(exp(x - m))) + m over `axis`, m the max with non-finite values replaced by 0.

    Two passes over the input, as in reduction.py (the accumulators seen
    from the input's domain with the reduced axes as 1s): the max into the
    output buffer, then, once it is made m in place, the sum of exp(x - m)
    into a scratch buffer; a last pass over the output adds log(sum).
    keepdims does not change the output's layout.
    """
    (x,) = op.inputs
    (y,) = op.outputs
    axes = set(op.attrs["axis"])
    step = lowering.step[op]
    kb = KernelBuilder(lowering.module, lowering.kernel_name(op), [x.dtype, y.dtype, y.dtype])
    b = kb.builder
    ctx = ScalarContext(b)
    ty = llvm_type(x.dtype)
    source, target, sums = kb.pointers
    dims = kb.dims(lowering.dims(x))
    out_dims = kb.dims(lowering.dims(y))
    acc_dims = [const(1) if a in axes else d for a, d in enumerate(dims)]
    exp = ctx.math("exp", ty)
    log = ctx.math("log", ty)

    def reduced(*pointers: ir.Value) -> list[Operand]:
        return [Operand(p, out_dims, y.dtype) for p in pointers]

    def init(bb: ir.IRBuilder, pointers: list[ir.Value], index: list[ir.Value]) -> None:
        bb.store(_identity("Max", x.dtype), pointers[0])
        bb.store(ir.Constant(ty, 0.0), pointers[1])

    loop_nest(kb, out_dims, reduced(target, sums), init, "init")

    def peak(bb: ir.IRBuilder, pointers: list[ir.Value], index: list[ir.Value]) -> None:
        acc = bb.load(pointers[1])
        bb.store(_combine(ctx, "Max", x.dtype, acc, bb.load(pointers[0])), pointers[1])

    domain = [Operand(source, dims, x.dtype), Operand(target, acc_dims, y.dtype)]
    loop_nest(kb, dims, domain, peak, "max")

    def finite_shift(bb: ir.IRBuilder, pointers: list[ir.Value], index: list[ir.Value]) -> None:
        m = bb.load(pointers[0])
        magnitude = bb.call(ctx.intrinsic("llvm.fabs", ty), [m])
        finite = bb.fcmp_ordered("<", magnitude, ir.Constant(ty, math.inf))
        bb.store(bb.select(finite, m, ir.Constant(ty, 0.0)), pointers[0])

    loop_nest(kb, out_dims, reduced(target), finite_shift, "shift")

    def accumulate(bb: ir.IRBuilder, pointers: list[ir.Value], index: list[ir.Value]) -> None:
        term = bb.call(exp, [bb.fsub(bb.load(pointers[0]), bb.load(pointers[1]))])
        bb.store(bb.fadd(bb.load(pointers[2]), term, flags=_FAST), pointers[2])

    domain.append(Operand(sums, acc_dims, y.dtype))
    loop_nest(kb, dims, domain, accumulate, "sum")

    def finish(bb: ir.IRBuilder, pointers: list[ir.Value], index: list[ir.Value]) -> None:
        total = bb.call(log, [bb.load(pointers[1])])
        bb.store(bb.fadd(total, bb.load(pointers[0])), pointers[0])

    loop_nest(kb, out_dims, reduced(target, sums), finish, "log")
    scratch = lowering.scratch_pointer((op, "sum", 0), y.dtype, step)
    lowering.call_kernel(kb.finish(), [x, y, scratch])


# -- windows: pools and conv2d ----------------------------------------------------------------
@dataclasses.dataclass
class _Window:
    """One spatial dim of a window op: sizes, stride, dilation and the padding before."""

    size: ir.Value  # of the input
    out: ir.Value
    kernel: ir.Value
    stride: int
    dilation: int
    before: ir.Value

    @classmethod
    def of(
        cls,
        b: ir.IRBuilder,
        size: ir.Value,
        out: ir.Value,
        kernel: ir.Value,
        stride: int,
        dilation: int,
        padding: str,
        explicit: tuple[int, int] | None,
    ) -> _Window:
        """TF's geometry (nn_ops.window_output): SAME pads max(total, 0) // 2 before."""
        if padding == "SAME":
            reach = b.add(b.mul(b.sub(kernel, const(1)), const(dilation)), const(1))
            total = b.sub(b.add(b.mul(b.sub(out, const(1)), const(stride)), reach), size)
            before = b.sdiv(_max(b, total, const(0)), const(2))
        elif padding == "EXPLICIT" and explicit is not None:
            before = const(explicit[0])
        else:
            before = const(0)
        return cls(size, out, kernel, stride, dilation, before)

    def origin(self, b: ir.IRBuilder, o: ir.Value) -> ir.Value:
        """The input position of tap 0 of output position `o` (negative inside the padding)."""
        return b.sub(b.mul(o, const(self.stride)), self.before)


def _spatial(
    b: ir.IRBuilder,
    in_dims: list[ir.Value],
    out_dims: list[ir.Value],
    kernel: Sequence[ir.Value],
    attrs: dict,
    dilations: Sequence[int] = (1, 1),
) -> list[_Window]:
    explicit = attrs.get("explicit_paddings") or None
    return [
        _Window.of(
            b,
            in_dims[1 + d],
            out_dims[1 + d],
            kernel[d],
            attrs["strides"][d],
            dilations[d],
            attrs["padding"],
            explicit[d] if explicit else None,
        )
        for d in range(2)
    ]


def _pixel(
    b: ir.IRBuilder, dims: list[ir.Value], n: ir.Value, r: ir.Value, c: ir.Value
) -> ir.Value:
    """The offset of pixel (n, r, c) of an NHWC buffer: the start of its channels."""
    return b.mul(b.add(b.mul(b.add(b.mul(n, dims[1]), r), dims[2]), c), dims[3])


def _pool_rule(kind: str) -> Rule:
    def rule(lowering: _Lowering, op: Operation) -> None:
        """MaxPool / AvgPool: each output pixel folds the window's cells inside the input.

        Padded cells are skipped: they never win a max and are not counted
        in the mean (SAME windows always hold at least one input cell).
        """
        (x,) = op.inputs
        (y,) = op.outputs
        kb = KernelBuilder(lowering.module, lowering.kernel_name(op), [x.dtype, y.dtype])
        b = kb.builder
        ctx = ScalarContext(b)
        ty = llvm_type(y.dtype)
        source, target = kb.pointers
        in_dims = kb.dims(lowering.dims(x))
        out_dims = kb.dims(lowering.dims(y))
        ksize = [const(k) for k in op.attrs["ksize"]]
        rows, cols = _spatial(b, in_dims, out_dims, ksize, op.attrs)
        channels = in_dims[3]
        reduce_type = "Max" if kind == "max" else "Sum"
        start = _identity(reduce_type, y.dtype)
        with (
            for_range(b, out_dims[0], "n") as n,
            for_range(b, out_dims[1], "oh") as oh,
            for_range(b, out_dims[2], "ow") as ow,
        ):
            out_row = _at(b, target, _pixel(b, out_dims, n, oh, ow))
            with _channel_range(b, channels, "init") as ch:
                b.store(start, _at(b, out_row, ch))
            r0, c0 = rows.origin(b, oh), cols.origin(b, ow)
            r_lo, c_lo = _max(b, r0, const(0)), _max(b, c0, const(0))
            r_hi = _min(b, b.add(r0, rows.kernel), rows.size)
            c_hi = _min(b, b.add(c0, cols.kernel), cols.size)
            with (
                for_range(b, r_hi, "r", start=r_lo) as r,
                for_range(b, c_hi, "c", start=c_lo) as c,
            ):
                in_row = _at(b, source, _pixel(b, in_dims, n, r, c))
                with _channel_range(b, channels, "ch") as ch:
                    acc = b.load(_at(b, out_row, ch))
                    value = b.load(_at(b, in_row, ch))
                    b.store(_combine(ctx, reduce_type, y.dtype, acc, value), _at(b, out_row, ch))
            if kind == "avg":
                count = b.mul(b.sub(r_hi, r_lo), b.sub(c_hi, c_lo))
                divisor = b.sitofp(count, ty)
                with _channel_range(b, channels, "mean") as ch:
                    pointer = _at(b, out_row, ch)
                    b.store(b.fdiv(b.load(pointer), divisor), pointer)
        lowering.call_kernel(kb.finish(), [x, y])

    return rule


# A register tile of conv2d: up to 4 vectors of 512 bits of output channels for each of
# up to 8 output pixels of a row, at most 16 accumulators.
_VECTOR_BYTES = 64
_TILE_VECTORS = 4
_TILE_ACCUMULATORS = 16
_TILE_PIXELS = 8


def conv2d(lowering: _Lowering, op: Operation) -> None:
    """Conv2D (NHWC, filter HWIO) as a direct loop nest.

    For each filter tap (a, b) an output pixel reads input pixel (r, c),
    and for each input channel ci adds x[n, r, c, ci] * f[a, b, ci, :] to
    its output channels, which are contiguous in the filter and the output.

    With the number of output channels known now, a register tile of P
    neighbouring pixels of a row times a few vectors of channels is
    accumulated over all taps and input channels, then stored once: each
    vector of filter weights loaded serves P pixels. A pixel whose tap falls
    in the padding reads a zero from a stack slot instead (its pointer steps
    by 0 over ci), so the tile has no branch. Otherwise the innermost loop
    runs over the channels in the output buffer, and LLVM vectorizes it.

    A tap in the padding adds 0 * f[a, b, ci, :]: the reference convolves a
    zero-padded copy, where 0 * inf is NaN.
    """
    x, f = op.inputs
    (y,) = op.outputs
    kb = KernelBuilder(lowering.module, lowering.kernel_name(op), [x.dtype, f.dtype, y.dtype])
    b = kb.builder
    ty = llvm_type(y.dtype)
    source, filters, target = kb.pointers
    in_dims = kb.dims(lowering.dims(x))
    f_dims = kb.dims(lowering.dims(f))
    out_dims = kb.dims(lowering.dims(y))
    kh, kw, cin, cout = f_dims
    rows, cols = _spatial(b, in_dims, out_dims, [kh, kw], op.attrs, dilations=op.attrs["dilations"])
    zero = ir.Constant(ty, 0.0)
    contract = ("contract",)
    zero_slot = b.alloca(ty, name="padding")
    b.store(zero, zero_slot)

    def inside(value: ir.Value, window: _Window) -> ir.Value:
        return b.and_(b.icmp_signed(">=", value, const(0)), b.icmp_signed("<", value, window.size))

    def tap_weights(a: ir.Value, t: ir.Value, first: int) -> ir.Value:
        return _at(b, filters, b.add(b.mul(b.add(b.mul(a, kw), t), b.mul(cin, cout)), const(first)))

    def in_memory(n: ir.Value, oh: ir.Value, ow: ir.Value) -> None:
        out_row = _at(b, target, _pixel(b, out_dims, n, oh, ow))
        with _channel_range(b, cout, "init") as co:
            b.store(zero, _at(b, out_row, co))
        r0, c0 = rows.origin(b, oh), cols.origin(b, ow)
        with for_range(b, kh, "a") as a, for_range(b, kw, "b") as t:
            r = b.add(r0, b.mul(a, const(rows.dilation)))
            c = b.add(c0, b.mul(t, const(cols.dilation)))
            pixel, step = _padded_pixel(
                b,
                b.and_(inside(r, rows), inside(c, cols)),
                source,
                _pixel(b, in_dims, n, r, c),
                zero_slot,
            )
            weights = tap_weights(a, t, 0)
            with for_range(b, cin, "ci") as ci:
                value = b.load(_at(b, pixel, b.mul(ci, step)))
                row = _at(b, weights, b.mul(ci, cout))
                with _channel_range(b, cout, "co") as co:
                    pointer = _at(b, out_row, co)
                    term = b.fmul(value, b.load(_at(b, row, co)), flags=contract)
                    b.store(b.fadd(b.load(pointer), term, flags=contract), pointer)

    def tile(
        n: ir.Value, oh: ir.Value, ow0: ir.Value, pixels: int, first: int, vector: ir.VectorType
    ) -> None:
        """Output pixels ow0 .. ow0 + pixels - 1 of row (n, oh), channels first .. + lanes."""
        r0 = rows.origin(b, oh)
        c0 = [cols.origin(b, b.add(ow0, const(p))) for p in range(pixels)]

        def tap_row(a: ir.Value, accs: list[ir.Value]) -> list[ir.Value]:
            r = b.add(r0, b.mul(a, const(rows.dilation)))
            row_inside = inside(r, rows)

            def tap(t: ir.Value, accs: list[ir.Value]) -> list[ir.Value]:
                weights = tap_weights(a, t, first)
                reads = []
                for p in range(pixels):
                    c = b.add(c0[p], b.mul(t, const(cols.dilation)))
                    reads.append(
                        _padded_pixel(
                            b,
                            b.and_(row_inside, inside(c, cols)),
                            source,
                            _pixel(b, in_dims, n, r, c),
                            zero_slot,
                        )
                    )

                def step(ci: ir.Value, accs: list[ir.Value]) -> list[ir.Value]:
                    w = _load_vector(b, _at(b, weights, b.mul(ci, cout)), vector, y.dtype)
                    out = []
                    for acc, (pixel, stride) in zip(accs, reads):
                        value = b.load(_at(b, pixel, b.mul(ci, stride)))
                        term = b.fmul(_splat(b, value, vector), w, flags=contract)
                        out.append(b.fadd(acc, term, flags=contract))
                    return out

                return _fold(b, cin, accs, step, "ci")

            return _fold(b, kw, accs, tap, "b")

        accs = _fold(b, kh, [ir.Constant(vector, None)] * pixels, tap_row, "a")
        for p, acc in enumerate(accs):
            offset = b.add(_pixel(b, out_dims, n, oh, b.add(ow0, const(p))), const(first))
            b.store(
                acc, b.bitcast(_at(b, target, offset), vector.as_pointer()), align=y.dtype.itemsize
            )

    def in_registers(n: ir.Value, oh: ir.Value) -> None:
        lanes = _VECTOR_BYTES // y.dtype.itemsize
        count = cout.constant
        for first in range(0, count, lanes * _TILE_VECTORS):
            vector = ir.VectorType(ty, min(lanes * _TILE_VECTORS, count - first))
            vectors = -(-vector.count // lanes)
            pixels = max(1, min(_TILE_PIXELS, _TILE_ACCUMULATORS // vectors))
            blocks = b.sdiv(out_dims[2], const(pixels))
            with for_range(b, blocks, "block") as block:
                tile(n, oh, b.mul(block, const(pixels)), pixels, first, vector)
            with for_range(b, out_dims[2], "rest", start=b.mul(blocks, const(pixels))) as ow:
                tile(n, oh, ow, 1, first, vector)

    with for_range(b, out_dims[0], "n") as n, for_range(b, out_dims[1], "oh") as oh:
        if isinstance(cout, ir.Constant):
            in_registers(n, oh)
        else:
            with for_range(b, out_dims[2], "ow") as ow:
                in_memory(n, oh, ow)
    lowering.call_kernel(kb.finish(), [x, f, y])


def _padded_pixel(
    b: ir.IRBuilder, inside: ir.Value, source: ir.Value, offset: ir.Value, zero_slot: ir.Value
) -> tuple[ir.Value, ir.Value]:
    """(pointer, step over channels) of an input pixel, or of a zero if it is in the padding."""
    pixel = b.gep(source, [offset])  # not inbounds: outside the input when padded
    return b.select(inside, pixel, zero_slot), b.select(inside, const(1), const(0))


def _splat(b: ir.IRBuilder, value: ir.Value, vector: ir.VectorType) -> ir.Value:
    lanes = ir.VectorType(ir.IntType(32), vector.count)
    first = b.insert_element(ir.Constant(vector, None), value, ir.Constant(ir.IntType(32), 0))
    return b.shuffle_vector(first, ir.Constant(vector, None), ir.Constant(lanes, None))


def _load_vector(
    b: ir.IRBuilder, pointer: ir.Value, vector: ir.VectorType, dtype: DType
) -> ir.Value:
    """A vector load of elements that are only aligned as elements."""
    return b.load(b.bitcast(pointer, vector.as_pointer()), align=dtype.itemsize)


NN_RULES: dict[str, Rule] = {
    "ArgMax": _arg_rule(largest=True),
    "ArgMin": _arg_rule(largest=False),
    "LogSumExp": logsumexp,
    "Softmax": _softmax_rule(log=False),
    "LogSoftmax": _softmax_rule(log=True),
    "SparseSoftmaxCrossEntropyWithLogits": sparse_softmax_cross_entropy,
    "SoftmaxCrossEntropyWithLogits": softmax_cross_entropy,
    "MaxPool": _pool_rule("max"),
    "AvgPool": _pool_rule("avg"),
    "Conv2D": conv2d,
}
