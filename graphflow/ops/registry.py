"""The op registry: one declaration per op type, and `apply_op`, which adds ops to a graph.

An `OpDef` holds every fact about an op type side by side: its inputs and
attributes, dtype and shape inference, the NumPy reference that the
interpreter runs, its kind (which the compiler's fusion reads), and its
gradient. The compiler keeps its own table of lowering rules keyed by the
same op type names.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

import numpy as np

from graphflow import errors
from graphflow.dtypes import DType, as_dtype
from graphflow.graph import Graph, Operation, Tensor, get_default_graph
from graphflow.shapes import Shape
from graphflow.source import user_location

# Kinds, read by the compiler: how an op's output relates to its inputs.
ELEMENTWISE = "elementwise"  # out[i] = f(in_0[bcast(i)], ...): fusable into loops
REDUCTION = "reduction"  # reduces axes of its one input
CONTRACTION = "contraction"  # matmul, conv2d: the producers of GEMM epilogues
VIEW = "view"  # reshape-like: no arithmetic, output is a re-indexing of the input
STRUCTURED = "structured"  # anything else with a kernel of its own (softmax, gather, ...)
SOURCE = "source"  # no inputs that are computed: constants, placeholders
STATE = "state"  # reads or writes session state: variables, assigns
RANDOM = "random"  # draws random numbers: never folded, never merged by CSE
CONTROL = "control"  # no value: NoOp
FUSED = "fused"  # a region of other ops made one node by the compiler's fusion pass

KINDS = (
    ELEMENTWISE,
    REDUCTION,
    CONTRACTION,
    VIEW,
    STRUCTURED,
    SOURCE,
    STATE,
    RANDOM,
    CONTROL,
    FUSED,
)


class InferenceError(Exception):
    """Raised by shape and dtype rules; `apply_op` turns it into an InvalidArgumentError."""

    def __init__(self, what: str, got: str | None = None, expected: str | None = None) -> None:
        super().__init__(what)
        self.what = what
        self.got = got
        self.expected = expected


class ExecutionContext(Protocol):
    """What a stateful reference kernel may ask of the session that runs it."""

    def read_variable(self, op: Operation) -> np.ndarray: ...

    def write_variable(
        self, op: Operation, value: np.ndarray, validate_shape: bool = True
    ) -> np.ndarray: ...

    def update_variable(
        self, op: Operation, update: Callable[[np.ndarray], np.ndarray]
    ) -> np.ndarray: ...

    def rng(self, op: Operation) -> np.random.Generator: ...


ShapeRule = Callable[[list[Shape], Mapping[str, Any]], list[Shape]]
DTypeRule = Callable[[list[DType], Mapping[str, Any]], list[DType]]
Reference = Callable[..., Any]
StatefulReference = Callable[[ExecutionContext, Operation, list[np.ndarray]], list[np.ndarray]]
GradientRule = Callable[[Operation, list[Any]], list[Any]]


def same_dtype(dtypes: list[DType], attrs: Mapping[str, Any]) -> list[DType]:
    """The default dtype rule: one output with the first input's dtype."""
    return [dtypes[0]]


@dataclasses.dataclass(frozen=True)
class OpDef:
    """Everything about one op type.

    Attributes:
      name: the op type, e.g. "Add" (TF1's op type names where TF1 has one).
      kind: one of KINDS; the compiler's fusion reads it.
      shape: rule from input shapes and attrs to output shapes. Inputs of
        unknown rank never reach it unless `unknown_rank_ok`; the outputs are
        then of unknown rank.
      dtype: rule from input dtypes and attrs to output dtypes.
      reference: the NumPy kernel, `reference(*inputs, **attrs)`, returning
        an array (one output) or a tuple of arrays; results must have exactly
        the inferred dtypes.
      stateful_reference: instead of `reference`, for ops that read or write
        session state or draw random numbers.
      num_outputs: int, or a function of the attrs.
      gradient: the gradient rule `grad(op, output_grads) -> input_grads`,
        filled in by graphflow's autodiff; None until then.
      differentiable: False for ops whose outputs carry no gradient (argmax,
        comparisons, integer results); asking for one raises an error.
      unknown_rank_ok: the shape rule handles inputs of unknown rank itself.
      ref_inputs: indices of inputs that name a variable rather than read
        its value (the variable input of assign ops); the producer of such
        an input need not run before the op.
      doc: one line for docs/ops.md.
    """

    name: str
    kind: str
    shape: ShapeRule
    dtype: DTypeRule = same_dtype
    reference: Reference | None = None
    stateful_reference: StatefulReference | None = None
    num_outputs: int | Callable[[Mapping[str, Any]], int] = 1
    gradient: GradientRule | None = None
    differentiable: bool = True
    unknown_rank_ok: bool = False
    ref_inputs: tuple[int, ...] = ()
    doc: str = ""

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"op {self.name}: unknown kind {self.kind!r}")
        if (self.reference is None) == (self.stateful_reference is None) and self.kind != CONTROL:
            raise ValueError(f"op {self.name}: give exactly one of reference, stateful_reference")

    @property
    def stateful(self) -> bool:
        """True if running the op depends on or changes more than its inputs."""
        return self.kind in (STATE, RANDOM)

    def output_count(self, attrs: Mapping[str, Any]) -> int:
        return self.num_outputs(attrs) if callable(self.num_outputs) else self.num_outputs


_REGISTRY: dict[str, OpDef] = {}


def register(op_def: OpDef) -> OpDef:
    """Adds an op declaration to the registry. Each op type is declared once."""
    if op_def.name in _REGISTRY:
        raise ValueError(f"op type {op_def.name!r} is declared twice")
    _REGISTRY[op_def.name] = op_def
    return op_def


def defop(name: str, kind: str, shape: ShapeRule, **fields: Any) -> OpDef:
    """Declares and registers an op: `defop("Relu", ELEMENTWISE, shape_rule, reference=...)`."""
    return register(OpDef(name=name, kind=kind, shape=shape, **fields))


def set_gradient(op_type: str, gradient: GradientRule) -> None:
    """Installs the gradient rule of a declared op (used by graphflow's autodiff)."""
    op_def = get_op_def(op_type)
    _REGISTRY[op_type] = dataclasses.replace(op_def, gradient=gradient)


def get_op_def(op_type: str) -> OpDef:
    """The declaration of `op_type`.

    Raises:
      NotFoundError: for an op type that is not registered.
    """
    try:
        return _REGISTRY[op_type]
    except KeyError:
        raise errors.NotFoundError(f"op type {op_type!r} is not registered") from None


def registered_ops() -> dict[str, OpDef]:
    """A copy of the registry: op type -> declaration."""
    return dict(_REGISTRY)


# -- attributes ----------------------------------------------------------------------------
def freeze_attr(value: Any) -> Any:
    """Makes an attribute value immutable: lists become tuples, arrays read-only."""
    if isinstance(value, list | tuple):
        return tuple(freeze_attr(v) for v in value)
    if isinstance(value, np.ndarray):
        if value.flags.writeable:
            value = value.copy()
            value.flags.writeable = False
        return value
    if isinstance(value, np.generic):
        return value.item()
    return value


# -- adding an op to the graph -------------------------------------------------------------
def apply_op(
    op_type: str,
    inputs: Sequence[Tensor],
    attrs: Mapping[str, Any] | None = None,
    name: str | None = None,
    control_inputs: Sequence[Operation] = (),
    location: tuple[str, int] | None = None,
    graph: Graph | None = None,
    unique: bool = True,
) -> Operation:
    """Creates an op of `op_type` in the inputs' graph (else the default graph).

    Infers the output dtypes and shapes; a mismatch raises at construction,
    naming the op and the user's line.

    Raises:
      InvalidArgumentError: inputs of another graph, or failed inference.
    """
    op_def = get_op_def(op_type)
    if location is None:
        location = user_location()
    attrs = {k: freeze_attr(v) for k, v in (attrs or {}).items()}
    if graph is None:
        graph = inputs[0].graph if inputs else get_default_graph()
    display_name = name or op_type
    for i, t in enumerate(inputs):
        if not isinstance(t, Tensor):
            raise errors.InvalidArgumentError(
                errors.op_message(
                    op_type,
                    display_name,
                    location,
                    f"input {i} is not a Tensor",
                    got=type(t).__name__,
                    expected="a Tensor",
                )
            )
        if t.graph is not graph:
            raise errors.InvalidArgumentError(
                errors.op_message(
                    op_type,
                    display_name,
                    location,
                    f"input {i} ({t.name}) belongs to another graph",
                    expected="all inputs from the same graph",
                )
            )
    specs = infer(
        op_def, [t.dtype for t in inputs], [t.shape for t in inputs], attrs, display_name, location
    )
    if name is None:
        name = op_type
    if not _valid_op_name(name):
        raise errors.InvalidArgumentError(
            errors.op_message(
                op_type,
                name,
                location,
                "invalid op name",
                got=repr(name),
                expected="letters, digits, '_', '.', '-', '/'",
            )
        )
    return graph._create_op(
        op_type, inputs, attrs, specs, name, location, control_inputs, unique=unique
    )


def infer(
    op_def: OpDef,
    dtypes: list[DType],
    shapes: list[Shape],
    attrs: Mapping[str, Any],
    name: str,
    location: tuple[str, int] | None,
) -> list[tuple[DType, Shape]]:
    """Runs an op's dtype and shape rules; errors name the op and the user's line."""
    n_out = op_def.output_count(attrs)
    try:
        out_dtypes = op_def.dtype(dtypes, attrs)
        if not op_def.unknown_rank_ok and any(s.rank is None for s in shapes):
            out_shapes = [Shape(None)] * n_out
        else:
            out_shapes = op_def.shape(shapes, attrs)
    except InferenceError as e:
        raise errors.InvalidArgumentError(
            errors.op_message(op_def.name, name, location, e.what, e.got, e.expected)
        ) from None
    except ValueError as e:  # e.g. broadcast_shapes
        raise errors.InvalidArgumentError(
            errors.op_message(
                op_def.name,
                name,
                location,
                str(e),
                got="inputs of shapes " + ", ".join(str(s) for s in shapes),
            )
        ) from None
    out_shapes = [s if isinstance(s, Shape) else Shape(s) for s in out_shapes]
    if len(out_dtypes) != n_out or len(out_shapes) != n_out:
        raise errors.InternalError(f"op {op_def.name}: inference gave the wrong output count")
    return list(zip(out_dtypes, out_shapes))


def _valid_op_name(name: str) -> bool:
    from graphflow.graph import _VALID_NAME

    return bool(_VALID_NAME.match(name))


def fail(what: str, got: str | None = None, expected: str | None = None) -> InferenceError:
    """Shorthand for rules: `raise fail("...", got=..., expected=...)`."""
    return InferenceError(what, got, expected)


def dtype_of(value: Any) -> DType:
    return as_dtype(value)
