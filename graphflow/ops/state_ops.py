"""Variables and the ops that read and update them.

A variable's value lives in the Session, not in the graph. The VariableV2
op reads it; Assign, AssignAdd and AssignSub replace it. Their first input
is a reference to the variable (see OpDef.ref_inputs): the variable is not
read to run an Assign, so an initializer runs on an uninitialized variable.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from graphflow import errors
from graphflow.dtypes import DType, as_dtype
from graphflow.graph import Operation, Tensor, get_default_graph
from graphflow.ops.convert import convert_to_tensor
from graphflow.ops.registry import STATE, ExecutionContext, apply_op, defop, fail
from graphflow.shapes import Shape
from graphflow.source import user_location

GLOBAL_VARIABLES = "variables"
TRAINABLE_VARIABLES = "trainable_variables"


def _read_kernel(
    ctx: ExecutionContext, op: Operation, inputs: list[np.ndarray]
) -> list[np.ndarray]:
    return [ctx.read_variable(op)]


defop(
    "VariableV2",
    STATE,
    lambda shapes, attrs: [attrs["shape"]],
    dtype=lambda dtypes, attrs: [attrs["dtype"]],
    stateful_reference=_read_kernel,
    doc="a variable: reads its current value from the session",
)


def _assign_shape(shapes: list[Shape], attrs: Mapping[str, Any]) -> list[Shape]:
    var_shape, value_shape = shapes
    if attrs["validate_shape"] and not var_shape.is_compatible_with(value_shape):
        raise fail(
            "the value does not have the variable's shape",
            got=str(value_shape),
            expected=str(var_shape),
        )
    return [var_shape if attrs["validate_shape"] else value_shape]


def _assign_dtype(in_dtypes: list[DType], attrs: Mapping[str, Any]) -> list[DType]:
    var, value = in_dtypes
    if var != value:
        raise fail(
            "the value's dtype differs from the variable's", got=value.name, expected=var.name
        )
    return [var]


def _update_kernel(update: Callable[[np.ndarray, np.ndarray], np.ndarray] | None) -> Any:
    def kernel(ctx: ExecutionContext, op: Operation, inputs: list[np.ndarray]) -> list[np.ndarray]:
        variable = op.inputs[0].op
        value = inputs[1]
        if update is None:
            return [ctx.write_variable(variable, value, op.attrs["validate_shape"])]
        # Read-modify-write is atomic: concurrent runs never lose an update.
        return [ctx.update_variable(variable, lambda current: update(current, value))]

    return kernel


for _name, _update, _doc in (
    ("Assign", None, "variable = value"),
    ("AssignAdd", np.add, "variable += value"),
    ("AssignSub", np.subtract, "variable -= value"),
):
    defop(
        _name,
        STATE,
        _assign_shape,
        dtype=_assign_dtype,
        stateful_reference=_update_kernel(_update),
        ref_inputs=(0,),
        differentiable=False,
        doc=_doc,
    )


class Variable(Tensor):
    """A tensor whose value persists in a Session across runs (TF1's tf.Variable).

    `Variable(initial_value)` creates the VariableV2 op (this tensor is its
    output) and its initializer, an Assign op. The value must be initialized
    in a session (`sess.run(gf.global_variables_initializer())`) before it is
    read; assign ops change it.

    Args:
      initial_value: a Tensor or a value convertible to one (or a callable
        returning one); its static shape must be fully known unless
        `validate_shape=False`.
      trainable: adds the variable to `trainable_variables()`.
      name: the op name (default "Variable", made unique).
      dtype: converts the initial value to this dtype (safely).

    Raises:
      InvalidArgumentError: an initial value of unknown shape, or missing.
    """

    def __init__(
        self,
        initial_value: Any = None,
        trainable: bool = True,
        collections: Sequence[str] | None = None,
        validate_shape: bool = True,
        caching_device: Any = None,
        name: str | None = None,
        variable_def: Any = None,
        dtype: Any = None,
        expected_shape: Any = None,
        import_scope: Any = None,
        constraint: Any = None,
        use_resource: Any = None,
        synchronization: Any = None,
        aggregation: Any = None,
        shape: Any = None,
    ) -> None:
        location = user_location()
        if initial_value is None:
            raise errors.InvalidArgumentError(
                errors.op_message(
                    "VariableV2",
                    name or "Variable",
                    location,
                    "initial_value is required",
                    got="None",
                    expected="a tensor or a value",
                )
            )
        graph = get_default_graph()
        with graph.name_scope(name or "Variable") as scope:
            if callable(initial_value):
                initial_value = initial_value()
            want = as_dtype(dtype) if dtype is not None else None
            initial = convert_to_tensor(initial_value, name="initial_value")
            if want is not None and initial.dtype != want:
                from graphflow.ops.math_ops import cast

                initial = cast(initial, want)
            var_shape = initial.shape if shape is None else Shape(shape)
            if validate_shape and not var_shape.is_fully_defined:
                raise errors.InvalidArgumentError(
                    errors.op_message(
                        "VariableV2",
                        scope[:-1],
                        location,
                        "the initial value must have a fully known shape",
                        got=str(var_shape),
                        expected="a shape without None dims (or validate_shape=False)",
                    )
                )
            op = apply_op(
                "VariableV2",
                [],
                {"shape": var_shape, "dtype": initial.dtype},
                name=scope[:-1],
                location=location,
                graph=graph,
                unique=False,
            )
            Tensor.__init__(self, op, 0, initial.dtype, var_shape)
            graph._replace_output(op, 0, self)
            self._initial_value = initial
            self._trainable = trainable
            self._initializer = apply_op(
                "Assign",
                [self, initial],
                {"validate_shape": validate_shape},
                name="Assign",
                location=location,
                graph=graph,
            )
        for key in collections or [GLOBAL_VARIABLES]:
            graph.add_to_collection(key, self)
        if trainable and TRAINABLE_VARIABLES not in (collections or []):
            graph.add_to_collection(TRAINABLE_VARIABLES, self)

    @property
    def initializer(self) -> Operation:
        """The Assign op that sets the variable to its initial value."""
        return self._initializer

    @property
    def initial_value(self) -> Tensor:
        return self._initial_value

    @property
    def trainable(self) -> bool:
        return self._trainable

    def value(self) -> Tensor:
        return self

    def read_value(self) -> Tensor:
        return self

    def initialized_value(self) -> Tensor:
        """The initial value; TF1 code uses it to initialize one variable from another."""
        return self._initial_value

    def assign(
        self,
        value: Any,
        use_locking: bool = False,
        name: str | None = None,
        read_value: bool = True,
    ) -> Tensor:
        return assign(self, value, name=name)

    def assign_add(
        self,
        delta: Any,
        use_locking: bool = False,
        name: str | None = None,
        read_value: bool = True,
    ) -> Tensor:
        return assign_add(self, delta, name=name)

    def assign_sub(
        self,
        delta: Any,
        use_locking: bool = False,
        name: str | None = None,
        read_value: bool = True,
    ) -> Tensor:
        return assign_sub(self, delta, name=name)

    def load(self, value: Any, session: Any = None) -> None:
        """Sets the value in `session` (default: the default session) without adding ops."""
        from graphflow.graph import _session_for

        _session_for(session)._load_variable(self, value)

    def __repr__(self) -> str:
        return f"<gf.Variable '{self.name}' shape={self.shape} dtype={self.dtype.name}>"


def _assign_op(
    op_type: str, ref: Any, value: Any, name: str | None, validate_shape: bool = True
) -> Tensor:
    if not isinstance(ref, Variable):
        raise errors.InvalidArgumentError(
            errors.op_message(
                op_type,
                name or op_type,
                user_location(),
                "the first argument must be a Variable",
                got=type(ref).__name__ if not isinstance(ref, Tensor) else ref.name,
                expected="a gf.Variable",
            )
        )
    try:
        v = convert_to_tensor(value, dtype=ref.dtype)
    except errors.InvalidArgumentError as e:
        raise errors.InvalidArgumentError(
            errors.op_message(
                op_type,
                name or op_type,
                user_location(),
                f"cannot use the value for {ref.name}: {e.message}",
            )
        ) from None
    attrs = {"validate_shape": validate_shape}
    return apply_op(op_type, [ref, v], attrs, name=name or op_type).outputs[0]


def assign(
    ref: Any,
    value: Any,
    validate_shape: bool | None = None,
    use_locking: Any = None,
    name: str | None = None,
) -> Tensor:
    """Sets the variable `ref` to `value`; gives the new value."""
    return _assign_op("Assign", ref, value, name, validate_shape is not False)


def assign_add(ref: Any, value: Any, use_locking: Any = None, name: str | None = None) -> Tensor:
    """Adds `value` to the variable `ref`; gives the new value."""
    return _assign_op("AssignAdd", ref, value, name)


def assign_sub(ref: Any, value: Any, use_locking: Any = None, name: str | None = None) -> Tensor:
    """Subtracts `value` from the variable `ref`; gives the new value."""
    return _assign_op("AssignSub", ref, value, name)


def global_variables(scope: str | None = None) -> list[Variable]:
    """The variables of the default graph, in creation order."""
    return get_default_graph().get_collection(GLOBAL_VARIABLES, scope)


def trainable_variables(scope: str | None = None) -> list[Variable]:
    """The trainable variables of the default graph, in creation order."""
    return get_default_graph().get_collection(TRAINABLE_VARIABLES, scope)


def variables_initializer(var_list: Sequence[Variable], name: str = "init") -> Operation:
    """An op that runs the initializers of `var_list`."""
    from graphflow.ops.creation_ops import group

    for v in var_list:
        if not isinstance(v, Variable):
            raise errors.InvalidArgumentError(
                f"variables_initializer: expected Variables; got {type(v).__name__}"
            )
    return group(*[v.initializer for v in var_list], name=name)


def global_variables_initializer() -> Operation:
    """An op that initializes every variable of the default graph."""
    return variables_initializer(global_variables(), name="init")


initialize_all_variables = global_variables_initializer
