"""The run-time half of a compiled graph's shapes: dims of `None` axes and buffer offsets.

Generated kernels read every dim that is unknown at compile time, and the
offset of every intermediate buffer, from one int64 array: the *slots*.
`ShapePlanner` fills the slots for given input shapes by running the ops'
shape rules on concrete shapes (the same rules as at construction, so a
mismatch raises the same InvalidArgumentError naming the op and the user's
line) and by placing intermediates in one workspace with first-fit reuse
after their last use. Plans are memoized per tuple of input shapes, so a
new batch size costs one planning step and never a recompilation.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Sequence

import numpy as np

from graphflow import errors
from graphflow.compiler.program import Program
from graphflow.graph import Operation, Tensor
from graphflow.ops.fused_ops import FusedBody
from graphflow.ops.registry import get_op_def, infer
from graphflow.shapes import Shape

ALIGN = 64  # bytes: every workspace buffer starts on a cache line
# The first cache line of the workspace is reserved: checked kernels write
# the value that made them fail there.
RESERVED = ALIGN


@dataclasses.dataclass(frozen=True)
class ShapePlan:
    """What one set of input shapes needs: the slots, output shapes, workspace size."""

    slots: np.ndarray
    output_shapes: tuple[tuple[int, ...], ...]
    workspace_bytes: int


class ShapePlanner:
    """Maps input shapes to a ShapePlan; the layout of the slots is fixed at compile time.

    Attributes (filled by the lowering while it emits code):
      dim_slots: (tensor, axis) -> slot index, for every dim unknown at compile time.
      buffer_slots: workspace value -> slot index holding its byte offset.
      scratch: workspace value -> (fused op, body node index, output index) for
        buffers that live inside a fused kernel.
    """

    def __init__(self, program: Program, outputs: Sequence[Tensor]) -> None:
        self.program = program
        self.outputs = tuple(outputs)
        self.dim_slots: dict[tuple[object, int], int] = {}
        self.buffer_slots: dict[object, int] = {}
        self.buffer_values: list[object] = []  # in slot order
        self.value_shapes: dict[object, tuple[Tensor, None] | tuple[Operation, int, int]] = {}
        self.value_dtype: dict[object, np.dtype] = {}
        self.lifetimes: dict[object, tuple[int, int]] = {}
        self.fixed_bytes: dict[object, int] = {}
        self.slot_count = 0
        self._plans: dict[tuple[tuple[int, ...], ...], ShapePlan] = {}
        self._lock = threading.Lock()

    # -- compile time ----------------------------------------------------------------------
    def dim_slot(self, value: object, axis: int) -> int:
        key = (value, axis)
        if key not in self.dim_slots:
            self.dim_slots[key] = self._new_slot()
        return self.dim_slots[key]

    def buffer_slot(
        self, value: object, dtype: np.dtype, first: int, last: int, fixed_bytes: int | None = None
    ) -> int:
        """A workspace buffer for `value`, live from schedule step `first` to `last`.

        Its size follows the value's shape, or is `fixed_bytes` (packing panels).
        """
        if fixed_bytes is not None:
            self.fixed_bytes[value] = fixed_bytes
        if value not in self.buffer_slots:
            self.buffer_slots[value] = self._new_slot()
            self.buffer_values.append(value)
            self.value_dtype[value] = dtype
        self.lifetimes[value] = (first, last)
        return self.buffer_slots[value]

    def _new_slot(self) -> int:
        self.slot_count += 1
        return self.slot_count - 1

    # -- run time --------------------------------------------------------------------------
    def plan(self, input_shapes: tuple[tuple[int, ...], ...]) -> ShapePlan:
        plan = self._plans.get(input_shapes)
        if plan is None:
            plan = self._make(input_shapes)
            with self._lock:
                if len(self._plans) > 64:
                    self._plans.clear()
                self._plans[input_shapes] = plan
        return plan

    def _make(self, input_shapes: tuple[tuple[int, ...], ...]) -> ShapePlan:
        shapes = concrete_shapes(self.program, input_shapes)
        slots = np.zeros(max(self.slot_count, 1), np.int64)
        for (value, axis), slot in self.dim_slots.items():
            slots[slot] = self._shape_of(value, shapes)[axis]
        # First-fit placement of workspace buffers by lifetime.
        placed: list[tuple[int, int, int, int]] = []  # (offset, size, first, last)
        end = RESERVED
        for value in sorted(self.buffer_values, key=lambda v: self.lifetimes[v][0]):
            if value in self.fixed_bytes:
                size = self.fixed_bytes[value]
            else:
                shape = self._shape_of(value, shapes)
                size = int(np.prod(shape, dtype=np.int64)) * self.value_dtype[value].itemsize
            size = max(ALIGN, -(-size // ALIGN) * ALIGN)
            first, last = self.lifetimes[value]
            busy = sorted((o, s) for o, s, f, l in placed if not (l < first or f > last))
            offset = RESERVED
            for o, s in busy:
                if offset + size <= o:
                    break
                offset = max(offset, o + s)
            placed.append((offset, size, first, last))
            slots[self.buffer_slots[value]] = offset
            end = max(end, offset + size)
        outputs = tuple(tuple(shapes[t]) for t in self.outputs)
        slots.flags.writeable = False
        return ShapePlan(slots, outputs, end)

    def _shape_of(self, value: object, shapes: dict[Tensor, tuple[int, ...]]) -> tuple[int, ...]:
        if isinstance(value, Tensor):
            return shapes[value]
        op, node_index, output_index = value  # type: ignore[misc]
        if op.type != "Fused":  # an op lowered as a body of itself: node 0 is the op
            return shapes[op.outputs[output_index]]
        return body_shapes(op, shapes)[node_index][output_index]


def concrete_shapes(
    program: Program, input_shapes: tuple[tuple[int, ...], ...]
) -> dict[Tensor, tuple[int, ...]]:
    """Every tensor's shape for the given input shapes, by the ops' own shape rules."""
    shapes: dict[Tensor, tuple[int, ...]] = dict(zip(program.inputs, input_shapes))
    for op in program.graph.get_operations():
        if all(t in shapes for t in op.outputs):
            continue
        if op.type == "VariableV2" or (not op.inputs and op.type != "Placeholder"):
            for t in op.outputs:
                shapes[t] = _static(t)
            continue
        if op.type == "PlaceholderWithDefault":  # unfed: it is its default value
            shapes[op.outputs[0]] = shapes[op.inputs[0]]
            continue
        if op.type == "Fused":
            inner = body_shapes(op, shapes)
            for t, (_, i, j) in zip(op.outputs, op.attrs["body"].outputs):
                shapes[t] = inner[i][j]
            continue
        specs = infer(
            get_op_def(op.type),
            [t.dtype for t in op.inputs],
            [Shape(shapes[t]) for t in op.inputs],
            op.attrs,
            op.name,
            op.location,
        )
        for t, (_, shape) in zip(op.outputs, specs):
            if not shape.is_fully_defined:
                raise errors.InternalError(f"{op.type} '{op.name}': shape unknown at run time")
            shapes[t] = tuple(shape.as_list())  # type: ignore[arg-type]
    return shapes


def _static(t: Tensor) -> tuple[int, ...]:
    if not t.shape.is_fully_defined:
        raise errors.InternalError(f"{t.name}: a source with a shape unknown at run time")
    return tuple(t.shape.as_list())  # type: ignore[arg-type]


def body_shapes(
    op: Operation, shapes: dict[Tensor, tuple[int, ...]]
) -> list[list[tuple[int, ...]]]:
    """The concrete shapes of every body node of a Fused op."""
    body: FusedBody = op.attrs["body"]
    args = [shapes[t] for t in op.inputs]
    out: list[list[tuple[int, ...]]] = []
    for node in body.nodes:
        if not node.inputs:
            out.append([tuple(s.as_list()) for _, s in node.outputs])  # type: ignore[misc]
            continue
        in_shapes = [args[i] if kind == "arg" else out[i][j] for kind, i, j in node.inputs]
        in_dtypes = [
            op.inputs[i].dtype if kind == "arg" else body.nodes[i].outputs[j][0]
            for kind, i, j in node.inputs
        ]
        specs = infer(
            get_op_def(node.op_type),
            in_dtypes,
            [Shape(s) for s in in_shapes],
            node.attrs,
            node.name,
            node.location,
        )
        out.append([tuple(s.as_list()) for _, s in specs])  # type: ignore[misc]
    return out
