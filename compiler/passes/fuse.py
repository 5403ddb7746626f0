"""fuse: merge elementwise ops, reductions and contraction epilogues into Fused nodes.

Groups grow in four steps, each merge subject to the rules below:

1. elementwise chains: an elementwise op joins the group of an elementwise
   consumer with the same output shape;
2. contraction epilogues: a group of elementwise ops with the output shape of
   a matmul or conv2d, consuming its result, joins it (bias, activation);
3. reduction prologues: a group of elementwise ops producing the input of a
   reduction, all with the reduction's input shape, joins it;
4. reduction epilogues: groups of elementwise ops consuming a reduction
   group, with the reduction's output shape (per-row results such as the
   variance's rsqrt) or its input shape (the row kernel of softmax and
   layernorm: `exp(x - max) / sum`), join it.

The rules every group keeps:

- Convexity: no path leaves a group and comes back into it. A non-convex
  group could not run as one node: it would need a value computed outside it
  from one computed inside it. Convexity of every group also makes the graph
  of groups acyclic, so the fused graph has a topological order.
- One anchor: a group holds at most one reduction or contraction, so it
  lowers to one loop nest over one domain.
- No prologue on a contraction: a GEMM packs its operands, so nothing is
  fused into the inputs of a matmul or conv2d.
- Shapes: every elementwise member has the group's domain shape (for a
  reduction group, its input or output shape), so fusing never recomputes a
  value once per broadcast element.
- Ops with control dependencies, of unknown rank, or that are not
  elementwise/reduction/contraction stay out.

A group of one op stays that op. Scalar constants read by a group are
copied into its body.
"""

from __future__ import annotations

from collections.abc import Iterable

import networkx as nx

from graphflow.compiler.passes.base import PassOptions, PassResult
from graphflow.compiler.program import GraphBuilder, Program, fetched_tensors
from graphflow.graph import Operation, Tensor
from graphflow.ops.fused_ops import BodyNode, FusedBody, ValueRef
from graphflow.ops.registry import CONTRACTION, ELEMENTWISE, REDUCTION, get_op_def
from graphflow.shapes import Shape

# Elementwise ops that create values rather than transform them stay outside
# groups: they have nothing to fuse with upstream and are cheap on their own.
_NOT_FUSED = frozenset({"Fill", "ZerosLike", "OnesLike"})
# Reductions a fused group may anchor. The others (ArgMax, LogSumExp, ...)
# have row kernels of their own in the lowering and stay single nodes.
FUSABLE_REDUCTIONS = frozenset({"Sum", "Mean", "Max", "Min", "Prod", "Any", "All"})


class _Groups:
    """Union of ops into groups, with the facts the merge rules need."""

    def __init__(self, program: Program, candidates: list[Operation]) -> None:
        ops = program.graph.get_operations()
        self.index = {op: i for i, op in enumerate(ops)}
        self.group: dict[Operation, int] = {op: self.index[op] for op in candidates}
        self.members: dict[int, list[Operation]] = {self.index[op]: [op] for op in candidates}
        # reach[i]: bitmask of every op reachable from op i (its descendants).
        self.reach = [0] * len(ops)
        successors: list[list[int]] = [[] for _ in ops]
        for op in ops:
            for t in op.inputs:
                successors[self.index[t.op]].append(self.index[op])
            for c in op.control_inputs:
                successors[self.index[c]].append(self.index[op])
        self.successors = successors
        for i in range(len(ops) - 1, -1, -1):
            mask = 0
            for s in successors[i]:
                mask |= (1 << s) | self.reach[s]
            self.reach[i] = mask

    def of(self, op: Operation) -> int | None:
        return self.group.get(op)

    def ops(self, gid: int) -> list[Operation]:
        return self.members[gid]

    def anchor(self, gid: int) -> Operation | None:
        for op in self.members[gid]:
            if get_op_def(op.type).kind in (REDUCTION, CONTRACTION):
                return op
        return None

    def is_elementwise(self, gid: int) -> bool:
        return self.anchor(gid) is None

    def convex(self, ops: Iterable[Operation]) -> bool:
        """No path leaves `ops` and re-enters it."""
        mask = 0
        for op in ops:
            mask |= 1 << self.index[op]
        for op in ops:
            for s in self.successors[self.index[op]]:
                if not (mask >> s) & 1 and self.reach[s] & mask:
                    return False
        return True

    def merge(self, a: int, b: int) -> bool:
        """Merges groups a and b if the result keeps one anchor and is convex."""
        if a == b:
            return False
        if self.anchor(a) is not None and self.anchor(b) is not None:
            return False
        merged = self.members[a] + self.members[b]
        if not self.convex(merged):
            return False
        keep, drop = (a, b) if a < b else (b, a)
        for op in self.members[drop]:
            self.group[op] = keep
        self.members[keep] = sorted(merged, key=self.index.__getitem__)
        del self.members[drop]
        return True


def _candidate(op: Operation, control_sources: set[Operation]) -> bool:
    kind = get_op_def(op.type).kind
    if kind not in (ELEMENTWISE, REDUCTION, CONTRACTION) or op.type in _NOT_FUSED:
        return False
    if kind == REDUCTION and op.type not in FUSABLE_REDUCTIONS:
        return False
    if op.control_inputs or op in control_sources:
        return False
    return all(t.shape.rank is not None for t in (*op.inputs, *op.outputs))


def _same(a: Shape, b: Shape) -> bool:
    return a.rank is not None and a == b


def _all_shaped(groups: _Groups, gid: int, shapes: Iterable[Shape]) -> bool:
    allowed = list(shapes)
    return all(any(_same(op.outputs[0].shape, s) for s in allowed) for op in groups.ops(gid))


def _ancestor_of(groups: _Groups, gid: int, op: Operation) -> bool:
    """True if some member of group gid is upstream of `op`."""
    target = 1 << groups.index[op]
    return any(groups.reach[groups.index[m]] & target for m in groups.ops(gid))


def _consumers(program: Program) -> dict[Operation, list[Operation]]:
    out: dict[Operation, list[Operation]] = {}
    for op in program.graph.get_operations():
        for t in op.inputs:
            out.setdefault(t.op, []).append(op)
    return out


def find_groups(program: Program) -> list[list[Operation]]:
    """The groups of two or more ops to fuse, each in topological order."""
    ops = program.graph.get_operations()
    control_sources = {c for op in ops for c in op.control_inputs}
    candidates = [op for op in ops if _candidate(op, control_sources)]
    groups = _Groups(program, candidates)
    consumers = _consumers(program)
    kind = {op: get_op_def(op.type).kind for op in candidates}

    # 1. Elementwise chains, consumers first so chains grow upstream.
    for op in reversed(candidates):
        if kind[op] != ELEMENTWISE:
            continue
        for t in op.inputs:
            producer = t.op
            if kind.get(producer) != ELEMENTWISE:
                continue
            a, b = groups.of(op), groups.of(producer)
            if (
                a != b
                and groups.is_elementwise(a)
                and groups.is_elementwise(b)
                and _same(producer.outputs[0].shape, op.outputs[0].shape)
            ):
                groups.merge(a, b)

    # 2. Contraction epilogues (onto float matmuls: the integer kernel takes none;
    #    conv2d kernels take none yet).
    for op in candidates:
        if kind[op] != CONTRACTION or op.type != "MatMul" or not op.outputs[0].dtype.is_floating:
            continue
        _absorb_consumers(groups, consumers, op, [op.outputs[0].shape], no_prologue=True)

    # 3. Reduction prologues.
    for op in candidates:
        if kind[op] != REDUCTION or len(op.inputs) != 1:
            continue
        producer = op.inputs[0].op
        if kind.get(producer) != ELEMENTWISE:
            continue
        a, b = groups.of(op), groups.of(producer)
        if (
            groups.is_elementwise(b)
            and groups.anchor(a) is op
            and _all_shaped(groups, b, [op.inputs[0].shape, op.outputs[0].shape])
        ):
            groups.merge(a, b)

    # 4. Reduction epilogues.
    for op in candidates:
        if kind[op] == REDUCTION and groups.anchor(groups.of(op)) is op:
            _absorb_consumers(
                groups, consumers, op, [op.outputs[0].shape, op.inputs[0].shape], no_prologue=False
            )

    return [members for members in groups.members.values() if len(members) > 1]


def _absorb_consumers(
    groups: _Groups,
    consumers: dict[Operation, list[Operation]],
    anchor: Operation,
    shapes: list[Shape],
    no_prologue: bool,
) -> None:
    """Grows the anchor's group with elementwise consumer groups until nothing more joins."""
    changed = True
    while changed:
        changed = False
        gid = groups.of(anchor)
        for member in list(groups.ops(gid)):
            for consumer in consumers.get(member, ()):
                other = groups.of(consumer)
                if other is None or other == gid or not groups.is_elementwise(other):
                    continue
                if not _all_shaped(groups, other, shapes):
                    continue
                if no_prologue and _ancestor_of(groups, other, anchor):
                    continue
                if groups.merge(gid, other):
                    changed = True
                    break
            if changed:
                break


# -- building the fused graph --------------------------------------------------------------
def _pattern(members: list[Operation]) -> str:
    kinds = {get_op_def(op.type).kind for op in members}
    if CONTRACTION in kinds:
        return "contraction"
    if REDUCTION in kinds:
        return "reduction"
    return "elementwise"


def _is_embeddable_const(t: Tensor) -> bool:
    return t.op.type == "Const" and t.op.attrs["value"].size == 1


def _make_body(
    members: list[Operation], readers: dict[Tensor, list[Operation]], fetched: set[Tensor]
) -> tuple[FusedBody, list[Tensor], list[Tensor]]:
    """The body of a group, the tensors it reads (args) and the tensors it gives (outputs)."""
    position = {op: i for i, op in enumerate(members)}
    args: list[Tensor] = []
    arg_index: dict[Tensor, int] = {}
    nodes: list[BodyNode] = []
    const_nodes: dict[Tensor, int] = {}

    def ref(t: Tensor) -> ValueRef:
        if t.op in position:
            return ("node", node_of[t.op], t.value_index)
        if _is_embeddable_const(t):
            if t not in const_nodes:
                const_nodes[t] = len(nodes)
                nodes.append(
                    BodyNode(
                        t.op.type,
                        t.op.name,
                        dict(t.op.attrs),
                        (),
                        ((t.dtype, t.shape),),
                        t.op.location,
                    )
                )
            return ("node", const_nodes[t], 0)
        if t not in arg_index:
            arg_index[t] = len(args)
            args.append(t)
        return ("arg", arg_index[t], 0)

    node_of: dict[Operation, int] = {}
    for op in members:
        inputs = tuple(ref(t) for t in op.inputs)
        node_of[op] = len(nodes)
        nodes.append(
            BodyNode(
                op.type,
                op.name,
                dict(op.attrs),
                inputs,
                tuple((t.dtype, t.shape) for t in op.outputs),
                op.location,
            )
        )
    # A value leaves the body when it is fetched or read by an op outside the group.
    outputs: list[Tensor] = [
        t
        for op in members
        for t in op.outputs
        if t in fetched or any(c not in position for c in readers.get(t, ()))
    ]
    body = FusedBody(
        tuple(nodes),
        tuple(("node", node_of[t.op], t.value_index) for t in outputs),
        _pattern(members),
    )
    return body, args, outputs


def run(program: Program, options: PassOptions) -> PassResult:
    groups = find_groups(program)
    if not groups:
        builder = GraphBuilder(program)
        for op in program.graph.get_operations():
            if not builder.handled(op):
                builder.copy(op)
        return PassResult(builder.finish(), ())
    ops = program.graph.get_operations()
    group_of = {op: i for i, members in enumerate(groups) for op in members}
    readers: dict[Tensor, list[Operation]] = {}
    for op in ops:
        for t in op.inputs:
            readers.setdefault(t, []).append(op)

    # Schedule groups and single ops in a topological order of the group graph.
    unit = {op: ("g", group_of[op]) if op in group_of else ("o", op.id) for op in ops}
    order = nx.DiGraph()
    for op in ops:
        order.add_node(unit[op])
        for t in op.inputs:
            if unit[t.op] != unit[op]:
                order.add_edge(unit[t.op], unit[op])
        for c in op.control_inputs:
            if unit[c] != unit[op]:
                order.add_edge(unit[c], unit[op])
    first_id = {}
    for op in ops:
        first_id.setdefault(unit[op], op.id)

    builder = GraphBuilder(program)
    fetched = fetched_tensors(program)
    changes: list[str] = []
    by_id = {op.id: op for op in ops}
    for key in nx.lexicographical_topological_sort(order, key=lambda u: first_id[u]):
        if key[0] == "o":
            op = by_id[key[1]]
            if not builder.handled(op):
                builder.copy(op)
            continue
        members = groups[key[1]]
        body, args, outputs = _make_body(members, readers, fetched)
        root = members[-1]
        fused = builder.emit(
            "Fused",
            [builder.get(t) for t in args],
            {"body": body},
            name=f"{root.name}/fused",
            like=root,
        )
        for old, new in zip(outputs, fused.outputs):
            builder.set(old, new)
        for op in members:
            builder.ops[op] = fused
        changes.append(
            f"fused {len(members)} ops ({body.pattern}: "
            + ", ".join(op.type for op in members)
            + f") into '{fused.name}'"
        )
    return PassResult(builder.finish(), tuple(changes))
