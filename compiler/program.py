"""A Program: the graph a pass works on, with its fetches, its inputs and their origins.

Passes never mutate a graph (graphs are append-only and the user's graph is
never touched): each pass reads one Program and builds the next with a
`GraphBuilder`, which copies or rewrites ops into a fresh graph and keeps
the mapping from old tensors to new ones.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from graphflow import errors
from graphflow.graph import Graph, Operation, Tensor
from graphflow.ops.registry import apply_op, get_op_def, infer


@dataclasses.dataclass(frozen=True)
class Program:
    """A graph to optimize or run.

    Attributes:
      graph: the graph; every op in it is needed (after pruning).
      fetches: what the caller wants, in the caller's order (Tensors or Operations).
      inputs: one Placeholder per fed tensor, in the caller's feed order.
      origin: for ops that stand for an op of the user's graph (variables,
        placeholders, assigns, ...), that op. Variables keep their state
        under the user's VariableV2 op.
    """

    graph: Graph
    fetches: tuple[Tensor | Operation, ...]
    inputs: tuple[Tensor, ...]
    origin: Mapping[Operation, Operation]

    def op_count(self) -> int:
        return len(self.graph.get_operations())

    def user_op(self, op: Operation) -> Operation:
        """The user's op that `op` stands for (itself if it was not copied)."""
        return self.origin.get(op, op)


class GraphBuilder:
    """Builds the next Program from a source Program, op by op.

    `copy(op)` copies an op with its inputs mapped; `emit(...)` adds a new
    op; `set(old_tensor, new_tensor)` records what an old tensor became.
    Copied ops keep their names; new ops get fresh unique names, so names in
    the optimized graph still point the user at their own ops.
    """

    def __init__(self, source: Program) -> None:
        self.source = source
        self.graph = Graph()
        self.graph.seed = source.graph.seed
        # Reserve every source name so that new ops never take one a later copy needs.
        for op in source.graph.get_operations():
            self.graph._names_in_use[op.name.lower()] = 1
        self.tensors: dict[Tensor, Tensor] = {}
        self.ops: dict[Operation, Operation] = {}
        self.origin: dict[Operation, Operation] = {}
        # The inputs come first, as Placeholders; a fed tensor keeps its
        # placeholder even when its producer is copied for another output.
        self._fed: set[Tensor] = set()
        for t in source.inputs:
            self.placeholder_for(t)
            self._fed.add(t)

    def handled(self, op: Operation) -> bool:
        """True when every output of `op` is already built (e.g. it is a fed input)."""
        return bool(op.outputs) and all(t in self.tensors for t in op.outputs)

    def get(self, tensor: Tensor) -> Tensor:
        try:
            return self.tensors[tensor]
        except KeyError:
            raise errors.InternalError(
                f"pass bug: {tensor.name} used before its producer was built"
            ) from None

    def set(self, old: Tensor, new: Tensor) -> None:
        self.tensors[old] = new

    def map_ops(self, ops: Iterable[Operation]) -> list[Operation]:
        return [self.ops[o] for o in ops if o in self.ops]

    def copy(
        self,
        op: Operation,
        inputs: Sequence[Tensor] | None = None,
        attrs: Mapping[str, Any] | None = None,
    ) -> Operation:
        """Copies `op` (optionally with other inputs or attrs); maps its outputs."""
        new_inputs = [self.get(t) for t in op.inputs] if inputs is None else list(inputs)
        new_attrs = op.attrs if attrs is None else attrs
        if inputs is None and attrs is None:
            specs = [(t.dtype, t.shape) for t in op.outputs]
        else:
            specs = infer(
                get_op_def(op.type),
                [t.dtype for t in new_inputs],
                [t.shape for t in new_inputs],
                new_attrs,
                op.name,
                op.location,
            )
        new = self.graph._create_op(
            op.type,
            new_inputs,
            new_attrs,
            specs,
            op.name,
            op.location,
            self.map_ops(op.control_inputs),
            unique=False,
        )
        self._record(op, new)
        return new

    def _record(self, old: Operation, new: Operation) -> None:
        self.ops[old] = new
        self.origin[new] = self.source.user_op(old)
        for a, b in zip(old.outputs, new.outputs):
            if a not in self._fed:
                self.tensors[a] = b

    def emit(
        self,
        op_type: str,
        inputs: Sequence[Tensor],
        attrs: Mapping[str, Any] | None = None,
        name: str = "",
        like: Operation | None = None,
    ) -> Operation:
        """Adds a new op; `like` gives the name prefix and source location to inherit."""
        base = name or (f"{like.name}/{op_type}" if like is not None else op_type)
        return apply_op(
            op_type,
            list(inputs),
            dict(attrs or {}),
            name=base,
            location=like.location if like is not None else None,
            graph=self.graph,
            control_inputs=self.map_ops(like.control_inputs) if like is not None else (),
        )

    def placeholder_for(self, tensor: Tensor) -> Tensor:
        """A Placeholder standing for the fed tensor `tensor` of the source graph."""
        name = tensor.op.name if tensor.op.type == "Placeholder" else tensor.name.replace(":", "_")
        op = self.graph._create_op(
            "Placeholder",
            [],
            {"dtype": tensor.dtype, "shape": tensor.shape},
            [(tensor.dtype, tensor.shape)],
            name,
            tensor.op.location,
            unique=False,
        )
        if tensor.op.type == "Placeholder":
            self.origin[op] = self.source.user_op(tensor.op)
        self.tensors[tensor] = op.outputs[0]
        return op.outputs[0]

    def finish(self) -> Program:
        """The new Program: the source's fetches and inputs, mapped."""
        fetches = tuple(
            self.get(f) if isinstance(f, Tensor) else self.ops[f] for f in self.source.fetches
        )
        inputs = tuple(self.get(t) for t in self.source.inputs)
        return Program(self.graph, fetches, inputs, self.origin)


def topological_ops(program: Program) -> list[Operation]:
    """The program's ops in creation order, which is topological."""
    return program.graph.get_operations()


def consumers(program: Program) -> dict[Tensor, list[Operation]]:
    """For each tensor, the ops that take it as an input."""
    out: dict[Tensor, list[Operation]] = {}
    for op in program.graph.get_operations():
        for t in op.inputs:
            out.setdefault(t, []).append(op)
    return out


def fetched_tensors(program: Program) -> set[Tensor]:
    return {f for f in program.fetches if isinstance(f, Tensor)}


__all__ = ["GraphBuilder", "Program", "consumers", "fetched_tensors", "topological_ops"]
