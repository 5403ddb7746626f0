"""TF1's first-order optimizers, each update rule written with ordinary graph ops.

Every rule is the one of TF1's training kernel of the same name (ApplyGradientDescent,
ApplyMomentum, ApplyAdam, ApplyRMSProp, ApplyCenteredRMSProp, ApplyAdagrad),
written in the same arithmetic order so that results agree to rounding.
Slots are updated with Assign and the variable with AssignSub; the new slot
value (the Assign's output) feeds the variable's update, which orders them.
"""

from __future__ import annotations

from typing import Any

from graphflow import errors
from graphflow.graph import Operation, Tensor
from graphflow.ops.creation_ops import group, ones
from graphflow.ops.math_ops import cast, rsqrt, sqrt, square
from graphflow.ops.state_ops import Variable, assign, assign_add, assign_sub
from graphflow.train.optimizer import Optimizer


class GradientDescentOptimizer(Optimizer):
    """Plain gradient descent: `var -= learning_rate * grad`.

    Args:
      learning_rate: a float or a scalar Tensor.
      use_locking: ignored.
      name: name of the ops it creates (default "GradientDescent").
    """

    def __init__(
        self, learning_rate: Any, use_locking: bool = False, name: str = "GradientDescent"
    ) -> None:
        super().__init__(use_locking, name)
        self._learning_rate = learning_rate

    def _apply_dense(self, grad: Tensor, var: Variable) -> Tensor:
        lr = self._hyper(self._learning_rate, var.dtype, "learning_rate")
        return assign_sub(var, grad * lr)


class MomentumOptimizer(Optimizer):
    """Gradient descent with momentum (TF1's ApplyMomentum).

        accumulation = momentum * accumulation + grad
        var -= learning_rate * accumulation
        # use_nesterov: var -= learning_rate * grad + learning_rate * momentum * accumulation

    Slot: "momentum" (zeros), named "<var>/<name>".

    Args:
      learning_rate: a float or a scalar Tensor.
      momentum: a float or a scalar Tensor.
      use_locking: ignored.
      name: name of the ops it creates (default "Momentum").
      use_nesterov: use Nesterov momentum (Sutskever et al., 2013).
    """

    def __init__(
        self,
        learning_rate: Any,
        momentum: Any,
        use_locking: bool = False,
        name: str = "Momentum",
        use_nesterov: bool = False,
    ) -> None:
        super().__init__(use_locking, name)
        self._learning_rate = learning_rate
        self._momentum = momentum
        self._use_nesterov = use_nesterov

    def _create_slots(self, var_list: list[Variable]) -> None:
        for v in var_list:
            self._zeros_slot(v, "momentum", self._name)

    def _apply_dense(self, grad: Tensor, var: Variable) -> Tensor:
        lr = self._hyper(self._learning_rate, var.dtype, "learning_rate")
        momentum = self._hyper(self._momentum, var.dtype, "momentum")
        accum_slot = self.get_slot(var, "momentum")
        accum = assign(accum_slot, accum_slot * momentum + grad)
        if self._use_nesterov:
            return assign_sub(var, grad * lr + accum * momentum * lr)
        return assign_sub(var, accum * lr)


class AdamOptimizer(Optimizer):
    """Adam (Kingma and Ba, 2015) as TF1's ApplyAdam computes it.

        t <- t + 1   (kept as beta1_power = beta1^t, beta2_power = beta2^t)
        lr_t = learning_rate * sqrt(1 - beta2^t) / (1 - beta1^t)
        m <- m + (grad - m) * (1 - beta1)
        v <- v + (grad^2 - v) * (1 - beta2)
        var <- var - lr_t * m / (sqrt(v) + epsilon)

    epsilon is the "epsilon hat" of the paper's section 2.1: added to sqrt(v)
    after the bias correction was folded into lr_t, not to sqrt(v_hat).

    Slots: "m" and "v" (zeros), named "<var>/<name>" and "<var>/<name>_1".
    Shared state: the variables "beta1_power" and "beta2_power" (initialized
    to beta1 and beta2, multiplied by them after each step).

    Args:
      learning_rate: a float or a scalar Tensor.
      beta1: exponential decay of the first-moment estimates.
      beta2: exponential decay of the second-moment estimates.
      epsilon: a small constant for numerical stability.
      use_locking: ignored.
      name: name of the ops it creates (default "Adam").
    """

    def __init__(
        self,
        learning_rate: Any = 0.001,
        beta1: Any = 0.9,
        beta2: Any = 0.999,
        epsilon: Any = 1e-08,
        use_locking: bool = False,
        name: str = "Adam",
    ) -> None:
        super().__init__(use_locking, name)
        self._lr = learning_rate
        self._beta1 = beta1
        self._beta2 = beta2
        self._epsilon = epsilon

    def _create_slots(self, var_list: list[Variable]) -> None:
        # The first variable (in creation order) fixes the beta powers' dtype, as in TF1.
        first = min(var_list, key=lambda v: v.op.id)
        self._non_slot_variable("beta1_power", _initial(self._beta1), first)
        self._non_slot_variable("beta2_power", _initial(self._beta2), first)
        for v in var_list:
            self._zeros_slot(v, "m", self._name)
            self._zeros_slot(v, "v", self._name)

    def _beta_powers(self, graph: Any) -> tuple[Variable, Variable]:
        beta1_power = self._get_non_slot_variable("beta1_power", graph)
        beta2_power = self._get_non_slot_variable("beta2_power", graph)
        assert beta1_power is not None and beta2_power is not None  # made by _create_slots
        return beta1_power, beta2_power

    def _apply_dense(self, grad: Tensor, var: Variable) -> Tensor:
        dtype = var.dtype
        beta1_power, beta2_power = (_as_dtype(p, dtype) for p in self._beta_powers(var.graph))
        lr = self._hyper(self._lr, dtype, "learning_rate")
        beta1 = self._hyper(self._beta1, dtype, "beta1")
        beta2 = self._hyper(self._beta2, dtype, "beta2")
        epsilon = self._hyper(self._epsilon, dtype, "epsilon")
        lr_t = lr * sqrt(1 - beta2_power) / (1 - beta1_power)
        m_slot = self.get_slot(var, "m")
        v_slot = self.get_slot(var, "v")
        m = assign(m_slot, m_slot + (grad - m_slot) * (1 - beta1))
        v = assign(v_slot, v_slot + (square(grad) - v_slot) * (1 - beta2))
        return assign_sub(var, m * lr_t / (sqrt(v) + epsilon))

    def _finish(self, update_ops: list[Operation], name: str) -> Operation:
        graph = update_ops[0].graph
        beta1_power, beta2_power = self._beta_powers(graph)
        # The powers advance after every variable used them for this step.
        with graph.control_dependencies(update_ops):
            beta1 = self._hyper(self._beta1, beta1_power.dtype, "beta1")
            beta2 = self._hyper(self._beta2, beta2_power.dtype, "beta2")
            update_beta1 = assign(beta1_power, beta1_power * beta1)
            update_beta2 = assign(beta2_power, beta2_power * beta2)
        return group(*update_ops, update_beta1, update_beta2, name=name)


class RMSPropOptimizer(Optimizer):
    """RMSProp (Tieleman and Hinton) as TF1's ApplyRMSProp computes it.

        ms <- ms + (grad^2 - ms) * (1 - decay)
        mom <- momentum * mom + learning_rate * grad / sqrt(ms + epsilon)
        var <- var - mom

    With `centered=True` (ApplyCenteredRMSProp) the gradient is normalized by
    an estimate of its variance instead of its second moment:

        mg <- mg + (grad - mg) * (1 - decay)
        mom <- momentum * mom + learning_rate * grad / sqrt(ms - mg^2 + epsilon)

    Slots: "rms" (initialized to ones, as in TF1), "momentum" (zeros), and
    with `centered` "mg" (zeros).

    Args:
      learning_rate: a float or a scalar Tensor.
      decay: discounting factor of the gradient's history.
      momentum: a float or a scalar Tensor.
      epsilon: a small value that keeps the denominator away from zero.
      use_locking: ignored.
      centered: normalize by the estimated variance of the gradient.
      name: name of the ops it creates (default "RMSProp").
    """

    def __init__(
        self,
        learning_rate: Any,
        decay: Any = 0.9,
        momentum: Any = 0.0,
        epsilon: Any = 1e-10,
        use_locking: bool = False,
        centered: bool = False,
        name: str = "RMSProp",
    ) -> None:
        super().__init__(use_locking, name)
        self._learning_rate = learning_rate
        self._decay = decay
        self._momentum = momentum
        self._epsilon = epsilon
        self._centered = centered

    def _create_slots(self, var_list: list[Variable]) -> None:
        for v in var_list:
            self._slot(v, "rms", lambda v=v: ones(v.shape.as_list(), v.dtype), self._name)
            if self._centered:
                self._zeros_slot(v, "mg", self._name)
            self._zeros_slot(v, "momentum", self._name)

    def _apply_dense(self, grad: Tensor, var: Variable) -> Tensor:
        dtype = var.dtype
        lr = self._hyper(self._learning_rate, dtype, "learning_rate")
        decay = self._hyper(self._decay, dtype, "decay")
        momentum = self._hyper(self._momentum, dtype, "momentum")
        epsilon = self._hyper(self._epsilon, dtype, "epsilon")
        rms_slot = self.get_slot(var, "rms")
        mom_slot = self.get_slot(var, "momentum")
        ms = assign(rms_slot, rms_slot + (square(grad) - rms_slot) * (1 - decay))
        if self._centered:
            mg_slot = self.get_slot(var, "mg")
            mg = assign(mg_slot, mg_slot + (grad - mg_slot) * (1 - decay))
            denominator = ms - square(mg) + epsilon
        else:
            denominator = ms + epsilon
        mom = assign(mom_slot, mom_slot * momentum + grad * lr * rsqrt(denominator))
        return assign_sub(var, mom)


class AdagradOptimizer(Optimizer):
    """Adagrad (Duchi et al., 2011) as TF1's ApplyAdagrad computes it.

        accumulator <- accumulator + grad^2
        var <- var - learning_rate * grad / sqrt(accumulator)

    Slot: "accumulator", initialized to `initial_accumulator_value`.

    Args:
      learning_rate: a float or a scalar Tensor.
      initial_accumulator_value: the accumulators' starting value; must be positive.
      use_locking: ignored.
      name: name of the ops it creates (default "Adagrad").

    Raises:
      InvalidArgumentError: `initial_accumulator_value` is not positive.
    """

    def __init__(
        self,
        learning_rate: Any,
        initial_accumulator_value: float = 0.1,
        use_locking: bool = False,
        name: str = "Adagrad",
    ) -> None:
        if not initial_accumulator_value > 0.0:
            raise errors.InvalidArgumentError(
                f"AdagradOptimizer: initial_accumulator_value must be positive; got "
                f"{initial_accumulator_value!r}"
            )
        super().__init__(use_locking, name)
        self._learning_rate = learning_rate
        self._initial_accumulator_value = initial_accumulator_value

    def _create_slots(self, var_list: list[Variable]) -> None:
        from graphflow.ops.creation_ops import fill

        for v in var_list:
            self._slot(
                v,
                "accumulator",
                lambda v=v: fill(
                    v.shape.as_list(),
                    self._hyper(self._initial_accumulator_value, v.dtype, "initial_value"),
                ),
                self._name,
            )

    def _apply_dense(self, grad: Tensor, var: Variable) -> Tensor:
        lr = self._hyper(self._learning_rate, var.dtype, "learning_rate")
        accum_slot = self.get_slot(var, "accumulator")
        accum = assign_add(accum_slot, square(grad))
        return assign_sub(var, grad * lr * rsqrt(accum))


def _initial(value: Any) -> Any:
    """The starting value of a beta power: the hyperparameter itself (a number or a Tensor)."""
    return value() if callable(value) and not isinstance(value, Tensor) else value


def _as_dtype(t: Tensor, dtype: Any) -> Tensor:
    return t if t.dtype == dtype else cast(t, dtype)
