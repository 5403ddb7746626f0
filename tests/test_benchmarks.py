"""The benchmark harness: the runner's report, errors, fallbacks, threads, W6's gradients."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

from graphflow.benchmarks import run, workloads
from graphflow.benchmarks.limits import THREAD_VARIABLES
from graphflow.benchmarks.timing import QUICK

TINY = 1 / 512  # W2: 32768 elements, W3: [8, 1024]
TIMED = ("first_s", "median_s", "min_s", "max_s", "rate", "ratio_to_numpy", "error")


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """One quick run of W1..W3 through the command line, read back from its JSON."""
    folder = tmp_path_factory.mktemp("bench")
    argv = ["--quick", "--scale", str(TINY), "--workload", "W1", "W2", "W3"]
    argv += ["--json", str(folder / "run.json"), "--markdown", str(folder / "run.md")]
    with pytest.MonkeyPatch.context() as mp:
        for name in THREAD_VARIABLES:
            mp.setenv(name, "1")  # already set: main runs in this process
        assert run.main(argv) == 0
    data = json.loads((folder / "run.json").read_text())
    data["_markdown"] = (folder / "run.md").read_text()
    return data


def test_the_report_has_every_workload_contender_and_figure(report: dict) -> None:
    assert [w["id"] for w in report["workloads"]] == ["W1", "W2", "W3"]
    for w in report["workloads"]:
        modes = [(r["mode"], r["api"]) for r in w["results"]]
        expected = [("compiled", "run"), ("interpreted", "run"), ("numpy", None)]
        if w["id"] == "W1":
            expected.insert(1, ("compiled", "make_callable"))
        assert modes == expected
        for r in w["results"]:
            assert r["status"] == "ok", r["reason"]
            assert all(isinstance(r[k], float) for k in TIMED), r
            assert 0 < r["min_s"] <= r["median_s"] <= r["max_s"]
            assert r["repetitions"] >= QUICK.min_repetitions
            assert r["dtype"] == "float32"
        numpy_result = w["results"][-1]
        assert numpy_result["ratio_to_numpy"] == 1.0
        assert w["results"][0]["ratio_to_numpy"] == pytest.approx(
            w["results"][0]["median_s"] / numpy_result["median_s"]
        )
    assert report["machine"]["threads"] == dict.fromkeys(THREAD_VARIABLES, "1")
    assert {"cpu", "cores", "numpy", "llvmlite"} <= set(report["machine"])
    assert all(report["limits"][k] > 0 for k in ("copy_gbs", "gemm_gflops", "dispatch_us"))


def test_graphflow_agrees_with_numpy_in_float64(report: dict) -> None:
    for w in report["workloads"]:
        for r in w["results"]:
            assert r["error"] < 1e-4, (w["id"], r["contender"], r["error"])


def test_rates_count_the_work_of_a_call(report: dict) -> None:
    w1, w2 = report["workloads"][0], report["workloads"][1]
    assert w1["unit"] == "µs" and w1["results"][0]["rate"] == pytest.approx(
        w1["results"][0]["median_s"] * 1e6
    )
    n = round(2**24 * TINY)
    compiled = w2["results"][0]
    assert w2["work"] == 8 * n
    assert compiled["rate"] == pytest.approx(8 * n / compiled["median_s"] / 1e9)
    assert compiled["of_limit"] == pytest.approx(compiled["rate"] / report["limits"]["copy_gbs"])


def test_the_markdown_table_has_a_row_per_contender(report: dict) -> None:
    rows = [line for line in report["_markdown"].splitlines() if line.startswith("| ")]
    assert len(rows) == 1 + 4 + 3 + 3  # the header, then W1 (with make_callable), W2, W3
    assert "make_callable" in report["_markdown"]


def test_a_compiled_session_that_falls_back_is_reported_not_timed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import graphflow.runtime.session as session_module

    monkeypatch.setattr(session_module, "compile_reason", lambda program: "no lowering for X")
    workload = workloads.get("W1")
    case = workload.case(1.0)
    reference = run._compared(run._as_list(case.numpy(np.float64)()), case)
    limits = run.Limits(10.0, 1, 100.0, 1, 1.0)
    result = run._contender(
        "graphflow compiled",
        "compiled",
        "run",
        workload,
        case,
        reference,
        QUICK,
        limits,
        run._Progress(None),
    )
    assert (result.status, result.reason) == ("fallback", "no lowering for X")
    assert result.median_s is None and result.first_s is None and result.rate is None
    report = {
        "machine": run.describe_machine(),
        "limits": vars(limits),
        "command": None,
        "settings": {"quick": True, "scale": 1.0, "cold_start_repetitions": 1},
        "other_contenders": [],
        "workloads": [
            {
                "id": "W1",
                "name": "x + 1",
                "description": "",
                "size": "x [1]",
                "unit": "µs",
                "work": 0.0,
                "cold_start": False,
                "results": [vars(result)],
            }
        ],
    }
    assert "compiled: fell back to interpreter (no lowering for X)" in run.format_markdown(report)


def test_relative_error() -> None:
    ref = [np.array([1.0, 2.5])]
    assert run.relative_error([np.array([1.0, 2.0], np.float32)], ref) == pytest.approx(0.2)
    assert run.relative_error([np.array([1.0, 2.5, 0.0])], ref) == float("inf")
    assert np.isnan(run.relative_error([np.array([np.nan, 2.5])], ref))
    assert run.relative_error([np.array([np.nan, 2.5])], [np.array([np.nan, 2.5])]) == 0.0


def test_the_command_sets_one_thread_before_numpy_loads(tmp_path: pathlib.Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in THREAD_VARIABLES}
    out = tmp_path / "run.json"
    command = [sys.executable, "-m", run.MODULE, "--quick", "--scale", str(TINY)]
    command += ["--workload", "W1", "--json", str(out)]
    done = subprocess.run(command, env=env, cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert json.loads(out.read_text())["machine"]["threads"] == dict.fromkeys(THREAD_VARIABLES, "1")
    assert "| W1 |" in done.stdout


def test_workloads_are_selected_by_id_prefix() -> None:
    assert [w.id for w in workloads.select(["W5"])] == ["W5b1", "W5b256"]
    assert [w.id for w in workloads.select(["w7", "W1"])] == ["W1", "W7"]
    with pytest.raises(KeyError, match="W9"):
        workloads.select(["W9"])


def test_the_training_step_gradients_match_finite_differences() -> None:
    """W6's hand-written backward pass (NumPy, float64) against central differences."""
    case = workloads.get("W6").case(4 / 128)  # batch 4
    _, _, feeds = case.build()
    by_name = {t.op.name: value for t, value in feeds.items()}
    x, labels = by_name["x"], by_name["labels"]
    assert labels.dtype == np.int64
    step = case.numpy(np.float64)()
    before = [p.astype(np.float64) for p in case.variables]
    gradients = [(b - a) / workloads.LEARNING_RATE for b, a in zip(before, step[1:])]

    def loss(params: list[np.ndarray]) -> float:
        w1, b1, w2, b2, w3, b3 = params
        h = np.maximum(np.maximum(x @ w1 + b1, 0) @ w2 + b2, 0)
        logits = h @ w3 + b3
        logits = logits - logits.max(axis=1, keepdims=True)
        log_p = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
        return float(-log_p[np.arange(len(labels)), labels].mean())

    assert step[0] == pytest.approx(loss(before), rel=1e-12)
    rng = np.random.default_rng(1)
    for k, g in enumerate(gradients):
        for index in zip(*(rng.integers(0, n, 4) for n in g.shape)):
            plus, minus = [p.copy() for p in before], [p.copy() for p in before]
            plus[k][index] += 1e-6
            minus[k][index] -= 1e-6
            numeric = (loss(plus) - loss(minus)) / 2e-6
            assert g[index] == pytest.approx(numeric, abs=1e-6), (k, index)


def test_the_training_step_graph_matches_its_numpy_step() -> None:
    import graphflow as gf

    case = workloads.get("W6").case(4 / 128)
    graph, fetches, feeds = case.build()
    with gf.Session(graph=graph, mode="interpreted") as sess, graph.as_default():
        variables = gf.global_variables()
        sess.run(gf.global_variables_initializer())
        loss, train = sess.run(fetches, feeds)
        after = sess.run(variables)
    assert train is None
    reference = run._compared(case.numpy(np.float64)(), case)
    assert run.relative_error(run._compared([loss, *after], case), reference) < 1e-4
