"""cse: identical ops on identical inputs with identical attributes become one.

Two ops are identical when they have the same type, the same input tensors
(after merging their producers), equal attributes and the same control
inputs. Stateful and random ops, placeholders and variables are never
merged: two of them are two different values even when they look alike.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import Any

import numpy as np

from graphflow.compiler.passes.base import PassOptions, PassResult
from graphflow.compiler.program import GraphBuilder, Program
from graphflow.graph import Operation
from graphflow.ops.registry import CONTROL, RANDOM, STATE, get_op_def

_NEVER_MERGE_KINDS = (STATE, RANDOM, CONTROL)


def attr_key(value: Any) -> Hashable:
    """A hashable key for an attribute value; arrays compare by dtype, shape and bytes."""
    if isinstance(value, np.ndarray):
        return ("ndarray", value.dtype.str, value.shape, value.tobytes())
    if isinstance(value, tuple):
        return tuple(attr_key(v) for v in value)
    if isinstance(value, float) and value != value:
        return ("nan",)  # NaN != NaN, but two NaN attributes are the same attribute
    return (type(value).__name__, value)


def attrs_key(attrs: Mapping[str, Any]) -> Hashable:
    return tuple(sorted((k, attr_key(v)) for k, v in attrs.items()))


def mergeable(op: Operation) -> bool:
    op_def = get_op_def(op.type)
    if op_def.kind in _NEVER_MERGE_KINDS:
        return False
    return op.type not in ("Placeholder", "PlaceholderWithDefault")


def run(program: Program, options: PassOptions) -> PassResult:
    builder = GraphBuilder(program)
    seen: dict[Hashable, Operation] = {}
    changes: list[str] = []
    for op in program.graph.get_operations():
        if builder.handled(op):
            continue
        if not mergeable(op):
            builder.copy(op)
            continue
        key = (
            op.type,
            tuple(builder.get(t) for t in op.inputs),
            attrs_key(op.attrs),
            tuple(builder.map_ops(op.control_inputs)),
        )
        twin = seen.get(key)
        if twin is None:
            seen[key] = builder.copy(op)
            continue
        for old, new in zip(op.outputs, twin.outputs):
            builder.set(old, new)
        builder.ops[op] = twin
        changes.append(f"merged {op.type} '{op.name}' into '{twin.name}'")
    return PassResult(builder.finish(), tuple(changes))
