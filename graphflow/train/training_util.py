"""The global step: the variable that counts training steps (TF1's tf.train.*global_step)."""

from __future__ import annotations

from typing import Any

import numpy as np

from graphflow import errors
from graphflow.graph import Graph, Tensor, get_default_graph
from graphflow.ops.state_ops import GLOBAL_VARIABLES, Variable

GLOBAL_STEP = "global_step"


def get_global_step(graph: Graph | None = None) -> Variable | None:
    """The global step variable of `graph` (default: the default graph), or None.

    Raises:
      InvalidArgumentError: more than one variable is in the "global_step" collection.
    """
    graph = graph or get_default_graph()
    found = graph.get_collection(GLOBAL_STEP)
    if len(found) > 1:
        raise errors.InvalidArgumentError(
            "get_global_step: the 'global_step' collection holds more than one variable; got "
            + ", ".join(v.name for v in found)
            + "; expected one"
        )
    return found[0] if found else None


def create_global_step(graph: Graph | None = None) -> Variable:
    """Creates the global step: an int64 scalar variable named "global_step", starting at 0.

    It is not trainable, and is in the global variables (so
    `global_variables_initializer` sets it and `Saver` saves it).

    Raises:
      InvalidArgumentError: the graph already has a global step.
    """
    graph = graph or get_default_graph()
    if get_global_step(graph) is not None:
        raise errors.InvalidArgumentError(
            "create_global_step: the graph already has a global step "
            f"({get_global_step(graph).name}); expected none (use get_or_create_global_step)"
        )
    with graph.as_default(), graph.name_scope(None), graph.control_dependencies(None):
        return Variable(
            np.int64(0),
            trainable=False,
            name=GLOBAL_STEP,
            collections=[GLOBAL_VARIABLES, GLOBAL_STEP],
        )


def get_or_create_global_step(graph: Graph | None = None) -> Variable:
    """The global step variable of `graph`, created (see `create_global_step`) if missing."""
    graph = graph or get_default_graph()
    step = get_global_step(graph)
    return step if step is not None else create_global_step(graph)


def global_step(sess: Any, global_step_tensor: Tensor) -> int:
    """The value of the global step in `sess`, as a Python int."""
    return int(sess.run(global_step_tensor))
