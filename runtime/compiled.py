"""The compiled executable: one JIT-compiled entry function, one native call per run.

Per run the Python side only: checks the inputs are C-contiguous, looks up
the shape plan for the input shapes (memoized), allocates the output arrays
(NumPy gives large ones huge pages), takes a reused workspace, and calls the
entry function with the arrays themselves; the generated code reads their
data pointers.
"""

from __future__ import annotations

import ctypes
import threading
from collections.abc import Mapping, Sequence

import numpy as np

from graphflow import errors
from graphflow.compiler.jit import get_jit
from graphflow.compiler.lowering.module import Lowered, lower, lowerable
from graphflow.compiler.program import Program
from graphflow.graph import Operation, Tensor


class _Workspace(threading.local):
    """One growing scratch buffer per thread, reused across runs (no page faults per run)."""

    def __init__(self) -> None:
        self.buffer = np.empty(64, np.uint8)

    def get(self, size: int) -> np.ndarray:
        if self.buffer.size < size:
            self.buffer = np.empty(max(size, 2 * self.buffer.size), np.uint8)
        return self.buffer


def compile_reason(program: Program) -> str | None:
    """None if the optimized program compiles; else why not (the ops without a lowering)."""
    missing = lowerable(program)
    return f"no compiled lowering yet for {', '.join(missing)}" if missing else None


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
        address = get_jit().compile(self.lowered.ir, [self.lowered.entry])[self.lowered.entry]
        signature = ctypes.CFUNCTYPE(ctypes.c_int32, *[ctypes.py_object] * self.lowered.arg_count)
        self._entry = signature(address)
        self._state = state
        self._workspace = _Workspace()
        outputs = list(self.lowered.outputs)
        self._fetch_index = [
            outputs.index(f) if isinstance(f, Tensor) else None for f in self.program.fetches
        ]
        self._output_dtypes = [t.dtype.np for t in outputs]
        self._consts = self.lowered.consts
        self._reads = self._variables_read()
        self._written = {
            self.program.user_op(op.inputs[0].op)
            for op in self.program.graph.get_operations()
            if op.type == "Assign"
        }

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
        state = self._state
        for variable in self._reads:
            if variable not in self._written:
                state.read_variable(variable)  # raises FailedPreconditionError if uninitialized
        inputs = []
        for t in self.fed:
            array = feeds[t]
            if not array.flags.c_contiguous:
                array = np.ascontiguousarray(array)
            inputs.append(array)
        plan = self.lowered.planner.plan(tuple(a.shape for a in inputs))
        outputs = [
            np.empty(shape, dtype) for shape, dtype in zip(plan.output_shapes, self._output_dtypes)
        ]
        variables = [state.buffer(op) for op in self.lowered.variables]
        workspace = self._workspace.get(plan.workspace_bytes)
        status = self._entry(*inputs, *outputs, *self._consts, *variables, workspace, plan.slots)
        if status:
            raise errors.InternalError(f"compiled code reported failure {status}")
        for variable in self._written:
            state.mark_initialized(variable)
        return [None if i is None else outputs[i] for i in self._fetch_index]
