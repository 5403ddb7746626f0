"""`graphflow demo`, `bench`, `info` and `cache`, run as the installed console script by a user.

Each console-script run costs a second or more (starting Python, importing
graphflow, compiling), so the independent runs are started at once by one
fixture and the tests read their results. Every run has its own empty
GRAPHFLOW_CACHE_DIR and runs in a temporary folder, not the repository.
"""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import subprocess
import sys

import numpy as np
import pytest

from graphflow.benchmarks import peers, plot, run, workloads
from graphflow.benchmarks.timing import QUICK

SCRIPT = pathlib.Path(sys.executable).with_name("graphflow")
TINY = "0.002"  # W3: [8, 1024]
BENCH_ARGS = ["bench", "--quick", "--scale", TINY, "--workload", "W1", "W3"]
NO_DOT_PATH = str(pathlib.Path(sys.executable).parent)  # the venv's bin, as the only PATH


class Run:
    def __init__(self, returncode: int, stdout: str, stderr: str, folder: pathlib.Path) -> None:
        self.returncode, self.stdout, self.stderr, self.folder = returncode, stdout, stderr, folder


def _start(
    folder: pathlib.Path, args: list[str], env: dict[str, str] | None = None
) -> subprocess.Popen[str]:
    folder.mkdir(parents=True, exist_ok=True)
    environment = {**os.environ, "GRAPHFLOW_CACHE_DIR": str(folder / "cache"), **(env or {})}
    return subprocess.Popen(
        [str(SCRIPT), *args],
        cwd=folder,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _finish(process: subprocess.Popen[str], folder: pathlib.Path) -> Run:
    stdout, stderr = process.communicate(timeout=180)
    return Run(process.returncode, stdout, stderr, folder)


@pytest.fixture(scope="module")
def blocked_matplotlib(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    """A folder that, first on PYTHONPATH, makes `import matplotlib` fail as if not installed."""
    folder = tmp_path_factory.mktemp("no-matplotlib")
    (folder / "matplotlib").mkdir()
    (folder / "matplotlib" / "__init__.py").write_text(
        "raise ImportError(\"No module named 'matplotlib' (blocked for this test)\")\n"
    )
    return folder


ERRORS = {
    "unknown workload": (["bench", "--workload", "W9"], "no workload 'W9'"),
    "zero threads": (["bench", "--threads", "0"], '--threads: expected a positive number or "all"'),
    "word threads": (["bench", "--threads", "many"], "got 'many'"),
    "plot without matplotlib": (
        ["bench", "--quick", "--workload", "W1", "--plot", "speedup.png"],
        "--plot needs matplotlib",
    ),
    "missing json folder": (["bench", "--json", "no/such/folder/run.json"], "does not exist"),
    "bad batch": (["demo", "--batch", "0"], "expected a positive whole number"),
    "bad cache action": (["cache", "frobnicate"], "invalid choice: 'frobnicate'"),
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory, blocked_matplotlib: pathlib.Path) -> dict:
    root = tmp_path_factory.mktemp("cli")
    started = {
        "demo": (root / "demo", ["demo", "--out", "tmp"], None),
        "demo without dot": (
            root / "demo-no-dot",
            ["demo", "--batch", "16"],
            {"PATH": NO_DOT_PATH},
        ),
        "bench": (
            root / "bench",
            [*BENCH_ARGS, "--json", "run.json", "--markdown", "run.md"],
            None,
        ),
    }
    for name, (args, _) in ERRORS.items():
        env = {"PYTHONPATH": str(blocked_matplotlib)} if "matplotlib" in name else None
        started[name] = (root / name.replace(" ", "-"), args, env)
    processes = {name: (_start(f, a, e), f) for name, (f, a, e) in started.items()}
    results = {name: _finish(p, f) for name, (p, f) in processes.items()}
    # Then, in order, on the cache the first demo filled: info, cache clear, info again.
    demo = root / "demo"
    (demo / "cache" / "README.txt").write_text("a user's file: cache clear leaves it\n")
    for name, args in [
        ("info", ["info"]),
        ("cache", ["cache"]),
        ("cache clear", ["cache", "clear"]),
        ("info after clear", ["info"]),
        ("cache clear again", ["cache", "clear"]),
    ]:
        results[name] = _finish(_start(demo, args), demo)
    return results


def test_demo_writes_the_graphs_and_agrees(runs: dict) -> None:
    result = runs["demo"]
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert f"files go to {result.folder / 'tmp'}" in out
    for name in ("as-built", "optimized"):
        dot = result.folder / "tmp" / f"graph-{name}.dot"
        assert dot.read_text().startswith("digraph"), dot
        if shutil.which("dot") is not None:
            assert (result.folder / "tmp" / f"graph-{name}.svg").read_text().count("<svg") == 1
    assert "compiled and interpreted agree: max |difference|" in out
    # The pass report: one line per pass with its node counts, and the totals.
    for name in ("prune", "fold", "simplify", "cse", "expand", "fuse"):
        assert f"\n   {name} " in out, name
    assert "nodes as built ->" in out and "after optimization" in out
    rows = [line.split() for line in out.splitlines() if line.startswith("   graphflow ")]
    assert [r[1] for r in rows] == ["compiled", "interpreted"]
    assert "speedup of compiled over interpreted:" in out


def test_demo_says_when_graphviz_is_missing(runs: dict) -> None:
    result = runs["demo without dot"]
    assert result.returncode == 0, result.stderr
    assert "files go to " + str(result.folder / "graphflow-demo") in result.stdout
    assert (result.folder / "graphflow-demo" / "graph-optimized.dot").exists()
    svgs = list((result.folder / "graphflow-demo").glob("*.svg"))
    if shutil.which("dot", path=NO_DOT_PATH) is None:
        assert "SVG not written: Graphviz's `dot` is not on PATH" in result.stdout
        assert svgs == []
    else:  # Graphviz is installed in the venv's own bin: it was used
        assert len(svgs) == 2


def test_bench_json_has_every_workload_and_mode(runs: dict) -> None:
    result = runs["bench"]
    assert result.returncode == 0, result.stderr
    report = json.loads((result.folder / "run.json").read_text())
    assert report["command"].startswith("graphflow bench --quick")
    assert [w["id"] for w in report["workloads"]] == ["W1", "W3"]
    for w in report["workloads"]:
        modes = [(r["mode"], r["api"]) for r in w["results"]]
        expected = [("compiled", "run"), ("interpreted", "run"), ("numpy", None)]
        if w["id"] == "W1":
            expected.insert(1, ("compiled", "make_callable"))
        assert modes == expected
        for r in w["results"]:
            assert r["status"] == "ok", r
            assert 0 < r["min_s"] <= r["median_s"] <= r["max_s"]
            assert r["repetitions"] >= QUICK.min_repetitions
            assert r["error"] < 1e-4
            assert isinstance(r["ratio_to_numpy"], float) and isinstance(r["rate"], float)
    machine = report["machine"]
    assert {"cpu", "cores", "llvmlite", "numpy", "threads", "libraries"} <= set(machine)
    assert machine["threads"]["OMP_NUM_THREADS"] == "1"
    assert all(report["limits"][k] > 0 for k in ("copy_gbs", "gemm_gflops", "dispatch_us"))
    # Without --peers, each peer has a line saying it was not run and why.
    assert len(report["other_contenders"]) == len(peers.PEERS)
    assert all(line.startswith("skipped: ") for line in report["other_contenders"])
    table = (result.folder / "run.md").read_text()
    assert table == result.stdout
    assert "| W3 | softmax, [8, 1024] | graphflow compiled |" in table
    assert "[2/2] W3 softmax" in result.stderr  # progress goes to stderr


@pytest.mark.parametrize("name", sorted(ERRORS))
def test_bad_arguments_are_one_line_errors(runs: dict, name: str) -> None:
    args, message = ERRORS[name]
    result = runs[name]
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr, result.stderr
    assert result.stderr.startswith(f"graphflow {args[0]}: error: ")
    assert message in result.stderr
    assert result.stdout == ""


def test_info_reports_versions_cpu_and_cache(runs: dict) -> None:
    result = runs["info"]
    assert result.returncode == 0, result.stderr
    fields = dict(line.split(":", 1) for line in result.stdout.splitlines())
    assert {"graphflow", "numpy", "llvmlite", "LLVM", "networkx", "Python", "CPU"} <= set(fields)
    from graphflow.compiler.jit import get_jit

    jit = get_jit()
    assert f"CPU {jit.cpu}" in fields["target"]
    enabled = {f[1:] for f in jit.features.split(",") if f.startswith("+")}
    assert set(fields["CPU features"].split(":", 1)[1].split()) == enabled
    cache = fields["JIT cache"].strip()
    assert cache.startswith(str(result.folder / "cache") + ":")
    entries = int(cache.split(": ", 1)[1].split()[0])
    assert entries > 0  # the demo compiled into this cache


def test_cache_clear_removes_the_entries_and_nothing_else(runs: dict) -> None:
    folder = runs["cache clear"].folder / "cache"
    shown = runs["cache"]
    assert shown.returncode == 0 and "clear it with: graphflow cache clear" in shown.stdout
    cleared = runs["cache clear"]
    assert cleared.returncode == 0, cleared.stderr
    before = int(runs["info"].stdout.split("JIT cache:")[1].split(": ")[1].split()[0])
    assert f"removed {before} compiled entries" in cleared.stdout
    assert str(folder) in cleared.stdout
    assert " 0 entries, 0 bytes" in runs["info after clear"].stdout
    assert "nothing to remove" in runs["cache clear again"].stdout
    assert [p.name for p in folder.iterdir()] == ["README.txt"]


# -- in process: the pieces the runs above do not reach --------------------------------------
class _NumPyPeer:
    """A peer adapter written against NumPy: W1 expressible, W7 not."""

    @staticmethod
    def prepare(variant: str, workload_id: str, case: workloads.Case) -> peers.Prepared:
        if workload_id == "W1":
            x = case.arrays["x"]
            return peers.Prepared(lambda: (x + 1.0).astype(variant))
        raise peers.Unsupported("no matmul here")


@pytest.mark.parametrize("dtype, within", [("float32", True), ("float16", False)])
def test_a_peer_is_checked_like_graphflow(dtype: str, within: bool) -> None:
    peer = peers.PEERS[0]
    contender = run.LoadedPeer(peers.Contender("test peer", peer, dtype), _NumPyPeer, "test 1.0")
    workload = workloads.get("W1")
    case = workload.case(1.0)
    reference = run._compared(run._as_list(case.numpy(np.float64)()), case)
    limits = run.Limits(10.0, 1, 100.0, 1, 1.0)
    args = (workload, case, reference, QUICK, limits, run._Progress(None), contender)
    result = run._contender("test peer", "peer", contender.contender.key, *args)
    assert result.status == "ok" and result.library == "test 1.0"
    assert result.dtype == dtype and (result.error < 1e-6) is within
    assert result.median_s > 0
    w7 = workloads.get("W7")
    skipped = run._contender(
        "test peer",
        "peer",
        "k",
        w7,
        w7.case(1e-6),
        reference,
        QUICK,
        limits,
        run._Progress(None),
        contender,
    )
    assert (skipped.status, skipped.reason) == ("skipped", "no matmul here")
    assert skipped.median_s is None


def test_a_missing_peer_is_skipped_with_its_install_command(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "jax" else real(name, *a)
    )
    contenders, skipped = peers.installed()
    assert "skipped: JAX: jax not installed (pip install 'jax[cpu]')" in skipped
    assert all(c.peer.name != "JAX" for c in contenders)


def test_the_plot_shows_speedup_over_numpy() -> None:
    report = {
        "workloads": [
            {
                "id": "W2",
                "cold_start": False,
                "results": [
                    {
                        "contender": "graphflow compiled",
                        "mode": "compiled",
                        "status": "ok",
                        "ratio_to_numpy": 0.25,
                    },
                    {
                        "contender": "PyTorch eager",
                        "mode": "peer",
                        "status": "skipped",
                        "ratio_to_numpy": None,
                    },
                    {"contender": "NumPy", "mode": "numpy", "status": "ok", "ratio_to_numpy": 1.0},
                ],
            },
            {"id": "W8", "cold_start": True, "results": []},
        ]
    }
    ids, speedups = plot.speedups(report)
    assert ids == ["W2"]
    assert speedups == {"graphflow compiled": [4.0], "PyTorch eager": [None]}


def test_demo_agreement_check_fails_on_a_difference_or_nan() -> None:
    from graphflow import demo

    p = np.full((2, 3), 1 / 3)
    assert demo.check_agreement(p, p + 1e-7, p).ok
    assert not demo.check_agreement(p, p + 1e-3, p).ok
    assert not demo.check_agreement(p, np.full_like(p, np.nan), p).ok
    assert not demo.check_agreement(p[:1], p[:1], p).ok


def test_commands_are_documented() -> None:
    text = (pathlib.Path(__file__).parents[1] / "docs" / "cli.md").read_text()
    for command in ("version", "info", "demo", "bench", "dot", "cache clear"):
        assert f"## graphflow {command}" in text, command
    for option in ("--peers", "--plot", "--quick", "--workload", "--threads", "--out"):
        assert option in text, option
    assert "## Exit status" in text
