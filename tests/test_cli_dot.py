"""`graphflow dot MODULE:FUNCTION`, run as the installed console script on a user's module.

Each console-script run costs most of a second (starting Python and importing
graphflow), so the runs are started all at once by one fixture and the tests
read their results; the remaining error messages are checked by calling
`graphflow.cli.main` in-process.
"""

from __future__ import annotations

import os
import pathlib
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator

import pytest

from graphflow import cli

sys.path.insert(0, str(pathlib.Path(__file__).parent / "compiler"))
from test_dot import check_dot

SCRIPT = pathlib.Path(sys.executable).with_name("graphflow")

USER_MODULE = textwrap.dedent(
    """
    import graphflow as gf


    def model():
        x = gf.placeholder(gf.float32, [None, 4], name="x")
        with gf.name_scope("layer"):
            w = gf.constant(0.5, shape=[4, 3], name="w")
            h = gf.nn.relu(gf.matmul(x, w) + 1.0)
        return gf.nn.softmax(h), [x]


    def fetches_only():
        a = gf.constant([1.0, 2.0], name="a")
        return [gf.exp(a * 1.0, name="e"), gf.negative(a, name="n")]


    def bad_shape():
        return gf.matmul(gf.ones([2, 3]), gf.ones([4, 5]))


    def returns_dict():
        return {"loss": 1}


    def raises():
        return 1 / 0


    not_a_function = 42
    """
)


# name -> (arguments, PATH or None for the inherited one)
_CASES: dict[str, tuple[list[str], str | None]] = {
    "stdout": (["mymodel:model"], None),
    "file": (["{dir}/mymodel.py:fetches_only", "-o", "g.dot"], None),
    "optimized": (["mymodel:model", "--optimized"], None),
    "level": (["mymodel:fetches_only", "--level", "O1"], None),
    "svg": (["mymodel:model", "--optimized", "-o", "graph.dot", "--svg"], None),
    "svg_no_graphviz": (["mymodel:model", "-o", "nodot.dot", "--svg"], "{dir}/empty-bin"),
    "no_module": (["nosuchmodule:model"], None),
    "returns_dict": (["mymodel:returns_dict"], None),
    "bad_shape": (["mymodel:bad_shape"], None),
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Run]:
    """Every case of _CASES run by the console script, concurrently, in one user folder."""
    folder = tmp_path_factory.mktemp("user")
    (folder / "mymodel.py").write_text(USER_MODULE)
    (folder / "empty-bin").mkdir()
    started = {}
    for name, (args, path) in _CASES.items():
        env = dict(os.environ)
        if path is not None:
            env["PATH"] = path.format(dir=folder)
        started[name] = subprocess.Popen(
            [str(SCRIPT), "dot", *(a.format(dir=folder) for a in args)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=folder,
            env=env,
        )
    results = {}
    for name, process in started.items():
        stdout, stderr = process.communicate(timeout=120)
        results[name] = Run(process.returncode, stdout, stderr, folder)
    return results


class Run:
    def __init__(self, returncode: int, stdout: str, stderr: str, folder: pathlib.Path) -> None:
        self.returncode, self.stdout, self.stderr, self.folder = returncode, stdout, stderr, folder


def _labels(text: str) -> str:
    return "\n".join(attrs.get("label", "") for attrs in check_dot(text).nodes.values())


def test_dot_to_stdout(runs: dict[str, Run]) -> None:
    result = runs["stdout"]
    assert result.returncode == 0, result.stderr
    parsed = check_dot(result.stdout)
    assert "cluster_layer" in parsed.clusters
    assert "<B>MatMul</B><BR/>layer/MatMul" in _labels(result.stdout)
    assert not any(name.startswith("cluster_fused_") for name in parsed.clusters)


def test_dot_to_a_file_from_a_path(runs: dict[str, Run]) -> None:
    result = runs["file"]
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    labels = _labels((result.folder / "g.dot").read_text())
    assert "<B>Exp</B><BR/>e" in labels and "<B>Neg</B><BR/>n" in labels
    assert "<B>Mul</B>" in labels  # as built: a * 1.0 is still there


def test_optimized_shows_fused_clusters(runs: dict[str, Run]) -> None:
    result = runs["optimized"]
    assert result.returncode == 0, result.stderr
    parsed = check_dot(result.stdout)
    assert parsed.graph_attrs["label"] == "optimized (O2)"
    assert any(name.startswith("cluster_fused_") for name in parsed.clusters)


def test_level_o1_simplifies_without_fusing(runs: dict[str, Run]) -> None:
    result = runs["level"]
    assert result.returncode == 0, result.stderr
    parsed = check_dot(result.stdout)
    assert parsed.graph_attrs["label"] == "optimized (O1)"
    assert "<B>Mul</B>" not in _labels(result.stdout)  # a * 1.0 simplified away
    assert not any(name.startswith("cluster_fused_") for name in parsed.clusters)


def test_svg_is_rendered_next_to_the_dot_file(runs: dict[str, Run]) -> None:
    result = runs["svg"]
    check_dot((result.folder / "graph.dot").read_text())
    if shutil.which("dot") is not None:
        assert result.returncode == 0, result.stderr
        assert "<svg" in (result.folder / "graph.svg").read_text()
    else:
        assert result.returncode == 1
        assert "install Graphviz (Debian: apt-get install graphviz)" in result.stderr


def test_svg_without_graphviz_says_how_to_install_it(runs: dict[str, Run]) -> None:
    result = runs["svg_no_graphviz"]
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "graphflow dot: error: the `dot` program was not found: "
        "install Graphviz (Debian: apt-get install graphviz) to render SVG"
    )
    check_dot((result.folder / "nodot.dot").read_text())  # the DOT is written all the same
    assert not (result.folder / "nodot.svg").exists()


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("no_module", "cannot import module 'nosuchmodule': no module named 'nosuchmodule'"),
        ("returns_dict", "mymodel:returns_dict returned a dict; expected fetches"),
        (
            "bad_shape",
            "graphflow error while building the graph in mymodel:bad_shape: "
            "InvalidArgumentError: MatMul op",
        ),
    ],
)
def test_script_errors_are_one_clear_line(runs: dict[str, Run], case: str, message: str) -> None:
    result = runs[case]
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert result.stderr.startswith("graphflow dot: error: ")
    assert message in result.stderr


# -- more errors, in-process ---------------------------------------------------------------
@pytest.fixture
def in_user_dir(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """cwd = a folder with the user's module; sys.path and sys.modules restored afterwards."""
    (tmp_path / "mymodel.py").write_text(USER_MODULE)
    (tmp_path / "broken.py").write_text("import graphflow as gf\n\nx = undefined_name\n")
    (tmp_path / "syntax.py").write_text("def f(:\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))
    modules = set(sys.modules)
    yield
    for name in set(sys.modules) - modules:
        del sys.modules[name]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["missing.py:model"], "cannot import 'missing.py': no such file"),
        (["mymodel"], "expected MODULE:FUNCTION, got 'mymodel'"),
        (["mymodel:nope"], "module 'mymodel' has no attribute 'nope'"),
        (["mymodel:not_a_function"], "mymodel:not_a_function is a int, not a function"),
        (["mymodel:raises"], "mymodel:raises raised ZeroDivisionError: division by zero (at "),
        (["mymodel:model", "--svg"], "--svg needs -o FILE"),
        (["mymodel:model", "--svg", "-o", "g.svg"], "-o names the DOT file"),
        (["broken:f"], "NameError: name 'undefined_name' is not defined (at "),
        (["syntax.py:f"], "importing 'syntax.py' failed: SyntaxError"),
    ],
)
@pytest.mark.usefixtures("in_user_dir")
def test_errors_are_one_clear_line(
    capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    assert cli.main(["dot", *args]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("\n") == 1 and err.startswith("graphflow dot: error: ")
    assert message in err


@pytest.mark.usefixtures("in_user_dir")
def test_in_process_run_returns_fetches_and_feeds(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["dot", "mymodel:model", "--level", "O0"]) == 0
    parsed = check_dot(capsys.readouterr().out)
    assert parsed.graph_attrs["label"] == "optimized (O0)"
    # x is fed: it is an input of the drawing, and Softmax is the fetch.
    (fetched,) = [n for n, a in parsed.nodes.items() if a.get("peripheries") == "2"]
    assert "<B>Softmax</B>" in parsed.nodes[fetched]["label"]


def test_bad_level_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["dot", "mymodel:model", "--level", "O3"])
    assert exit_info.value.code == 2
    assert "invalid choice: 'O3'" in capsys.readouterr().err
