"""User errors of the core: each raises the named graphflow.errors type with the key facts.

Every message must name the op, the user's source line (this file), what came
and what was expected.
"""

from __future__ import annotations

import numpy as np
import pytest

import graphflow as gf
from graphflow import errors

HERE = "test_errors.py"


def _raises(exc_type, *facts):
    """Context manager: raises exc_type with every fact (and this file's name) in the message."""

    class _Check:
        def __enter__(self):
            self._ctx = pytest.raises(exc_type)
            self._info = self._ctx.__enter__()
            return self._info

        def __exit__(self, *exc):
            handled = self._ctx.__exit__(*exc)
            message = str(self._info.value)
            for fact in (*facts, HERE):
                assert fact in message, f"{fact!r} missing from: {message}"
            return handled

    return _Check()


def test_broadcast_mismatch_at_construction() -> None:
    a = gf.placeholder(gf.float32, [2, 3])
    b = gf.placeholder(gf.float32, [4])
    with _raises(errors.InvalidArgumentError, "Mul op", "(2, 3)", "(4,)", "cannot be broadcast"):
        gf.multiply(a, b)


def test_arithmetic_on_bools() -> None:
    t = gf.constant([True, False])
    with _raises(errors.InvalidArgumentError, "Add op", "got bool", "expected numbers"):
        gf.add(t, t)


def test_math_function_of_bool() -> None:
    with _raises(errors.InvalidArgumentError, "Exp op", "bool"):
        gf.exp(gf.constant([True]))


def test_logical_op_of_numbers() -> None:
    with pytest.raises(errors.InvalidArgumentError, match="float32; expected bool"):
        gf.logical_and(gf.constant([1.0]), gf.constant([True]))


def test_where_condition_must_be_bool() -> None:
    with pytest.raises(errors.InvalidArgumentError, match="float32; expected bool"):
        gf.where(gf.constant([1.0]), 1.0, 2.0)


def test_where_without_branches_is_unimplemented() -> None:
    with _raises(errors.UnimplementedError, "SelectV2 op", "where(condition, x, y)"):
        gf.where(gf.constant([True]))


def test_unsupported_numpy_dtype() -> None:
    with pytest.raises(errors.InvalidArgumentError, match="complex128"):
        gf.constant(np.array([1 + 2j]))
    with pytest.raises(errors.InvalidArgumentError, match="expected numbers or bools"):
        gf.constant("text")
    with pytest.raises(errors.InvalidArgumentError, match="unsupported dtype"):
        gf.placeholder("complex64")


def test_constant_shape_mismatch() -> None:
    with _raises(errors.InvalidArgumentError, "Const op", "3 elements", "expected shape (2, 2)"):
        gf.constant([1.0, 2.0, 3.0], shape=[2, 2])


def test_constant_lossy_dtype() -> None:
    with pytest.raises(errors.InvalidArgumentError, match="without losing information"):
        gf.constant([1.5], dtype=gf.int32)


def test_fill_needs_scalar() -> None:
    with _raises(errors.InvalidArgumentError, "Fill op", "must be a scalar", "(2,)"):
        gf.fill([2], gf.constant([1.0, 2.0]))


def test_range_zero_delta() -> None:
    with _raises(errors.InvalidArgumentError, "Range op", "delta must not be 0"):
        gf.range(0, 5, 0)


def test_malformed_placeholder_shape() -> None:
    with _raises(errors.InvalidArgumentError, "Placeholder op", "malformed shape", "[2, -3]"):
        gf.placeholder(gf.float32, [2, -3])


def test_variable_needs_known_shape() -> None:
    p = gf.placeholder(gf.float32, [None])
    with _raises(errors.InvalidArgumentError, "VariableV2 op", "fully known shape", "(?,)"):
        gf.Variable(p)
    with _raises(errors.InvalidArgumentError, "VariableV2 op", "initial_value is required"):
        gf.Variable()


def test_static_argument_computed_at_run_time() -> None:
    n = gf.placeholder(gf.int32, [2])
    with pytest.raises(errors.UnimplementedError, match="must be known when the graph is built"):
        gf.fill(n, 1.0)


def test_invalid_names() -> None:
    with _raises(errors.InvalidArgumentError, "Const op", "invalid op name", "'bad name!'"):
        gf.constant(1.0, name="bad name!")
    with (
        pytest.raises(errors.InvalidArgumentError, match="invalid name scope"),
        gf.name_scope("no spaces"),
    ):
        pass


def test_cast_to_unknown_dtype() -> None:
    with pytest.raises(errors.InvalidArgumentError, match="unsupported dtype"):
        gf.cast(gf.constant([1.0]), "float16")


def test_tensor_of_wrong_dtype_for_convert() -> None:
    with pytest.raises(errors.InvalidArgumentError, match=r"use gf\.cast"):
        gf.convert_to_tensor(gf.constant([1.0]), dtype=gf.int32)


def test_operation_used_as_tensor() -> None:
    op = gf.no_op(name="nothing")
    with pytest.raises(errors.InvalidArgumentError, match="Operation 'nothing'"):
        gf.add(op, 1.0)


def test_errors_are_catchable_as_builtin_types() -> None:
    assert issubclass(errors.InvalidArgumentError, ValueError)
    assert issubclass(errors.NotFoundError, KeyError)
    assert str(errors.NotFoundError("plain message")) == "plain message"
    for cls in (
        errors.InvalidArgumentError,
        errors.NotFoundError,
        errors.FailedPreconditionError,
        errors.UnimplementedError,
    ):
        assert issubclass(cls, errors.GraphflowError)
