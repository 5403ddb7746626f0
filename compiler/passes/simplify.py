"""simplify: algebraic rewrite rules, run to a fixed point.

Each rule looks at one op (with its inputs already rewritten) and returns
the tensors that replace its outputs, or None. A sweep applies the rules to
every op; sweeps repeat until one changes nothing. More sweeps than
`simplify_max_iterations` means two rules undo each other: that raises a
RewriteLimitError naming the rules that fired last.

Every rule is exact under IEEE arithmetic, including NaN, ±Inf and -0.0,
and keeps the output's dtype and its run-time shape; each says why. "Shape
neutral" means a constant operand cannot change the result's shape: its
rank is at most the other operand's and all its dims are 1.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np

from graphflow import errors
from graphflow.compiler.passes.base import PassOptions, PassResult
from graphflow.compiler.passes.fold import const_value
from graphflow.compiler.program import GraphBuilder, Program
from graphflow.graph import Operation, Tensor


class RewriteLimitError(errors.InternalError):
    """The rewrite rules did not reach a fixed point within the iteration cap."""


@dataclasses.dataclass
class Site:
    """What a rule sees: the old op, its rewritten inputs, and the builder to emit into."""

    op: Operation
    inputs: list[Tensor]
    builder: GraphBuilder

    def emit(self, op_type: str, inputs: list[Tensor], attrs: dict | None = None) -> Tensor:
        return self.builder.emit(op_type, inputs, attrs, like=self.op).outputs[0]

    @property
    def out(self) -> Tensor:
        return self.op.outputs[0]


Rule = Callable[[Site], list[Tensor] | None]


# -- matching helpers ----------------------------------------------------------------------
def is_splat(t: Tensor, value: float, negative_zero: bool | None = None) -> bool:
    """True if `t` is a constant whose every element equals `value` (and sign of zero)."""
    v = const_value(t)
    if v is None or v.size == 0 or v.dtype == np.bool_:
        return False
    if not np.all(v == value):
        return False
    if negative_zero is not None and v.dtype.kind == "f":
        return bool(np.all(np.signbit(v) == negative_zero))
    return True


def shape_neutral(const: Tensor, other: Tensor) -> bool:
    """A constant that broadcasting against `other` cannot enlarge."""
    c, o = const.shape, other.shape
    if c.rank is None or o.rank is None or c.rank > o.rank:
        return False
    return all(d == 1 for d in c.dims)  # type: ignore[union-attr]


def keeps(site: Site, x: Tensor) -> bool:
    """`x` can stand for the op's output: same dtype, same static shape."""
    return x.dtype == site.out.dtype and x.shape == site.out.shape


def _binary_identity(value: float, negative_zero: bool | None, commutes: bool) -> Rule:
    def rule(site: Site) -> list[Tensor] | None:
        x, y = site.inputs
        candidates = [(x, y)] + ([(y, x)] if commutes else [])
        for keep, const in candidates:
            zero_sign = negative_zero if keep.dtype.is_floating else None
            if (
                is_splat(const, value, zero_sign)
                and shape_neutral(const, keep)
                and keeps(site, keep)
            ):
                return [keep]
        return None

    return rule


# x * 1 = x for every x: IEEE multiplication by one is exact, NaN stays NaN, -0 * 1 = -0.
mul_by_one = _binary_identity(1.0, None, commutes=True)
# x / 1 = x exactly, for the same reason.
div_by_one = _binary_identity(1.0, None, commutes=False)
# x + (-0.0) = x for every x, including x = -0.0 (-0 + -0 = -0) and x = +0.0;
# x + (+0.0) is NOT exact (-0 + +0 = +0), so only a negative zero matches for
# floats. Integers have one zero.
add_zero = _binary_identity(0.0, True, commutes=True)
# x - (+0.0) = x + (-0.0) = x for every x (see above); x - (-0.0) is not exact.
sub_zero = _binary_identity(0.0, False, commutes=False)


def mul_by_minus_one(site: Site) -> list[Tensor] | None:
    # x * -1 = -x exactly: multiplying by -1 only flips the sign bit (NaN stays NaN).
    x, y = site.inputs
    for keep, const in ((x, y), (y, x)):
        if is_splat(const, -1.0) and shape_neutral(const, keep) and keeps(site, keep):
            return [site.emit("Neg", [keep])]
    return None


def double_negation(site: Site) -> list[Tensor] | None:
    # -(-x) = x: negation flips the sign bit, twice restores it, for every x.
    (x,) = site.inputs
    if x.op.type == "Neg":
        return [x.op.inputs[0]]
    return None


def double_not(site: Site) -> list[Tensor] | None:
    # not(not(b)) = b for bools.
    (x,) = site.inputs
    if x.op.type == "LogicalNot":
        return [x.op.inputs[0]]
    return None


def identity(site: Site) -> list[Tensor] | None:
    # Identity and StopGradient pass values through; gradients were built
    # before optimization, so stop_gradient has done its job here.
    return [site.inputs[0]]


def cast(site: Site) -> list[Tensor] | None:
    (x,) = site.inputs
    target = site.op.attrs["dtype"]
    if x.dtype == target:
        return [x]  # a cast to the same dtype changes nothing
    if x.op.type == "Cast":
        source = x.op.inputs[0]
        middle = x.dtype
        # Through a lossless widening (f32->f64, i32->i64, i32->f64, bool->any):
        # cast(cast(s, M), T) = cast(s, T), since the middle step loses nothing.
        if _widens_exactly(source.dtype.np, middle.np):
            if source.dtype == target:
                return [source]
            return [site.emit("Cast", [source], {"dtype": target})]
    return None


def _widens_exactly(source: np.dtype, middle: np.dtype) -> bool:
    if source.kind == "b":
        return True
    if source.kind == "f" and middle.kind == "f":
        return middle.itemsize >= source.itemsize
    if source.kind == "i" and middle.kind == "i":
        return middle.itemsize >= source.itemsize
    if source.kind == "i" and middle.kind == "f":
        return np.finfo(middle).nmant + 1 >= np.iinfo(source).bits - 1
    return False


def transpose(site: Site) -> list[Tensor] | None:
    (x,) = site.inputs
    perm = site.op.attrs["perm"]
    if perm is None:
        return None
    if tuple(perm) == tuple(range(len(perm))):
        return [x]  # the identity permutation
    if x.op.type == "Transpose" and x.op.attrs["perm"] is not None:
        # transpose(transpose(a, p), q)[i] takes axis p[q[i]] of a.
        inner = x.op.attrs["perm"]
        combined = tuple(inner[q] for q in perm)
        source = x.op.inputs[0]
        if combined == tuple(range(len(combined))):
            return [source]
        return [site.emit("Transpose", [source], {"perm": combined})]
    return None


_RESHAPE_LIKE = ("Reshape", "ExpandDims", "Squeeze")


def reshape(site: Site) -> list[Tensor] | None:
    (x,) = site.inputs
    # A reshape only depends on the row-major element order, which a chain of
    # reshapes, expand_dims and squeezes never changes: keep only the last.
    if x.op.type in _RESHAPE_LIKE:
        source = x.op.inputs[0]
        if source.shape == site.out.shape and site.out.shape.is_fully_defined:
            return [source]
        return [site.emit("Reshape", [source], dict(site.op.attrs))]
    if x.shape == site.out.shape and x.shape.is_fully_defined:
        return [x]  # a reshape to the shape it has
    return None


def pow_rule(site: Site) -> list[Tensor] | None:
    x, y = site.inputs
    if not (shape_neutral(y, x) and keeps(site, x)):
        return None
    if is_splat(y, 1.0):
        return [x]  # pow(x, 1) = x for every x, NaN included (C99 F.9.4.4)
    if is_splat(y, 2.0):
        # pow(x, 2) = x*x for every x: ±0 -> +0, ±Inf -> +Inf, NaN -> NaN; the
        # square is correctly rounded (a vectorized libm pow may be 1 ulp off).
        return [site.emit("Square", [x])]
    if not x.dtype.is_floating:
        return None
    if is_splat(y, -1.0):
        # pow(x, -1) = 1/x for every x: pow(±0, -1) = ±Inf, pow(±Inf, -1) = ±0.
        return [site.emit("Reciprocal", [x])]
    if is_splat(y, 0.5):
        # pow(x, 0.5) and sqrt(x) differ only at -0 (pow gives +0, sqrt -0) and
        # -Inf (pow gives +Inf, sqrt NaN): abs() fixes the first, a select the
        # second; everything else, NaN and negatives included, agrees.
        root = site.emit("Abs", [site.emit("Sqrt", [x])])
        minus_inf = site.builder.emit(
            "Const", [], {"value": _scalar(-np.inf, x), "dtype": x.dtype}, like=site.op
        ).outputs[0]
        plus_inf = site.builder.emit(
            "Const", [], {"value": _scalar(np.inf, x), "dtype": x.dtype}, like=site.op
        ).outputs[0]
        is_minus_inf = site.emit("Equal", [x, minus_inf])
        return [site.emit("SelectV2", [is_minus_inf, plus_inf, root])]
    return None


def _scalar(value: float, like: Tensor) -> np.ndarray:
    array = np.asarray(value, dtype=like.dtype.np)
    array.flags.writeable = False
    return array


def same_operands(site: Site) -> list[Tensor] | None:
    # max(x, x) = min(x, x) = x for every x, NaN included.
    x, y = site.inputs
    if x is y:
        return [x]
    return None


def select_constant(site: Site) -> list[Tensor] | None:
    cond, x, y = site.inputs
    v = const_value(cond)
    if v is None or v.size == 0:
        return None
    pick = x if bool(np.all(v)) else y if not bool(np.any(v)) else None
    # A uniform condition selects one branch everywhere.
    if pick is not None and keeps(site, pick):
        return [pick]
    return None


def single_concat(site: Site) -> list[Tensor] | None:
    # Concatenating one tensor gives that tensor.
    if len(site.inputs) == 1 and keeps(site, site.inputs[0]):
        return [site.inputs[0]]
    return None


def broadcast_to_same(site: Site) -> list[Tensor] | None:
    (x,) = site.inputs
    if x.shape == site.out.shape and x.shape.is_fully_defined:
        return [x]  # broadcasting to the shape it has
    return None


def tile_ones(site: Site) -> list[Tensor] | None:
    if all(m == 1 for m in site.op.attrs["multiples"]) and keeps(site, site.inputs[0]):
        return [site.inputs[0]]  # one copy of each
    return None


RULES: dict[str, list[Rule]] = {
    "Mul": [mul_by_one, mul_by_minus_one],
    "RealDiv": [div_by_one],
    "Add": [add_zero],
    "Sub": [sub_zero],
    "Neg": [double_negation],
    "LogicalNot": [double_not],
    "Identity": [identity],
    "StopGradient": [identity],
    "Cast": [cast],
    "Transpose": [transpose],
    "Reshape": [reshape],
    "Pow": [pow_rule],
    "Maximum": [same_operands],
    "Minimum": [same_operands],
    "SelectV2": [select_constant],
    "ConcatV2": [single_concat],
    "BroadcastTo": [broadcast_to_same],
    "Tile": [tile_ones],
}


def sweep(program: Program, rules: dict[str, list[Rule]]) -> tuple[Program, list[str]]:
    """One pass of every rule over every op."""
    builder = GraphBuilder(program)
    fired: list[str] = []
    for op in program.graph.get_operations():
        if builder.handled(op):
            continue
        replacement = None
        if not op.control_inputs:
            site = Site(op, [builder.get(t) for t in op.inputs], builder)
            for rule in rules.get(op.type, ()):
                replacement = rule(site)
                if replacement is not None:
                    fired.append(f"{rule.__name__} on {op.type} '{op.name}'")
                    break
        if replacement is None:
            builder.copy(op)
        else:
            for old, new in zip(op.outputs, replacement):
                builder.set(old, new)
    return builder.finish(), fired


def run(
    program: Program, options: PassOptions, rules: dict[str, list[Rule]] | None = None
) -> PassResult:
    rules = RULES if rules is None else rules
    changes: list[str] = []
    for _ in range(options.simplify_max_iterations):
        program, fired = sweep(program, rules)
        if not fired:
            return PassResult(program, tuple(changes))
        changes.extend(fired)
    raise RewriteLimitError(
        f"simplify: no fixed point after {options.simplify_max_iterations} sweeps; the rules "
        f"that fired last: {'; '.join(fired[:5])}. Turn the pass off with "
        "disable=['simplify'] and report this graph."
    )
