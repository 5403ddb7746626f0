"""Executables: what a Session caches per (fetches, fed tensors) and calls on every run.

An interpreted executable runs a plan with the reference kernels, either on
the user's graph directly or on the graph the compiler optimized (then the
feeds go to the optimized graph's inputs, and variables and random streams
stay keyed by the user's ops).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np

from graphflow.compiler.pipeline import optimize
from graphflow.compiler.program import Program
from graphflow.graph import Operation, Tensor
from graphflow.ops.registry import ExecutionContext
from graphflow.runtime.interpreter import Plan, execute, make_plan


class _ProgramContext:
    """Maps the ops of an optimized graph back to the user's ops for state and randomness."""

    def __init__(self, context: ExecutionContext, program: Program) -> None:
        self._context = context
        self._user_op = program.user_op

    def read_variable(self, op: Operation) -> np.ndarray:
        return self._context.read_variable(self._user_op(op))

    def write_variable(
        self, op: Operation, value: np.ndarray, validate_shape: bool = True
    ) -> np.ndarray:
        return self._context.write_variable(self._user_op(op), value, validate_shape)

    def update_variable(
        self, op: Operation, update: Callable[[np.ndarray], np.ndarray]
    ) -> np.ndarray:
        return self._context.update_variable(self._user_op(op), update)

    def rng(self, op: Operation) -> np.random.Generator:
        return self._context.rng(self._user_op(op))


class InterpretedExecutable:
    """Runs fetches with the reference interpreter, optionally on an optimized graph.

    Args:
      fetches: the user's fetch elements.
      fed: the user's fed tensors, in a fixed order.
      level: None to run the user's graph as built, or "O0"/"O1"/"O2" to run
        the graph the compiler optimized at that level.
      program: the optimized program, when the caller already has it.
    """

    def __init__(
        self,
        fetches: Sequence[Tensor | Operation],
        fed: Sequence[Tensor],
        level: str | None,
        program: Program | None = None,
    ) -> None:
        self.fed = tuple(fed)
        self.program = program
        if program is None and level is not None:
            self.program = optimize(list(fetches), feeds=self.fed, level=level).program
        if self.program is None:
            self.plan: Plan = make_plan(tuple(fetches), frozenset(self.fed))
        else:
            self.plan = make_plan(self.program.fetches, frozenset(self.program.inputs))

    def run(self, feeds: Mapping[Tensor, np.ndarray], context: ExecutionContext) -> list[object]:
        """The values of the fetches (None for an Operation), given the user's feeds."""
        if self.program is None:
            return execute(self.plan, dict(feeds), context)
        inputs = {new: feeds[old] for old, new in zip(self.fed, self.program.inputs)}
        return execute(self.plan, inputs, _ProgramContext(context, self.program))
