"""GEMM: one LLVM function computing C = epilogue(A @ B), blocked and packed the BLIS way.

The loop nest (GotoBLAS / BLIS), with the cache level each block is sized for:

    for jc in N by NC:                   # columns of C and B
      for pc in K by KC:                 # depth; pack B[pc:+kc, jc:+nc] into NR-wide micro-panels
        for ic in M by MC:               # pack A[ic:+mc, pc:+kc] into MR-tall micro-panels
          for jr in nc by NR:            # one B micro-panel, kc x NR, stays in L1
            for ir in mc by MR:          # the micro-kernel: MR x NR accumulators in registers
              C[ic+ir:+MR, jc+jr:+NR] (+)= Ap[ir] @ Bp[jr]

Invariants the code relies on:

- The packed panels are zero-padded up to MR rows and NR columns, so the
  micro-kernel always computes a full MR-row tile; only the write to C knows
  about the edges (rows >= M and columns >= N are never read or written).
  A last column panel no wider than one vector runs a one-vector kernel.
- The first K block stores its tile into C, later ones add to C, and the last
  one applies the epilogue while the tile is in registers. K == 0 still runs
  one (empty) K block, so C = epilogue(0).
- The packing buffers live in the caller's workspace, aligned here to 64
  bytes, so every load of packed B is an aligned full-vector load.
- The micro-kernel broadcasts one element of A per row and multiplies it by
  NR / lanes vector loads of packed B (an FMA each); LLVM folds the broadcast
  into the FMA's memory operand. The C tile is prefetched before the k loop.

Two shapes skip packing, which would cost as much as the product there:
with one column panel (N <= NR) the kernel reads A in place, and a single
row (M == 1, batch-1 inference) with unit-stride B rows accumulates strips
of columns straight from the rows of B.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
from collections.abc import Callable, Iterator, Sequence

from llvmlite import ir

from graphflow.compiler.lowering.irutil import I1, I8P, I32, I64, VOID, const, for_range

Epilogue = Callable[[ir.IRBuilder, list[ir.Value], ir.Value, ir.Value, ir.Value, int], ir.Value]

_ALIGN = 64  # bytes: one cache line, one 512-bit vector
_UNROLL = 4  # k steps per iteration of the micro-kernel loop (LLVM leaves it rolled)
# The single-row path's strips: (vectors per strip, partial sums per vector), widest first.
_ROW_STRIPS = ((16, 1), (1, 4))
_ROW_AHEAD = 4  # rows of B prefetched ahead by the one-row path


@dataclasses.dataclass(frozen=True)
class Tiling:
    """Register and cache blocking of one GEMM.

    mr x nr is the register tile (nr / lanes vectors per row); the packed B
    micro-panel (kc x nr) is sized for L1, the packed A block (mc x kc) and
    the packed B panel (kc x nc) for L2 (or L3).
    """

    mr: int
    nr: int
    lanes: int
    kc: int
    mc: int
    nc: int

    def __post_init__(self) -> None:
        if self.nr % self.lanes or self.mc % self.mr or self.nc % self.nr:
            raise ValueError(f"inconsistent tiling {self}")


# Measured on Rocket Lake (AVX-512, L1 48K, L2 2M); see benchmarks/gemm_probe.py. The B
# micro-panel (kc x nr, 32 KB) stays in L1; packed A (72 x 256) and B (256 x 1024) fit L2
# together. At 1024^3, 12 x 32 and 8 x 32 tiles, kc 128..1024, mc 48..288 and nc 512..3072
# all measured within +-5% of this; mc 72, nc 1024 beat mc 144, nc 3072 by ~10% at 2048^3.
# 12 x 32 with kc 512 was ~8% faster at 2048^3 but 3-8% slower on the MLP shapes
# (256 x 784 x 512, 256 x 512 x 512, 256 x 512 x 10), which are the workloads.
TILINGS: dict[str, Tiling] = {
    "float": Tiling(mr=6, nr=32, lanes=16, kc=256, mc=72, nc=1024),
    "double": Tiling(mr=6, nr=16, lanes=8, kc=256, mc=72, nc=1024),
}


def default_tiling(dtype: ir.Type) -> Tiling:
    """The tiling used for `dtype` (float or double) when none is given."""
    try:
        return TILINGS[str(dtype)]
    except KeyError:
        raise ValueError(f"GEMM supports float and double, not {dtype}") from None


def workspace_elements(dtype: ir.Type, tiling: Tiling | None = None) -> int:
    """Elements of `dtype` the caller allocates for `workspace`, whatever M, N and K.

    Packed A (mc x kc) and packed B (kc x nc), plus slack to align them.
    """
    t = tiling or default_tiling(dtype)
    return t.mc * t.kc + t.kc * t.nc + _ALIGN // _size(dtype)


def emit_gemm(
    module: ir.Module,
    name: str,
    dtype: ir.Type,
    epilogue: Epilogue | None = None,
    extra_types: Sequence[ir.Type] = (),
    *,
    tiling: Tiling | None = None,
) -> ir.Function:
    """Emits `void name(M, N, K, A, ars, acs, B, brs, bcs, C, crs, workspace, *extras)`.

    The function computes `C[i, j] = epilogue(sum_k A[i*ars + k*acs] * B[k*brs + j*bcs])`
    for `0 <= i < M`, `0 <= j < N`: strides are in elements (a transposed
    operand needs no copy), rows of C are contiguous and `crs` apart. All
    sizes and strides are i64; A, B, C and workspace are `dtype*`; C must not
    overlap A, B or the workspace. M or N == 0 does nothing; K == 0 stores
    epilogue(0).

    Args:
      module: the module that receives the function.
      name: its symbol name.
      dtype: `ir.FloatType()` or `ir.DoubleType()`.
      epilogue: `epilogue(builder, extras, acc, row, col0, lanes)` returns the
        value to store for `acc`, a `<lanes x dtype>` vector holding
        C[row, col0 : col0 + lanes] (row and col0 are i64). It is called on the
        final value of each vector of C, with lanes equal to the vector width
        where all of those columns are < N, and with lanes == 1 (a
        `<1 x dtype>` vector) for each column of a partial vector at the right
        edge, so it never needs to touch columns >= N. `extras` are the
        function's parameters after `workspace`. None means identity. It is
        emitted at several places, one of them in the internal helper
        `name.edge_tile` (whose `extras` carry the same values), so it must
        not keep state between calls.
      extra_types: the types of those extra parameters.
      tiling: the blocking; `default_tiling(dtype)` if None. The caller's
        workspace must hold `workspace_elements(dtype, tiling)` elements.

    Returns:
      The function (external linkage). The module also receives LLVM
      intrinsic declarations (fma, prefetch, masked.load) and the internal
      `name.edge_tile`.

    Raises:
      ValueError: a dtype other than float or double.
    """
    t = tiling or default_tiling(dtype)
    return _GemmEmitter(module, name, dtype, epilogue, list(extra_types), t).function


def function_type(dtype: ir.Type, extra_types: Sequence[ir.Type] = ()) -> ir.FunctionType:
    """The type of `emit_gemm`'s function (to declare it in a module that calls it)."""
    ptr = dtype.as_pointer()
    types = [I64, I64, I64, ptr, I64, I64, ptr, I64, I64, ptr, I64, ptr]
    return ir.FunctionType(VOID, [*types, *extra_types])


def _size(dtype: ir.Type) -> int:
    try:
        return {"float": 4, "double": 8}[str(dtype)]
    except KeyError:
        raise ValueError(f"GEMM supports float and double, not {dtype}") from None


def _ceil_div(b: ir.IRBuilder, x: ir.Value, y: ir.Value) -> ir.Value:
    return b.udiv(b.add(x, b.sub(y, const(1))), y)


def _round_up(b: ir.IRBuilder, x: ir.Value, multiple: int) -> ir.Value:
    return b.mul(_ceil_div(b, x, const(multiple)), const(multiple))


def _min(b: ir.IRBuilder, x: ir.Value, y: ir.Value) -> ir.Value:
    return b.select(b.icmp_signed("<", x, y), x, y)


@contextlib.contextmanager
def _range(
    b: ir.IRBuilder, start: ir.Value, stop: ir.Value, step: ir.Value, name: str
) -> Iterator[ir.Value]:
    """Emits `for (i = start; i < stop; i += step) { body }`; yields i."""
    before = b.block
    head = b.append_basic_block(f"{name}.head")
    body = b.append_basic_block(f"{name}.body")
    done = b.append_basic_block(f"{name}.done")
    b.branch(head)
    b.position_at_end(head)
    index = b.phi(I64, name=name)
    index.add_incoming(start, before)
    b.cbranch(b.icmp_signed("<", index, stop), body, done)
    b.position_at_end(body)
    yield index
    index.add_incoming(b.add(index, step, name=f"{name}.next", flags=["nsw"]), b.block)
    b.branch(head)
    b.position_at_end(done)


@contextlib.contextmanager
def _blocks(
    b: ir.IRBuilder, total: ir.Value, step: ir.Value, name: str
) -> Iterator[tuple[ir.Value, ir.Value]]:
    """Emits `for (start = 0; start < total; start += step)`; yields (start, min(step, rest))."""
    with _range(b, const(0), total, step, name) as start:
        yield start, _min(b, step, b.sub(total, start))


def _loop_carrying(
    b: ir.IRBuilder,
    start: ir.Value,
    stop: ir.Value,
    step: int,
    values: list[ir.Value],
    body: Callable[[ir.Value, list[ir.Value]], list[ir.Value]],
    name: str,
) -> tuple[ir.Value, list[ir.Value]]:
    """`for (k = start; k < stop; k += step) values = body(k, values)`; returns (k, values).

    The values live in registers (phis), as the accumulators of a kernel must.
    """
    before = b.block
    head = b.append_basic_block(f"{name}.head")
    loop = b.append_basic_block(f"{name}.body")
    done = b.append_basic_block(f"{name}.done")
    b.branch(head)
    b.position_at_end(head)
    k = b.phi(I64, name=f"{name}.k")
    k.add_incoming(start, before)
    phis = []
    for i, value in enumerate(values):
        phi = b.phi(value.type, name=f"{name}.acc{i}")
        phi.add_incoming(value, before)
        phis.append(phi)
    b.cbranch(b.icmp_signed("<", k, stop), loop, done)
    b.position_at_end(loop)
    updated = body(k, list(phis))
    for phi, value in zip(phis, updated):
        phi.add_incoming(value, b.block)
    k.add_incoming(b.add(k, const(step), flags=["nsw"]), b.block)
    b.branch(head)
    b.position_at_end(done)
    return k, list(phis)


@dataclasses.dataclass(frozen=True)
class _Depth:
    """One K block: A[:, pc:pc+kc] @ B[pc:pc+kc, :]; the first stores C, the last finishes it."""

    pc: ir.Value
    kc: ir.Value
    first: ir.Value
    last: ir.Value


@dataclasses.dataclass(frozen=True)
class _ARows:
    """Where the micro-kernel reads A: row r's element k is at
    cursors[rows[r][0]] + rows[r][1] + k * step (one cursor into a packed
    panel, or one per row of A read in place)."""

    cursors: list[ir.Value]
    rows: list[tuple[int, int]]
    step: ir.Value


class _GemmEmitter:
    """Builds the whole GEMM as one function: loop nest, packing, micro-kernel, stores."""

    def __init__(
        self,
        module: ir.Module,
        name: str,
        dtype: ir.Type,
        epilogue: Epilogue | None,
        extra_types: list[ir.Type],
        tiling: Tiling,
    ) -> None:
        self.t = tiling
        self.dtype = dtype
        self.size = _size(dtype)
        self.vector = ir.VectorType(dtype, tiling.lanes)
        self.element = ir.VectorType(dtype, 1)  # one column, as the epilogue sees it
        self.panel_vectors = tiling.nr // tiling.lanes
        self.epilogue = epilogue
        self._edge: ir.Function | None = None
        names = ["M", "N", "K", "A", "a_rs", "a_cs", "B", "b_rs", "b_cs", "C", "c_rs", "workspace"]
        self.function = ir.Function(module, function_type(dtype, extra_types), name)
        args = self.function.args
        for arg, arg_name in zip(args, names):
            arg.name = arg_name
        for index in (3, 6, 9, 11):
            args[index].add_attribute("noalias")
        (self.M, self.N, self.K, self.A, self.a_rs, self.a_cs) = args[:6]
        (self.B, self.b_rs, self.b_cs, self.C, self.c_rs, workspace) = args[6:12]
        self.extras = list(args[12:])
        for i, arg in enumerate(self.extras):
            arg.name = f"extra{i}"
        self.b = ir.IRBuilder(self.function.append_basic_block("entry"))
        # The edge tile buffer: an alloca in the entry block, so it is one stack slot.
        self.tile_buffer = self.b.alloca(ir.ArrayType(dtype, tiling.mr * tiling.nr), name="edge")
        self.tile_buffer.align = _ALIGN
        self._emit(workspace)

    # -- helpers -------------------------------------------------------------------

    def _at(self, base: ir.Value, index: ir.Value, name: str = "") -> ir.Value:
        return self.b.gep(base, [index], inbounds=True, name=name)

    def _load(self, pointer: ir.Value, vector: ir.VectorType, align: int, name: str = ""):
        return self.b.load(self.b.bitcast(pointer, vector.as_pointer()), align=align, name=name)

    def _store(self, value: ir.Value, pointer: ir.Value, align: int) -> None:
        self.b.store(value, self.b.bitcast(pointer, value.type.as_pointer()), align=align)

    def _splat(self, scalar: ir.Value, vector: ir.VectorType) -> ir.Value:
        b = self.b
        one = b.insert_element(ir.Constant(vector, ir.Undefined), scalar, ir.Constant(I32, 0))
        mask = ir.Constant(ir.VectorType(I32, vector.count), [0] * vector.count)
        return b.shuffle_vector(one, ir.Constant(vector, ir.Undefined), mask)

    def _intrinsic(self, name: str, result: ir.Type, operands: list[ir.Type]) -> ir.Function:
        module = self.function.module
        if name in module.globals:
            return module.globals[name]
        return ir.Function(module, ir.FunctionType(result, operands), name)

    def _masked_load(self, vector: ir.VectorType) -> ir.Function:
        """llvm.masked.load in its (pointer, i32 alignment, mask, passthru) form, which LLVM
        22 still reads (it upgrades it to an `align` attribute on the pointer)."""
        suffix = f"v{vector.count}{'f32' if self.size == 4 else 'f64'}.p0"
        mask = ir.VectorType(I1, vector.count)
        operands = [vector.as_pointer(), I32, mask, vector]
        return self._intrinsic(f"llvm.masked.load.{suffix}", vector, operands)

    def _fma(self, vector: ir.VectorType) -> ir.Function:
        suffix = f"v{vector.count}{'f32' if self.size == 4 else 'f64'}"
        return self._intrinsic(f"llvm.fma.{suffix}", vector, [vector] * 3)

    def _choose(
        self,
        condition: ir.Value | bool,
        if_true: Callable[[], list[ir.Value]],
        if_false: Callable[[], list[ir.Value]],
        name: str,
    ) -> list[ir.Value]:
        """Emits `condition ? if_true() : if_false()` as branches; the values merge in phis."""
        if isinstance(condition, bool):
            return if_true() if condition else if_false()
        b = self.b
        yes = b.append_basic_block(f"{name}.yes")
        no = b.append_basic_block(f"{name}.no")
        merge = b.append_basic_block(f"{name}.merge")
        b.cbranch(condition, yes, no)
        results = []
        for block, make in ((yes, if_true), (no, if_false)):
            b.position_at_end(block)
            values = make()
            results.append((values, b.block))
            b.branch(merge)
        b.position_at_end(merge)
        merged = []
        for i, value in enumerate(results[0][0]):
            phi = b.phi(value.type, name=f"{name}.{i}")
            for values, block in results:
                phi.add_incoming(values[i], block)
            merged.append(phi)
        return merged

    # -- the loop nest -------------------------------------------------------------

    def _emit(self, workspace: ir.Value) -> None:
        b = self.b
        empty = b.or_(b.icmp_signed("<=", self.M, const(0)), b.icmp_signed("<=", self.N, const(0)))
        with b.if_then(b.not_(empty)):
            one_row = b.and_(
                b.icmp_signed("==", self.M, const(1)), b.icmp_signed("==", self.b_cs, const(1))
            )
            with b.if_else(one_row) as (row, blocked):
                with row:
                    self._emit_single_row()
                with blocked:
                    self._emit_blocked(workspace)
        b.ret_void()

    def _emit_blocked(self, workspace: ir.Value) -> None:
        b, t = self.b, self.t
        # Align the packing buffers to a cache line (workspace_elements has the slack).
        address = b.ptrtoint(workspace, I64)
        aligned = b.and_(b.add(address, const(_ALIGN - 1)), const(-_ALIGN))
        a_packed = b.inttoptr(aligned, workspace.type, name="a_packed")
        b_packed = self._at(a_packed, const(t.mc * t.kc), name="b_packed")

        # Balanced block sizes: no thin last block (e.g. K = 784 is 4 x 196, not 3 x 256 + 16).
        n_blocks = _ceil_div(b, self.N, const(t.nc))
        nc_step = _round_up(b, _ceil_div(b, self.N, n_blocks), t.nr)
        k_blocks = b.select(
            b.icmp_signed(">", self.K, const(0)),
            _ceil_div(b, self.K, const(t.kc)),
            const(1),  # K == 0: one empty block stores epilogue(0)
        )
        kc_step = _ceil_div(b, self.K, k_blocks)
        m_blocks = _ceil_div(b, self.M, const(t.mc))
        mc_step = _round_up(b, _ceil_div(b, self.M, m_blocks), t.mr)
        last_k_block = b.sub(k_blocks, const(1))
        one_panel = b.icmp_signed("<=", self.N, const(t.nr), name="one_panel")
        with _blocks(b, self.N, nc_step, "jc") as (jc, nc), for_range(b, k_blocks, "kb") as kb:
            pc = b.mul(kb, kc_step, name="pc")
            depth = _Depth(
                pc=pc,
                kc=_min(b, kc_step, b.sub(self.K, pc)),
                first=b.icmp_signed("==", kb, const(0), name="first_k"),
                last=b.icmp_signed("==", kb, last_k_block, name="last_k"),
            )
            self._pack_b(b_packed, depth, jc, nc)
            with (
                _blocks(b, self.M, mc_step, "ic") as (ic, mc),
                b.if_else(one_panel) as (in_place, packed),
            ):
                with in_place:
                    self._panels(depth, ic, mc, jc, nc, b_packed, None)
                with packed:
                    self._pack_a(a_packed, depth, ic, mc)
                    self._panels(depth, ic, mc, jc, nc, b_packed, a_packed)

    def _panels(self, depth, ic, mc, jc, nc, b_packed, a_packed: ir.Value | None) -> None:
        """The jr and ir loops over one packed A block, or over A in place if a_packed is None.

        With one column panel (N <= NR) each A block is used once, so packing
        it would cost as much as the product: the kernel reads A in place,
        rows past M reading the last valid row (their results are never
        stored). Otherwise a packed panel holds [k][r] at k * MR + r.
        """
        b, t = self.b, self.t
        with _blocks(b, nc, const(t.nr), "jr") as (jr, cols):
            b_panel = self._at(b_packed, b.mul(jr, depth.kc), name="b_panel")
            with _blocks(b, mc, const(t.mr), "ir") as (ir_, rows):
                row0 = b.add(ic, ir_)
                if a_packed is None:
                    last_row = b.sub(rows, const(1))
                    starts = []
                    for r in range(t.mr):
                        row = b.add(row0, _min(b, const(r), last_row))
                        offset = b.add(b.mul(row, self.a_rs), b.mul(depth.pc, self.a_cs))
                        starts.append(self._at(self.A, offset, name=f"a_row{r}"))
                    a_rows = _ARows(starts, [(r, 0) for r in range(t.mr)], self.a_cs)
                    unroll = 1  # MR row pointers already use most of the registers
                else:
                    panel = self._at(a_packed, b.mul(ir_, depth.kc), name="a_panel")
                    a_rows = _ARows([panel], [(0, r) for r in range(t.mr)], const(t.mr))
                    unroll = _UNROLL
                kernel = functools.partial(self._micro_kernel, a_rows, unroll, b_panel, depth.kc)
                self._tiles(kernel, row0, b.add(jc, jr), rows, cols, depth.first, depth.last)

    def _tiles(self, kernel, row0, col0, rows, cols, first, last) -> None:
        """One micro-kernel call; a panel no wider than a vector runs the one-vector kernel."""
        b, t = self.b, self.t
        if self.panel_vectors == 1:
            self._tile(kernel, row0, col0, rows, cols, first, last, vectors=1)
            return
        with b.if_else(b.icmp_signed("<=", cols, const(t.lanes))) as (narrow, whole):
            with narrow:
                self._tile(kernel, row0, col0, rows, cols, first, last, vectors=1)
            with whole:
                self._tile(kernel, row0, col0, rows, cols, first, last, self.panel_vectors)

    def _tile(self, kernel, row0, col0, rows, cols, first, last, vectors: int) -> None:
        """C[row0:+rows, col0:+cols] (+)= one micro-kernel over `vectors` vectors per row."""
        self._prefetch_tile(row0, col0, vectors)
        accs = kernel(vectors)
        self._store_tile(accs, row0, col0, rows, cols, first, last)

    # -- packing -------------------------------------------------------------------

    def _pack_a(self, a_packed: ir.Value, depth: _Depth, ic: ir.Value, mc: ir.Value) -> None:
        """A[ic:+mc, pc:+kc] -> MR-tall panels, panel p holding [k][r] at p*kc*MR + k*MR + r.

        Rows past mc read the last valid row (always in bounds) and store 0.
        LLVM vectorizes the k loop (contiguous loads, interleaved stores).
        """
        b, mr = self.b, self.t.mr
        pc, kc = depth.pc, depth.kc
        zero = ir.Constant(self.dtype, 0.0)
        last_row = b.sub(mc, const(1))
        with _blocks(b, mc, const(mr), "pack_a.p") as (p, _):
            panel = self._at(a_packed, b.mul(p, kc))
            sources, valid = [], []
            for r in range(mr):
                row = b.add(p, const(r))
                valid.append(b.icmp_signed("<", row, mc))
                clamped = _min(b, row, last_row)
                offset = b.add(b.mul(b.add(ic, clamped), self.a_rs), b.mul(pc, self.a_cs))
                sources.append(self._at(self.A, offset, name=f"a_row{r}"))
            with for_range(b, kc, "pack_a.k") as k:
                column = b.mul(k, self.a_cs)
                target = self._at(panel, b.mul(k, const(mr)))
                for r in range(mr):
                    value = b.load(self._at(sources[r], column))
                    b.store(b.select(valid[r], value, zero), self._at(target, const(r)))

    def _pack_b(self, b_packed: ir.Value, depth: _Depth, jc: ir.Value, nc: ir.Value) -> None:
        """B[pc:+kc, jc:+nc] -> NR-wide panels, panel q holding [k][c] at q*kc*NR + k*NR + c.

        A row-major B is copied a vector at a time, row by row across all full
        panels (reading B in panel order instead, kc rows apart for every 128
        bytes, defeats the hardware prefetcher: it cost ~10% at 1024^3). The
        rest (the last, partial panel; any B with a column stride) goes
        element by element, columns past nc reading the last valid column
        and storing 0.
        """
        b, t = self.b, self.t
        pc, kc = depth.pc, depth.kc
        contiguous = b.icmp_signed("==", self.b_cs, const(1))
        full_width = b.select(contiguous, b.sub(nc, b.srem(nc, const(t.nr))), const(0))
        with for_range(b, kc, "pack_b.k") as k:
            source = self._at(self.B, b.add(b.mul(b.add(pc, k), self.b_rs), jc))
            target = self._at(b_packed, b.mul(k, const(t.nr)))
            with _range(b, const(0), full_width, const(t.nr), "pack_b.q") as q:
                panel_row = self._at(target, b.mul(q, kc))
                for v in range(self.panel_vectors):
                    at = b.add(q, const(v * t.lanes))
                    value = self._load(self._at(source, at), self.vector, self.size)
                    self._store(value, self._at(panel_row, const(v * t.lanes)), _ALIGN)
        zero = ir.Constant(self.dtype, 0.0)
        last_col = b.add(jc, b.sub(nc, const(1)))
        row0 = self._at(self.B, b.mul(pc, self.b_rs))
        with _blocks(b, b.sub(nc, full_width), const(t.nr), "pack_b.rest") as (rest, cols):
            q = b.add(full_width, rest)
            panel = self._at(b_packed, b.mul(q, kc))
            sources, valid = [], []
            for c in range(t.nr):
                valid.append(b.icmp_signed("<", const(c), cols))
                clamped = _min(b, b.add(b.add(jc, q), const(c)), last_col)
                sources.append(self._at(row0, b.mul(clamped, self.b_cs)))
            with for_range(b, kc, "pack_b.rest.k") as k:
                row = b.mul(k, self.b_rs)
                target = self._at(panel, b.mul(k, const(t.nr)))
                for c in range(t.nr):
                    value = b.load(self._at(sources[c], row))
                    b.store(b.select(valid[c], value, zero), self._at(target, const(c)))

    # -- the micro-kernel ----------------------------------------------------------

    def _micro_kernel(
        self,
        a_rows: _ARows,
        unroll: int,
        b_panel: ir.Value,
        kc: ir.Value,
        vectors: int,
    ) -> list[list[ir.Value]]:
        """MR x `vectors` accumulators of sum_k A[r, k] * Bp[k, :], over kc steps.

        The k loop is unrolled `unroll` times, with a one-step loop for the
        rest. It walks pointers (A's cursors, B's row), which keeps the
        address arithmetic out of the loop body (LLVM left a multiply-by-index
        per step otherwise).
        """
        t = self.t
        fma = self._fma(self.vector)
        n_accs, n_cursors = t.mr * vectors, len(a_rows.cursors)

        def steps(count: int) -> Callable[[ir.Value, list[ir.Value]], list[ir.Value]]:
            def body(k: ir.Value, values: list[ir.Value]) -> list[ir.Value]:
                b = self.b
                accs = values[:n_accs]
                cursors = values[n_accs : n_accs + n_cursors]
                b_row = values[-1]
                for u in range(count):
                    b_vectors = [
                        self._load(
                            self._at(b_row, const(u * t.nr + v * t.lanes)), self.vector, _ALIGN
                        )
                        for v in range(vectors)
                    ]
                    for r, (cursor, offset) in enumerate(a_rows.rows):
                        at = b.add(const(offset), b.mul(const(u), a_rows.step))
                        a = b.load(self._at(cursors[cursor], at), name=f"a{r}")
                        a = self._splat(a, self.vector)
                        for v in range(vectors):
                            i = r * vectors + v
                            accs[i] = b.call(fma, [a, b_vectors[v], accs[i]])
                advance = b.mul(const(count), a_rows.step)
                cursors = [self._at(c, advance) for c in cursors]
                return [*accs, *cursors, self._at(b_row, const(count * t.nr))]

            return body

        values = [ir.Constant(self.vector, None)] * n_accs + [*a_rows.cursors, b_panel]
        k: ir.Value = const(0)
        if unroll > 1:
            unrolled_stop = self.b.sub(kc, const(unroll - 1))
            k, values = _loop_carrying(
                self.b, k, unrolled_stop, unroll, values, steps(unroll), "kernel"
            )
        _, values = _loop_carrying(self.b, k, kc, 1, values, steps(1), "kernel.rest")
        return [values[r * vectors : (r + 1) * vectors] for r in range(t.mr)]

    def _prefetch_tile(self, row0: ir.Value, col0: ir.Value, vectors: int) -> None:
        """Asks for the C tile's cache lines (for writing) before the k loop, so the C update
        after it does not wait on memory. A prefetch never faults, so edge tiles need no
        clamping (hence a plain, not inbounds, GEP)."""
        b, t = self.b, self.t
        prefetch = self._intrinsic("llvm.prefetch.p0", VOID, [I8P, I32, I32, I32])
        write, keep, data = (ir.Constant(I32, n) for n in (1, 3, 1))
        lines = -(-vectors * t.lanes * self.size // _ALIGN)
        for r in range(t.mr):
            start = b.gep(self.C, [b.add(b.mul(b.add(row0, const(r)), self.c_rs), col0)])
            for line in range(lines):
                at = b.gep(start, [const(line * _ALIGN // self.size)])
                b.call(prefetch, [b.bitcast(at, I8P), write, keep, data])

    # -- writing C -----------------------------------------------------------------

    def _finish(
        self,
        accs: list[ir.Value],
        load_c: Callable[[], list[ir.Value]],
        rows: list[ir.Value],
        cols: list[ir.Value],
        first: ir.Value | bool,
        last: ir.Value | bool,
        name: str,
    ) -> list[ir.Value]:
        """The values to store: acc (first K block) or acc + C, then the epilogue (last block)."""
        b = self.b
        summed = self._choose(
            first,
            lambda: accs,
            lambda: [b.fadd(a, c) for a, c in zip(accs, load_c())],
            f"{name}.sum",
        )
        epilogue = self.epilogue
        if epilogue is None:
            return summed
        return self._choose(
            last,
            lambda: [
                epilogue(b, self.extras, value, row, col, value.type.count)
                for value, row, col in zip(summed, rows, cols)
            ],
            lambda: summed,
            f"{name}.epilogue",
        )

    def _store_tile(self, accs, row0, col0, rows, cols, first, last) -> None:
        """Writes the MR x len(accs[0])*lanes tile at C[row0, col0], of which rows x cols lie
        inside C."""
        b, t = self.b, self.t
        width = len(accs[0]) * t.lanes
        full = b.and_(
            b.icmp_signed("==", rows, const(t.mr)), b.icmp_signed(">=", cols, const(width))
        )
        with b.if_else(full, likely=True) as (inside, edge):
            with inside:
                self._store_full_tile(accs, row0, col0, first, last)
            with edge:
                self._store_edge_tile(accs, row0, col0, rows, cols, first, last)

    def _store_full_tile(self, accs, row0, col0, first, last) -> None:
        b, t = self.b, self.t
        pointers, flat, rows, cols = [], [], [], []
        for r, row_accs in enumerate(accs):
            row = b.add(row0, const(r))
            c_row = self._at(self.C, b.add(b.mul(row, self.c_rs), col0))
            for v, acc in enumerate(row_accs):
                pointers.append(self._at(c_row, const(v * t.lanes)))
                flat.append(acc)
                rows.append(row)
                cols.append(b.add(col0, const(v * t.lanes)))
        load_c = lambda: [self._load(p, self.vector, self.size) for p in pointers]  # noqa: E731
        out = self._finish(flat, load_c, rows, cols, first, last, "tile")
        for value, pointer in zip(out, pointers):
            self._store(value, pointer, self.size)

    def _store_edge_tile(self, accs, row0, col0, rows, cols, first, last) -> None:
        """Spills the tile to the stack and has the shared edge function write its part."""
        b, t = self.b, self.t
        buffer = b.bitcast(self.tile_buffer, self.dtype.as_pointer())
        for r, row_accs in enumerate(accs):
            for v, acc in enumerate(row_accs):
                self._store(acc, self._at(buffer, const(r * t.nr + v * t.lanes)), _ALIGN)
        args = [buffer, rows, cols, row0, col0, first, last, self.C, self.c_rs, *self.extras]
        b.call(self._edge_function(), args)

    def _edge_function(self) -> ir.Function:
        """`void name.edge_tile(tile, rows, cols, row0, col0, first, last, C, crs, *extras)`
        writes the rows x cols part of a spilled MR x NR tile (row stride NR) to C, a vector
        or an element at a time (the epilogue sees whole vectors only where all their
        columns are < N). One out-of-line copy serves every kernel variant: edges are rare,
        and their code is the bulk of what LLVM would otherwise compile four times."""
        if self._edge is not None:
            return self._edge
        t, ptr = self.t, self.dtype.as_pointer()
        types = [ptr, I64, I64, I64, I64, I1, I1, ptr, I64] + [x.type for x in self.extras]
        name = f"{self.function.name}.edge_tile"
        function = ir.Function(self.function.module, ir.FunctionType(VOID, types), name)
        function.linkage = "internal"
        function.attributes.add("noinline")
        names = ["tile", "rows", "cols", "row0", "col0", "first", "last", "C", "c_rs"]
        for arg, arg_name in zip(function.args, names):
            arg.name = arg_name
        buffer, rows, cols, row0, col0, first, last = function.args[:7]
        saved = (self.b, self.C, self.c_rs, self.extras)
        self.b = b = ir.IRBuilder(function.append_basic_block("entry"))
        self.C, self.c_rs = function.args[7:9]
        self.extras = list(function.args[9:])
        with for_range(b, rows, "edge.r") as r:
            row = b.add(row0, r)
            c_row = self._at(self.C, b.add(b.mul(row, self.c_rs), col0))
            tile_row = self._at(buffer, b.mul(r, const(t.nr)))
            for v in range(self.panel_vectors):
                start = v * t.lanes
                whole = b.icmp_signed("<=", const(start + t.lanes), cols)
                with b.if_else(whole) as (vector, elements):
                    with vector:
                        self._store_piece(
                            tile_row, c_row, const(start), row, col0, self.vector, first, last
                        )
                    with elements:
                        stop = _min(b, cols, const(start + t.lanes))
                        with _range(b, const(start), stop, const(1), f"edge.c{v}") as c:
                            self._store_piece(
                                tile_row, c_row, c, row, col0, self.element, first, last
                            )
        b.ret_void()
        self.b, self.C, self.c_rs, self.extras = saved
        self._edge = function
        return function

    def _store_piece(self, tile_row, c_row, at, row, col0, vector, first, last) -> None:
        """One vector (or one `<1 x T>` element) from the spilled tile to C, finished."""
        value = self._load(self._at(tile_row, at), vector, self.size)
        pointer = self._at(c_row, at)
        load_c = lambda: [self._load(pointer, vector, self.size)]  # noqa: E731
        col = self.b.add(col0, at)
        (out,) = self._finish([value], load_c, [row], [col], first, last, "edge")
        self._store(out, pointer, self.size)

    # -- one row of A (M == 1) -----------------------------------------------------

    def _emit_single_row(self) -> None:
        """C[0, :] = epilogue(A[0, :] @ B) for unit-stride rows of B, without packing.

        Strips of columns accumulate in registers straight from B's rows, the
        widest strips first (more bytes in flight per row of B: 16 vectors of
        a row measured 1.4x faster than 4), then single vectors, then the last
        columns as one masked vector; the narrow ones keep several partial
        sums per vector so the FMA latency does not serialize them.
        """
        b, lanes = self.b, self.t.lanes
        start: ir.Value = const(0)
        for count, split in _ROW_STRIPS:
            width = count * lanes
            stop = b.sub(self.N, b.srem(self.N, const(width)), name=f"strips{count}_end")
            self._row_span(start, stop, self.vector, count, split, f"row.strip{count}")
            start = stop
        with b.if_then(b.icmp_signed("<", start, self.N)):
            self._row_tail(start)

    def _row_span(self, start, stop, vector, count: int, split: int, name: str) -> None:
        """C[0, j : j + count*lanes] for j in [start, stop), a strip at a time."""
        b = self.b
        width = count * vector.count
        with _range(b, start, stop, const(width), name) as j:
            sums = self._row_sums(j, vector, count, split, name)
            cols = [b.add(j, const(v * vector.count)) for v in range(count)]
            out = self._finish(sums, lambda: [], [const(0)] * count, cols, True, True, name)
            for value, col in zip(out, cols):
                self._store(value, self._at(self.C, col), self.size)

    def _row_tail(self, start: ir.Value) -> None:
        """The last N - start (< lanes) columns: one masked vector, finished a column at a time
        (the epilogue sees `<1 x T>` there, as at every right edge)."""
        b, t = self.b, self.t
        columns = b.sub(self.N, start, name="tail_columns")
        lane = ir.Constant(ir.VectorType(I64, t.lanes), list(range(t.lanes)))
        mask = b.icmp_signed("<", lane, self._splat(columns, ir.VectorType(I64, t.lanes)))
        (sums,) = self._row_sums(start, self.vector, 1, _ROW_STRIPS[-1][1], "row.tail", mask)
        buffer = b.bitcast(self.tile_buffer, self.dtype.as_pointer())
        self._store(sums, buffer, _ALIGN)
        with for_range(b, columns, "row.tail.c") as c:
            value = self._load(self._at(buffer, c), self.element, self.size)
            col = b.add(start, c)
            (out,) = self._finish([value], lambda: [], [const(0)], [col], True, True, "row.tail")
            self._store(out, self._at(self.C, col), self.size)

    def _row_sums(
        self, j: ir.Value, vector, count: int, split: int, name: str, mask: ir.Value | None = None
    ) -> list[ir.Value]:
        """`count` vectors of sum_k A[0, k] * B[k, j + v*lanes : ...], with `split` partial
        sums per vector (k steps taken `split` at a time, then one at a time). With a mask
        (one vector), B is read only in its lanes; the others are 0."""
        b, lanes = self.b, self.t.lanes
        fma = self._fma(vector)
        columns = self._at(self.B, j)
        if mask is not None:
            masked_load = self._masked_load(vector)
            align = ir.Constant(I32, self.size)
            zero = ir.Constant(vector, None)

        prefetch = self._intrinsic("llvm.prefetch.p0", VOID, [I8P, I32, I32, I32])
        read, keep, data = (ir.Constant(I32, n) for n in (0, 3, 1))
        lines = count * lanes * self.size // _ALIGN if mask is None else 0

        def steps(width: int) -> Callable[[ir.Value, list[ir.Value]], list[ir.Value]]:
            def body(k: ir.Value, sums: list[ir.Value]) -> list[ir.Value]:
                for s in range(width):
                    ks = b.add(k, const(s), flags=["nsw"])
                    a = self._splat(b.load(self._at(self.A, b.mul(ks, self.a_cs))), vector)
                    row = self._at(columns, b.mul(ks, self.b_rs))
                    # B streams from L3 or memory: ask for the row _ROW_AHEAD
                    # steps ahead (a prefetch never faults: plain GEP).
                    ahead = b.gep(row, [b.mul(const(_ROW_AHEAD), self.b_rs)])
                    for line in range(lines):
                        at = b.gep(ahead, [const(line * _ALIGN // self.size)])
                        b.call(prefetch, [b.bitcast(at, I8P), read, keep, data])
                    for v in range(count):
                        at = self._at(row, const(v * lanes))
                        if mask is None:
                            value = self._load(at, vector, self.size)
                        else:
                            at = b.bitcast(at, vector.as_pointer())
                            value = b.call(masked_load, [at, align, mask, zero])
                        i = s * count + v
                        sums[i] = b.call(fma, [a, value, sums[i]])
                return sums

            return body

        sums = [ir.Constant(vector, None)] * (split * count)
        k: ir.Value = const(0)
        if split > 1:
            split_stop = b.sub(self.K, const(split - 1))
            k, sums = _loop_carrying(b, k, split_stop, split, sums, steps(split), name)
        _, sums = _loop_carrying(b, k, self.K, 1, sums, steps(1), f"{name}.rest")
        totals = sums[:count]
        for s in range(1, split):
            totals = [b.fadd(x, y) for x, y in zip(totals, sums[s * count : (s + 1) * count])]
        return totals
