"""Renders the pictures of docs/compiler.md from real pipeline dumps and gf.to_dot.

Run: python docs/make_compiler_pictures.py

Each example graph is optimized with `optimize(..., dump_dir=...)`; the dump
written just before a pass and the one it wrote itself become
docs/images/<example>-before.svg and -after.svg, rendered with Graphviz's
`dot -Tsvg`; the picture of a graph as built comes from `gf.to_dot`.
Needs Graphviz (Debian: apt-get install graphviz).
"""

from __future__ import annotations

import pathlib
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterable

import graphflow as gf
from graphflow.compiler.pipeline import optimize

IMAGES = pathlib.Path(__file__).resolve().parent / "images"

# example -> (builder returning (fetches, feeds), level, disabled passes, pass to picture)
Example = tuple[Callable[[], tuple[list[gf.Tensor], list[gf.Tensor]]], str, list[str], str]


def prune_example() -> tuple[list[gf.Tensor], list[gf.Tensor]]:
    x = gf.placeholder(gf.float32, [None, 4], name="x")
    h = gf.tanh(x, name="h")
    y = gf.exp(h, name="y")
    gf.negative(x, name="unused")
    return [y], [h]  # h is fed: its producer tanh and the input x are not needed


def fold_example() -> tuple[list[gf.Tensor], list[gf.Tensor]]:
    x = gf.placeholder(gf.float32, [None, 4], name="x")
    scale = gf.sqrt(gf.constant(4.0, name="four"), name="root") * 3.0
    return [x * scale], [x]


def simplify_example() -> tuple[list[gf.Tensor], list[gf.Tensor]]:
    x = gf.placeholder(gf.float32, [None, 4], name="x")
    t = gf.transpose(gf.transpose(gf.identity(x)))
    return [gf.exp(gf.negative(gf.negative(t)) * 1.0, name="y")], [x]


def cse_example() -> tuple[list[gf.Tensor], list[gf.Tensor]]:
    x = gf.placeholder(gf.float32, [None, 4], name="x")
    return [gf.exp(x, name="e1") + gf.exp(x, name="e2")], [x]


def expand_example() -> tuple[list[gf.Tensor], list[gf.Tensor]]:
    x = gf.placeholder(gf.float32, [None, 4], name="x")
    return [gf.nn.softmax(x * 2.0)], [x]


def fuse_example() -> tuple[list[gf.Tensor], list[gf.Tensor]]:
    x = gf.placeholder(gf.float32, [None, 8], name="x")
    with gf.name_scope("dense"):
        w = gf.Variable(gf.zeros([8, 4]), name="w")
        b = gf.Variable(gf.zeros([4]), name="b")
        h = gf.nn.relu(gf.matmul(x, w) + b)
    return [gf.nn.softmax(h)], [x]


EXAMPLES: dict[str, Example] = {
    "prune": (prune_example, "O0", [], "prune"),
    "fold": (fold_example, "O1", ["simplify", "cse"], "fold"),
    "simplify": (simplify_example, "O1", ["fold", "cse"], "simplify"),
    "cse": (cse_example, "O1", ["fold", "simplify"], "cse"),
    "expand": (expand_example, "O2", ["fold", "simplify", "cse", "fuse"], "expand"),
    "fuse": (fuse_example, "O2", [], "fuse"),
}


def as_built_picture() -> str:
    """The graph of the `graphflow dot` section, as built: scopes are clusters."""
    with gf.Graph().as_default():
        (probs,), (x,) = fuse_example()
        return gf.to_dot(probs, [x])


def render(dot_text: str, name: str) -> pathlib.Path:
    binary = shutil.which("dot")
    if binary is None:
        sys.exit("install Graphviz (Debian: apt-get install graphviz) to render the pictures")
    path = IMAGES / f"{name}.svg"
    subprocess.run([binary, "-Tsvg", "-o", str(path)], input=dot_text, text=True, check=True)
    return path


def before_and_after(dumps: Iterable[pathlib.Path], pass_name: str) -> tuple[str, str]:
    """The dump written before the last run of `pass_name`, and the one it wrote."""
    files = sorted(dumps)
    index = max(i for i, f in enumerate(files) if f.stem.split("-", 1)[1] == pass_name)
    return files[index - 1].read_text(), files[index].read_text()


def main() -> None:
    IMAGES.mkdir(exist_ok=True)
    written = []
    for name, (build, level, disabled, pass_name) in EXAMPLES.items():
        with gf.Graph().as_default(), tempfile.TemporaryDirectory() as folder:
            fetches, feeds = build()
            optimize(fetches, feeds, level=level, disable=disabled, dump_dir=folder)
            before, after = before_and_after(pathlib.Path(folder).glob("*.dot"), pass_name)
        written.append(render(before, f"{name}-before"))
        written.append(render(after, f"{name}-after"))
    written.append(render(as_built_picture(), "dot-as-built"))
    for path in written:
        print(f"{path.relative_to(IMAGES.parent.parent)}  {path.stat().st_size:6d} bytes")


if __name__ == "__main__":
    main()
