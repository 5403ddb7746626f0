"""What every pass shares: its signature, its options and its report."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from graphflow.compiler.program import Program


@dataclasses.dataclass(frozen=True)
class PassOptions:
    """Knobs of the passes.

    Attributes:
      fold_size_cap: constant folding keeps a result symbolic when it would
        hold more than this many bytes and is cheaper to recompute (a fill,
        a range, a broadcast) than to store.
      simplify_max_iterations: the rewrite engine raises after this many
        sweeps without reaching a fixed point.
    """

    fold_size_cap: int = 1 << 20
    simplify_max_iterations: int = 32


@dataclasses.dataclass(frozen=True)
class PassResult:
    program: Program
    changes: tuple[str, ...]


PassFn = Callable[[Program, PassOptions], PassResult]


@dataclasses.dataclass(frozen=True)
class Pass:
    """A named pass `fn(program, options) -> PassResult`; `level`: the lowest level running it."""

    name: str
    fn: PassFn
    level: int
    description: str
