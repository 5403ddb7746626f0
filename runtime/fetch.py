"""Fetch structures: flatten any nesting of fetches to a list, and rebuild the results.

`Session.run` accepts a Tensor, an Operation, a name, or any nesting of
lists, tuples, namedtuples and dicts of them, and returns the same structure
with a NumPy array for each tensor and None for each operation.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from graphflow import errors
from graphflow.graph import Graph, Operation, Tensor


class FetchStructure:
    """A fetch structure resolved against a graph.

    Attributes:
      elements: the distinct graph elements to compute, in first-seen order.
      rebuild: turns the values of `elements` (same order) into the user's structure.
    """

    def __init__(self, graph: Graph, fetches: Any) -> None:
        self.elements: list[Tensor | Operation] = []
        self._index: dict[Tensor | Operation, int] = {}
        self.rebuild: Callable[[list[Any]], Any] = self._build(graph, fetches)

    def _leaf(self, graph: Graph, fetch: Any) -> Callable[[list[Any]], Any]:
        try:
            element = graph.as_graph_element(fetch)
        except errors.InvalidArgumentError as e:
            raise errors.InvalidArgumentError(f"cannot fetch {fetch!r}: {e.message}") from None
        except errors.NotFoundError as e:
            raise errors.NotFoundError(f"cannot fetch {fetch!r}: {e.message}") from None
        index = self._index.get(element)
        if index is None:
            index = self._index[element] = len(self.elements)
            self.elements.append(element)
        if isinstance(element, Operation):
            return lambda values: None
        return lambda values: values[index]

    def _build(self, graph: Graph, fetches: Any) -> Callable[[list[Any]], Any]:
        if fetches is None:
            raise errors.InvalidArgumentError(
                "fetch argument None is invalid; expected a Tensor, an Operation, a name, "
                "or a list/tuple/dict of them"
            )
        if isinstance(fetches, Mapping):
            keys = list(fetches.keys())
            parts = [self._build(graph, fetches[k]) for k in keys]
            kind = type(fetches)

            def rebuild_mapping(values: list[Any]) -> Any:
                items = [(k, p(values)) for k, p in zip(keys, parts)]
                try:
                    return kind(items)
                except TypeError:
                    return dict(items)

            return rebuild_mapping
        if isinstance(fetches, tuple) and hasattr(fetches, "_fields"):
            parts = [self._build(graph, f) for f in fetches]
            kind = type(fetches)
            return lambda values: kind(*[p(values) for p in parts])
        if isinstance(fetches, list | tuple):
            parts = [self._build(graph, f) for f in fetches]
            kind = type(fetches)
            return lambda values: kind(p(values) for p in parts)
        return self._leaf(graph, fetches)
