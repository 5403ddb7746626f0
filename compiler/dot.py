"""Graphviz DOT for graphs and programs: as built (scopes as clusters) or optimized (fused bodies).

    text = gf.to_dot(probs)                                   # what `probs` needs, as built
    text = gf.to_dot(probs, feeds=[x], optimized=True)        # after optimize(..., level="O2")
    text = graph_to_dot(gf.get_default_graph())               # every op of a graph
    text = program_to_dot(result.program, title="after fuse")  # what pipeline dump_dir writes

A node is labelled with its op type (bold), its name, and one line per
output with the dtype and shape (`f32[?,784]`; `f32[*]` for unknown rank;
small constants show their value). Name scopes become nested
`subgraph cluster_<scope>` boxes. A Fused op becomes a `subgraph
cluster_fused_<op id>` holding one node per body node: edges from outside
enter the body nodes that read each input, and consumers are wired to the
body nodes that produce each output. Control dependencies are dashed edges;
a reference input (the variable of an assign) is an edge labelled "ref".

Output is deterministic: nodes, clusters and edges are written in op-id
order (creation order) and node ids are `n<op id>` (`n<op id>_<k>` for body
nodes), never Python ids or set order, so the same graph gives the same text.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from graphflow import errors
from graphflow.compiler.program import Program
from graphflow.dtypes import DType
from graphflow.graph import Graph, Operation, Tensor, get_default_graph
from graphflow.ops.fused_ops import FusedBody
from graphflow.ops.registry import get_op_def
from graphflow.shapes import Shape

# dtype -> the short name used in labels (XLA's style: f32[?,784]).
_SHORT_DTYPE = {"float32": "f32", "float64": "f64", "int32": "i32", "int64": "i64", "bool": "bool"}

# Node styles: (shape, style, fill colour).
_STYLE_PLACEHOLDER = ("ellipse", "filled", "#d5e8d4")
_STYLE_VARIABLE = ("ellipse", "filled", "#ffe6cc")
_STYLE_CONST = ("box", "filled", "#eeeeee")
_STYLE_STATE = ("box", "rounded,filled", "#fff2cc")
_STYLE_OP = ("box", "rounded,filled", "#ffffff")
_STYLE_BODY = ("box", "rounded,filled", "#dae8fc")
_STYLE_ANCHOR = ("box", "rounded,filled", "#b7cff0")  # the reduction/contraction of a body
_STYLE_STUB = ("ellipse", "dashed", "#ffffff")  # a producer outside the drawn ops

_CONST_VALUES_SHOWN = 4  # constants of at most this many elements show their value


# -- escaping ------------------------------------------------------------------------------
def _printable(text: str) -> str:
    """Control characters other than newline become a visible `\\xNN`."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return "".join(
        c if c == "\n" or (ord(c) >= 32 and ord(c) != 127) else f"\\x{ord(c):02x}" for c in text
    )


def quote(text: str) -> str:
    """`text` as a DOT quoted string whose label shows exactly `text` (newlines as line breaks)."""
    text = _printable(text).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{text}"'


def html_text(text: str) -> str:
    """`text` escaped for a Graphviz HTML-like label (newlines become <BR/>)."""
    text = (
        _printable(text)
        .replace("&", "&amp;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace('"', "&quot;")
    )
    return text.replace("\n", "<BR/>")


def cluster_id(key: str) -> str:
    """A DOT identifier `cluster_<key>`: letters and digits kept, anything else `_xx` (hex).

    The escaping is injective (`_` itself becomes `_5f`), so two scopes never
    share a cluster, and no scope's id can take the form `fused_<digits>`
    of a fused cluster: every escape of a character allowed in a name
    contains a letter.
    """
    out = []
    for c in key:
        if c.isascii() and c.isalnum():
            out.append(c)
        elif ord(c) < 256:
            out.append(f"_{ord(c):02x}")
        else:
            out.append(f"_u{ord(c):06x}")
    return "cluster_" + "".join(out)


# -- labels --------------------------------------------------------------------------------
def format_type(dtype: DType, shape: Shape) -> str:
    """`f32[?,784]`: the short dtype and the dims (`?` unknown, `*` unknown rank)."""
    name = _SHORT_DTYPE.get(dtype.name, dtype.name)
    if shape.dims is None:
        return f"{name}[*]"
    return name + "[" + ",".join("?" if d is None else str(d) for d in shape.dims) + "]"


def _const_value(value: Any) -> str | None:
    array = np.asarray(value)
    if array.size > _CONST_VALUES_SHOWN or array.dtype == object:
        return None
    items = [format(v, ".6g") if isinstance(v, float) else str(v) for v in array.ravel().tolist()]
    return items[0] if array.ndim == 0 else "[" + ", ".join(items) + "]"


def _label(
    op_type: str,
    name: str,
    outputs: Sequence[tuple[DType, Shape]],
    attrs: Any,
) -> str:
    lines = [f"<B>{html_text(op_type)}</B>", html_text(name)]
    types = [format_type(dtype, shape) for dtype, shape in outputs]
    if op_type == "Const" and "value" in attrs:
        value = _const_value(attrs["value"])
        if value is not None and types:
            types[0] += " = " + value
    lines.extend(f'<FONT POINT-SIZE="9" COLOR="#444444">{html_text(t)}</FONT>' for t in types)
    return "<" + "<BR/>".join(lines) + ">"


def _kind(op_type: str) -> str | None:
    try:
        return get_op_def(op_type).kind
    except errors.NotFoundError:
        return None


def _op_style(op_type: str) -> tuple[str, str, str]:
    if op_type in ("Placeholder", "PlaceholderWithDefault"):
        return _STYLE_PLACEHOLDER
    if op_type == "VariableV2":
        return _STYLE_VARIABLE
    if op_type == "Const":
        return _STYLE_CONST
    if _kind(op_type) == "state":
        return _STYLE_STATE
    return _STYLE_OP


def _node(node_id: str, label: str, style: tuple[str, str, str], fetched: bool) -> str:
    shape, fill_style, color = style
    extra = ", peripheries=2" if fetched else ""
    return (
        f'{node_id} [label={label}, shape={shape}, style="{fill_style}", '
        f'fillcolor="{color}"{extra}];'
    )


# -- the drawing ---------------------------------------------------------------------------
@dataclasses.dataclass
class _Scope:
    """A name scope: its drawn items (op id, DOT lines) and its child scopes."""

    path: tuple[str, ...]
    items: list[tuple[int, list[str]]] = dataclasses.field(default_factory=list)
    children: dict[str, _Scope] = dataclasses.field(default_factory=dict)

    def child(self, name: str) -> _Scope:
        if name not in self.children:
            self.children[name] = _Scope((*self.path, name))
        return self.children[name]

    def first_id(self) -> int:
        ids = [i for i, _ in self.items] + [c.first_id() for c in self.children.values()]
        return min(ids)

    def emit(self, out: list[str], indent: str) -> None:
        entries: list[tuple[int, int, Any]] = [(i, 0, lines) for i, lines in self.items]
        entries += [(c.first_id(), 1, c) for c in self.children.values()]
        for _, is_child, entry in sorted(entries, key=lambda e: (e[0], e[1])):
            if not is_child:
                out.extend(indent + line for line in entry)
                continue
            scope: _Scope = entry
            out.append(f"{indent}subgraph {cluster_id('/'.join(scope.path))} {{")
            out.append(
                f'{indent}  graph [label={quote(scope.path[-1])}, style="rounded", '
                f'color="#999999", fontcolor="#555555"];'
            )
            scope.emit(out, indent + "  ")
            out.append(f"{indent}}}")


def _scope_of(name: str) -> tuple[str, ...]:
    return tuple(name.split("/")[:-1])


def _common_scope(names: Iterable[str]) -> tuple[str, ...]:
    scopes = [_scope_of(n) for n in names]
    if not scopes:
        return ()
    common = scopes[0]
    for s in scopes[1:]:
        n = 0
        while n < min(len(common), len(s)) and common[n] == s[n]:
            n += 1
        common = common[:n]
    return common


class _Drawing:
    """Builds the DOT text of a set of ops of one graph."""

    def __init__(
        self,
        ops: Sequence[Operation],
        fetched: Iterable[Tensor | Operation] = (),
        fed: Iterable[Tensor] = (),
        scopes: bool = True,
    ) -> None:
        self.ops = ops
        self.drawn = {op.id: op for op in ops}
        self.fetched_ops = {f.id for f in fetched if isinstance(f, Operation)}
        self.fetched_tensors = {(f.op.id, f.value_index) for f in fetched if isinstance(f, Tensor)}
        self.fed_ops = {t.op.id for t in fed}
        self.scopes = scopes
        self.stubs: dict[int, Operation] = {}

    # Where an edge starts or ends -----------------------------------------------------------
    @staticmethod
    def _body(op: Operation) -> FusedBody | None:
        body = op.attrs.get("body") if op.type == "Fused" else None
        return body if isinstance(body, FusedBody) and body.nodes else None

    def source(self, tensor: Tensor, depth: int = 0) -> tuple[str, int | None]:
        """The node an edge carrying `tensor` starts at, and the output index to label it with."""
        op = tensor.op
        if op.id not in self.drawn:
            self.stubs[op.id] = op
            return f"n{op.id}", (tensor.value_index if len(op.outputs) > 1 else None)
        body = self._body(op)
        if body is None:
            return f"n{op.id}", (tensor.value_index if len(op.outputs) > 1 else None)
        kind, i, j = body.outputs[tensor.value_index]
        if kind == "arg":  # a body passing an input straight through
            if depth > len(self.ops):
                raise errors.InternalError(f"Fused op {op.name!r}: cyclic output references")
            return self.source(op.inputs[i], depth + 1)
        return f"n{op.id}_{i}", (j if len(body.nodes[i].outputs) > 1 else None)

    # Nodes ----------------------------------------------------------------------------------
    def _op_lines(self, op: Operation) -> list[str]:
        body = self._body(op)
        if body is None:
            fetched = op.id in self.fetched_ops or any(
                (op.id, t.value_index) in self.fetched_tensors for t in op.outputs
            )
            style = _STYLE_PLACEHOLDER if op.id in self.fed_ops else _op_style(op.type)
            label = _label(op.type, op.name, [(t.dtype, t.shape) for t in op.outputs], op.attrs)
            return [_node(f"n{op.id}", label, style, fetched)]
        return self._fused_lines(op, body)

    def _fused_lines(self, op: Operation, body: FusedBody) -> list[str]:
        fetched_nodes = {
            body.outputs[k][1]
            for k in range(len(op.outputs))
            if body.outputs[k][0] == "node"
            and ((op.id, k) in self.fetched_tensors or op.id in self.fetched_ops)
        }
        title = f"<<B>Fused</B> {html_text(op.name)}<BR/>{html_text(body.pattern)}>"
        lines = [
            f"subgraph cluster_fused_{op.id} {{",
            f'  graph [label={title}, style="rounded,filled", color="#6c8ebf", '
            f'fillcolor="#f3f7fd", fontcolor="#1f3a68"];',
        ]
        for k, node in enumerate(body.nodes):
            style = _STYLE_ANCHOR if _kind(node.op_type) in ("reduction", "contraction") else None
            lines.append(
                "  "
                + _node(
                    f"n{op.id}_{k}",
                    _label(node.op_type, node.name, node.outputs, node.attrs),
                    style or _STYLE_BODY,
                    k in fetched_nodes,
                )
            )
        lines.append("}")
        return lines

    # Edges ----------------------------------------------------------------------------------
    def _edges(self, op: Operation) -> list[str]:
        lines: list[str] = []
        body = self._body(op)
        ref_inputs = _ref_inputs(op.type)
        for index, tensor in enumerate(op.inputs):
            src, out_index = self.source(tensor)
            attrs = []
            if index in ref_inputs:
                attrs.append('label="ref"')
            elif out_index is not None:
                attrs.append(f'label=":{out_index}"')
            if body is None:
                lines.append(_edge(src, f"n{op.id}", attrs))
                continue
            # One edge per read, as for an op that reads a tensor twice (x * x).
            readers = [
                k
                for k, node in enumerate(body.nodes)
                for kind, i, _ in node.inputs
                if kind == "arg" and i == index
            ]
            if not readers:  # an input no body node reads: point at the cluster
                lines.append(_edge(src, f"n{op.id}_0", [*attrs, f"lhead=cluster_fused_{op.id}"]))
            lines.extend(_edge(src, f"n{op.id}_{k}", attrs) for k in readers)
        if body is not None:
            for k, node in enumerate(body.nodes):
                for kind, i, j in node.inputs:
                    if kind == "node":
                        label = [f'label=":{j}"'] if len(body.nodes[i].outputs) > 1 else []
                        lines.append(_edge(f"n{op.id}_{i}", f"n{op.id}_{k}", label))
        for control in op.control_inputs:
            attrs = ['style="dashed"', 'color="#888888"']
            src = f"n{control.id}"
            if control.id not in self.drawn:
                self.stubs[control.id] = control
            else:
                control_body = self._body(control)
                if control_body is not None:
                    src = f"n{control.id}_{len(control_body.nodes) - 1}"
                    attrs.append(f"ltail=cluster_fused_{control.id}")
            dst = f"n{op.id}"
            if body is not None:
                dst = f"n{op.id}_0"
                attrs.append(f"lhead=cluster_fused_{op.id}")
            lines.append(_edge(src, dst, attrs))
        return lines

    # The whole text -------------------------------------------------------------------------
    def render(self, title: str | None) -> str:
        root = _Scope(())
        edges: list[str] = []
        for op in self.ops:
            body = self._body(op)
            if not self.scopes:
                scope = root
            else:
                names = [n.name for n in body.nodes] if body is not None else [op.name]
                scope = root
                for part in _common_scope(names):
                    scope = scope.child(part)
            scope.items.append((op.id, self._op_lines(op)))
            edges.extend(self._edges(op))
        out = ["digraph graphflow {"]
        graph_attrs = (
            'compound=true, rankdir=TB, fontname="Helvetica", fontsize=11, '
            "nodesep=0.25, ranksep=0.3"
        )
        if title:
            graph_attrs += f", label={quote(title)}, labelloc=t"
        out.append(f"  graph [{graph_attrs}];")
        out.append(
            '  node [fontname="Helvetica", fontsize=10, margin="0.08,0.03", height=0.3, '
            'penwidth=1, color="#555555"];'
        )
        out.append('  edge [fontname="Helvetica", fontsize=8, color="#555555", arrowsize=0.6];')
        root.emit(out, "  ")
        for op_id in sorted(self.stubs):
            stub = self.stubs[op_id]
            out.append(
                "  " + _node(f"n{op_id}", f"<{html_text(stub.name)}>", _STYLE_STUB, fetched=False)
            )
        out.extend("  " + e for e in edges)
        out.append("}")
        return "\n".join(out) + "\n"


def _edge(src: str, dst: str, attrs: list[str]) -> str:
    return f"{src} -> {dst}" + (f" [{', '.join(attrs)}]" if attrs else "") + ";"


def _ref_inputs(op_type: str) -> tuple[int, ...]:
    try:
        return get_op_def(op_type).ref_inputs
    except errors.NotFoundError:
        return ()


# -- the public functions ------------------------------------------------------------------
def graph_to_dot(
    graph: Graph,
    ops: Iterable[Operation] | None = None,
    title: str | None = None,
    scopes: bool = True,
) -> str:
    """Graphviz DOT text of a graph, or of some of its ops.

    Args:
      graph: the graph to draw.
      ops: the ops to draw (default: all). An input produced by an op not in
        `ops` comes from a dashed stub node naming that op.
      title: a caption for the picture.
      scopes: draw name scopes as nested clusters.

    Returns:
      The DOT text, the same for the same graph.

    Raises:
      InvalidArgumentError: an op of `ops` belongs to another graph.
    """
    chosen = graph.get_operations() if ops is None else list(ops)
    for op in chosen:
        if op.graph is not graph:
            raise errors.InvalidArgumentError(
                f"graph_to_dot: {op!r} belongs to another graph than the one drawn"
            )
    ordered = sorted({op.id: op for op in chosen}.values(), key=lambda op: op.id)
    return _Drawing(ordered, scopes=scopes).render(title)


def program_to_dot(program: Program, title: str | None = None, scopes: bool = True) -> str:
    """Graphviz DOT text of a Program (what `optimize(..., dump_dir=...)` writes per pass).

    Fetched tensors and ops get a double border; fed inputs are drawn as placeholders.

    Args:
      program: the program (graph, fetches, inputs).
      title: a caption for the picture, e.g. "after fuse".
      scopes: draw name scopes as nested clusters.
    """
    drawing = _Drawing(
        program.graph.get_operations(), program.fetches, program.inputs, scopes=scopes
    )
    return drawing.render(title)


def to_dot(
    fetches: Any = None,
    feeds: Iterable[Any] = (),
    optimized: bool = False,
    level: str = "O2",
    graph: Graph | None = None,
) -> str:
    """Graphviz DOT text of a graph as built, or as the compiler optimizes it.

    Args:
      fetches: a Tensor, an Operation, a name, or a list/tuple of them; only
        what they need (given `feeds`) is drawn. None draws the whole graph
        (with `feeds` or `optimized`, the fetches are then every op output
        that no op reads).
      feeds: the tensors (or names) that will be fed: their producers are cut off.
      optimized: draw the graph after `optimize(fetches, feeds, level)`,
        fused regions as clusters.
      level: the optimization level, "O0", "O1" or "O2" (used when optimized).
      graph: the graph (default: the fetches' graph, else the default graph).

    Returns:
      The DOT text; the same graph gives the same text.

    Raises:
      InvalidArgumentError: an unknown level, or fetches/feeds not in the graph.
      NotFoundError: a name that is not in the graph.
    """
    from graphflow.compiler import pipeline
    from graphflow.compiler.passes import prune
    from graphflow.compiler.passes.base import PassOptions

    if level not in pipeline.LEVELS:
        raise errors.InvalidArgumentError(
            f"unknown optimization level {level!r}; expected one of {', '.join(pipeline.LEVELS)}"
        )
    feeds = list(feeds)
    if fetches is None:
        graph = graph or get_default_graph()
        if not optimized and not feeds:
            return graph_to_dot(graph)
        fetches = _sinks(graph)
        if not fetches:
            return graph_to_dot(graph)
    if optimized:
        result = pipeline.optimize(fetches, feeds, level=level, graph=graph)
        return program_to_dot(result.program, title=f"optimized ({level})")
    source = pipeline.source_program(fetches, feeds, graph)
    return program_to_dot(prune.run(source, PassOptions()).program)


def _sinks(graph: Graph) -> list[Tensor | Operation]:
    """The outputs no op reads, and the ops without outputs: what "the whole graph" computes."""
    read = {t for op in graph.get_operations() for t in op.inputs}
    read_ops = {c for op in graph.get_operations() for c in op.control_inputs}
    sinks: list[Tensor | Operation] = []
    for op in graph.get_operations():
        if not op.outputs:
            if op not in read_ops:
                sinks.append(op)
            continue
        sinks.extend(t for t in op.outputs if t not in read)
    return sinks


__all__ = ["cluster_id", "format_type", "graph_to_dot", "program_to_dot", "quote", "to_dot"]
