"""The graph IR: Graph, Operation and Tensor, and the default-graph stack.

A Graph is append-only: operations are added in creation order and never
removed or changed, so creation order is a topological order and anything a
session compiled from a graph stays valid as the graph grows.
"""

from __future__ import annotations

import contextlib
import re
import threading
from collections.abc import Iterator, Mapping, Sequence
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, ClassVar

from graphflow import errors
from graphflow.dtypes import DType
from graphflow.shapes import Shape, as_shape

if TYPE_CHECKING:
    from collections.abc import Callable

_VALID_NAME = re.compile(r"^[A-Za-z0-9.][A-Za-z0-9_.\-/>]*$")
_TENSOR_NAME = re.compile(r"^(.+):(\d+)$")


class Tensor:
    """A symbolic value: output `value_index` of the Operation `op`.

    A Tensor has a dtype and a static shape (dims may be None) but no value;
    a Session computes its value. Python operators build ops in the tensor's
    graph: `+ - * / // % ** @`, unary `-`, `abs()`, `< <= > >=` and `[]`.
    `==` compares identity, as in TF1 graph mode; use `gf.equal` for values.
    """

    __slots__ = ("__weakref__", "_dtype", "_op", "_shape", "_value_index")

    # Set by graphflow.ops when the op modules load: operator name -> function.
    _operators: ClassVar[dict[str, Callable[..., Tensor]]] = {}

    def __init__(self, op: Operation, value_index: int, dtype: DType, shape: Shape) -> None:
        self._op = op
        self._value_index = value_index
        self._dtype = dtype
        self._shape = shape

    @property
    def op(self) -> Operation:
        return self._op

    @property
    def value_index(self) -> int:
        return self._value_index

    @property
    def dtype(self) -> DType:
        return self._dtype

    @property
    def shape(self) -> Shape:
        return self._shape

    @property
    def graph(self) -> Graph:
        return self._op.graph

    @property
    def name(self) -> str:
        return f"{self._op.name}:{self._value_index}"

    @property
    def device(self) -> str:
        return ""

    def get_shape(self) -> Shape:
        return self._shape

    def set_shape(self, shape: Any) -> None:
        """Refines the static shape with `shape` (TF1 semantics: merge, never widen).

        Raises:
          InvalidArgumentError: if `shape` is not compatible with the current shape.
        """
        try:
            self._shape = self._shape.merge_with(as_shape(shape))
        except ValueError as e:
            raise errors.InvalidArgumentError(
                errors.op_message(
                    self._op.type,
                    self._op.name,
                    self._op.location,
                    f"set_shape on {self.name} failed",
                    got=str(as_shape(shape)),
                    expected=f"a shape compatible with {self._shape}",
                ),
                self._op,
            ) from e

    def consumers(self) -> list[Operation]:
        return [op for op in self.graph.get_operations() if self in op.inputs]

    def eval(self, feed_dict: Mapping[Any, Any] | None = None, session: Any = None) -> Any:
        """Runs the graph to compute this tensor in `session` (default: the default session)."""
        return _session_for(session).run(self, feed_dict=feed_dict)

    def __repr__(self) -> str:
        return f"<gf.Tensor '{self.name}' shape={self._shape} dtype={self._dtype.name}>"

    # `==` and hash are object identity, as in TF1 graph mode; they are
    # inherited from `object` (not redefined) because the C versions keep
    # dict lookups keyed by tensors fast on the dispatch path.

    def __bool__(self) -> bool:
        raise TypeError(
            f"using the symbolic tensor {self.name} as a Python bool is not allowed: it has no "
            "value until a Session runs it; use gf.where or gf.cond-free arithmetic instead"
        )

    def __iter__(self) -> Iterator[Tensor]:
        raise TypeError(
            f"the symbolic tensor {self.name} is not iterable; use gf.split or indexing instead"
        )

    def __len__(self) -> int:
        raise TypeError(f"len() of the symbolic tensor {self.name}; use gf.shape or .shape")

    def __array__(self, *args: Any, **kwargs: Any) -> Any:
        raise TypeError(
            f"cannot convert the symbolic tensor {self.name} to a NumPy array; "
            "run it in a Session to get its value"
        )

    # Operators: each forwards to the function graphflow.ops registered for it.
    def __add__(self, other: Any) -> Tensor:
        return Tensor._operators["add"](self, other)

    def __radd__(self, other: Any) -> Tensor:
        return Tensor._operators["add"](other, self)

    def __sub__(self, other: Any) -> Tensor:
        return Tensor._operators["subtract"](self, other)

    def __rsub__(self, other: Any) -> Tensor:
        return Tensor._operators["subtract"](other, self)

    def __mul__(self, other: Any) -> Tensor:
        return Tensor._operators["multiply"](self, other)

    def __rmul__(self, other: Any) -> Tensor:
        return Tensor._operators["multiply"](other, self)

    def __truediv__(self, other: Any) -> Tensor:
        return Tensor._operators["divide"](self, other)

    def __rtruediv__(self, other: Any) -> Tensor:
        return Tensor._operators["divide"](other, self)

    def __floordiv__(self, other: Any) -> Tensor:
        return Tensor._operators["floordiv"](self, other)

    def __rfloordiv__(self, other: Any) -> Tensor:
        return Tensor._operators["floordiv"](other, self)

    def __mod__(self, other: Any) -> Tensor:
        return Tensor._operators["mod"](self, other)

    def __rmod__(self, other: Any) -> Tensor:
        return Tensor._operators["mod"](other, self)

    def __pow__(self, other: Any) -> Tensor:
        return Tensor._operators["pow"](self, other)

    def __rpow__(self, other: Any) -> Tensor:
        return Tensor._operators["pow"](other, self)

    def __matmul__(self, other: Any) -> Tensor:
        return Tensor._operators["matmul"](self, other)

    def __rmatmul__(self, other: Any) -> Tensor:
        return Tensor._operators["matmul"](other, self)

    def __neg__(self) -> Tensor:
        return Tensor._operators["negative"](self)

    def __pos__(self) -> Tensor:
        return self

    def __abs__(self) -> Tensor:
        return Tensor._operators["abs"](self)

    def __invert__(self) -> Tensor:
        return Tensor._operators["logical_not"](self)

    def __and__(self, other: Any) -> Tensor:
        return Tensor._operators["logical_and"](self, other)

    def __rand__(self, other: Any) -> Tensor:
        return Tensor._operators["logical_and"](other, self)

    def __or__(self, other: Any) -> Tensor:
        return Tensor._operators["logical_or"](self, other)

    def __ror__(self, other: Any) -> Tensor:
        return Tensor._operators["logical_or"](other, self)

    def __lt__(self, other: Any) -> Tensor:
        return Tensor._operators["less"](self, other)

    def __le__(self, other: Any) -> Tensor:
        return Tensor._operators["less_equal"](self, other)

    def __gt__(self, other: Any) -> Tensor:
        return Tensor._operators["greater"](self, other)

    def __ge__(self, other: Any) -> Tensor:
        return Tensor._operators["greater_equal"](self, other)

    def __getitem__(self, key: Any) -> Tensor:
        return Tensor._operators["getitem"](self, key)


class Operation:
    """A node of the graph: an op type applied to input tensors with attributes.

    Attributes are immutable and hashable. `location` is the (file, line) of
    the user's code that created the op; every error about the op names it.
    """

    __slots__ = (
        "__weakref__",
        "_attrs",
        "_control_inputs",
        "_graph",
        "_id",
        "_inputs",
        "_location",
        "_name",
        "_outputs",
        "_type",
    )

    def __init__(
        self,
        graph: Graph,
        op_type: str,
        name: str,
        inputs: Sequence[Tensor],
        attrs: Mapping[str, Any],
        control_inputs: Sequence[Operation],
        location: tuple[str, int] | None,
        op_id: int,
    ) -> None:
        self._graph = graph
        self._type = op_type
        self._name = name
        self._inputs = tuple(inputs)
        self._attrs = MappingProxyType(dict(attrs))
        self._control_inputs = tuple(control_inputs)
        self._location = location
        self._id = op_id
        self._outputs: tuple[Tensor, ...] = ()

    @property
    def graph(self) -> Graph:
        return self._graph

    @property
    def type(self) -> str:
        return self._type

    @property
    def name(self) -> str:
        return self._name

    @property
    def inputs(self) -> tuple[Tensor, ...]:
        return self._inputs

    @property
    def outputs(self) -> tuple[Tensor, ...]:
        return self._outputs

    @property
    def attrs(self) -> Mapping[str, Any]:
        return self._attrs

    @property
    def control_inputs(self) -> tuple[Operation, ...]:
        return self._control_inputs

    @property
    def location(self) -> tuple[str, int] | None:
        """(file, line) of the user's code that created this op."""
        return self._location

    @property
    def id(self) -> int:
        """Position in the graph's creation order (a topological order)."""
        return self._id

    @property
    def device(self) -> str:
        return ""

    def get_attr(self, name: str) -> Any:
        try:
            return self._attrs[name]
        except KeyError:
            raise errors.NotFoundError(
                errors.op_message(
                    self._type,
                    self._name,
                    self._location,
                    f"no attribute {name!r}",
                    expected="one of " + (", ".join(sorted(self._attrs)) or "(none)"),
                ),
                self,
            ) from None

    def values(self) -> tuple[Tensor, ...]:
        return self._outputs

    def run(self, feed_dict: Mapping[Any, Any] | None = None, session: Any = None) -> None:
        """Runs this op in `session` (default: the default session)."""
        _session_for(session).run(self, feed_dict=feed_dict)

    def error(
        self,
        cls: type[errors.GraphflowError],
        what: str,
        got: str | None = None,
        expected: str | None = None,
    ) -> errors.GraphflowError:
        """An exception of type `cls` about this op, in the one message format."""
        return cls(
            errors.op_message(self._type, self._name, self._location, what, got, expected), self
        )

    def __repr__(self) -> str:
        return f"<gf.Operation '{self._name}' type={self._type}>"


class Graph:
    """A dataflow graph: operations in creation order, names, scopes, collections.

    Use `with graph.as_default():` to build into a graph other than the
    default one. Graph building is thread-safe.
    """

    def __init__(self) -> None:
        self._ops: list[Operation] = []
        self._ops_by_name: dict[str, Operation] = {}
        self._names_in_use: dict[str, int] = {}
        self._finalized = False
        self._collections: dict[str, list[Any]] = {}
        self._lock = threading.RLock()
        self._local = threading.local()
        self.seed: int | None = None

    # -- per-thread building state --------------------------------------------------------
    @property
    def _name_stack(self) -> str:
        return getattr(self._local, "name_stack", "")

    @_name_stack.setter
    def _name_stack(self, value: str) -> None:
        self._local.name_stack = value

    @property
    def _control_stack(self) -> list[list[Operation] | None]:
        stack = getattr(self._local, "control_stack", None)
        if stack is None:
            stack = self._local.control_stack = []
        return stack

    # -- default graph ---------------------------------------------------------------------
    @contextlib.contextmanager
    def as_default(self) -> Iterator[Graph]:
        """Makes this graph the default graph of the current thread inside the `with`."""
        stack = _default_graph_stack()
        stack.append(self)
        try:
            yield self
        finally:
            stack.pop()

    # -- names -----------------------------------------------------------------------------
    def unique_name(self, name: str, mark_as_used: bool = True) -> str:
        """`name` inside the current name scope, made unique with a _1, _2, ... suffix."""
        if self._name_stack:
            name = self._name_stack + "/" + name
        key = name.lower()
        count = self._names_in_use.get(key, 0)
        if mark_as_used:
            self._names_in_use[key] = count + 1
        if count > 0:
            base = name
            while True:
                name = f"{base}_{count}"
                if name.lower() not in self._names_in_use:
                    break
                count += 1
            if mark_as_used:
                self._names_in_use[name.lower()] = 1
        return name

    @contextlib.contextmanager
    def name_scope(self, name: str | None) -> Iterator[str]:
        """Opens a name scope: ops created inside are named "scope/op".

        Yields the scope string ending in "/". A name ending in "/" re-enters
        that exact scope; None or "" resets to the top level.
        """
        old = self._name_stack
        if not name:
            new = ""
        elif name.endswith("/"):
            new = name[:-1]
        else:
            if not _VALID_NAME.match(name):
                raise errors.InvalidArgumentError(
                    f"invalid name scope {name!r}: expected letters, digits, '_', '.', '-'"
                )
            with self._lock:
                new = self.unique_name(name)
        self._name_stack = new
        try:
            yield new + "/" if new else ""
        finally:
            self._name_stack = old

    def get_name_scope(self) -> str:
        return self._name_stack

    # -- control dependencies --------------------------------------------------------------
    @contextlib.contextmanager
    def control_dependencies(self, control_inputs: Sequence[Any] | None) -> Iterator[None]:
        """Ops created inside run only after every op (or tensor's op) in `control_inputs`.

        `None` clears the control dependencies of the enclosing scopes.
        """
        if control_inputs is None:
            self._control_stack.append(None)
        else:
            ops: list[Operation] = []
            for c in control_inputs:
                element = self.as_graph_element(c)
                ops.append(element.op if isinstance(element, Tensor) else element)
            self._control_stack.append(ops)
        try:
            yield
        finally:
            self._control_stack.pop()

    def _current_control_inputs(self) -> list[Operation]:
        out: list[Operation] = []
        for frame in reversed(self._control_stack):
            if frame is None:
                break
            out.extend(frame)
        return list(dict.fromkeys(out))

    # -- adding ops ------------------------------------------------------------------------
    def finalize(self) -> None:
        """Makes the graph read-only: adding an op afterwards raises an error."""
        self._finalized = True

    @property
    def finalized(self) -> bool:
        return self._finalized

    def _create_op(
        self,
        op_type: str,
        inputs: Sequence[Tensor],
        attrs: Mapping[str, Any],
        output_specs: Sequence[tuple[DType, Shape]],
        name: str,
        location: tuple[str, int] | None,
        extra_control_inputs: Sequence[Operation] = (),
        unique: bool = True,
    ) -> Operation:
        """Adds an op. Callers (graphflow.ops.registry.apply_op) have validated everything."""
        with self._lock:
            if self._finalized:
                raise errors.FailedPreconditionError(
                    errors.op_message(
                        op_type,
                        name,
                        location,
                        "the graph is finalized and cannot be modified",
                        expected="ops to be added before Graph.finalize() "
                        "(a Session may have finalized it)",
                    )
                )
            full_name = self.unique_name(name) if unique else name
            controls = self._current_control_inputs()
            for c in extra_control_inputs:
                if c not in controls:
                    controls.append(c)
            op = Operation(
                self, op_type, full_name, inputs, attrs, controls, location, len(self._ops)
            )
            op._outputs = tuple(
                Tensor(op, i, dtype, shape) for i, (dtype, shape) in enumerate(output_specs)
            )
            self._ops.append(op)
            self._ops_by_name[full_name] = op
            return op

    def _replace_output(self, op: Operation, index: int, tensor: Tensor) -> None:
        """Installs a Tensor subclass (e.g. a Variable) as output `index` of `op`."""
        outputs = list(op._outputs)
        outputs[index] = tensor
        op._outputs = tuple(outputs)

    # -- lookup ----------------------------------------------------------------------------
    def get_operations(self) -> list[Operation]:
        """All ops in creation order (a topological order)."""
        with self._lock:
            return list(self._ops)

    @property
    def version(self) -> int:
        """Number of ops; grows as ops are added (the graph is append-only)."""
        return len(self._ops)

    def get_operation_by_name(self, name: str) -> Operation:
        """The op named `name`.

        Raises:
          NotFoundError: if no op has that name.
          InvalidArgumentError: if `name` is a tensor name ("x:0").
        """
        if not isinstance(name, str):
            raise errors.InvalidArgumentError(
                f"an op name must be a str, not {type(name).__name__}"
            )
        op = self._ops_by_name.get(name)
        if op is not None:
            return op
        if _TENSOR_NAME.match(name) and _TENSOR_NAME.match(name).group(1) in self._ops_by_name:  # type: ignore[union-attr]
            raise errors.InvalidArgumentError(
                f"the name {name!r} refers to a Tensor, not an Operation; "
                "expected an op name without ':<index>'"
            )
        raise errors.NotFoundError(
            f"the name {name!r} refers to an Operation not in the graph"
            + _did_you_mean(name, self._ops_by_name)
        )

    def get_tensor_by_name(self, name: str) -> Tensor:
        """The tensor named `name` ("op_name:index").

        Raises:
          NotFoundError: if the op does not exist or has no such output.
          InvalidArgumentError: if `name` has no ":index" part.
        """
        if not isinstance(name, str):
            raise errors.InvalidArgumentError(
                f"a tensor name must be a str, not {type(name).__name__}"
            )
        match = _TENSOR_NAME.match(name)
        if match is None:
            hint = (
                f" (it names an Operation; its first output is {name + ':0'!r})"
                if name in self._ops_by_name
                else ""
            )
            raise errors.InvalidArgumentError(
                f"the name {name!r} is not a tensor name{hint}; "
                "expected the form '<op_name>:<output_index>'"
            )
        op_name, index = match.group(1), int(match.group(2))
        op = self._ops_by_name.get(op_name)
        if op is None:
            raise errors.NotFoundError(
                f"the name {name!r} refers to a Tensor which does not exist: the operation "
                f"{op_name!r} is not in the graph" + _did_you_mean(op_name, self._ops_by_name)
            )
        if index >= len(op.outputs):
            raise errors.NotFoundError(
                f"the name {name!r} refers to a Tensor which does not exist: {op_name!r} "
                f"has {len(op.outputs)} output(s)"
            )
        return op.outputs[index]

    def as_graph_element(self, obj: Any) -> Tensor | Operation:
        """Resolves a Tensor, Operation, Variable or name ("x:0" or "x") in this graph.

        Raises:
          InvalidArgumentError: for an object of another graph or of an unsupported type.
          NotFoundError: for an unknown name.
        """
        if hasattr(obj, "_as_graph_element"):
            obj = obj._as_graph_element()
        if isinstance(obj, (Tensor, Operation)):
            if obj.graph is not self:
                raise errors.InvalidArgumentError(
                    f"{obj!r} belongs to another graph than the one used here"
                )
            return obj
        if isinstance(obj, str):
            if ":" in obj:
                return self.get_tensor_by_name(obj)
            return self.get_operation_by_name(obj)
        raise errors.InvalidArgumentError(
            f"cannot interpret {obj!r} (a {type(obj).__name__}) as a graph element; "
            "expected a Tensor, an Operation, a Variable or a name string"
        )

    # -- collections -----------------------------------------------------------------------
    def add_to_collection(self, name: str, value: Any) -> None:
        with self._lock:
            self._collections.setdefault(name, []).append(value)

    def get_collection(self, name: str, scope: str | None = None) -> list[Any]:
        with self._lock:
            items = list(self._collections.get(name, []))
        if scope is None:
            return items
        pattern = re.compile(scope)
        return [i for i in items if pattern.match(getattr(i, "name", ""))]

    def get_all_collection_keys(self) -> list[str]:
        return sorted(self._collections)


def _did_you_mean(name: str, names: Mapping[str, Any]) -> str:
    import difflib

    close = difflib.get_close_matches(name, list(names), n=3)
    return f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""


# -- the default graph ---------------------------------------------------------------------
_global_default_graph: Graph | None = None
_thread_state = threading.local()


def _default_graph_stack() -> list[Graph]:
    stack = getattr(_thread_state, "stack", None)
    if stack is None:
        stack = _thread_state.stack = []
    return stack


def get_default_graph() -> Graph:
    """The innermost graph of `as_default()` on this thread, else the global default graph."""
    stack = _default_graph_stack()
    if stack:
        return stack[-1]
    global _global_default_graph
    if _global_default_graph is None:
        _global_default_graph = Graph()
    return _global_default_graph


def reset_default_graph() -> None:
    """Replaces the global default graph by a new, empty one.

    Raises:
      FailedPreconditionError: when called inside a `with graph.as_default()` block.
    """
    if _default_graph_stack():
        raise errors.FailedPreconditionError(
            "reset_default_graph() called inside a `with graph.as_default()` block; "
            "expected it to be called outside any such block"
        )
    global _global_default_graph
    _global_default_graph = Graph()


def name_scope(name: str | None) -> contextlib.AbstractContextManager[str]:
    """`get_default_graph().name_scope(name)`."""
    return get_default_graph().name_scope(name)


def control_dependencies(
    control_inputs: Sequence[Any] | None,
) -> contextlib.AbstractContextManager[None]:
    """`get_default_graph().control_dependencies(control_inputs)`."""
    return get_default_graph().control_dependencies(control_inputs)


# -- the default session, for Tensor.eval and Operation.run ---------------------------------
_default_session_stack = threading.local()


def push_default_session(session: Any) -> None:
    stack = getattr(_default_session_stack, "stack", None)
    if stack is None:
        stack = _default_session_stack.stack = []
    stack.append(session)


def pop_default_session(session: Any) -> None:
    stack = getattr(_default_session_stack, "stack", [])
    if stack and stack[-1] is session:
        stack.pop()


def get_default_session() -> Any:
    """The innermost session of a `with Session():` block on this thread, or None."""
    stack = getattr(_default_session_stack, "stack", None)
    return stack[-1] if stack else None


def _session_for(session: Any) -> Any:
    if session is not None:
        return session
    default = get_default_session()
    if default is None:
        raise errors.FailedPreconditionError(
            "no default session: expected eval()/run() inside a `with gf.Session():` block "
            "or an explicit session= argument"
        )
    return default
