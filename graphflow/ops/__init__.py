"""The op declarations, one module per family; importing this package registers them all."""

from graphflow.graph import Tensor
from graphflow.ops import (  # noqa: F401 - imported for their registrations
    array_ops,
    creation_ops,
    fused_ops,
    linalg_ops,
    math_ops,
    nn_ops,
    reduction_ops,
    state_ops,
)

# The Python operators of Tensor build these ops.
Tensor._operators.update(
    {
        "add": math_ops.add,
        "subtract": math_ops.subtract,
        "multiply": math_ops.multiply,
        "divide": math_ops.divide,
        "floordiv": math_ops.floordiv,
        "mod": math_ops.mod,
        "pow": math_ops.pow,
        "negative": math_ops.negative,
        "abs": math_ops.abs,
        "logical_not": math_ops.logical_not,
        "logical_and": math_ops.logical_and,
        "logical_or": math_ops.logical_or,
        "less": math_ops.less,
        "less_equal": math_ops.less_equal,
        "greater": math_ops.greater,
        "greater_equal": math_ops.greater_equal,
        "matmul": linalg_ops.matmul,
        "getitem": array_ops.getitem,
    }
)

from graphflow.ops import gradients_array, gradients_math, gradients_nn  # noqa: F401, E402 - the gradient rules, installed into the registry
