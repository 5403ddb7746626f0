"""DOT output: labels, scopes as clusters, fused bodies, control deps, escaping, determinism.

Every DOT text a test makes goes through `check_dot`, which always parses it
with a small DOT parser of its own (balanced braces, closed strings and HTML
labels, every edge endpoint declared, clusters named once) and, when
Graphviz's `dot` is installed, also renders it with `dot -Tsvg` and requires
a silent success. tests/test_cli_dot.py uses the same helper.
"""

from __future__ import annotations

import dataclasses
import itertools
import re
import shutil
import subprocess
import sys
import tempfile

import pytest

import graphflow as gf
from graphflow import errors
from graphflow.compiler.dot import cluster_id, graph_to_dot, program_to_dot, quote, to_dot
from graphflow.compiler.pipeline import optimize
from graphflow.ops.fused_ops import BodyNode, FusedBody
from graphflow.ops.registry import apply_op


# -- the checker ---------------------------------------------------------------------------
class DotSyntaxError(AssertionError):
    pass


@dataclasses.dataclass
class Cluster:
    name: str
    parent: str | None
    attrs: dict[str, str]
    nodes: list[str]  # declared directly inside, in order


@dataclasses.dataclass
class ParsedDot:
    nodes: dict[str, dict[str, str]]  # id -> attributes (quoted strings decoded, HTML raw)
    edges: list[tuple[str, str, dict[str, str]]]
    clusters: dict[str, Cluster]
    graph_attrs: dict[str, str]
    node_cluster: dict[str, str | None]  # innermost cluster of each node

    def cluster_nodes(self, name: str) -> set[str]:
        """Nodes inside cluster `name`, at any depth."""
        out = set()
        for node, cluster in self.node_cluster.items():
            while cluster is not None:
                if cluster == name:
                    out.add(node)
                    break
                cluster = self.clusters[cluster].parent
        return out

    def edges_between(self, src: str, dst: str) -> list[dict[str, str]]:
        return [attrs for s, d, attrs in self.edges if (s, d) == (src, dst)]


_TOKEN = re.compile(
    r"""
    (?P<ws>\s+|//[^\n]*|/\*.*?\*/)
  | (?P<arrow>->|--)
  | (?P<punct>[{}\[\];,=:])
  | (?P<number>-?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?))
  | (?P<id>[A-Za-z_\x80-\uffff][A-Za-z0-9_\x80-\uffff]*)
    """,
    re.VERBOSE | re.DOTALL,
)
_HTML_TAG = re.compile(r"<(/?)([A-Za-z]+)((?:\s+[A-Za-z-]+=\"[^\"<>]*\")*)\s*(/?)>")


def _check_html(text: str) -> None:
    """Balanced tags, no stray '<' '>' and only well-formed entities in an HTML label."""
    stack: list[str] = []
    pos = 0
    for m in _HTML_TAG.finditer(text):
        _check_html_text(text[pos : m.start()])
        pos = m.end()
        closing, tag, _, selfclosing = m.groups()
        if selfclosing:
            continue
        if closing:
            if not stack or stack.pop() != tag.upper():
                raise DotSyntaxError(f"unbalanced </{tag}> in HTML label {text!r}")
        else:
            stack.append(tag.upper())
    _check_html_text(text[pos:])
    if stack:
        raise DotSyntaxError(f"unclosed <{stack[-1]}> in HTML label {text!r}")


def _check_html_text(text: str) -> None:
    if "<" in text or ">" in text or '"' in text:
        raise DotSyntaxError(f"unescaped markup character in HTML label text {text!r}")
    for m in re.finditer(r"&", text):
        if not re.match(r"&(?:amp|lt|gt|quot|#[0-9]+);", text[m.start() :]):
            raise DotSyntaxError(f"bad entity in HTML label text {text!r}")


def _tokenize(text: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    i = 0
    while i < len(text):
        c = text[i]
        if c == '"':
            j = i + 1
            value = []
            while True:
                if j >= len(text):
                    raise DotSyntaxError(f"unterminated quoted string at offset {i}")
                if text[j] == "\n":
                    raise DotSyntaxError(f"raw newline in quoted string at offset {i}")
                if text[j] == "\\" and j + 1 < len(text):
                    nxt = text[j + 1]
                    value.append({"n": "\n", '"': '"', "\\": "\\"}.get(nxt, "\\" + nxt))
                    j += 2
                    continue
                if text[j] == '"':
                    break
                value.append(text[j])
                j += 1
            tokens.append(("string", "".join(value)))
            i = j + 1
            continue
        if c == "<":
            depth, j = 0, i
            while True:
                if j >= len(text):
                    raise DotSyntaxError(f"unterminated HTML string at offset {i}")
                depth += {"<": 1, ">": -1}.get(text[j], 0)
                j += 1
                if depth == 0:
                    break
            inner = text[i + 1 : j - 1]
            _check_html(inner)
            tokens.append(("html", inner))
            i = j
            continue
        m = _TOKEN.match(text, i)
        if m is None:
            raise DotSyntaxError(f"unexpected character {c!r} at offset {i}")
        kind = m.lastgroup
        if kind != "ws":
            tokens.append((kind, m.group()))
        i = m.end()
    return tokens


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = _tokenize(text)
        self.pos = 0
        self.nodes: dict[str, dict[str, str]] = {}
        self.edges: list[tuple[str, str, dict[str, str]]] = []
        self.clusters: dict[str, Cluster] = {}
        self.graph_attrs: dict[str, str] = {}
        self.node_cluster: dict[str, str | None] = {}

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self, value: str | None = None, kind: str | None = None) -> tuple[str, str]:
        token = self.peek()
        if token is None:
            raise DotSyntaxError(f"unexpected end of input, expected {value or kind}")
        if (value is not None and token[1] != value) or (kind is not None and token[0] != kind):
            raise DotSyntaxError(f"expected {value or kind}, got {token[1]!r}")
        self.pos += 1
        return token

    def is_id(self, token: tuple[str, str] | None) -> bool:
        return token is not None and token[0] in ("id", "number", "string", "html")

    def parse(self) -> ParsedDot:
        self.take("digraph")
        if self.is_id(self.peek()):
            self.pos += 1
        self.take("{")
        self.stmt_list(None, self.graph_attrs)
        self.take("}")
        if self.peek() is not None:
            raise DotSyntaxError(f"text after the closing brace: {self.peek()!r}")
        for src, dst, attrs in self.edges:
            for end in (src, dst):
                if end not in self.nodes:
                    raise DotSyntaxError(f"edge endpoint {end!r} is not declared")
            for key in ("lhead", "ltail"):
                if key in attrs and attrs[key] not in self.clusters:
                    raise DotSyntaxError(f"{key}={attrs[key]} names no cluster")
        return ParsedDot(self.nodes, self.edges, self.clusters, self.graph_attrs, self.node_cluster)

    def stmt_list(self, cluster: str | None, graph_attrs: dict[str, str]) -> None:
        while self.peek() is not None and self.peek()[1] != "}":
            self.stmt(cluster, graph_attrs)
            if self.peek() is not None and self.peek()[1] == ";":
                self.pos += 1

    def attr_list(self) -> dict[str, str]:
        attrs: dict[str, str] = {}
        while self.peek() is not None and self.peek()[1] == "[":
            self.take("[")
            while self.peek() is not None and self.peek()[1] != "]":
                key = self.take(kind="id")[1]
                self.take("=")
                token = self.peek()
                if not self.is_id(token):
                    raise DotSyntaxError(f"attribute {key} has no value")
                self.pos += 1
                attrs[key] = token[1]
                if self.peek() is not None and self.peek()[1] in (",", ";"):
                    self.pos += 1
            self.take("]")
        return attrs

    def stmt(self, cluster: str | None, graph_attrs: dict[str, str]) -> None:
        token = self.peek()
        if token[1] in ("graph", "node", "edge"):
            self.pos += 1
            attrs = self.attr_list()
            if token[1] == "graph":
                graph_attrs.update(attrs)
            return
        if token[1] == "subgraph":
            self.pos += 1
            name = self.take()[1] if self.is_id(self.peek()) else ""
            if name in self.clusters:
                raise DotSyntaxError(f"subgraph {name!r} declared twice")
            attrs: dict[str, str] = {}
            inner = cluster
            if name.startswith("cluster"):
                self.clusters[name] = Cluster(name, cluster, attrs, [])
                inner = name
            self.take("{")
            self.stmt_list(inner, attrs)
            self.take("}")
            return
        if not self.is_id(token):
            raise DotSyntaxError(f"unexpected {token[1]!r}")
        self.pos += 1
        if self.peek() is not None and self.peek()[1] == "=":
            self.pos += 1
            graph_attrs[token[1]] = self.take()[1]
            return
        ends = [token[1]]
        while self.peek() is not None and self.peek()[0] == "arrow":
            if self.take()[1] != "->":
                raise DotSyntaxError("undirected edge '--' in a digraph")
            if not self.is_id(self.peek()):
                raise DotSyntaxError(f"edge to {self.peek()!r}")
            ends.append(self.take()[1])
        attrs = self.attr_list()
        if len(ends) == 1:
            if ends[0] in self.nodes:
                raise DotSyntaxError(f"node {ends[0]!r} declared twice")
            self.nodes[ends[0]] = attrs
            self.node_cluster[ends[0]] = cluster
            if cluster is not None:
                self.clusters[cluster].nodes.append(ends[0])
        else:
            self.edges.extend((a, b, attrs) for a, b in itertools.pairwise(ends))


def check_dot(text: str) -> ParsedDot:
    """Parses DOT text strictly; renders it with Graphviz too when `dot` is installed."""
    parsed = _Parser(text).parse()
    binary = shutil.which("dot")
    if binary is not None:
        result = subprocess.run(
            [binary, "-Tsvg"], input=text, capture_output=True, text=True, timeout=60
        )
        assert result.returncode == 0, result.stderr
        assert result.stderr.strip() == "", result.stderr
        assert "<svg" in result.stdout
    return parsed


def test_the_checker_rejects_broken_dot() -> None:
    good = 'digraph g {\n  a [label="x"];\n  b;\n  a -> b;\n}\n'
    check_dot(good)
    broken = {
        "unbalanced brace": good.replace("}\n", ""),
        "undeclared endpoint": good.replace("a -> b", "a -> c"),
        "unterminated string": good.replace('"x"', '"x'),
        "bad HTML label": good.replace('"x"', "<<B>x</I>>"),
        "raw markup in HTML": good.replace('"x"', "<a&b>"),
    }
    for why, text in broken.items():
        with pytest.raises(DotSyntaxError):
            _Parser(text).parse()
            pytest.fail(why)


# -- graphs --------------------------------------------------------------------------------
def _mlp() -> tuple[gf.Tensor, gf.Tensor]:
    x = gf.placeholder(gf.float32, [None, 784], name="x")
    with gf.name_scope("dense"):
        w = gf.constant(0.5, shape=[784, 10], name="w")
        hidden = gf.nn.relu(gf.matmul(x, w) + gf.constant(1.0, shape=[10], name="b"))
    with gf.name_scope("head"), gf.name_scope("norm"):
        probs = gf.nn.softmax(hidden)
    return x, probs


def _node_of(parsed: ParsedDot, name: str) -> str:
    """The id of the node whose label shows op name `name` (on its own line)."""
    found = [
        node
        for node, attrs in parsed.nodes.items()
        if re.search(r"(^|<BR/>)" + re.escape(name) + r"(<BR/>|$)", attrs.get("label", ""))
    ]
    assert len(found) == 1, (name, found)
    return found[0]


def test_same_graph_gives_the_same_text() -> None:
    _, probs = _mlp()
    first = graph_to_dot(probs.graph)
    assert first == graph_to_dot(probs.graph)
    check_dot(first)


def test_identical_graphs_built_separately_give_identical_text() -> None:
    texts = []
    for _ in range(2):
        with gf.Graph().as_default():
            x, probs = _mlp()
            texts.append(
                (to_dot(), to_dot(probs, [x]), to_dot(probs, [x], optimized=True, level="O2"))
            )
    assert texts[0] == texts[1]
    for text in texts[0]:
        check_dot(text)
    assert len({*texts[0]}) == 3  # as built, pruned and optimized differ


def test_labels_show_type_name_shape_and_dtype() -> None:
    x, probs = _mlp()
    parsed = check_dot(to_dot(probs, [x]))
    label = parsed.nodes[_node_of(parsed, "dense/MatMul")]["label"]
    assert label.startswith("<B>MatMul</B><BR/>dense/MatMul<BR/>")
    assert "f32[?,10]" in label
    placeholder = parsed.nodes[_node_of(parsed, "x")]
    assert "f32[?,784]" in placeholder["label"] and placeholder["shape"] == "ellipse"
    bias = parsed.nodes[_node_of(parsed, "dense/b")]
    assert "f32[10]" in bias["label"] and bias["fillcolor"] != placeholder["fillcolor"]


def test_labels_of_scalars_unknown_rank_and_small_constants() -> None:
    u = gf.placeholder(gf.int64, None, name="u")
    c = gf.constant([1.5, 2.0], dtype=gf.float64, name="c")
    flag = gf.placeholder(gf.bool, [], name="flag")
    parsed = check_dot(graph_to_dot(gf.get_default_graph(), ops=[u.op, c.op, flag.op]))
    assert "i64[*]" in parsed.nodes["n0"]["label"]
    assert "f64[2] = [1.5, 2]" in parsed.nodes["n1"]["label"]
    assert "bool[]" in parsed.nodes["n2"]["label"]


def test_name_scopes_become_nested_clusters() -> None:
    _, probs = _mlp()
    parsed = check_dot(graph_to_dot(probs.graph))
    dense, head, norm = cluster_id("dense"), cluster_id("head"), cluster_id("head/norm")
    assert dense == "cluster_dense" and norm == "cluster_head_2fnorm"
    assert parsed.clusters[norm].parent == head and parsed.clusters[dense].parent is None
    assert parsed.clusters[norm].attrs["label"] == "norm"
    assert _node_of(parsed, "dense/MatMul") in parsed.cluster_nodes(dense)
    assert _node_of(parsed, "head/norm/Softmax") in parsed.cluster_nodes(head)
    assert parsed.node_cluster[_node_of(parsed, "x")] is None
    assert "subgraph cluster_dense {" in graph_to_dot(probs.graph)
    flat = check_dot(graph_to_dot(probs.graph, scopes=False))
    assert flat.clusters == {}


def test_edges_follow_the_inputs() -> None:
    x, probs = _mlp()
    parsed = check_dot(to_dot(probs, [x]))
    matmul = _node_of(parsed, "dense/MatMul")
    assert parsed.edges_between(_node_of(parsed, "x"), matmul) == [{}]
    assert parsed.edges_between(_node_of(parsed, "dense/w"), matmul) == [{}]
    # Every op of the MLP is needed: one edge per input of each op, nothing else.
    assert len(parsed.edges) == sum(len(op.inputs) for op in probs.graph.get_operations())


def test_fetches_and_feeds_prune_the_drawing() -> None:
    a = gf.placeholder(gf.float32, [3], name="a")
    hidden = gf.exp(a, name="hidden")
    out = gf.sqrt(hidden, name="out")
    gf.negative(a, name="unused")
    whole = check_dot(to_dot())
    assert {"a", "hidden", "out", "unused"} <= _names(whole)
    pruned = check_dot(to_dot(out))
    assert _names(pruned) == {"a", "hidden", "out"}
    fed = check_dot(to_dot(out, feeds=[hidden]))
    # The fed tensor's producer is cut off: a placeholder named after the tensor stands in.
    assert _names(fed) == {"hidden_0", "out"}
    assert fed.nodes[_node_of(fed, "hidden_0")]["shape"] == "ellipse"
    assert fed.nodes[_node_of(fed, "out")]["peripheries"] == "2"  # the fetch


def _names(parsed: ParsedDot) -> set[str]:
    return {attrs["label"].split("<BR/>")[1] for attrs in parsed.nodes.values()}


def test_control_dependencies_are_dashed() -> None:
    v = gf.Variable(gf.zeros([2]), name="v")
    step = gf.assign_add(v, gf.ones([2]), name="step")
    with gf.control_dependencies([step]):
        out = gf.identity(v, name="out")
    parsed = check_dot(graph_to_dot(gf.get_default_graph()))
    (edge,) = parsed.edges_between(_node_of(parsed, "step"), _node_of(parsed, "out"))
    assert edge["style"] == "dashed"
    (ref,) = parsed.edges_between(_node_of(parsed, "v"), _node_of(parsed, "step"))
    assert ref["label"] == "ref"
    solid = [a for s, d, a in parsed.edges if a.get("style") != "dashed"]
    assert len(solid) == len(parsed.edges) - 1
    check_dot(to_dot(out, optimized=True))


def test_multi_output_edges_name_the_output() -> None:
    a = gf.placeholder(gf.float32, [4, 2], name="a")
    first, second = gf.split(a, 2, axis=0, name="halves")
    total = gf.add(second, first, name="total")
    parsed = check_dot(to_dot(total))
    split, add = _node_of(parsed, "halves"), _node_of(parsed, "total")
    assert [e.get("label") for e in parsed.edges_between(split, add)] == [":1", ":0"]


def test_ops_outside_a_subset_are_stubs() -> None:
    a = gf.placeholder(gf.float32, [3], name="a")
    b = gf.exp(a, name="b")
    c = gf.log(b, name="c")
    parsed = check_dot(graph_to_dot(a.graph, ops=[c.op]))
    stub = parsed.nodes[f"n{b.op.id}"]
    assert stub["style"] == "dashed" and stub["label"] == "b"
    assert parsed.edges_between(f"n{b.op.id}", f"n{c.op.id}") == [{}]
    with gf.Graph().as_default():
        other = gf.constant(1.0)
    with pytest.raises(errors.InvalidArgumentError, match="another graph"):
        graph_to_dot(a.graph, ops=[other.op])


# -- fused ops -----------------------------------------------------------------------------
def test_optimized_fused_ops_are_clusters_of_their_bodies() -> None:
    x, probs = _mlp()
    result = optimize(probs, [x], level="O2")
    fused = result.fused_ops()
    assert fused
    text = to_dot(probs, [x], optimized=True)
    assert text == program_to_dot(result.program, title="optimized (O2)")
    parsed = check_dot(text)
    assert parsed.graph_attrs["label"] == "optimized (O2)"
    for op in fused:
        body = op.get_attr("body")
        cluster = parsed.clusters[f"cluster_fused_{op.id}"]
        assert f"subgraph cluster_fused_{op.id} {{" in text
        assert op.name in cluster.attrs["label"] and body.pattern in cluster.attrs["label"]
        assert cluster.nodes == [f"n{op.id}_{k}" for k in range(len(body.nodes))]
        for k, node in enumerate(body.nodes):
            assert f"<B>{node.op_type}</B>" in parsed.nodes[f"n{op.id}_{k}"]["label"]
    assert f"n{fused[0].id}" not in parsed.nodes  # a fused op is its cluster, not a node
    # A fused cluster sits in the innermost scope holding all of its body's ops.
    (dense,) = [op for op in fused if op.get_attr("body").pattern == "contraction"]
    assert parsed.clusters[f"cluster_fused_{dense.id}"].parent == "cluster_dense"


def _hand_fused_graph() -> tuple[gf.Tensor, gf.Operation, gf.Operation, gf.Tensor]:
    """a, b -> Fused(sq = a*a; out = sq + b; also passes b through) -> Fused(neg) -> Relu."""
    f32 = gf.float32
    a = gf.placeholder(f32, [2, 3], name="a")
    b = gf.placeholder(f32, [2, 3], name="b")
    shape = gf.Shape([2, 3])
    body = FusedBody(
        nodes=(
            BodyNode("Mul", "sq", {}, (("arg", 0, 0), ("arg", 0, 0)), ((f32, shape),)),
            BodyNode("Add", "sum", {}, (("node", 0, 0), ("arg", 1, 0)), ((f32, shape),)),
        ),
        outputs=(("node", 1, 0), ("arg", 1, 0)),
        pattern="elementwise",
    )
    first = apply_op("Fused", [a, b], {"body": body}, name="first/fused")
    neg = FusedBody(
        nodes=(BodyNode("Neg", "neg", {}, (("arg", 0, 0),), ((f32, shape),)),),
        outputs=(("node", 0, 0),),
        pattern="elementwise",
    )
    second = apply_op("Fused", [first.outputs[0]], {"body": neg}, name="second/fused")
    out = gf.nn.relu(second.outputs[0] + first.outputs[1], name="out")
    return a, first, second, out


def test_hand_built_fused_ops_wire_inputs_and_outputs_to_body_nodes() -> None:
    a, first, second, _ = _hand_fused_graph()
    parsed = check_dot(graph_to_dot(a.graph))
    f, s = first.id, second.id
    assert set(parsed.clusters[f"cluster_fused_{f}"].nodes) == {f"n{f}_0", f"n{f}_1"}
    assert parsed.clusters[f"cluster_fused_{f}"].parent is None  # its body has no scope
    assert len(parsed.edges_between("n0", f"n{f}_0")) == 2  # a read twice by sq
    assert parsed.edges_between("n1", f"n{f}_1") == [{}]  # b read by sum
    assert parsed.edges_between(f"n{f}_0", f"n{f}_1") == [{}]  # inside the body
    assert parsed.edges_between(f"n{f}_1", f"n{s}_0") == [{}]  # fused -> fused
    add = _node_of(parsed, "Add")
    assert parsed.edges_between(f"n{s}_0", add) == [{}]
    assert parsed.edges_between("n1", add) == [{}]  # output 1 passes b through
    assert _node_of(parsed, "out") in parsed.nodes
    assert f"n{f}" not in parsed.nodes and f"n{s}" not in parsed.nodes


def test_control_dependencies_on_fused_ops_point_at_the_cluster() -> None:
    a, first, _, _ = _hand_fused_graph()
    with gf.control_dependencies([first]):
        after = gf.identity(a, name="after")
    body = FusedBody(
        nodes=(BodyNode("Exp", "e", {}, (("arg", 0, 0),), ((gf.float32, gf.Shape([2, 3])),)),),
        outputs=(("node", 0, 0),),
        pattern="elementwise",
    )
    with gf.control_dependencies([after]):
        late = apply_op("Fused", [a], {"body": body}, name="late")
    parsed = check_dot(graph_to_dot(a.graph))
    (into_after,) = parsed.edges_between(f"n{first.id}_1", f"n{after.op.id}")
    assert into_after["style"] == "dashed"
    assert into_after["ltail"] == f"cluster_fused_{first.id}"
    (into_late,) = parsed.edges_between(f"n{after.op.id}", f"n{late.id}_0")
    assert into_late["lhead"] == f"cluster_fused_{late.id}"


# -- escaping ------------------------------------------------------------------------------
def test_odd_names_and_titles_are_escaped() -> None:
    with gf.name_scope("a.b-c"):
        x = gf.placeholder(gf.float32, [1], name="x->y")
    with gf.name_scope("a_b"):
        gf.exp(x, name="e")
    odd = 'q"uo\\te <b>&amp;\nline\ttab\x07'
    body = FusedBody(
        nodes=(BodyNode("Exp", odd, {}, (("arg", 0, 0),), ((gf.float32, gf.Shape([1])),)),),
        outputs=(("node", 0, 0),),
        pattern="elementwise",
    )
    apply_op("Fused", [x], {"body": body}, name="f")
    title = 'say "hi" \\ <now>\nsecond line'
    text = graph_to_dot(x.graph, title=title)
    parsed = check_dot(text)
    assert parsed.graph_attrs["label"] == title  # decodes back to the title exactly
    assert _node_of(parsed, "a.b-c/x-&gt;y") == "n0"
    assert {"cluster_a_2eb_2dc", "cluster_a_5fb"} <= set(parsed.clusters)
    fused_label = parsed.nodes["n2_0"]["label"]
    assert "q&quot;uo\\te &lt;b&gt;&amp;amp;<BR/>line\\x09tab\\x07" in fused_label
    assert quote('a"b\\c\nd') == '"a\\"b\\\\c\\nd"'


def test_cluster_ids_are_injective() -> None:
    names = ["a_b", "a/b", "a.b", "a-b", "a_2fb", "fused_1"]
    ids = {cluster_id(n) for n in names}
    assert len(ids) == len(names)
    assert all(re.fullmatch(r"cluster_[A-Za-z0-9_]+", i) for i in ids)
    assert cluster_id("fused_1") != "cluster_fused_1"


# -- the pipeline and the public wrapper ---------------------------------------------------
def test_every_pipeline_dump_is_valid(tmp_path) -> None:
    x, probs = _mlp()
    optimize(probs, [x], level="O2", dump_dir=tmp_path)
    files = sorted(tmp_path.iterdir())
    assert len(files) == 9
    for path in files:
        parsed = check_dot(path.read_text())
        assert parsed.graph_attrs["label"] in ("as built", f"after {path.stem[3:]}")
    assert "cluster_fused_" in files[-1].read_text()


def test_whole_graph_optimized_and_level_errors() -> None:
    v = gf.Variable(gf.ones([3]), name="v")
    gf.reduce_sum(v * 2.0 + 1.0, name="total")
    init = gf.global_variables_initializer()
    text = to_dot(optimized=True, level="O1")
    parsed = check_dot(text)
    assert parsed.graph_attrs["label"] == "optimized (O1)"
    assert init.name in _names(parsed) and "total" in _names(parsed)
    with pytest.raises(errors.InvalidArgumentError, match="O3"):
        to_dot(level="O3")


def test_gf_to_dot_is_the_compiler_function_imported_lazily() -> None:
    x, probs = _mlp()
    assert gf.to_dot(probs, [x], optimized=True) == to_dot(probs, [x], optimized=True)
    check_dot(gf.to_dot())
    code = "import sys, graphflow; print('graphflow.compiler.dot' in sys.modules)"
    # Run outside the repository, so the installed package is imported, not the sources.
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=tempfile.gettempdir()
    )
    assert result.stdout.strip() == "False", result.stderr
