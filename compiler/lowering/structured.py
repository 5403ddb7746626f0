"""Lowering rules for structured ops: one function per op type, `rule(lowering, op)`.

Each rule emits one kernel (see kernels.KernelBuilder and loop_nest) that
reads the op's input buffers and writes its output buffers, and calls it
from the entry function with `lowering.call_kernel`. `lowering` is the
module's `_Lowering`: `lowering.dims(t)` gives a tensor's dims (ints, or
slots for dims known only at run time) and `lowering.kernel_name(op)` a
fresh kernel name.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from graphflow.compiler.lowering.kernels import (
    KernelBuilder,
    Operand,
    load_value,
    loop_nest,
    row_major_strides,
    store_value,
)
from graphflow.compiler.lowering.structured_array import ARRAY_RULES
from graphflow.compiler.lowering.structured_grad import GRAD_RULES
from graphflow.compiler.lowering.structured_nn import NN_RULES
from graphflow.graph import Operation

if TYPE_CHECKING:
    from graphflow.compiler.lowering.module import _Lowering

Rule = Callable[["_Lowering", Operation], None]


def transpose(lowering: _Lowering, op: Operation) -> None:
    """out[i0, i1, ...] = in[...] with in axis perm[k] walked by out axis k."""
    (x,) = op.inputs
    (y,) = op.outputs
    perm = op.attrs["perm"]
    kb = KernelBuilder(lowering.module, lowering.kernel_name(op), [x.dtype, y.dtype])
    in_dims = kb.dims(lowering.dims(x))
    out_dims = kb.dims(lowering.dims(y))
    in_strides = row_major_strides(kb.builder, in_dims)
    source = Operand(kb.pointers[0], in_dims, x.dtype, strides=[in_strides[p] for p in perm])
    target = Operand(kb.pointers[1], out_dims, y.dtype)

    def element(b, pointers, index):
        store_value(b, load_value(b, pointers[0], x.dtype), pointers[1], y.dtype)

    loop_nest(kb, out_dims, [source, target], element, "t")
    lowering.call_kernel(kb.finish(), [x, y])


STRUCTURED: dict[str, Rule] = {
    "Transpose": transpose,
}
STRUCTURED.update(ARRAY_RULES)
STRUCTURED.update(NN_RULES)
STRUCTURED.update(GRAD_RULES)
