"""The Optimizer base class: gradients, slot variables, and one update op per training step.

An optimizer turns (gradient, variable) pairs into an update op built from
ordinary graph ops (elementwise arithmetic and Assign/AssignAdd/AssignSub),
so that the compiler fuses a whole training step into one native call like
any other graph. A subclass states its update rule in `_apply_dense`, the
per-variable state it keeps in `_create_slots`, and anything to do once per
step after every variable was updated in `_finish` (as TF1's optimizers do).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from graphflow import errors
from graphflow.dtypes import DType, float32, float64
from graphflow.graph import Graph, Operation, Tensor
from graphflow.ops.convert import convert_to_tensor, is_tensor
from graphflow.ops.creation_ops import group
from graphflow.ops.state_ops import Variable, assign_add, trainable_variables
from graphflow.source import user_location

# TF1's gating constants: graphflow computes all gradients before any update
# (the compiler schedules the whole step), so every value behaves as GATE_GRAPH.
GATE_NONE = 0
GATE_OP = 1
GATE_GRAPH = 2

_FLOAT_DTYPES = (float32, float64)


class Optimizer:
    """Base class for optimizers (TF1's tf.train.Optimizer).

    Use a subclass such as `GradientDescentOptimizer` or `AdamOptimizer`:

    ```python
    opt = gf.train.AdamOptimizer(learning_rate=0.01)
    train_op = opt.minimize(loss, global_step=gf.train.get_or_create_global_step())
    ```

    `minimize` is `compute_gradients` followed by `apply_gradients`; call
    them separately to look at or change the gradients before applying them.
    The variables an optimizer creates (slots such as Adam's "m" and "v",
    and per-optimizer variables such as Adam's "beta1_power") are global,
    non-trainable variables: `gf.global_variables_initializer()` created
    after `minimize` initializes them, and `Saver` saves them.

    Args:
      use_locking: ignored (updates within one run never race in graphflow).
      name: the name scope of the ops the optimizer creates, and the name of
        its slot variables ("<variable>/<name>", "<variable>/<name>_1").
    """

    GATE_NONE = GATE_NONE
    GATE_OP = GATE_OP
    GATE_GRAPH = GATE_GRAPH

    def __init__(self, use_locking: bool, name: str) -> None:
        if not name:
            raise errors.InvalidArgumentError(
                f"{type(self).__name__}: the optimizer must have a name; got {name!r}"
            )
        self._use_locking = use_locking
        self._name = name
        # slot name -> {variable: slot variable}
        self._slots: dict[str, dict[Variable, Variable]] = {}
        # (name, graph) -> variable, for state shared by every variable (Adam's beta powers)
        self._non_slot: dict[tuple[str, Graph], Variable] = {}

    def get_name(self) -> str:
        """The optimizer's name."""
        return self._name

    # -- the public steps ------------------------------------------------------------------
    def minimize(
        self,
        loss: Tensor,
        global_step: Variable | None = None,
        var_list: Sequence[Variable] | None = None,
        gate_gradients: int = GATE_OP,
        aggregation_method: Any = None,
        colocate_gradients_with_ops: bool = False,
        name: str | None = None,
        grad_loss: Any = None,
    ) -> Operation:
        """Adds ops that update `var_list` to lower `loss` (one training step).

        Args:
          loss: a scalar float Tensor to minimize.
          global_step: optional integer Variable, incremented by one after
            the variables were updated.
          var_list: the Variables to update (default: `gf.trainable_variables()`).
          gate_gradients, aggregation_method, colocate_gradients_with_ops:
            accepted for TF1 compatibility; they do not change the result.
          name: the name scope of the update ops (default: the optimizer's name).
          grad_loss: optional Tensor holding the gradient of `loss`.

        Returns:
          An Operation that applies one update; run it with
          `sess.run(train_op, feed)` (or `sess.run([train_op, loss], feed)`).

        Raises:
          InvalidArgumentError: `loss` is not a float Tensor, a variable is
            not a gf.Variable, no variable to optimize, or no gradient from
            `loss` to any of the variables.
        """
        grads_and_vars = self.compute_gradients(
            loss,
            var_list=var_list,
            gate_gradients=gate_gradients,
            aggregation_method=aggregation_method,
            colocate_gradients_with_ops=colocate_gradients_with_ops,
            grad_loss=grad_loss,
        )
        if all(g is None for g, _ in grads_and_vars):
            raise self._error(
                "minimize",
                "No gradients provided for any variable, check your graph for ops that do "
                f"not support gradients, between the loss {loss.name} and the variables",
                got=_names(v for _, v in grads_and_vars),
                expected="a loss computed from at least one of the variables",
            )
        return self.apply_gradients(grads_and_vars, global_step=global_step, name=name)

    def compute_gradients(
        self,
        loss: Tensor,
        var_list: Sequence[Variable] | None = None,
        gate_gradients: int = GATE_OP,
        aggregation_method: Any = None,
        colocate_gradients_with_ops: bool = False,
        grad_loss: Any = None,
    ) -> list[tuple[Tensor | None, Variable]]:
        """The gradients of `loss` with respect to the variables in `var_list`.

        Args:
          loss: a float Tensor (usually a scalar) to minimize.
          var_list: the Variables (default: `gf.trainable_variables()` of the
            loss's graph).
          gate_gradients, aggregation_method, colocate_gradients_with_ops:
            accepted for TF1 compatibility.
          grad_loss: optional Tensor holding the gradient of `loss`.

        Returns:
          A list of (gradient, variable) pairs, in the order of `var_list`;
          the gradient is None for a variable `loss` does not depend on.

        Raises:
          InvalidArgumentError: `loss` is not a float Tensor, `var_list` is
            empty or holds something other than gf.Variables.
        """
        if not isinstance(loss, Tensor):
            raise self._error(
                "compute_gradients",
                "the loss must be a Tensor",
                got=type(loss).__name__,
                expected="a float Tensor",
            )
        if loss.dtype not in _FLOAT_DTYPES:
            raise self._error(
                "compute_gradients",
                f"cannot differentiate the loss {loss.name}",
                got=f"dtype {loss.dtype.name}",
                expected="float32 or float64",
            )
        if var_list is None:
            with loss.graph.as_default():
                var_list = trainable_variables()
        var_list = list(var_list)
        if not var_list:
            raise self._error(
                "compute_gradients",
                "No variables to optimize",
                got="an empty var_list (and no trainable variables)",
                expected="at least one gf.Variable",
            )
        for v in var_list:
            self._check_variable("compute_gradients", v)
        # Imported here: gradients builds on every op module, and the optimizer
        # must stay importable while the op modules import.
        from graphflow.gradients import gradients

        grads = gradients(loss, var_list, grad_ys=grad_loss)
        return list(zip(grads, var_list))

    def apply_gradients(
        self,
        grads_and_vars: Sequence[tuple[Any, Variable]],
        global_step: Variable | None = None,
        name: str | None = None,
    ) -> Operation:
        """Adds ops that apply the gradients to their variables (one training step).

        Pairs whose gradient is None are skipped, as in TF1.

        Args:
          grads_and_vars: (gradient, variable) pairs, e.g. from
            `compute_gradients`; a gradient is a Tensor (or data convertible
            to one) of the variable's dtype and shape, or None.
          global_step: optional integer Variable, incremented by one after
            every variable was updated.
          name: the name scope of the update ops (default: the optimizer's name).

        Returns:
          One Operation that updates every variable (and then the global step).

        Raises:
          InvalidArgumentError: an empty list, an entry that is not a pair, a
            variable that is not a gf.Variable or appears twice, a gradient
            whose dtype or shape differs from its variable's, or no gradient
            at all ("No gradients provided for any variable").
        """
        pairs = self._check_pairs(grads_and_vars)
        integer = ("int32", "int64")
        if global_step is not None and (
            not isinstance(global_step, Variable) or global_step.dtype.name not in integer
        ):
            raise self._error(
                "apply_gradients",
                "global_step must be an integer gf.Variable",
                got=_describe(global_step),
                expected="e.g. gf.train.get_or_create_global_step()",
            )
        var_list = [v for _, v in pairs]
        graph = var_list[0].graph
        with graph.as_default():
            self._create_slots(var_list)
            with graph.name_scope(name or self._name):
                self._prepare()
                update_ops = []
                for grad, var in pairs:
                    with graph.name_scope("update_" + _scope_name(var)):
                        update = self._apply_dense(grad, var)
                    update_ops.append(update.op if isinstance(update, Tensor) else update)
                finish = self._finish(update_ops, "update")
                if global_step is None:
                    return finish
                # As in TF1: the step counts completed updates, so it runs after them.
                with graph.control_dependencies([finish]):
                    return assign_add(global_step, 1, name="global_step_update").op

    # -- slots -----------------------------------------------------------------------------
    def get_slot_names(self) -> list[str]:
        """The names of the slots this optimizer creates, sorted ("m", "v" for Adam)."""
        return sorted(self._slots)

    def get_slot(self, var: Variable, name: str) -> Variable | None:
        """The slot variable `name` this optimizer keeps for `var`, or None if there is none."""
        return self._slots.get(name, {}).get(var)

    def variables(self) -> list[Variable]:
        """Every variable this optimizer created (slots and shared state), in creation order."""
        found = [v for slots in self._slots.values() for v in slots.values()]
        found += list(self._non_slot.values())
        return sorted(found, key=lambda v: v.op.id)

    def _slot(
        self, var: Variable, slot_name: str, initial: Callable[[], Any], op_name: str
    ) -> Variable:
        """The slot `slot_name` of `var`, created as "<var>/<op_name>" if it does not exist."""
        slots = self._slots.setdefault(slot_name, {})
        slot = slots.get(var)
        if slot is None:
            with _outside_of_user_scopes(var.graph), var.graph.name_scope(var.op.name + "/"):
                slot = Variable(initial, trainable=False, name=op_name)
            slots[var] = slot
        return slot

    def _zeros_slot(self, var: Variable, slot_name: str, op_name: str) -> Variable:
        from graphflow.ops.creation_ops import zeros

        return self._slot(var, slot_name, lambda: zeros(var.shape.as_list(), var.dtype), op_name)

    def _non_slot_variable(self, name: str, initial: Any, like: Variable) -> Variable:
        """A variable shared by all of this optimizer's updates in `like`'s graph."""
        key = (name, like.graph)
        variable = self._non_slot.get(key)
        if variable is None:
            with _outside_of_user_scopes(like.graph):
                variable = Variable(
                    lambda: self._hyper(initial, like.dtype, "initial_value"),
                    trainable=False,
                    name=name,
                )
            self._non_slot[key] = variable
        return variable

    def _get_non_slot_variable(self, name: str, graph: Graph) -> Variable | None:
        return self._non_slot.get((name, graph))

    # -- what a subclass defines -----------------------------------------------------------
    def _create_slots(self, var_list: list[Variable]) -> None:
        """Creates the slot variables of every variable in `var_list` (none by default)."""

    def _prepare(self) -> None:
        """Creates the tensors the updates share (hyperparameters), once per apply_gradients."""

    def _apply_dense(self, grad: Tensor, var: Variable) -> Tensor | Operation:
        """The update of one variable by its gradient."""
        raise NotImplementedError(f"{type(self).__name__} does not define _apply_dense")

    def _finish(self, update_ops: list[Operation], name: str) -> Operation:
        """The op that completes the step once every variable is updated."""
        return group(*update_ops, name=name)

    # -- helpers ---------------------------------------------------------------------------
    @staticmethod
    def _hyper(value: Any, dtype: DType, name: str) -> Tensor:
        """A hyperparameter (a number, a Tensor or a callable) as a Tensor of `dtype`.

        Numbers become constants of the variable's dtype directly, so a float64
        variable trains with float64 hyperparameters.
        """
        if callable(value) and not is_tensor(value):
            value = value()
        if isinstance(value, Tensor):
            if value.dtype != dtype:
                from graphflow.ops.math_ops import cast

                return cast(value, dtype, name=name)
            return value
        return convert_to_tensor(value, dtype=dtype, name=name)

    def _error(
        self, method: str, what: str, got: str | None = None, expected: str | None = None
    ) -> errors.InvalidArgumentError:
        return errors.InvalidArgumentError(
            errors.op_message(
                f"{type(self).__name__}.{method}", self._name, user_location(), what, got, expected
            )
        )

    def _check_variable(self, method: str, v: Any) -> None:
        if not isinstance(v, Variable):
            raise self._error(
                method,
                "can only optimize gf.Variables",
                got=_describe(v),
                expected="a gf.Variable",
            )
        if v.dtype not in _FLOAT_DTYPES:
            raise self._error(
                method,
                f"cannot optimize the variable {v.op.name}",
                got=f"dtype {v.dtype.name}",
                expected="a float32 or float64 variable",
            )

    def _check_pairs(self, grads_and_vars: Any) -> list[tuple[Tensor, Variable]]:
        """Validated (gradient, variable) pairs with a gradient; raises for anything else."""
        try:
            entries = list(grads_and_vars)
        except TypeError:
            raise self._error(
                "apply_gradients",
                "grads_and_vars must be a list of (gradient, variable) pairs",
                got=type(grads_and_vars).__name__,
                expected="e.g. the result of compute_gradients",
            ) from None
        if not entries:
            raise self._error(
                "apply_gradients",
                "No variables provided",
                got="an empty grads_and_vars",
                expected="at least one (gradient, variable) pair",
            )
        pairs: list[tuple[Tensor, Variable]] = []
        seen: set[Variable] = set()
        for entry in entries:
            if not isinstance(entry, tuple | list) or len(entry) != 2:
                raise self._error(
                    "apply_gradients",
                    "each entry of grads_and_vars must be a (gradient, variable) pair",
                    got=_describe(entry),
                    expected="a 2-tuple",
                )
            grad, var = entry
            self._check_variable("apply_gradients", var)
            if var in seen:
                raise self._error(
                    "apply_gradients",
                    f"the variable {var.op.name} appears more than once",
                    expected="one gradient per variable (add the gradients first)",
                )
            seen.add(var)
            if grad is None:
                continue
            try:
                with var.graph.as_default():
                    grad = convert_to_tensor(grad, dtype=var.dtype, name="gradient")
            except errors.InvalidArgumentError as e:
                raise self._error(
                    "apply_gradients",
                    f"the gradient for {var.op.name} is not usable: {e.message}",
                    expected=f"a {var.dtype.name} Tensor of shape {var.shape}",
                ) from None
            if not var.shape.is_compatible_with(grad.shape):
                raise self._error(
                    "apply_gradients",
                    f"the gradient for {var.op.name} does not have the variable's shape",
                    got=str(grad.shape),
                    expected=str(var.shape),
                )
            pairs.append((grad, var))
        if not pairs:
            raise self._error(
                "apply_gradients",
                "No gradients provided for any variable",
                got="None for " + _names(v for _, v in entries),
                expected="a gradient for at least one variable",
            )
        return pairs


@contextlib.contextmanager
def _outside_of_user_scopes(graph: Graph) -> Iterator[None]:
    """Builds at the top level of `graph`, free of the caller's name scope and control deps.

    Optimizer state must not depend on what the user happened to wrap the
    call in: its initializer would otherwise wait for (or run) the user's ops.
    """
    with graph.as_default(), graph.name_scope(None), graph.control_dependencies(None):
        yield


def _scope_name(var: Variable) -> str:
    return var.op.name.replace("/", "_")


def _names(variables: Any) -> str:
    return "[" + ", ".join(v.op.name for v in variables) + "]"


def _describe(value: Any) -> str:
    if isinstance(value, Tensor):
        return f"the tensor {value.name} ({value.dtype.name})"
    text = repr(value)
    return f"{type(value).__name__} {text[:60]}"
