"""The compiled executable: one JIT-compiled entry function, one native call per run.

Per run the Python side only: checks the inputs are C-contiguous, looks up
the shape plan for the input shapes (memoized), allocates the output arrays
(NumPy gives large ones huge pages), takes a reused workspace, and calls the
entry function with the arrays themselves; the generated code reads their
data pointers.
"""

from __future__ import annotations

import ctypes
import math
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from graphflow import errors
from graphflow.compiler.jit import get_jit
from graphflow.compiler.lowering.module import Lowered, lower, lowerable
from graphflow.compiler.program import Program
from graphflow.graph import Operation, Tensor
from graphflow.ops.registry import RANDOM, get_op_def


class _Workspace(threading.local):
    """One growing scratch buffer per thread, reused across runs (no page faults per run)."""

    def __init__(self) -> None:
        self.buffer = np.empty(64, np.uint8)

    def get(self, size: int) -> np.ndarray:
        if self.buffer.size < size:
            self.buffer = np.empty(max(size, 2 * self.buffer.size), np.uint8)
        return self.buffer


class _OutputPool:
    """Large output arrays, reused once the caller has let go of them.

    A fresh large array costs a page fault per 4 KiB page on its first write
    (about 10 ms for 64 MiB here, more than the kernel that fills it), and
    glibc returns allocations above 32 MiB to the kernel when they are freed.
    So the executable keeps the last `_PER_SHAPE` large outputs of each shape
    and hands one out again when nothing but the pool refers to it (its
    reference count says so: views, memoryviews and buffers all hold a
    reference). In a loop `y = sess.run(...)`, two arrays alternate.
    """

    MIN_BYTES = 1 << 20
    _PER_SHAPE = 2
    _SHAPES = 4

    def __init__(self) -> None:
        self._arrays: dict[tuple, list[np.ndarray]] = {}
        self._lock = threading.Lock()

    def take(self, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        key = (shape, dtype)
        with self._lock:  # two threads must never take the same free array
            arrays = self._arrays.get(key)
            if arrays is None:
                if len(self._arrays) >= self._SHAPES:
                    self._arrays.pop(next(iter(self._arrays)))
                arrays = self._arrays[key] = []
            for index in range(len(arrays)):
                # 2: the list's reference and getrefcount's argument.
                if sys.getrefcount(arrays[index]) == 2:
                    array = arrays[index]
                    if array.shape == shape and array.flags.c_contiguous:
                        array.flags.writeable = True  # the caller may have frozen it
                        return array
                    arrays.pop(index)  # reshaped in place by its last user
                    break
            array = np.empty(shape, dtype)
            if len(arrays) < self._PER_SHAPE:
                arrays.append(array)
            return array


def compile_reason(program: Program) -> str | None:
    """None if the optimized program compiles; else why not (the ops without a lowering)."""
    missing = lowerable(program)
    if not missing:
        return None
    random = [t for t in missing if get_op_def(t.split(" ")[0]).kind == RANDOM]
    ranks = [t.split(" ")[0] for t in missing if t.endswith("(unknown rank)") and t not in random]
    others = [t for t in missing if t not in random and not t.endswith("(unknown rank)")]
    reasons = []
    if others:
        reasons.append(f"no compiled lowering yet for {', '.join(others)}")
    if ranks:
        reasons.append(
            f"tensors of unknown rank reach {', '.join(ranks)}: kernels are generated for "
            "a known rank (give the placeholder a shape, with None for unknown sizes)"
        )
    if random:
        reasons.append(
            f"random ops ({', '.join(random)}) run interpreted, so that both modes draw "
            "the same numbers from NumPy's generators"
        )
    return "; ".join(reasons)


class CompiledExecutable:
    """Runs the fetches with one call into JIT-compiled code.

    Args:
      program: the optimized program (its inputs are the fed tensors, in order).
      fed: the user's fed tensors, in the same order.
      state: the session state holding the variables.

    Raises:
      UnimplementedError: an op of the optimized graph has no lowering yet.
    """

    def __init__(self, program: Program, fed: Sequence[Tensor], state: object) -> None:
        self.fed = tuple(fed)
        self.program = program
        self.lowered: Lowered = lower(self.program)
        entry = self.lowered.entry
        address = get_jit().compile_with(self.lowered.libraries, self.lowered.ir, [entry])[entry]
        signature = ctypes.CFUNCTYPE(ctypes.c_int32, *[ctypes.py_object] * self.lowered.arg_count)
        self._entry = signature(address)
        self._state = state
        self._workspace = _Workspace()
        self._pool = _OutputPool()
        self._static_plan: tuple | None = None  # set by _prepare when every fed shape is known
        outputs = list(self.lowered.outputs)
        self._fetch_index = [
            outputs.index(f) if isinstance(f, Tensor) else None for f in self.program.fetches
        ]
        self._output_dtypes = [np.dtype(t.dtype.np) for t in outputs]
        self._consts = self.lowered.consts
        self._planner = self.lowered.planner
        self._call_plans: dict[tuple[tuple[int, ...], ...], tuple] = {}
        self._identity_fetch = self._fetch_index == list(range(len(outputs)))
        self._fixed: tuple[np.ndarray, ...] | None = None  # constants and variables, bound once
        self._reads = self._variables_read()
        self._written = {
            self.program.user_op(op.inputs[0].op)
            for op in self.program.graph.get_operations()
            if op.type == "Assign"
        }
        self._written_pending = bool(self._written)

    def _variables_read(self) -> list[Operation]:
        """User variables whose value the program reads (they must be initialized)."""
        read = []
        fetched = set(self.program.fetches)
        for op in self.program.graph.get_operations():
            if op.type != "VariableV2":
                continue
            value = op.outputs[0]
            readers = [
                c
                for c in self.program.graph.get_operations()
                if value in c.inputs and not (c.type == "Assign" and c.inputs[0] is value)
            ]
            if readers or value in fetched:
                read.append(self.program.user_op(op))
        return read

    def run(self, feeds: Mapping[Tensor, np.ndarray], context: object) -> list[object]:
        """The values of the fetches (None for an Operation), given checked feeds."""
        return self.call([feeds[t] for t in self.fed])

    def call(self, inputs: list[np.ndarray]) -> list[object]:
        """The hot path: `inputs` are checked arrays in the order of `self.fed`.

        Every step here costs on each run, so it is kept to attribute reads,
        one dict lookup, the output allocations and the native call.
        """
        if self._fixed is None:
            self._prepare()
        for array in inputs:
            if not array.flags.c_contiguous:
                inputs = [a if a.flags.c_contiguous else np.ascontiguousarray(a) for a in inputs]
                break
        call_plan = self._static_plan
        if call_plan is None:
            key = tuple([a.shape for a in inputs])
            call_plan = self._call_plans.get(key)
            if call_plan is None:
                call_plan = self._call_plan(key)
        if call_plan[3]:
            take = self._pool.take
            outputs = [take(s, d) if pooled else np.empty(s, d) for s, d, pooled in call_plan[0]]
        else:
            outputs = [np.empty(s, d) for s, d, _ in call_plan[0]]
        if self.lowered.scratch:
            status = self._entry(
                *inputs, *outputs, *self._fixed, self._workspace.get(call_plan[1]), call_plan[2]
            )
        else:
            status = self._entry(*inputs, *outputs, *self._fixed)
        if status:
            raise self._failure(status)
        if self._written_pending:
            self._mark_written()
        if self._identity_fetch:
            return outputs  # type: ignore[return-value]
        return [None if i is None else outputs[i] for i in self._fetch_index]

    def direct_call(self, feeds: Sequence[tuple[np.dtype, tuple[int, ...]]]) -> Callable | None:
        """A leaner `call` for the common case, or None where it does not apply.

        `feeds` gives the dtype and exact shape each fed array must have. The
        function returned takes the arrays positionally and returns the list
        of fetched arrays, or None when an array is not exactly as expected
        (then the caller takes the general path, which converts or raises).
        It applies after a first run, when every shape is known, no output is
        pooled and the program fetches each output once:
        then a run is the checks, the output allocations and the native call.
        """
        if self._fixed is None:
            return None  # not run yet: variables may still be uninitialized
        plan = self._static_plan
        if plan is None or plan[3] or not self._identity_fetch:
            return None
        if self._written_pending or len(feeds) != len(self.fed):
            return None
        entry, failure, fixed = self._entry, self._failure, self._fixed
        outputs = [(shape, dtype) for shape, dtype, _ in plan[0]]
        empty, ndarray = np.empty, np.ndarray
        scratch = self.lowered.scratch
        # The workspace is per thread: fetched on each call, as `call` does.
        workspace, nbytes, slots = self._workspace, plan[1], plan[2]
        if len(feeds) == 1 and len(outputs) == 1 and not scratch:
            ((dtype, shape),) = feeds
            ((out_shape, out_dtype),) = outputs

            def one(v: Any) -> list[np.ndarray] | None:  # the W1 case: no loops
                if (
                    type(v) is not ndarray
                    or v.dtype is not dtype
                    or v.shape != shape
                    or not v.flags.c_contiguous
                ):
                    return None
                out = empty(out_shape, out_dtype)
                status = entry(v, out, *fixed)
                if status:
                    raise failure(status)
                return [out]

            return one

        def many(*values: Any) -> list[np.ndarray] | None:
            for v, (dtype, shape) in zip(values, feeds):
                if (
                    type(v) is not ndarray
                    or v.dtype is not dtype
                    or v.shape != shape
                    or not v.flags.c_contiguous
                ):
                    return None
            outs = [empty(s, d) for s, d in outputs]
            extra = (workspace.get(nbytes), slots) if scratch else ()
            status = entry(*values, *outs, *fixed, *extra)
            if status:
                raise failure(status)
            return outs

        return many

    def _failure(self, status: int) -> errors.GraphflowError:
        """The error a checked kernel reported: its op, and the bad value it recorded."""
        entry = self.lowered.error_messages.get(status)
        if entry is None:
            return errors.InternalError(f"compiled code reported an unknown failure {status}")
        op, message = entry
        value, position, limit = (int(w) for w in self._workspace.buffer[:24].view(np.int64))
        user = self.program.user_op(op)
        text = message.format(value=value, position=position, limit=limit)
        return user.error(errors.InvalidArgumentError, text)

    def _call_plan(self, shapes: tuple[tuple[int, ...], ...]) -> tuple:
        """(output specs, workspace bytes, slots, any output pooled) for these input shapes."""
        plan = self._planner.plan(shapes)
        specs = tuple(
            (shape, dtype, math.prod(shape) * dtype.itemsize >= _OutputPool.MIN_BYTES)
            for shape, dtype in zip(plan.output_shapes, self._output_dtypes)
        )
        entry = (specs, plan.workspace_bytes, plan.slots, any(p for _, _, p in specs))
        if len(self._call_plans) > 64:
            self._call_plans.clear()
        self._call_plans[shapes] = entry
        return entry

    def _prepare(self) -> None:
        """Checks the variables it reads are initialized; binds constants and variable buffers."""
        state = self._state
        for variable in self._reads:
            if variable not in self._written:
                state.read_variable(variable)  # raises FailedPreconditionError if uninitialized
        variables = [state.buffer(op) for op in self.lowered.variables]
        self._fixed = (*self._consts, *variables)
        shapes = [t.shape.as_list() if t.shape.rank is not None else None for t in self.fed]
        if all(s is not None and None not in s for s in shapes):  # one plan serves every run
            self._static_plan = self._call_plan(tuple(tuple(s) for s in shapes))  # type: ignore[union-attr]

    def _mark_written(self) -> None:
        for variable in self._written:
            self._state.mark_initialized(variable)
        self._written_pending = False
