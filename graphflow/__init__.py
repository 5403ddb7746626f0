"""graphflow: a static dataflow-graph compiler and session runtime (TF1 graph-mode API).

import graphflow as gf

x = gf.placeholder(gf.float32, shape=[None, 3])
y = gf.nn.softmax(x * 2.0)
with gf.Session() as sess:
    print(sess.run(y, feed_dict={x: [[1.0, 2.0, 3.0]]}))
"""

from graphflow import (
    dtypes,
    errors,
    nn,
    ops,
    train,
)
from graphflow.dtypes import DType, as_dtype, float32, float64, int32, int64
from graphflow.dtypes import bool_ as bool
from graphflow.gradients import gradients
from graphflow.graph import (
    Graph,
    Operation,
    Tensor,
    control_dependencies,
    get_default_graph,
    get_default_session,
    name_scope,
    reset_default_graph,
)
from graphflow.ops.array_ops import (
    broadcast_to,
    concat,
    expand_dims,
    gather,
    identity,
    one_hot,
    pad,
    rank,
    reshape,
    shape,
    size,
    slice,
    split,
    squeeze,
    stack,
    stop_gradient,
    strided_slice,
    tile,
    transpose,
    unstack,
)
from graphflow.ops.convert import convert_to_tensor
from graphflow.ops.creation_ops import (
    constant,
    fill,
    group,
    no_op,
    ones,
    ones_like,
    placeholder,
    placeholder_with_default,
    random_normal,
    random_uniform,
    range,
    set_random_seed,
    truncated_normal,
    zeros,
    zeros_like,
)
from graphflow.ops.linalg_ops import matmul
from graphflow.ops.math_ops import (
    abs,
    add,
    cast,
    ceil,
    clip_by_value,
    cos,
    div,
    divide,
    equal,
    erf,
    exp,
    expm1,
    floor,
    floor_div,
    floordiv,
    floormod,
    greater,
    greater_equal,
    less,
    less_equal,
    log,
    log1p,
    logical_and,
    logical_not,
    logical_or,
    maximum,
    minimum,
    mod,
    multiply,
    neg,
    negative,
    not_equal,
    pow,
    realdiv,
    reciprocal,
    round,
    rsqrt,
    sigmoid,
    sign,
    sin,
    sqrt,
    square,
    squared_difference,
    subtract,
    tanh,
    to_float,
    to_int32,
    to_int64,
    truediv,
    where,
    where_v2,
)
from graphflow.ops.reduction_ops import (
    argmax,
    argmin,
    reduce_all,
    reduce_any,
    reduce_logsumexp,
    reduce_max,
    reduce_mean,
    reduce_min,
    reduce_prod,
    reduce_sum,
)
from graphflow.ops.state_ops import (
    Variable,
    assign,
    assign_add,
    assign_sub,
    global_variables,
    global_variables_initializer,
    initialize_all_variables,
    trainable_variables,
    variables_initializer,
)
from graphflow.runtime import InteractiveSession, Session
from graphflow.shapes import Shape, TensorShape


def to_dot(
    fetches: object = None,
    feeds: object = (),
    optimized: bool = False,
    level: str = "O2",
    graph: Graph | None = None,
) -> str:
    """Returns Graphviz DOT text of a graph, as built or as the compiler optimizes it.

    Nodes show op type, name, dtype and shape; name scopes are clusters; an
    optimized graph shows each fused op as a cluster of its body.

    Args:
      fetches: a Tensor, an Operation, a name, or a list/tuple of them; only
        what they need given `feeds` is drawn. None: the whole graph.
      feeds: the tensors (or names) that will be fed.
      optimized: draw the graph after `optimize(fetches, feeds, level)`.
      level: "O0", "O1" or "O2" (used when `optimized`).
      graph: the graph (default: the fetches' graph, else the default graph).

    Returns:
      The DOT text (deterministic for a given graph).

    Raises:
      InvalidArgumentError: an unknown level, or fetches/feeds not in the graph.
    """
    # Imported here: the core never imports the compiler at import time.
    from graphflow.compiler.dot import to_dot as _to_dot

    return _to_dot(fetches, feeds, optimized=optimized, level=level, graph=graph)


newaxis = None
__version__ = "0.1.0"

__all__ = [name for name in dir() if not name.startswith("_")]
