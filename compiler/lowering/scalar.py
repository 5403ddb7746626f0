"""Scalar expression builders: one per elementwise op type, the lowering table of fusion.

`emit_scalar(ctx, op_type, attrs, args, in_dtypes, out_dtype)` returns the
LLVM value of one output element from the input elements. Registers hold
bools as i1 (memory holds bytes). Every builder is type-generic: given
`<N x T>` vectors (all of one lane count) it returns the `<N x T>` of the N
elements, each lane computed exactly as the scalar code computes it
(constants are splats, comparisons give `<N x i1>`, intrinsics and math
functions are their vector versions); the GEMM epilogue uses that.

Every builder computes what the op's NumPy reference computes, including
NaN/Inf and the integer edge cases that graphflow defines (docs/numerics.md):
division and modulo by zero give 0, overflow wraps, float->int casts saturate
and map NaN to 0.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

from llvmlite import ir

from graphflow import errors
from graphflow.compiler.lowering.irutil import F32, F64, I1, llvm_type
from graphflow.compiler.lowering.mathlib import (
    constant,
    element_type,
    math_function,
    type_suffix,
    with_element,
)
from graphflow.dtypes import DType

SELU_SCALE = 1.0507009873554804934193349852946
SELU_ALPHA = 1.6732632423543772848170429916717


class ScalarContext:
    """The builder and module that scalar expressions are emitted into."""

    def __init__(self, builder: ir.IRBuilder) -> None:
        self.builder = builder
        self.module = builder.module

    def intrinsic(self, name: str, ty: ir.Type, arity: int = 1) -> ir.Function:
        """`name.<f32|f64|vNf32|vNf64>`, an intrinsic of `arity` arguments of `ty`."""
        full = f"{name}.{type_suffix(ty)}"
        existing = self.module.globals.get(full)
        if existing is not None:
            return existing
        return ir.Function(self.module, ir.FunctionType(ty, [ty] * arity), full)

    def math(self, name: str, ty: ir.Type) -> ir.Function:
        return math_function(self.module, name, ty)


def _is_float(t: ir.Type) -> bool:
    return element_type(t) in (F32, F64)


def _c(ty: ir.Type, value: float) -> ir.Constant:
    """A constant of `ty`: its splat if `ty` is a vector type."""
    return constant(ty, value)


# -- arithmetic ----------------------------------------------------------------------------
def _add(ctx: ScalarContext, x: ir.Value, y: ir.Value) -> ir.Value:
    b = ctx.builder
    return b.fadd(x, y) if _is_float(x.type) else b.add(x, y)


def _sub(ctx: ScalarContext, x: ir.Value, y: ir.Value) -> ir.Value:
    b = ctx.builder
    return b.fsub(x, y) if _is_float(x.type) else b.sub(x, y)


def _mul(ctx: ScalarContext, x: ir.Value, y: ir.Value) -> ir.Value:
    b = ctx.builder
    return b.fmul(x, y) if _is_float(x.type) else b.mul(x, y)


def _floordiv(ctx: ScalarContext, x: ir.Value, y: ir.Value) -> ir.Value:
    return _divmod(ctx, x, y)[0]


def _floormod(ctx: ScalarContext, x: ir.Value, y: ir.Value) -> ir.Value:
    return _divmod(ctx, x, y)[1]


def _divmod(ctx: ScalarContext, x: ir.Value, y: ir.Value) -> tuple[ir.Value, ir.Value]:
    b = ctx.builder
    ty = x.type
    if not _is_float(ty):
        zero, one, minus_one = _c(ty, 0), _c(ty, 1), _c(ty, -1)
        # y == 0 gives 0 (NumPy's result); y == -1 is handled apart because
        # INT_MIN / -1 is undefined in LLVM; everything else divides safely.
        special = b.or_(b.icmp_signed("==", y, zero), b.icmp_signed("==", y, minus_one))
        safe = b.select(special, one, y)
        q = b.sdiv(x, safe)
        r = b.srem(x, safe)
        adjust = b.and_(
            b.icmp_signed("!=", r, zero),
            b.icmp_signed("!=", b.icmp_signed("<", r, zero), b.icmp_signed("<", safe, zero)),
        )
        q = b.select(adjust, b.sub(q, one), q)
        r = b.select(adjust, b.add(r, safe), r)
        by_minus_one = b.icmp_signed("==", y, minus_one)
        q = b.select(by_minus_one, b.sub(zero, x), b.select(b.icmp_signed("==", y, zero), zero, q))
        r = b.select(special, zero, r)
        return q, r
    # NumPy's npy_divmod, step by step.
    zero, one, half = _c(ty, 0.0), _c(ty, 1.0), _c(ty, 0.5)
    copysign = ctx.intrinsic("llvm.copysign", ty, 2)
    floor = ctx.intrinsic("llvm.floor", ty)
    mod = b.frem(x, y)
    y_is_zero = b.fcmp_ordered("==", y, zero)
    div = b.fdiv(b.fsub(x, mod), y)
    mod_nonzero = b.fcmp_unordered("!=", mod, zero)
    signs_differ = b.icmp_unsigned(
        "!=", b.fcmp_ordered("<", y, zero), b.fcmp_ordered("<", mod, zero)
    )
    fix = b.and_(mod_nonzero, signs_differ)
    mod2 = b.select(fix, b.fadd(mod, y), mod)
    div2 = b.select(fix, b.fsub(div, one), div)
    mod3 = b.select(mod_nonzero, mod2, b.call(copysign, [zero, y]))
    floordiv = b.call(floor, [div2])
    floordiv = b.select(
        b.fcmp_ordered(">", b.fsub(div2, floordiv), half), b.fadd(floordiv, one), floordiv
    )
    div_nonzero = b.fcmp_unordered("!=", div2, zero)
    floordiv = b.select(div_nonzero, floordiv, b.call(copysign, [zero, b.fdiv(x, y)]))
    quotient = b.select(y_is_zero, b.fdiv(x, y), floordiv)
    modulus = b.select(y_is_zero, mod, mod3)
    return quotient, modulus


def _realdiv(ctx: ScalarContext, x: ir.Value, y: ir.Value) -> ir.Value:
    return ctx.builder.fdiv(x, y)


def _pow(ctx: ScalarContext, x: ir.Value, y: ir.Value) -> ir.Value:
    if _is_float(x.type):
        return ctx.builder.call(ctx.math("pow", x.type), [x, y])
    return ctx.builder.call(_int_pow_function(ctx, x.type), [x, y])


def _int_pow_function(ctx: ScalarContext, ty: ir.Type) -> ir.Function:
    """x ** y by squaring; y < 0 gives 1 for x == 1, +-1 for x == -1, else 0."""
    name = f"gf.ipow.{type_suffix(ty)}"
    existing = ctx.module.globals.get(name)
    if existing is not None:
        return existing
    if isinstance(ty, ir.VectorType):
        return _int_pow_vector_function(ctx, ty, name)
    fn = ir.Function(ctx.module, ir.FunctionType(ty, [ty, ty]), name)
    fn.linkage = "internal"
    x, y = fn.args
    entry = fn.append_basic_block("entry")
    loop = fn.append_basic_block("square")
    done = fn.append_basic_block("done")
    b = ir.IRBuilder(entry)
    zero, one, minus_one = ir.Constant(ty, 0), ir.Constant(ty, 1), ir.Constant(ty, -1)
    negative = b.icmp_signed("<", y, zero)
    # The result for y <= 0, decided before the loop: 1 for y == 0, and for
    # y < 0 the truncated 1 / x**-y: 1 for x == 1, +-1 for x == -1, else 0.
    odd_y = b.icmp_signed("!=", b.and_(y, one), zero)
    by_sign = b.select(odd_y, minus_one, one)
    small = b.select(
        b.icmp_signed("==", x, one),
        one,
        b.select(b.icmp_signed("==", x, minus_one), by_sign, zero),
    )
    early = b.select(negative, small, one)
    b.cbranch(b.or_(negative, b.icmp_signed("==", y, zero)), done, loop)
    b.position_at_end(loop)
    result = b.phi(ty)
    base = b.phi(ty)
    exponent = b.phi(ty)
    result.add_incoming(one, entry)
    base.add_incoming(x, entry)
    exponent.add_incoming(y, entry)
    odd = b.icmp_signed("!=", b.and_(exponent, one), zero)
    new_result = b.select(odd, b.mul(result, base), result)
    new_exponent = b.ashr(exponent, one)
    new_base = b.mul(base, base)
    result.add_incoming(new_result, loop)
    base.add_incoming(new_base, loop)
    exponent.add_incoming(new_exponent, loop)
    b.cbranch(b.icmp_signed("==", new_exponent, zero), done, loop)
    b.position_at_end(done)
    out = b.phi(ty)
    out.add_incoming(new_result, loop)
    out.add_incoming(early, entry)
    b.ret(out)
    return fn


def _int_pow_vector_function(ctx: ScalarContext, ty: ir.VectorType, name: str) -> ir.Function:
    """The lanewise `_int_pow_function`: one squaring loop for all lanes.

    Lanes with y <= 0 take their result from before the loop and enter it with
    exponent 0 (a negative exponent would never shift down to 0), where a
    step changes nothing; the loop ends when every lane's exponent is 0.
    """
    fn = ir.Function(ctx.module, ir.FunctionType(ty, [ty, ty]), name)
    fn.linkage = "internal"
    x, y = fn.args
    entry = fn.append_basic_block("entry")
    loop = fn.append_basic_block("square")
    done = fn.append_basic_block("done")
    b = ir.IRBuilder(entry)
    zero, one, minus_one = _c(ty, 0), _c(ty, 1), _c(ty, -1)
    negative = b.icmp_signed("<", y, zero)
    odd_y = b.icmp_signed("!=", b.and_(y, one), zero)
    by_sign = b.select(odd_y, minus_one, one)
    small = b.select(
        b.icmp_signed("==", x, one),
        one,
        b.select(b.icmp_signed("==", x, minus_one), by_sign, zero),
    )
    early = b.select(negative, small, one)
    is_early = b.or_(negative, b.icmp_signed("==", y, zero))
    start = b.select(negative, zero, y)
    b.branch(loop)
    b.position_at_end(loop)
    result = b.phi(ty)
    base = b.phi(ty)
    exponent = b.phi(ty)
    result.add_incoming(one, entry)
    base.add_incoming(x, entry)
    exponent.add_incoming(start, entry)
    odd = b.icmp_signed("!=", b.and_(exponent, one), zero)
    new_result = b.select(odd, b.mul(result, base), result)
    new_exponent = b.ashr(exponent, one)
    new_base = b.mul(base, base)
    result.add_incoming(new_result, loop)
    base.add_incoming(new_base, loop)
    exponent.add_incoming(new_exponent, loop)
    finished = b.icmp_signed("==", new_exponent, zero)
    all_finished = b.icmp_signed(
        "==", b.bitcast(finished, ir.IntType(ty.count)), ir.Constant(ir.IntType(ty.count), -1)
    )
    b.cbranch(all_finished, done, loop)
    b.position_at_end(done)
    b.ret(b.select(is_early, early, new_result))
    return fn


def _maximum(ctx: ScalarContext, x: ir.Value, y: ir.Value) -> ir.Value:
    b = ctx.builder
    if _is_float(x.type):
        # NumPy's rule exactly: x if x > y or x is NaN, else y. So NaN wins,
        # and of two equal zeros the second (maximum(-0.0, 0.0) is 0.0, but
        # maximum(0.0, -0.0) is -0.0), which llvm.maximum does not give.
        keep = b.or_(b.fcmp_ordered(">", x, y), b.fcmp_unordered("uno", x, x))
        return b.select(keep, x, y)
    return b.select(b.icmp_signed(">=", x, y), x, y)


def _minimum(ctx: ScalarContext, x: ir.Value, y: ir.Value) -> ir.Value:
    b = ctx.builder
    if _is_float(x.type):
        keep = b.or_(b.fcmp_ordered("<", x, y), b.fcmp_unordered("uno", x, x))
        return b.select(keep, x, y)
    return b.select(b.icmp_signed("<=", x, y), x, y)


def _squared_difference(ctx: ScalarContext, x: ir.Value, y: ir.Value) -> ir.Value:
    d = _sub(ctx, x, y)
    return _mul(ctx, d, d)


def _neg(ctx: ScalarContext, x: ir.Value) -> ir.Value:
    b = ctx.builder
    return b.fneg(x) if _is_float(x.type) else b.sub(_c(x.type, 0), x)


def _abs(ctx: ScalarContext, x: ir.Value) -> ir.Value:
    b = ctx.builder
    if _is_float(x.type):
        return b.call(ctx.intrinsic("llvm.fabs", x.type), [x])
    return b.select(b.icmp_signed("<", x, _c(x.type, 0)), b.sub(_c(x.type, 0), x), x)


def _sign(ctx: ScalarContext, x: ir.Value) -> ir.Value:
    b = ctx.builder
    ty = x.type
    if _is_float(ty):
        # NumPy: 1 if x > 0, -1 if x < 0, 0 if x == 0 (also -0), NaN stays NaN.
        zero = _c(ty, 0.0)
        inner = b.select(b.fcmp_ordered("==", x, zero), zero, x)
        return b.select(
            b.fcmp_ordered(">", x, zero),
            _c(ty, 1.0),
            b.select(b.fcmp_ordered("<", x, zero), _c(ty, -1.0), inner),
        )
    zero = _c(ty, 0)
    return b.select(
        b.icmp_signed(">", x, zero),
        _c(ty, 1),
        b.select(b.icmp_signed("<", x, zero), _c(ty, -1), zero),
    )


def _square(ctx: ScalarContext, x: ir.Value) -> ir.Value:
    return _mul(ctx, x, x)


def _intrinsic1(name: str) -> Callable[[ScalarContext, ir.Value], ir.Value]:
    def build(ctx: ScalarContext, x: ir.Value) -> ir.Value:
        if not _is_float(x.type):
            return x  # floor, ceil and round of an integer are the integer
        return ctx.builder.call(ctx.intrinsic(name, x.type), [x])

    return build


def _rsqrt(ctx: ScalarContext, x: ir.Value) -> ir.Value:
    root = ctx.builder.call(ctx.intrinsic("llvm.sqrt", x.type), [x])
    return ctx.builder.fdiv(_c(x.type, 1.0), root)


def _reciprocal(ctx: ScalarContext, x: ir.Value) -> ir.Value:
    return ctx.builder.fdiv(_c(x.type, 1.0), x)


def _math(name: str) -> Callable[[ScalarContext, ir.Value], ir.Value]:
    def build(ctx: ScalarContext, x: ir.Value) -> ir.Value:
        return ctx.builder.call(ctx.math(name, x.type), [x])

    return build


def _erf(ctx: ScalarContext, x: ir.Value) -> ir.Value:
    # The reference computes erf in float64 for every float dtype.
    b = ctx.builder
    wide = with_element(x.type, F64)
    if x.type == wide:
        return b.call(ctx.math("erf", wide), [x])
    return b.fptrunc(b.call(ctx.math("erf", wide), [b.fpext(x, wide)]), x.type)


def _compare(predicate: str) -> Callable[[ScalarContext, ir.Value, ir.Value], ir.Value]:
    def build(ctx: ScalarContext, x: ir.Value, y: ir.Value) -> ir.Value:
        b = ctx.builder
        if _is_float(x.type):
            if predicate == "!=":
                return b.fcmp_unordered("!=", x, y)  # NaN != anything is True
            return b.fcmp_ordered(predicate, x, y)
        if element_type(x.type) == I1:
            return b.icmp_unsigned(predicate, x, y)
        return b.icmp_signed(predicate, x, y)

    return build


def _select(ctx: ScalarContext, c: ir.Value, x: ir.Value, y: ir.Value) -> ir.Value:
    return ctx.builder.select(c, x, y)


def _clip(ctx: ScalarContext, x: ir.Value, lo: ir.Value, hi: ir.Value) -> ir.Value:
    return _minimum(ctx, _maximum(ctx, x, lo), hi)


def emit_cast(ctx: ScalarContext, x: ir.Value, source: DType, target: DType) -> ir.Value:
    """NumPy's astype, with graphflow's float->int rule: truncate, saturate, NaN -> 0."""
    b = ctx.builder
    if source == target:
        return x
    to_element = I1 if target.is_bool else llvm_type(target)
    to = with_element(x.type, to_element)
    if source.is_bool:
        return b.uitofp(x, to) if target.is_floating else b.zext(x, to)
    if target.is_bool:
        if source.is_floating:
            return b.fcmp_unordered("!=", x, _c(x.type, 0.0))  # NaN -> True, as NumPy
        return b.icmp_signed("!=", x, _c(x.type, 0))
    if source.is_floating and target.is_floating:
        return b.fpext(x, to) if to_element == F64 else b.fptrunc(x, to)
    if source.is_integer and target.is_floating:
        return b.sitofp(x, to)
    if source.is_floating and target.is_integer:
        name = f"llvm.fptosi.sat.{type_suffix(to)}.{type_suffix(x.type)}"
        fn = ctx.module.globals.get(name) or ir.Function(
            ctx.module, ir.FunctionType(to, [x.type]), name
        )
        return b.call(fn, [x])
    if to_element.width > element_type(x.type).width:
        return b.sext(x, to)
    return b.trunc(x, to)


# -- activations ---------------------------------------------------------------------------
def _relu(ctx: ScalarContext, x: ir.Value) -> ir.Value:
    return _maximum(ctx, x, _c(x.type, 0))


def _relu6(ctx: ScalarContext, x: ir.Value) -> ir.Value:
    return _minimum(ctx, _relu(ctx, x), _c(x.type, 6))


def _leaky_relu(ctx: ScalarContext, x: ir.Value, alpha: float) -> ir.Value:
    b = ctx.builder
    scaled = b.fmul(x, _c(x.type, _round_to(x.type, alpha)))
    return b.select(b.fcmp_ordered(">", x, _c(x.type, 0.0)), x, scaled)


def _elu(ctx: ScalarContext, x: ir.Value) -> ir.Value:
    b = ctx.builder
    return b.select(b.fcmp_ordered(">", x, _c(x.type, 0.0)), x, _math("expm1")(ctx, x))


def _selu(ctx: ScalarContext, x: ir.Value) -> ir.Value:
    b = ctx.builder
    ty = x.type
    negative = b.fmul(_c(ty, _round_to(ty, SELU_ALPHA)), _math("expm1")(ctx, x))
    inner = b.select(b.fcmp_ordered(">", x, _c(ty, 0.0)), x, negative)
    return b.fmul(_c(ty, _round_to(ty, SELU_SCALE)), inner)


def _softplus(ctx: ScalarContext, x: ir.Value) -> ir.Value:
    # np.logaddexp(0, x) = max(x, 0) + log1p(exp(-|x|)); NaN and +-Inf as NumPy.
    b = ctx.builder
    ty = x.type
    zero = _c(ty, 0.0)
    tail = _math("log1p")(ctx, _math("exp")(ctx, b.fneg(_abs(ctx, x))))
    value = b.fadd(b.call(ctx.intrinsic("llvm.maxnum", ty, 2), [x, zero]), tail)
    is_nan = b.fcmp_unordered("uno", x, x)
    is_inf = b.fcmp_ordered("==", x, _c(ty, math.inf))
    return b.select(is_nan, x, b.select(is_inf, x, value))


def _sigmoid(ctx: ScalarContext, x: ir.Value) -> ir.Value:
    return _math("sigmoid")(ctx, x)


def _gelu(ctx: ScalarContext, x: ir.Value, approximate: bool) -> ir.Value:
    b = ctx.builder
    ty = x.type
    if approximate:
        c = _c(ty, _round_to(ty, math.sqrt(2 / math.pi)))
        k = _c(ty, _round_to(ty, 0.044715))
        cube = b.fmul(b.fmul(k, x), b.fmul(x, x))
        inner = b.fmul(c, b.fadd(x, cube))
        t = _math("tanh")(ctx, inner)
        return b.fmul(b.fmul(_c(ty, 0.5), x), b.fadd(_c(ty, 1.0), t))
    f64 = with_element(ty, F64)
    wide = x if ty == f64 else b.fpext(x, f64)
    phi = b.fadd(_c(f64, 1.0), b.call(ctx.math("erf", f64), [b.fdiv(wide, _c(f64, math.sqrt(2)))]))
    value = b.fmul(b.fmul(_c(f64, 0.5), wide), phi)
    return value if ty == f64 else b.fptrunc(value, ty)


def _silu(ctx: ScalarContext, x: ir.Value, beta: float) -> ir.Value:
    b = ctx.builder
    scaled = b.fmul(x, _c(x.type, _round_to(x.type, beta)))
    return b.fmul(x, _sigmoid(ctx, scaled))


def _round_to(ty: ir.Type, value: float) -> float:
    """A Python float rounded to the precision of `ty` (how the reference holds constants)."""
    import numpy as np

    return float(np.float32(value)) if element_type(ty) == F32 else float(value)


def _logical(name: str) -> Callable[..., ir.Value]:
    def build(ctx: ScalarContext, x: ir.Value, y: ir.Value | None = None) -> ir.Value:
        b = ctx.builder
        if name == "and":
            return b.and_(x, y)
        if name == "or":
            return b.or_(x, y)
        return b.xor(x, _c(x.type, 1))

    return build


_BINARY: dict[str, Callable[..., ir.Value]] = {
    "Add": _add,
    "Sub": _sub,
    "Mul": _mul,
    "RealDiv": _realdiv,
    "FloorDiv": _floordiv,
    "FloorMod": _floormod,
    "Pow": _pow,
    "Maximum": _maximum,
    "Minimum": _minimum,
    "SquaredDifference": _squared_difference,
    "BiasAdd": _add,
    "Equal": _compare("=="),
    "NotEqual": _compare("!="),
    "Less": _compare("<"),
    "LessEqual": _compare("<="),
    "Greater": _compare(">"),
    "GreaterEqual": _compare(">="),
    "LogicalAnd": _logical("and"),
    "LogicalOr": _logical("or"),
}

_UNARY: dict[str, Callable[..., ir.Value]] = {
    "Neg": _neg,
    "Abs": _abs,
    "Sign": _sign,
    "Square": _square,
    "Sqrt": _intrinsic1("llvm.sqrt"),
    "Rsqrt": _rsqrt,
    "Reciprocal": _reciprocal,
    "Exp": _math("exp"),
    "Expm1": _math("expm1"),
    "Log": _math("log"),
    "Log1p": _math("log1p"),
    "Sin": _math("sin"),
    "Cos": _math("cos"),
    "Tanh": _math("tanh"),
    "Sigmoid": _sigmoid,
    "Erf": _erf,
    "Floor": _intrinsic1("llvm.floor"),
    "Ceil": _intrinsic1("llvm.ceil"),
    "Round": _intrinsic1("llvm.roundeven"),
    "LogicalNot": _logical("not"),
    "Identity": lambda ctx, x: x,
    "StopGradient": lambda ctx, x: x,
    "Relu": _relu,
    "Relu6": _relu6,
    "Elu": _elu,
    "Selu": _selu,
    "Softplus": _softplus,
}


def supported(op_type: str) -> bool:
    return op_type in _BINARY or op_type in _UNARY or op_type in _SPECIAL


_SPECIAL = {
    "SelectV2",
    "ClipByValue",
    "Cast",
    "LeakyRelu",
    "Gelu",
    "Silu",
    "Fill",
    "ZerosLike",
    "OnesLike",
}


def emit_scalar(
    ctx: ScalarContext,
    op_type: str,
    attrs: Mapping[str, Any],
    args: list[ir.Value],
    in_dtypes: list[DType],
    out_dtype: DType,
) -> ir.Value:
    """The value of one output element of an elementwise op."""
    if op_type in _BINARY:
        return _BINARY[op_type](ctx, *args)
    if op_type in _UNARY:
        return _UNARY[op_type](ctx, *args)
    if op_type == "SelectV2":
        return _select(ctx, *args)
    if op_type == "ClipByValue":
        return _clip(ctx, *args)
    if op_type == "Cast":
        return emit_cast(ctx, args[0], in_dtypes[0], out_dtype)
    if op_type == "LeakyRelu":
        return _leaky_relu(ctx, args[0], attrs["alpha"])
    if op_type == "Gelu":
        return _gelu(ctx, args[0], attrs["approximate"])
    if op_type == "Silu":
        return _silu(ctx, args[0], attrs["beta"])
    if op_type == "Fill":
        return args[0]
    if op_type in ("ZerosLike", "OnesLike"):
        value = 0 if op_type == "ZerosLike" else 1
        element = I1 if out_dtype.is_bool else llvm_type(out_dtype)
        ty = with_element(args[0].type, element) if args else element
        return _c(ty, float(value) if out_dtype.is_floating else value)
    raise errors.UnimplementedError(f"no scalar lowering for {op_type}")
