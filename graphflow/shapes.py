"""Static shapes whose dims (or whole rank) may be unknown, and broadcasting."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any


class Shape:
    """A static shape: a tuple of dims, each an int or None (unknown), or an unknown rank.

    `Shape(None)` has unknown rank; `Shape([None, 784])` has rank 2 with an
    unknown first dim. Shapes are immutable and hashable.
    """

    __slots__ = ("_dims",)

    def __init__(self, dims: Iterable[int | None] | Shape | None) -> None:
        if isinstance(dims, Shape):
            self._dims: tuple[int | None, ...] | None = dims._dims
        elif dims is None:
            self._dims = None
        else:
            out = []
            for d in dims:
                if d is None or (isinstance(d, int) and not isinstance(d, bool) and d == -1):
                    out.append(None)
                elif hasattr(d, "__index__") and not isinstance(d, bool) and int(d) >= 0:
                    out.append(int(d))
                else:
                    raise ValueError(f"a dim must be a non-negative int or None, not {d!r}")
            self._dims = tuple(out)

    @property
    def dims(self) -> tuple[int | None, ...] | None:
        return self._dims

    @property
    def rank(self) -> int | None:
        return None if self._dims is None else len(self._dims)

    ndims = rank

    @property
    def is_fully_defined(self) -> bool:
        return self._dims is not None and all(d is not None for d in self._dims)

    def as_list(self) -> list[int | None]:
        if self._dims is None:
            raise ValueError("as_list() is not defined on a shape of unknown rank")
        return list(self._dims)

    def num_elements(self) -> int | None:
        if not self.is_fully_defined:
            return None
        n = 1
        for d in self._dims:  # type: ignore[union-attr]
            n *= d  # type: ignore[operator]
        return n

    def is_compatible_with(self, other: Any) -> bool:
        other = as_shape(other)
        if self._dims is None or other._dims is None:
            return True
        if len(self._dims) != len(other._dims):
            return False
        return all(a is None or b is None or a == b for a, b in zip(self._dims, other._dims))

    def merge_with(self, other: Any) -> Shape:
        other = as_shape(other)
        if self._dims is None:
            return other
        if other._dims is None:
            return self
        if not self.is_compatible_with(other):
            raise ValueError(f"shapes {self} and {other} are not compatible")
        return Shape(a if a is not None else b for a, b in zip(self._dims, other._dims))

    def __len__(self) -> int:
        if self._dims is None:
            raise ValueError("len() of a shape of unknown rank")
        return len(self._dims)

    def __iter__(self) -> Iterator[int | None]:
        if self._dims is None:
            raise ValueError("cannot iterate over a shape of unknown rank")
        return iter(self._dims)

    def __getitem__(self, key: int | slice) -> Any:
        if self._dims is None:
            return Shape(None) if isinstance(key, slice) else None
        if isinstance(key, slice):
            return Shape(self._dims[key])
        return self._dims[key]

    def __eq__(self, other: object) -> bool:
        try:
            other = as_shape(other)
        except (TypeError, ValueError):
            return NotImplemented
        return self._dims == other._dims

    def __hash__(self) -> int:
        return hash(self._dims)

    def __repr__(self) -> str:
        return f"Shape({self})"

    def __str__(self) -> str:
        if self._dims is None:
            return "<unknown>"
        return (
            "("
            + ", ".join("?" if d is None else str(d) for d in self._dims)
            + (",)" if len(self._dims) == 1 else ")")
        )


TensorShape = Shape  # TF1's name


def as_shape(value: Any) -> Shape:
    """Converts a Shape, a list/tuple of ints and Nones, or None (unknown rank) to a Shape."""
    if isinstance(value, Shape):
        return value
    if value is None:
        return Shape(None)
    if isinstance(value, int):
        return Shape([value])
    return Shape(value)


def unknown() -> Shape:
    return Shape(None)


def scalar() -> Shape:
    return Shape(())


def broadcast_shapes(*shapes: Shape) -> Shape:
    """NumPy broadcasting of static shapes.

    A `None` dim against 1 stays None; against n > 1 it becomes n (a run-time
    value of any other size than 1 or n would fail the run-time check). Two
    `None`s stay None.

    Raises:
      ValueError: when two known dims differ and neither is 1.
    """
    if any(s.rank is None for s in shapes):
        return Shape(None)
    rank = max((s.rank for s in shapes), default=0)
    out: list[int | None] = []
    for i in range(rank):
        dim: int | None = 1
        for s in shapes:
            dims = s.dims
            assert dims is not None
            j = i - (rank - len(dims))
            if j < 0:
                continue
            d = dims[j]
            dim = _broadcast_dim(dim, d, shapes)
        out.append(dim)
    return Shape(out)


def _broadcast_dim(a: int | None, b: int | None, shapes: tuple[Shape, ...]) -> int | None:
    if a == 1:
        return b
    if b == 1:
        return a
    if a is None:
        return b if b is not None else None
    if b is None:
        return a
    if a != b:
        raise ValueError(
            "shapes " + " and ".join(str(s) for s in shapes) + " cannot be broadcast together"
        )
    return a
