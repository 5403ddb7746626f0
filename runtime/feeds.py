"""Checking feeds: every fed value against its tensor's dtype and static shape, before any work."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from graphflow import errors
from graphflow.graph import Graph, Operation, Tensor
from graphflow.ops.convert import cast_value


def resolve_feed_key(graph: Graph, key: Any) -> Tensor:
    """The tensor a feed_dict key names: a Tensor, a Variable, "name:0", or an op name.

    Raises:
      NotFoundError: an unknown name.
      InvalidArgumentError: a key of another type or another graph, or an op
        without exactly one output.
    """
    try:
        element = graph.as_graph_element(key)
    except errors.NotFoundError as e:
        raise errors.NotFoundError(f"cannot feed {key!r}: {e.message}") from None
    except errors.InvalidArgumentError as e:
        raise errors.InvalidArgumentError(f"cannot feed {key!r}: {e.message}") from None
    if isinstance(element, Operation):
        if len(element.outputs) != 1:
            raise errors.InvalidArgumentError(
                f"cannot feed the op {element.name!r}: it has {len(element.outputs)} outputs; "
                "expected a tensor name such as 'op:0'"
            )
        return element.outputs[0]
    return element


def check_feed(tensor: Tensor, value: Any) -> np.ndarray:
    """`value` as an array of the tensor's dtype, checked against its static shape.

    Safe conversions only: Python numbers and float64 arrays into float32 are
    fine; floats into an int placeholder, or numbers into a bool one, are not.

    Raises:
      InvalidArgumentError: naming the fed tensor, what came and what was expected.
    """
    op = tensor.op
    if isinstance(value, Tensor | Operation):
        raise op.error(
            errors.InvalidArgumentError,
            f"the value fed for {tensor.name} is a symbolic {type(value).__name__}",
            got=repr(value),
            expected="a NumPy array, a Python number or a (nested) list",
        )
    if isinstance(value, np.ndarray):
        array = value
    else:
        try:
            array = np.asarray(value)
        except (ValueError, TypeError) as e:
            raise op.error(
                errors.InvalidArgumentError,
                f"the value fed for {tensor.name} is not an array: {e}",
                expected=f"{tensor.dtype.name} values of shape {tensor.shape}",
            ) from None
    if array.dtype != tensor.dtype.np:
        if array.dtype == object or array.dtype.kind not in "biuf":
            raise op.error(
                errors.InvalidArgumentError,
                f"the value fed for {tensor.name} has the wrong dtype",
                got=str(array.dtype),
                expected=tensor.dtype.name,
            )
        try:
            array = cast_value(array, tensor.dtype, f"the value fed for {tensor.name}", strict=True)
        except errors.InvalidArgumentError as e:
            raise op.error(errors.InvalidArgumentError, e.message) from None
    if not tensor.shape.is_compatible_with(array.shape):
        raise op.error(
            errors.InvalidArgumentError,
            f"the value fed for {tensor.name} has the wrong shape",
            got=str(tuple(array.shape)),
            expected=str(tensor.shape),
        )
    return array


def check_feeds(graph: Graph, feed_dict: Mapping[Any, Any] | None) -> dict[Tensor, np.ndarray]:
    """Resolves and checks a whole feed_dict."""
    if not feed_dict:
        return {}
    if not isinstance(feed_dict, Mapping):
        raise errors.InvalidArgumentError(
            f"feed_dict must be a dict; got {type(feed_dict).__name__}"
        )
    out: dict[Tensor, np.ndarray] = {}
    for key, value in feed_dict.items():
        tensor = resolve_feed_key(graph, key)
        out[tensor] = check_feed(tensor, value)
    return out
