"""The vectorizable math library: exp, log, tanh, erf, sin, pow and friends as LLVM IR.

`math_function(module, "exp", ir.FloatType())` returns `gf.exp.f32`, an
internal `alwaysinline` function of one scalar (two for pow). Its body is
straight-line IR: no branch, no loop, no call other than LLVM intrinsics that
lower to single vector instructions (fma, fabs, floor, rint, copysign).
Special cases are `fcmp` + `select`. So once a kernel loop has inlined it, the
loop vectorizer turns it into `<16 x float>` / `<8 x double>` code, where a
call to libm's `expf` would have kept the loop scalar.

The same code is emitted for a vector type (`gf.exp.v16f32` of `<16 x float>`)
for callers that hold whole vectors already, such as the GEMM's epilogue:
every operation is elementwise, constants are splats and the bit tricks use
the integer vector of the same width, so each lane computes exactly what the
scalar function computes.

Semantics are NumPy's for every input (docs/numerics.md has the table and
the measured errors): NaN in gives NaN out, infinities and the overflow and
underflow bounds (denormal results included) are exact, `-0.0` survives where
NumPy keeps it, and pow follows C99's special cases. No instruction here
carries a fast-math flag: the special cases are NaN and Inf tests, and the
double-double steps (two-sum, two-product) need IEEE rounding exactly. Nothing
here is poison on any input either (no fptosi: integer parts come from the
1.5 * 2^p addition trick), so NaN lanes compute NaN, not an arbitrary value.

How the functions are computed:
  - float32 exp, expm1, log, log1p, tanh and sigmoid run in float32 (they are
    the hot ones: GELU, softmax, sigmoid); erf, sin, cos and pow of float32
    run in float64 and round once at the end.
  - Polynomials were fitted at development time with `mpmath.chebyfit`
    (Chebyshev interpolation at 60 digits, within a small factor of the
    minimax error) and then rounded to the type; the interval and the error
    of each fit are written beside it. The pow tail is the atanh series.
  - Cody-Waite: ln 2 is split so that `k * LN2_HI` is exact; pi/2 is split in
    three doubles applied with fma, each step rounding relative to r.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from llvmlite import ir

from graphflow import errors

F32 = ir.FloatType()
F64 = ir.DoubleType()
I32 = ir.IntType(32)
I64 = ir.IntType(64)

INF = math.inf
LOG2E = 1.4426950408889634

# -- coefficients (highest degree first) ----------------------------------------------------
# e^r = 1 + r + r^2 P(r) on |r| <= ln2/2 (also expm1: r + r^2 P(r)).
# Fit error of P: 1.4e-9 (float32, degree 5), 1.4e-18 (float64, degree 10).
EXP_F32 = (
    0.000198910798644647,
    0.0013933731243014336,
    0.00833331048488617,
    0.041666463017463684,
    0.1666666716337204,
    0.5,
)
EXP_F64 = (
    2.09147553258932e-09,
    2.5105312729622103e-08,
    2.755727347871858e-07,
    2.755725517000089e-06,
    2.480158732567746e-05,
    0.0001984126987500228,
    0.0013888888888883711,
    0.008333333333326084,
    0.04166666666666667,
    0.1666666666666667,
    0.5,
)
# float32: log(1 + f) = f - f^2/2 + f^3 Q(f) on f in [sqrt(1/2) - 1, sqrt(2) - 1]; fit error 2.9e-8.
LOG_F32 = (
    0.06971346586942673,
    -0.11483081430196762,
    0.11687024682760239,
    -0.12425360083580017,
    0.1424887627363205,
    -0.16667810082435608,
    0.20000720024108887,
    -0.2499999701976776,
    0.3333333134651184,
)
# float64: log(1 + f) = 2s + s^3 R(s^2), s = f / (2 + f), s^2 <= 0.0295; fit error 2.1e-18.
LOG_F64 = (
    0.13088034850927555,
    0.13268638369266825,
    0.15386244737621665,
    0.18181795547521137,
    0.22222222392581045,
    0.28571428570799784,
    0.40000000000000885,
    0.6666666666666666,
)
# sin r = r + r z S(z), cos r = 1 - z/2 + z^2 C(z), z = r^2 <= 0.9^2 (pi/4 plus the
# slack of an argument reduction whose k is off by one). Fit errors: float64 S 7.8e-20,
# C 6.5e-18; the shorter float32 ones (evaluated in float64) S 8.3e-11, C 7e-12.
SIN_F64 = (
    -7.567858770633791e-13,
    1.6058162028230698e-10,
    -2.5052103519284336e-08,
    2.755731921019633e-06,
    -0.0001984126984125123,
    0.008333333333333325,
    -0.16666666666666666,
)
COS_F64 = (
    -1.13551788827563e-11,
    2.087570557714001e-09,
    -2.755731481138535e-07,
    2.4801587293213554e-05,
    -0.0013888888888883076,
    0.04166666666666666,
)
SIN_F32 = (
    2.715435939613437e-06,
    -0.0001983923436108426,
    0.008333330038749817,
    -0.16666666658328608,
)
COS_F32 = (
    -2.722117716754751e-07,
    2.4799888802197115e-05,
    -0.001388888613938925,
    0.04166666665970797,
)
# erf x = x E(x^2) for |x| < 1; fit error of E 7.4e-18.
ERF_SMALL = (
    -7.795898827002142e-10,
    1.3720064546777686e-08,
    -1.6208483801871705e-07,
    1.6447424703317362e-06,
    -1.492473690741966e-05,
    0.00012055294904839707,
    -0.0008548325975389692,
    0.0052239776071164225,
    -0.02686617064323777,
    0.11283791670945006,
    -0.37612638903183543,
    1.1283791670955126,
)
# erfc x = exp(-x^2) G(u) for 1 <= x < 6, u = (x - 3.5) / 2.5; fit error of G 4.1e-17
# (G is between 0.09 and 0.43 there).
ERFC_SCALED = (
    -7.916093562518289e-09,
    1.906321031128937e-08,
    9.929413597966764e-09,
    -2.5945752556520796e-08,
    -1.0640033205171777e-07,
    2.477140842433875e-07,
    -2.5310271211169993e-07,
    5.407414809117242e-07,
    -1.5189296623016594e-06,
    3.2634714812408233e-06,
    -6.609036316530652e-06,
    1.375094834063411e-05,
    -2.8389790233227662e-05,
    5.7449976804670195e-05,
    -0.00011443864702934741,
    0.00022452148536693673,
    -0.0004333624418099729,
    0.0008222569077719757,
    -0.0015325156194379858,
    0.0028033259780991266,
    -0.005028067975499,
    0.008833423932100258,
    -0.015182511545354646,
    0.025495559643090023,
    -0.04176678811943595,
    0.06663208245320061,
    -0.10330894458313122,
    0.15529365560889427,
)
# pow's log: 2 atanh(s) = 2s + (2/3)s^3 + s^5 T(s^2), T the atanh series 2/(2k+1), k = 2..13
# (truncation below 2^-100 relative for s^2 <= 0.0295).
POW_LOG_TAIL = tuple(2.0 / (2 * k + 1) for k in range(13, 1, -1))

# Cody-Waite splits: the high part has few enough bits that k * hi is exact.
LN2_HI = {F32: 0.693359375, F64: 0.6931471806019545}  # 9 and 32 significant bits
LN2_LO = {F32: -0.00021219444170128554, F64: -4.2009150726810846e-11}
TWO_OVER_PI = (0.6366197723675814, -3.935735335036497e-17)  # 2/pi as a double-double
PIO2 = (1.5707963267948966, 6.123233995736766e-17, -1.4973849048591698e-33)  # fma reduction
LN2_DD = (0.6931471805599453, 2.3190468138462996e-17)  # ln 2 as a double-double
TWO_THIRDS_DD = (0.6666666666666666, 3.700743415417188e-17)
TWO_OVER_SQRT_PI_LO = 1.533545961316588e-17  # 2/sqrt(pi) - ERF_SMALL[-1]


def element_type(ty: ir.Type) -> ir.Type:
    """The element type of a vector type; a scalar type itself."""
    return ty.element if isinstance(ty, ir.VectorType) else ty


def with_element(shape: ir.Type, element: ir.Type) -> ir.Type:
    """`element`, as a vector of as many lanes as `shape` if `shape` is a vector type."""
    return ir.VectorType(element, shape.count) if isinstance(shape, ir.VectorType) else element


def constant(ty: ir.Type, value: float | int) -> ir.Constant:
    """A constant of a scalar type, or its splat for a vector type."""
    if isinstance(ty, ir.VectorType):
        return ir.Constant(ty, [value] * ty.count)
    return ir.Constant(ty, value)


def type_suffix(ty: ir.Type) -> str:
    """LLVM's overloaded-intrinsic mangling of a type: f32, f64, i32, v16f32, v1i64..."""
    if isinstance(ty, ir.VectorType):
        return f"v{ty.count}{type_suffix(ty.element)}"
    if ty == F32:
        return "f32"
    if ty == F64:
        return "f64"
    if isinstance(ty, ir.IntType):
        return f"i{ty.width}"
    raise errors.InternalError(f"no intrinsic mangling for type {ty}")


class _Emit:
    """The IR vocabulary of one floating type: constants, arithmetic, tests, bit tricks.

    Comparisons are ordered (false on NaN) unless their name says otherwise, so
    a `select(cmp, special, value)` leaves NaN inputs to flow through `value`.
    `ty` is float or double, or a vector of either: then constants are splats,
    comparisons give `<N x i1>` and the integer type is `<N x i32|i64>`.
    """

    def __init__(self, builder: ir.IRBuilder, ty: ir.Type) -> None:
        self.b = builder
        self.ty = ty
        self.module = builder.module
        self.element = element_type(ty)
        self.is64 = self.element == F64
        self.ity = with_element(ty, I64 if self.is64 else I32)
        self.mantissa_bits = 52 if self.is64 else 23
        self.bias = 1023 if self.is64 else 127
        self.min_normal = 2.0**-1022 if self.is64 else 2.0**-126

    def wide(self) -> _Emit:
        """The float64 vocabulary on the same builder (float32 functions computed in float64)."""
        return _Emit(self.b, with_element(self.ty, F64))

    # constants and intrinsics
    def c(self, value: float) -> ir.Constant:
        return constant(self.ty, value)

    def ic(self, value: int) -> ir.Constant:
        return constant(self.ity, value)

    def intrinsic(self, name: str, arity: int) -> ir.Function:
        full = f"llvm.{name}.{type_suffix(self.ty)}"
        existing = self.module.globals.get(full)
        if existing is not None:
            return existing
        return ir.Function(self.module, ir.FunctionType(self.ty, [self.ty] * arity), full)

    def _call(self, name: str, *args: ir.Value) -> ir.Value:
        return self.b.call(self.intrinsic(name, len(args)), list(args))

    def _v(self, x: ir.Value | float) -> ir.Value:
        return x if isinstance(x, ir.Value) else self.c(x)

    # arithmetic (plain IEEE: no fast-math flags, so nothing is reassociated)
    def add(self, x: ir.Value | float, y: ir.Value | float) -> ir.Value:
        return self.b.fadd(self._v(x), self._v(y))

    def sub(self, x: ir.Value | float, y: ir.Value | float) -> ir.Value:
        return self.b.fsub(self._v(x), self._v(y))

    def mul(self, x: ir.Value | float, y: ir.Value | float) -> ir.Value:
        return self.b.fmul(self._v(x), self._v(y))

    def div(self, x: ir.Value | float, y: ir.Value | float) -> ir.Value:
        return self.b.fdiv(self._v(x), self._v(y))

    def neg(self, x: ir.Value) -> ir.Value:
        return self.b.fneg(x)

    def fma(self, x: ir.Value | float, y: ir.Value | float, z: ir.Value | float) -> ir.Value:
        return self._call("fma", self._v(x), self._v(y), self._v(z))

    def abs(self, x: ir.Value) -> ir.Value:
        return self._call("fabs", x)

    def floor(self, x: ir.Value) -> ir.Value:
        return self._call("floor", x)

    def rint(self, x: ir.Value) -> ir.Value:
        return self._call("rint", x)

    def copysign(self, magnitude: ir.Value | float, sign: ir.Value) -> ir.Value:
        return self._call("copysign", self._v(magnitude), sign)

    def poly(self, x: ir.Value, coefficients: tuple[float, ...]) -> ir.Value:
        """Horner's rule with fma, highest degree first."""
        acc: ir.Value = self.c(coefficients[0])
        for coefficient in coefficients[1:]:
            acc = self.fma(acc, x, coefficient)
        return acc

    # tests and selection
    def cmp(self, op: str, x: ir.Value, y: ir.Value | float) -> ir.Value:
        return self.b.fcmp_ordered(op, x, self._v(y))

    def is_nan(self, x: ir.Value) -> ir.Value:
        return self.b.fcmp_unordered("uno", x, x)

    def sign_bit(self, x: ir.Value) -> ir.Value:
        return self.cmp("<", self.copysign(1.0, x), 0.0)

    def select(self, cond: ir.Value, x: ir.Value | float, y: ir.Value | float) -> ir.Value:
        return self.b.select(cond, self._v(x), self._v(y))

    def both(self, *conditions: ir.Value) -> ir.Value:
        out = conditions[0]
        for c in conditions[1:]:
            out = self.b.and_(out, c)
        return out

    def either(self, *conditions: ir.Value) -> ir.Value:
        out = conditions[0]
        for c in conditions[1:]:
            out = self.b.or_(out, c)
        return out

    def clamp(self, x: ir.Value, lo: float, hi: float) -> ir.Value:
        """min(max(x, lo), hi) that keeps NaN (llvm.minnum would drop it)."""
        x = self.select(self.cmp("<", x, lo), lo, x)
        return self.select(self.cmp(">", x, hi), hi, x)

    # exponent bits
    def nearest_integer(self, x: ir.Value, factor: float) -> tuple[ir.Value, ir.Value]:
        """x * factor rounded to the nearest integer (ties to even): as a float and as an int.

        Adding 1.5 * 2^p (p = mantissa bits) leaves the integer in the low bits of the
        sum, so no fptosi (which is poison on NaN) is needed. For |x factor| < 2^(p-1).
        """
        magic = 1.5 * 2.0**self.mantissa_bits
        shifted = self.fma(x, factor, magic)
        as_int = self.b.sub(
            self.b.bitcast(shifted, self.ity), self.b.bitcast(self.c(magic), self.ity)
        )
        return self.sub(shifted, magic), as_int

    def pow2(self, k: ir.Value) -> ir.Value:
        """2^k for an integer k (of the type's width) whose 2^k is a normal number."""
        biased = self.b.add(k, self.ic(self.bias))
        return self.b.bitcast(self.b.shl(biased, self.ic(self.mantissa_bits)), self.ty)

    def scale(self, p: ir.Value, k: ir.Value) -> ir.Value:
        """p * 2^k for an integer |k| up to about twice the exponent range, in two steps.

        With one multiplication 2^k itself could overflow or be denormal; with two
        halves p * 2^(k/2) stays normal and exact, and only the second product
        rounds into the denormal range (gradually, no flush to zero).
        """
        half = self.b.ashr(k, self.ic(1))
        return self.mul(self.mul(p, self.pow2(half)), self.pow2(self.b.sub(k, half)))

    def split_exponent(self, x: ir.Value) -> tuple[ir.Value, ir.Value]:
        """(m, k) with x = m 2^k and m in [sqrt(1/2), sqrt(2)), for positive finite x."""
        denormal = self.cmp("<", x, self.min_normal)
        x = self.select(denormal, self.mul(x, 2.0**64), x)
        bits = self.b.bitcast(x, self.ity)
        sqrt_half = 0x3FE6A09E667F3BCD if self.is64 else 0x3F3504F3
        k = self.b.ashr(self.b.sub(bits, self.ic(sqrt_half)), self.ic(self.mantissa_bits))
        m = self.b.bitcast(self.b.sub(bits, self.b.shl(k, self.ic(self.mantissa_bits))), self.ty)
        k_float = self.add(self.b.sitofp(k, self.ty), self.select(denormal, -64.0, 0.0))
        return m, k_float

    # error-free transformations (double-double arithmetic)
    def two_sum(self, x: ir.Value, y: ir.Value) -> tuple[ir.Value, ir.Value]:
        s = self.add(x, y)
        v = self.sub(s, x)
        return s, self.add(self.sub(x, self.sub(s, v)), self.sub(y, v))

    def fast_two_sum(self, x: ir.Value, y: ir.Value) -> tuple[ir.Value, ir.Value]:
        """Exact x + y = s + e when |x| >= |y| (or x == 0)."""
        s = self.add(x, y)
        return s, self.sub(y, self.sub(s, x))

    def two_prod(self, x: ir.Value, y: ir.Value | float) -> tuple[ir.Value, ir.Value]:
        p = self.mul(x, y)
        return p, self.fma(x, y, self.neg(p))


# -- exp, expm1 ----------------------------------------------------------------------------
def _exp_reduce(e: _Emit, x: ir.Value) -> tuple[ir.Value, ir.Value, ir.Value]:
    """(k, r, P(r)) with x = k ln2 + r, |r| <= ln2/2 (Cody-Waite: r is exact), so that
    e^r = 1 + r + r^2 P(r); k is an integer (i32 or i64)."""
    k_float, k = e.nearest_integer(x, LOG2E)
    r = e.fma(e.neg(k_float), LN2_HI[e.element], x)
    r = e.fma(e.neg(k_float), LN2_LO[e.element], r)
    return k, r, e.poly(r, EXP_F64 if e.is64 else EXP_F32)


def _exp(e: _Emit, x: ir.Value) -> ir.Value:
    # e^x = 2^k (1 + r + r^2 P(r)). Clamping x to just past the overflow and underflow
    # bounds keeps k in range; the clamped ends still give inf and 0 exactly.
    lo, hi = (-746.0, 710.0) if e.is64 else (-104.0, 89.0)
    k, r, p = _exp_reduce(e, e.clamp(x, lo, hi))
    return e.scale(e.add(e.fma(e.mul(r, r), p, r), 1.0), k)


def _half_expm1(e: _Emit, x: ir.Value) -> ir.Value:
    """(e^x - 1) / 2 for x between the clamp bounds of `_expm1` (no special cases)."""
    # (e^x - 1)/2 = (2^k (1 + r + q) - 1)/2 = s q + (s r + (s - 1/2)) with s = 2^(k-1) and
    # q = r^2 P(r): s - 1/2 and the inner fma are exact or round far below the result
    # (for k = 1 it is the Sterbenz-exact r + 1/2), and s stays finite up to overflow.
    k, r, p = _exp_reduce(e, x)
    s = e.pow2(e.b.sub(k, e.ic(1)))
    inner = e.fma(s, r, e.sub(s, 0.5))
    return e.fma(s, e.mul(e.mul(r, r), p), inner)


def _expm1(e: _Emit, x: ir.Value) -> ir.Value:
    lo, hi = (-40.0, 710.0) if e.is64 else (-18.0, 89.0)  # below lo the result is -1
    value = e.mul(_half_expm1(e, e.clamp(x, lo, hi)), 2.0)
    tiny = 2.0**-54 if e.is64 else 2.0**-25  # expm1(x) rounds to x: keeps -0.0 and denormals
    return e.select(e.cmp("<", e.abs(x), tiny), x, value)


# -- log, log1p ----------------------------------------------------------------------------
def _log_finite(e: _Emit, x: ir.Value) -> ir.Value:
    """log x for positive finite x (denormals included); garbage elsewhere."""
    m, k = e.split_exponent(x)
    f = e.sub(m, 1.0)
    if e.is64:
        # log(1 + f) = f - (f^2/2 - s (f^2/2 + s^2 R(s^2))), s = f / (2 + f): f is
        # exact, f^2/2 rounds once, and the rounding of the rest is small beside them.
        s = e.div(f, e.add(f, 2.0))
        z = e.mul(s, s)
        half_f2 = e.mul(e.mul(f, f), 0.5)
        correction = e.mul(s, e.add(half_f2, e.mul(z, e.poly(z, LOG_F64))))
        tail = e.fma(k, LN2_LO[e.element], correction)
        log_m = e.sub(f, e.sub(half_f2, tail))
    else:
        # log(1 + f) = f - f^2/2 + f^3 Q(f), summed small terms first.
        z = e.mul(f, f)
        small = e.fma(e.mul(f, z), e.poly(f, LOG_F32), e.mul(k, LN2_LO[e.element]))
        log_m = e.add(f, e.fma(z, -0.5, small))
    return e.fma(k, LN2_HI[e.element], log_m)


def _log(e: _Emit, x: ir.Value) -> ir.Value:
    value = _log_finite(e, x)
    value = e.select(e.cmp("==", x, INF), INF, value)
    value = e.select(e.cmp("==", x, 0.0), -INF, value)
    value = e.select(e.cmp("<", x, 0.0), math.nan, value)
    return e.select(e.is_nan(x), x, value)


def _log1p(e: _Emit, x: ir.Value) -> ir.Value:
    # log1p x = log u + (x - (u - 1)) / u with u = 1 + x rounded: the second term
    # restores what the rounding of u lost (exact for tiny x, where log u = 0).
    u = e.add(x, 1.0)
    lost = e.sub(x, e.sub(u, 1.0))
    value = e.add(_log(e, u), e.div(lost, u))
    value = e.select(e.cmp("==", u, 0.0), -INF, value)  # x = -1 (lost / u would be 0 / 0)
    value = e.select(e.cmp("==", x, INF), INF, value)
    return e.select(e.cmp("==", x, 0.0), x, value)  # -0.0 stays -0.0


# -- tanh, sigmoid -------------------------------------------------------------------------
def _tanh(e: _Emit, x: ir.Value) -> ir.Value:
    # tanh |x| = h / (h + 1) with h = expm1(2|x|) / 2: no cancellation anywhere, so
    # small arguments keep their relative accuracy. Past `saturate`, tanh rounds to 1.
    saturate = 20.0 if e.is64 else 10.0
    a = e.abs(x)
    a = e.select(e.cmp(">", a, saturate), saturate, a)
    h = _half_expm1(e, e.add(a, a))
    return e.copysign(e.div(h, e.add(h, 1.0)), x)


def _sigmoid(e: _Emit, x: ir.Value) -> ir.Value:
    # As the reference: t = exp(-|x|); 1 / (1 + t) for x >= 0, else t / (1 + t).
    t = _exp(e, e.neg(e.abs(x)))
    numerator = e.select(e.cmp(">=", x, 0.0), 1.0, t)
    return e.div(numerator, e.add(t, 1.0))


# -- erf -----------------------------------------------------------------------------------
def _erf(e: _Emit, x: ir.Value) -> ir.Value:
    if not e.is64:
        w = e.wide()
        return e.b.fptrunc(_erf(w, e.b.fpext(x, w.ty)), e.ty)
    a = e.abs(x)
    # a E(a^2) = a c0 + a (z E'(z)) with c0 = 2/sqrt(pi) as a double-double.
    z = e.mul(a, a)
    small = e.fma(
        a, ERF_SMALL[-1], e.mul(a, e.fma(z, e.poly(z, ERF_SMALL[:-1]), TWO_OVER_SQRT_PI_LO))
    )
    # 1 - exp(-a^2) G(u); a^2 = h + l exactly, exp(-h - l) = exp(-h) (1 - l).
    h, l = e.two_prod(a, a)
    gauss = e.mul(_exp(e, e.neg(h)), e.sub(1.0, l))
    u = e.fma(a, 0.4, -1.4)
    large = e.sub(1.0, e.mul(gauss, e.poly(u, ERFC_SCALED)))
    value = e.select(e.cmp("<", a, 1.0), small, e.select(e.cmp("<", a, 6.0), large, 1.0))
    return e.select(e.is_nan(x), x, e.copysign(value, x))


# -- sin, cos ------------------------------------------------------------------------------
def _sincos(e: _Emit, x: ir.Value, cosine: bool) -> ir.Value:
    if not e.is64:
        w = e.wide()
        return e.b.fptrunc(_sincos_wide(w, e.b.fpext(x, w.ty), cosine, narrow=True), e.ty)
    return _sincos_wide(e, x, cosine, narrow=False)


def _sincos_wide(e: _Emit, x: ir.Value, cosine: bool, narrow: bool) -> ir.Value:
    """sin or cos in float64 (`narrow`: only float32 accuracy is needed)."""
    # x = k pi/2 + r with |r| <= pi/4: three fma steps with pi/2 split in three
    # doubles. Each step rounds relative to r, so r is accurate while k < 2^50;
    # beyond, a garbage r is pulled into range (the result stays in [-1, 1]).
    # k is the integer nearest to x 2/pi computed in double-double: rounding x 2/pi
    # once could be off by 0.15 near 2^50 and push r past the polynomials' interval.
    t, t_lo = e.two_prod(x, TWO_OVER_PI[0])
    k = e.rint(e.add(t, e.fma(x, TWO_OVER_PI[1], t_lo)))
    r = x
    for part in PIO2:
        r = e.fma(e.neg(k), part, r)
    r = e.select(e.cmp("==", k, 0.0), x, r)  # exact for |x| <= pi/4, keeps -0.0
    r = e.select(e.cmp(">", e.abs(r), 0.9), 0.0, r)  # only for |x| >= 2^50; keeps NaN
    z = e.mul(r, r)
    sine = e.fma(e.mul(r, z), e.poly(z, SIN_F32 if narrow else SIN_F64), r)
    if narrow:
        cos_r = e.fma(e.mul(z, z), e.poly(z, COS_F32), e.fma(z, -0.5, 1.0))
    else:
        # 1 - z/2 rounded to w, the lost bits added back with the tail.
        half_z = e.mul(z, 0.5)
        w = e.sub(1.0, half_z)
        tail = e.fma(e.mul(z, z), e.poly(z, COS_F64), e.sub(e.sub(1.0, w), half_z))
        cos_r = e.add(w, tail)
    # quadrant q = k mod 4 (computed in floating point: k may exceed every integer type)
    if cosine:
        k = e.add(k, 1.0)
    q = e.sub(k, e.mul(e.floor(e.mul(k, 0.25)), 4.0))
    odd = e.either(e.cmp("==", q, 1.0), e.cmp("==", q, 3.0))
    value = e.select(odd, cos_r, sine)
    value = e.select(e.cmp(">=", q, 2.0), e.neg(value), value)
    return value if cosine else e.select(e.cmp("==", x, 0.0), x, value)  # sin(-0.0) = -0.0


def _sin(e: _Emit, x: ir.Value) -> ir.Value:
    return _sincos(e, x, cosine=False)


def _cos(e: _Emit, x: ir.Value) -> ir.Value:
    return _sincos(e, x, cosine=True)


# -- pow -----------------------------------------------------------------------------------
def _log_dd(e: _Emit, a: ir.Value) -> tuple[ir.Value, ir.Value]:
    """log a as a double-double, for positive finite a.

    About 2^-64 relative (the s^5 tail is in double): y log a then errs by under
    0.3 ulp of the result even where |y log a| is near the overflow bound.
    """
    m, k = e.split_exponent(a)
    f = e.sub(m, 1.0)  # exact
    # s = f / (1 + m) as a double-double: one division, then the residual.
    den, den_lo = e.two_sum(m, e.c(1.0))
    inverse = e.div(1.0, den)
    s = e.mul(f, inverse)
    s_lo = e.mul(e.sub(e.fma(e.neg(s), den, f), e.mul(s, den_lo)), inverse)
    # log m = 2s + (2/3)s^3 + s^5 T(s^2); the first two terms in double-double.
    z, z_lo = e.two_prod(s, s)
    z_lo = e.fma(e.add(s, s), s_lo, z_lo)
    cube, cube_lo = e.two_prod(z, s)
    cube_lo = e.add(cube_lo, e.fma(z, s_lo, e.mul(z_lo, s)))
    third, third_lo = e.two_prod(cube, TWO_THIRDS_DD[0])
    third_lo = e.add(third_lo, e.fma(cube, TWO_THIRDS_DD[1], e.mul(cube_lo, TWO_THIRDS_DD[0])))
    tail = e.mul(e.mul(cube, z), e.poly(z, POW_LOG_TAIL))
    kl, kl_lo = e.two_prod(k, LN2_DD[0])
    kl_lo = e.fma(k, LN2_DD[1], kl_lo)
    hi, err1 = e.two_sum(kl, e.add(s, s))
    hi, err2 = e.two_sum(hi, third)
    lo = e.add(e.add(err1, err2), e.add(e.add(kl_lo, e.add(s_lo, s_lo)), e.add(third_lo, tail)))
    return e.fast_two_sum(hi, lo)


def _exp_dd(e: _Emit, p: ir.Value, p_lo: ir.Value) -> ir.Value:
    """e^(p + p_lo) for a double-double argument (float64), within about an ulp."""
    clamped = e.clamp(p, -746.0, 710.0)
    p_lo = e.select(e.cmp("==", clamped, p), p_lo, 0.0)
    k_float, k = e.nearest_integer(clamped, LOG2E)
    r = e.fma(e.neg(k_float), LN2_HI[F64], clamped)  # exact (Sterbenz)
    r, r_lo = e.two_sum(r, e.mul(e.neg(k_float), LN2_LO[F64]))  # k LN2_LO reaches 5e-8
    r_lo = e.add(r_lo, p_lo)
    q = e.mul(e.mul(r, r), e.poly(r, EXP_F64))  # expm1(r) - r
    # e^(r + r_lo) = 1 + r + q + r_lo (1 + r + q), with 1 + r kept exact.
    one, one_lo = e.fast_two_sum(e.c(1.0), r)
    tail = e.add(one_lo, e.add(q, e.fma(r_lo, e.add(r, q), r_lo)))
    return e.scale(e.add(one, tail), k)


def _pow_magnitude(e: _Emit, a: ir.Value, y: ir.Value) -> ir.Value:
    """|x|^y = exp(y log |x|) for finite a = |x| > 0 and finite y."""
    if e.is64:
        log_a, log_a_lo = _log_dd(e, a)
        p, p_lo = e.two_prod(log_a, y)
        return _exp_dd(e, p, e.fma(log_a_lo, y, p_lo))
    # float32 in float64: log a is within 1 ulp of double and |y log a| < 104 wherever
    # the result is not 0 or inf, so the float32 result is off by far less than an ulp.
    w = e.wide()
    wide_a, wide_y = e.b.fpext(a, w.ty), e.b.fpext(y, w.ty)
    return e.b.fptrunc(_exp(w, w.mul(wide_y, _log_finite(w, wide_a))), e.ty)


def _pow(e: _Emit, x: ir.Value, y: ir.Value) -> ir.Value:
    # C99 pow (what np.power does): the magnitude exp(y log|x|), then the special
    # cases in the order that makes the later ones win.
    a = e.abs(x)
    magnitude = _pow_magnitude(e, a, y)
    y_abs = e.abs(y)
    y_finite = e.cmp("<", y_abs, INF)
    y_integer = e.cmp("==", e.floor(y), y)
    y_odd = e.both(y_integer, y_finite, e.cmp("!=", e.mul(e.floor(e.mul(y, 0.5)), 2.0), y))
    grows = e.b.icmp_unsigned("==", e.cmp(">", a, 1.0), e.cmp(">", y, 0.0))
    magnitude = e.select(e.cmp("==", y_abs, INF), e.select(grows, INF, 0.0), magnitude)
    magnitude = e.select(e.cmp("==", a, 0.0), e.select(e.cmp("<", y, 0.0), INF, 0.0), magnitude)
    magnitude = e.select(e.cmp("==", a, INF), e.select(e.cmp("<", y, 0.0), 0.0, INF), magnitude)
    value = e.select(e.both(e.sign_bit(x), y_odd), e.neg(magnitude), magnitude)
    negative_finite = e.both(e.cmp("<", x, 0.0), e.cmp(">", x, -INF))
    fractional = e.both(y_finite, e.b.not_(y_integer))
    value = e.select(e.both(negative_finite, fractional), math.nan, value)
    value = e.select(e.either(e.is_nan(x), e.is_nan(y)), e.add(x, y), value)
    value = e.select(e.cmp("==", y, 1.0), x, value)  # exact, as a correctly rounded pow
    value = e.select(e.either(e.cmp("==", x, 1.0), e.cmp("==", y, 0.0)), 1.0, value)
    return e.select(e.both(e.cmp("==", x, -1.0), e.cmp("==", y_abs, INF)), 1.0, value)


FUNCTIONS: dict[str, tuple[int, Callable[..., ir.Value]]] = {
    "exp": (1, _exp),
    "expm1": (1, _expm1),
    "log": (1, _log),
    "log1p": (1, _log1p),
    "tanh": (1, _tanh),
    "sigmoid": (1, _sigmoid),
    "erf": (1, _erf),
    "sin": (1, _sin),
    "cos": (1, _cos),
    "pow": (2, _pow),
}


def math_function(module: ir.Module, name: str, ty: ir.Type) -> ir.Function:
    """The function `gf.<name>.<f32|f64|vNf32|vNf64>` of `module`, emitted on first use.

    Args:
      module: the module that calls it (each module gets its own copy, which
        inlining then removes).
      name: one of exp, expm1, log, log1p, tanh, sigmoid, erf, sin, cos, pow.
      ty: ir.FloatType() or ir.DoubleType(), or an ir.VectorType of either
        (the function then computes each lane as the scalar one would).

    Returns:
      An internal alwaysinline function taking one value of `ty` (two for pow)
      and returning one.

    Raises:
      errors.InternalError: for an unknown name or a non-float type.
    """
    if name not in FUNCTIONS or element_type(ty) not in (F32, F64):
        raise errors.InternalError(f"mathlib has no function {name!r} for type {ty}")
    full = f"gf.{name}.{type_suffix(ty)}"
    existing = module.globals.get(full)
    if existing is not None:
        return existing
    arity, emit = FUNCTIONS[name]
    function = ir.Function(module, ir.FunctionType(ty, [ty] * arity), full)
    function.linkage = "internal"
    function.attributes.add("alwaysinline")
    function.attributes.add("nounwind")
    builder = ir.IRBuilder(function.append_basic_block("entry"))
    builder.ret(emit(_Emit(builder, ty), *function.args))
    return function
