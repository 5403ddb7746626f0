"""Lowering a whole optimized Program to one LLVM module with one entry function.

    lowered = lower(program)          # IR text, argument layout, shape planner
    # the runtime JIT-compiles lowered.ir and calls lowered.entry with NumPy arrays

The entry function takes every buffer as a NumPy array object: the fed
inputs, the output arrays, the constants, the variables, the workspace and
the slots (see plan.py). It runs each op's kernel in schedule order and
returns 0, or 1 + the index of an op that found bad data.

Buffers: inputs, constants and variables are the arrays themselves; views
(reshape, expand_dims, squeeze, identity) share their input's buffer;
fetched values are written straight into the output arrays; everything else
lives in the workspace at an offset from the slots, reused after its last
use. Assign ops write into the variable's own array: variables are updated
in place.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np
from llvmlite import ir

from graphflow import errors
from graphflow.compiler.lowering import abi
from graphflow.compiler.lowering.contraction import lower_contraction
from graphflow.compiler.lowering.contraction import supported as contraction_supported
from graphflow.compiler.lowering.int_matmul import lower_int_matmul
from graphflow.compiler.lowering.int_matmul import supported as int_matmul_supported
from graphflow.compiler.lowering.irutil import (
    I8P,
    I32,
    I64,
    const,
    for_range,
    llvm_type,
    with_vector_width,
)
from graphflow.compiler.lowering.kernels import (
    KernelBuilder,
    Operand,
    load_value,
    loop_nest,
    store_value,
)
from graphflow.compiler.lowering.library import LibraryFunction
from graphflow.compiler.lowering.plan import ShapePlanner
from graphflow.compiler.lowering.scalar import ScalarContext, emit_scalar, supported
from graphflow.compiler.lowering.structured import STRUCTURED
from graphflow.compiler.passes.fuse import FUSABLE_REDUCTIONS
from graphflow.compiler.program import Program
from graphflow.dtypes import DType
from graphflow.graph import Operation, Tensor
from graphflow.ops.fused_ops import BodyNode, FusedBody
from graphflow.ops.registry import CONTRACTION, ELEMENTWISE, REDUCTION, get_op_def

ENTRY = "graphflow_entry"
_VIEWS = frozenset(
    {"Reshape", "ExpandDims", "Squeeze", "Identity", "StopGradient", "PlaceholderWithDefault"}
)
_NO_CODE = frozenset({"Placeholder", "Const", "VariableV2", "NoOp"})
_ASSIGNS = frozenset({"Assign", "AssignAdd", "AssignSub"})
_REDUCTIONS = FUSABLE_REDUCTIONS
# Arguments of the entry function, in this order.
ARG_KINDS = ("input", "output", "const", "variable", "workspace", "slots")


@dataclasses.dataclass
class Lowered:
    """A program lowered to LLVM IR, with what the runtime needs to call it."""

    ir: str
    entry: str
    inputs: tuple[Tensor, ...]
    outputs: tuple[Tensor, ...]
    consts: tuple[np.ndarray, ...]
    variables: tuple[Operation, ...]  # the user's VariableV2 ops
    planner: ShapePlanner
    arg_count: int
    scratch: bool  # the entry takes the workspace and the slots as its last arguments
    error_messages: dict[int, tuple[Operation, str]]  # status -> (op, message with {value})
    libraries: tuple[LibraryFunction, ...] = ()  # to load before the module


def lowerable(program: Program) -> list[str]:
    """The op types of `program` that have no lowering (empty when it compiles).

    An op reading or making a tensor of unknown rank is listed as
    "<type> (unknown rank)": kernels are generated for a known rank.
    """
    missing = []
    for op in program.graph.get_operations():
        if any(t.shape.rank is None for t in (*op.inputs, *op.outputs)):
            missing.append(f"{op.type} (unknown rank)")
        elif not _has_lowering(op):
            missing.append(op.type)
    return sorted(set(missing))


def compiled_op_types() -> set[str]:
    """Every op type that runs compiled (for docs/ops.md and tests).

    The ops the backend lowers, and those the expand pass always rewrites
    into lowered ops before the backend sees them (the compiled Session
    optimizes at O2, where expand runs).
    """
    from graphflow.compiler.lowering.scalar import _BINARY, _SPECIAL, _UNARY
    from graphflow.compiler.passes.expand import EXPANSIONS
    from graphflow.ops.registry import registered_ops

    out = set(_NO_CODE | _VIEWS | _ASSIGNS | _REDUCTIONS) | set(STRUCTURED) | {"MatMul", "Fused"}
    out |= set(_BINARY) | set(_UNARY) | set(_SPECIAL) | set(EXPANSIONS)
    return out & set(registered_ops())


def _has_lowering(op: Operation) -> bool:
    if any(t.shape.rank is None for t in (*op.inputs, *op.outputs)):
        return False  # kernels are generated for a known rank
    if op.type in STRUCTURED:
        return True
    if op.type in _NO_CODE or op.type in _VIEWS or op.type in _ASSIGNS:
        return True
    if op.type == "MatMul":
        return contraction_supported(op) or int_matmul_supported(op)
    if op.type == "Fused":
        body: FusedBody = op.attrs["body"]
        if body.pattern == "contraction":
            anchor = body.anchor()
            return (
                anchor is not None
                and anchor.op_type == "MatMul"
                and contraction_supported(op)
                and all(_node_lowerable(n) for n in body.nodes if n is not anchor)
            )
        return all(_node_lowerable(n) for n in body.nodes)
    return _node_lowerable_op(op.type, op.attrs, [t.dtype for t in op.outputs])


def _node_lowerable(node: BodyNode) -> bool:
    if node.op_type == "Const":
        return True
    return _node_lowerable_op(node.op_type, node.attrs, [d for d, _ in node.outputs])


def _node_lowerable_op(op_type: str, attrs: Mapping[str, Any], out_dtypes: list[DType]) -> bool:
    kind = get_op_def(op_type).kind
    if kind == ELEMENTWISE:
        return supported(op_type)
    if kind == REDUCTION:
        return op_type in _REDUCTIONS
    return False


class _Lowering:
    def __init__(self, program: Program) -> None:
        self.program = program
        self.ops = program.graph.get_operations()
        self.step = {op: i for i, op in enumerate(self.ops)}
        self.module = ir.Module(name="graphflow")
        self.fetched = [f for f in program.fetches if isinstance(f, Tensor)]
        self.outputs: list[Tensor] = list(dict.fromkeys(self.fetched))
        self.planner = ShapePlanner(program, self.outputs)
        self.consts: list[np.ndarray] = []
        self.const_index: dict[Tensor, int] = {}
        self.variables: list[Operation] = []
        self.variable_index: dict[Operation, int] = {}
        self.root: dict[Tensor, Tensor] = {}  # view -> the tensor owning its buffer
        self.kernel_names = (f"k{i}" for i in itertools.count())
        self.error_messages: dict[int, tuple[Operation, str]] = {}
        self.libraries: dict[str, LibraryFunction] = {}

    # -- buffers ---------------------------------------------------------------------------
    def owner(self, t: Tensor) -> Tensor:
        while t in self.root:
            t = self.root[t]
        return t

    def plan_buffers(self) -> None:
        for op in self.ops:
            if op.type in _VIEWS and op.inputs:
                self.root[op.outputs[0]] = op.inputs[0]
            if op.type in _ASSIGNS:
                self.root[op.outputs[0]] = op.inputs[0]
            if op.type == "VariableV2":
                self.variable_index[op] = len(self.variables)
                self.variables.append(op)
        # After the views are known: a constant fetched through a view is read.
        fetched = {self.owner(t) for t in self.outputs}
        for op in self.ops:
            if op.type == "Const" and self._const_needed(op.outputs[0], fetched):
                self.const_index[op.outputs[0]] = len(self.consts)
                self.consts.append(np.ascontiguousarray(op.attrs["value"]))
        last_use: dict[Tensor, int] = {}
        for op in self.ops:
            for t in op.inputs:
                owner = self.owner(t)
                last_use[owner] = max(last_use.get(owner, 0), self.step[op])
        for t in self.outputs:  # copied out after the last op
            last_use[self.owner(t)] = len(self.ops)
        self.last_use = last_use

    def _const_needed(self, t: Tensor, fetched: set[Tensor]) -> bool:
        """False when every reader embeds the constant as an immediate."""
        if t in fetched:
            return True
        for op in self.ops:
            if t in op.inputs:
                single_elementwise = op.type != "Fused" and get_op_def(op.type).kind == ELEMENTWISE
                if not (single_elementwise and _embeddable(t)):
                    return True
        return False

    def needs_scratch(self) -> bool:
        """Whether any kernel reads the slots (dims unknown now, workspace buffers)."""
        for t in self.outputs:
            if self.needs_copy(t) and None in t.shape.as_list():
                return True  # the copy-out kernel reads its dims from the slots
        for op in self.ops:
            if op.type in _NO_CODE or op.type in _VIEWS:
                continue
            for t in (*op.inputs, *op.outputs):
                if t.shape.rank is None or None in t.shape.as_list():
                    return True
            if op.type == "Fused" and op.attrs["body"].pattern != "elementwise":  # scratch
                return True
            if get_op_def(op.type).kind in (REDUCTION, CONTRACTION) or op.type in STRUCTURED:
                return True  # scratch buffers, or the error word of a checked kernel
            if any(self.is_workspace(t) for t in op.outputs):
                return True
        return False

    def is_workspace(self, t: Tensor) -> bool:
        t = self.owner(t)
        return (
            t.op.type not in ("Placeholder", "Const", "VariableV2")
            and t not in self.output_set
            and t not in self.program.inputs
        )

    @property
    def output_set(self) -> set[Tensor]:
        return set(self.outputs)

    # -- the entry function ----------------------------------------------------------------
    def build(self) -> Lowered:
        self.plan_buffers()
        n_in, n_out = len(self.program.inputs), len(self.outputs)
        n_const, n_var = len(self.consts), len(self.variables)
        scratch = self.needs_scratch()
        arg_count = n_in + n_out + n_const + n_var + (2 if scratch else 0)
        entry = ir.Function(self.module, ir.FunctionType(I32, [I8P] * arg_count), ENTRY)
        b = ir.IRBuilder(entry.append_basic_block("entry"))
        self.entry_builder = b
        args = list(entry.args)
        data_offset = const(abi.array_data_offset())

        def data(obj: ir.Value) -> ir.Value:
            field = b.bitcast(b.gep(obj, [data_offset], inbounds=True), I8P.as_pointer())
            return b.load(field)

        self.input_data = [data(a) for a in args[:n_in]]
        self.output_data = [data(a) for a in args[n_in : n_in + n_out]]
        self.const_data = [data(a) for a in args[n_in + n_out : n_in + n_out + n_const]]
        first_var = n_in + n_out + n_const
        self.var_data = [data(a) for a in args[first_var : first_var + n_var]]
        if scratch:
            self.workspace = data(args[-2])
            self.slots = b.bitcast(data(args[-1]), I64.as_pointer())
        else:  # no kernel reads them: they are not arguments at all
            self.workspace = ir.Constant(I8P, None)
            self.slots = ir.Constant(I64.as_pointer(), None)
        for op in self.ops:
            self.lower_op(op)
        self.copy_aliased_outputs()
        b.ret(ir.Constant(I32, 0))
        text = with_vector_width(str(self.module))
        # Many modules live in one JIT engine: the entry's name must be unique.
        # It is derived from the text, so equal programs still share cache entries.
        name = f"{ENTRY}_{hashlib.sha256(text.encode()).hexdigest()[:20]}"
        text = text.replace(f'@"{ENTRY}"', f'@"{name}"')
        return Lowered(
            text,
            name,
            tuple(self.program.inputs),
            tuple(self.outputs),
            tuple(self.consts),
            tuple(self.program.user_op(v) for v in self.variables),
            self.planner,
            arg_count,
            scratch,
            self.error_messages,
            tuple(self.libraries.values()),
        )

    def library_function(self, function: LibraryFunction, ty: ir.FunctionType) -> ir.Function:
        """Declares `function` in the module (it is compiled and loaded on its own)."""
        self.libraries.setdefault(function.symbol, function)
        existing = self.module.globals.get(function.symbol)
        if existing is not None:
            return existing
        return ir.Function(self.module, ty, function.symbol)

    def pointer(self, t: Tensor) -> ir.Value:
        """An i8* to the buffer of `t` in the entry function."""
        b = self.entry_builder
        t = self.owner(t)
        if t in self.output_set and not self.needs_copy(t):
            return self.output_data[self.outputs.index(t)]
        if t in self.program.inputs:
            return self.input_data[self.program.inputs.index(t)]
        if t.op.type == "Const":
            return self.const_data[self.const_index[t]]
        if t.op.type == "VariableV2":
            return self.var_data[self.variable_index[t.op]]
        slot = self.planner.buffer_slot(
            t, t.dtype.np, self.step[t.op], self.last_use.get(t, self.step[t.op])
        )
        offset = b.load(b.gep(self.slots, [const(slot)], inbounds=True))
        return b.gep(self.workspace, [offset], inbounds=True)

    def fixed_scratch(self, key: object, nbytes: int, step: int) -> ir.Value:
        """An i8* to `nbytes` of workspace private to the kernel at schedule `step`."""
        b = self.entry_builder
        slot = self.planner.buffer_slot(key, np.dtype(np.uint8), step, step, fixed_bytes=nbytes)
        offset = b.load(b.gep(self.slots, [const(slot)], inbounds=True))
        return b.gep(self.workspace, [offset], inbounds=True)

    def kernel_name(self, op: Operation) -> str:
        """A fresh, readable name for the kernel of `op`."""
        return f"{next(self.kernel_names)}_{_ident(op.name)}"

    def scratch_pointer(self, key: object, dtype: DType, step: int) -> ir.Value:
        """An i8* to a workspace buffer private to the kernel at schedule `step`."""
        b = self.entry_builder
        slot = self.planner.buffer_slot(key, dtype.np, step, step)
        offset = b.load(b.gep(self.slots, [const(slot)], inbounds=True))
        return b.gep(self.workspace, [offset], inbounds=True)

    def dims(self, t: Tensor) -> list[int | tuple[str, int]]:
        out: list[int | tuple[str, int]] = []
        for axis, d in enumerate(t.shape.as_list()):
            out.append(d if d is not None else ("slot", self.planner.dim_slot(t, axis)))
        return out

    def call_kernel(
        self,
        fn: ir.Function,
        tensors: Sequence[Tensor | ir.Value],
        op: Operation | None = None,
        message: str = "",
    ) -> None:
        """Calls a kernel from the entry function with the buffers of `tensors`.

        A checked kernel (one returning i32) that fails makes the entry
        return 1 + the op's step, with the bad value in the workspace's first
        word; `message` (with `{value}`) is what the error will say.
        """
        b = self.entry_builder
        actuals = []
        for t, formal in zip(tensors, fn.args):
            raw = self.pointer(t) if isinstance(t, Tensor) else t
            actuals.append(b.bitcast(raw, formal.type))
        actuals.append(self.slots)
        if isinstance(fn.function_type.return_type, ir.VoidType):
            b.call(fn, actuals)
            return
        if op is None:
            raise errors.InternalError("a checked kernel needs the op it reports about")
        actuals.append(b.bitcast(self.workspace, I64.as_pointer()))
        status = b.call(fn, actuals)
        step = self.step[op]
        self.error_messages[step + 1] = (op, message)
        with b.if_then(b.icmp_signed("!=", status, ir.Constant(I32, 0))):
            b.ret(ir.Constant(I32, step + 1))

    # -- ops -------------------------------------------------------------------------------
    def lower_op(self, op: Operation) -> None:
        if op.type in _NO_CODE or op.type in _VIEWS:
            return
        if op.type in _ASSIGNS:
            self.lower_assign(op)
            return
        if op.type in STRUCTURED:
            STRUCTURED[op.type](self, op)
            return
        if op.type == "Fused":
            body: FusedBody = op.attrs["body"]
            if body.pattern == "elementwise":
                self.lower_elementwise(op, body, list(op.inputs))
            elif body.pattern == "contraction":
                lower_contraction(self, op, body)
            elif body.pattern == "reduction":
                self.lower_reduction(op, body)
            else:
                raise errors.UnimplementedError(f"no lowering for fused {body.pattern} yet")
            return
        kind = get_op_def(op.type).kind
        body, args = _single_body(op)
        if op.type == "MatMul" and int_matmul_supported(op):
            lower_int_matmul(self, op)
        elif op.type == "MatMul":
            lower_contraction(self, op, body)
        elif kind == ELEMENTWISE and supported(op.type):
            self.lower_elementwise(op, body, args)
        elif kind == REDUCTION and op.type in _REDUCTIONS:
            self.lower_reduction(op, body)
        else:
            raise errors.UnimplementedError(f"no lowering for {op.type} yet")

    def lower_elementwise(self, op: Operation, body: FusedBody, args: list[Tensor]) -> None:
        outputs = list(op.outputs)
        kb = KernelBuilder(
            self.module,
            f"{next(self.kernel_names)}_{_ident(op.name)}",
            [t.dtype for t in args] + [t.dtype for t in outputs],
        )
        domain = kb.dims(self.dims(outputs[0]))
        operands = [kb.operand(i, self.dims(t), t.dtype) for i, t in enumerate(args)]
        out_operands = [
            Operand(kb.pointers[len(args) + i], domain, t.dtype) for i, t in enumerate(outputs)
        ]
        ctx = ScalarContext(kb.builder)

        def element(b: ir.IRBuilder, pointers: list[ir.Value], index: list[ir.Value]) -> None:
            values = evaluate_nodes(
                ctx,
                body,
                lambda i: load_value(b, pointers[i], args[i].dtype),
                [t.dtype for t in args],
                set(range(len(body.nodes))),
            )
            for k, (_, node, out) in enumerate(body.outputs):
                store_value(b, values[(node, out)], pointers[len(args) + k], outputs[k].dtype)

        loop_nest(kb, domain, operands + out_operands, element)
        self.call_kernel(kb.finish(), args + outputs)

    def lower_assign(self, op: Operation) -> None:
        variable, value = op.inputs
        kb = KernelBuilder(
            self.module,
            f"{next(self.kernel_names)}_{_ident(op.name)}",
            [variable.dtype, value.dtype],
        )
        domain = kb.dims(self.dims(variable))
        target = Operand(kb.pointers[0], domain, variable.dtype)
        source = kb.operand(1, self.dims(value), value.dtype)
        ctx = ScalarContext(kb.builder)

        def element(b: ir.IRBuilder, pointers: list[ir.Value], index: list[ir.Value]) -> None:
            new = load_value(b, pointers[1], value.dtype)
            if op.type != "Assign":
                old = load_value(b, pointers[0], variable.dtype)
                new = emit_scalar(
                    ctx,
                    "Add" if op.type == "AssignAdd" else "Sub",
                    {},
                    [old, new],
                    [variable.dtype] * 2,
                    variable.dtype,
                )
            store_value(b, new, pointers[0], variable.dtype)

        loop_nest(kb, domain, [target, source], element)
        self.call_kernel(kb.finish(), [variable, value])

    def lower_reduction(self, op: Operation, body: FusedBody) -> None:
        from graphflow.compiler.lowering.reduction import lower_reduction

        lower_reduction(self, op, body)

    def needs_copy(self, t: Tensor) -> bool:
        """A fetched value whose buffer belongs to something else: copied out at the end."""
        return (
            self.owner(t) is not t
            or t.op.type in ("Placeholder", "Const", "VariableV2")
            or t in self.program.inputs
        )

    def copy_aliased_outputs(self) -> None:
        for index, t in enumerate(self.outputs):
            if not self.needs_copy(t):
                continue
            kb = KernelBuilder(
                self.module, f"{next(self.kernel_names)}_copy_{index}", [t.dtype, t.dtype]
            )
            size = const(1)
            for d in kb.dims(self.dims(t)):
                size = kb.builder.mul(size, d)
            with for_range(kb.builder, size, "copy") as i:
                value = kb.builder.load(kb.builder.gep(kb.pointers[0], [i], inbounds=True))
                kb.builder.store(value, kb.builder.gep(kb.pointers[1], [i], inbounds=True))
            self.call_kernel(kb.finish(), [self.buffer_of(self.owner(t)), self.output_data[index]])

    def buffer_of(self, owner: Tensor) -> ir.Value:
        """The i8* of the buffer that `owner` (not a view) lives in."""
        if owner in self.program.inputs:
            return self.input_data[self.program.inputs.index(owner)]
        if owner.op.type == "Const":
            return self.const_data[self.const_index[owner]]
        if owner.op.type == "VariableV2":
            return self.var_data[self.variable_index[owner.op]]
        return self.pointer(owner)


def _embeddable(t: Tensor) -> bool:
    return t.op.type == "Const" and t.op.attrs["value"].size == 1


def _single_body(op: Operation) -> tuple[FusedBody, list[Tensor]]:
    """An op as a one-node body; scalar constant inputs become immediates of the body."""
    nodes: list[BodyNode] = []
    args: list[Tensor] = []
    refs = []
    for t in op.inputs:
        if get_op_def(op.type).kind == ELEMENTWISE and _embeddable(t):
            refs.append(("node", len(nodes), 0))
            nodes.append(
                BodyNode(
                    "Const", t.op.name, dict(t.op.attrs), (), ((t.dtype, t.shape),), t.op.location
                )
            )
        else:
            refs.append(("arg", len(args), 0))
            args.append(t)
    nodes.append(
        BodyNode(
            op.type,
            op.name,
            dict(op.attrs),
            tuple(refs),
            tuple((t.dtype, t.shape) for t in op.outputs),
            op.location,
        )
    )
    last = len(nodes) - 1
    outputs = tuple(("node", last, i) for i in range(len(op.outputs)))
    return FusedBody(tuple(nodes), outputs, "elementwise"), args


def evaluate_nodes(
    ctx: ScalarContext,
    body: FusedBody,
    load_arg: Callable[[int], ir.Value],
    arg_dtypes: Sequence[DType],
    wanted: Iterable[int],
    known: Mapping[tuple[int, int], ir.Value] | None = None,
) -> dict[tuple[int, int], ir.Value]:
    """Scalar values of the body nodes in `wanted` (and what they need), for one element."""
    values: dict[tuple[int, int], ir.Value] = dict(known or {})
    args: dict[int, ir.Value] = {}

    def arg(i: int) -> ir.Value:
        if i not in args:
            args[i] = load_arg(i)
        return args[i]

    def node_value(index: int) -> ir.Value:
        if (index, 0) in values:
            return values[(index, 0)]
        node = body.nodes[index]
        if node.op_type == "Const":
            value = _constant(node)
        else:
            inputs = [arg(i) if kind == "arg" else node_value(i) for kind, i, _ in node.inputs]
            in_dtypes = [
                body.nodes[i].outputs[j][0] if kind == "node" else arg_dtypes[i]
                for kind, i, j in node.inputs
            ]
            value = emit_scalar(
                ctx, node.op_type, node.attrs, inputs, in_dtypes, node.outputs[0][0]
            )
        values[(index, 0)] = value
        return value

    for index in sorted(wanted):
        node_value(index)
    return values


def _constant(node: BodyNode) -> ir.Value:
    value = np.asarray(node.attrs["value"]).reshape(-1)[0]
    dtype: DType = node.outputs[0][0]
    if dtype.is_bool:
        return ir.Constant(ir.IntType(1), int(bool(value)))
    ty = llvm_type(dtype)
    return ir.Constant(ty, float(value) if dtype.is_floating else int(value))


def _ident(name: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in name)[:40]


def lower(program: Program) -> Lowered:
    """Lowers an optimized program to one LLVM module.

    Raises:
      UnimplementedError: an op without a lowering (see `lowerable`).
    """
    missing = lowerable(program)
    if missing:
        raise errors.UnimplementedError(
            "the compiled backend cannot lower " + ", ".join(missing) + " yet"
        )
    return _Lowering(program).build()
