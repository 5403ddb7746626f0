"""The compiled Session: vector code, the disk cache, new batch sizes, threads, variables."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys
import textwrap
import threading

import numpy as np
import pytest

import graphflow as gf
from graphflow.compiler.jit import JIT, DiskCache, get_jit
from graphflow.compiler.lowering.module import lower
from graphflow.compiler.pipeline import optimize


def test_fused_elementwise_kernel_uses_512_bit_vectors() -> None:
    x = gf.placeholder(gf.float32, [None, 64])
    b = gf.placeholder(gf.float32, [64])
    y = gf.maximum(x * 2.0 + b, 0.0)
    lowered = lower(optimize(y, [x, b]).program)
    optimized = get_jit().optimized_ir(lowered.ir)
    assert "<16 x float>" in optimized
    assert "fmul" in optimized and "fadd" in optimized


def test_new_batch_sizes_reuse_the_compiled_code() -> None:
    x = gf.placeholder(gf.float32, [None, 8])
    y = gf.reduce_sum(gf.abs(x) * 3.0, axis=1)
    with gf.Session(mode="compiled") as sess:
        for n in (1, 7, 0, 300, 2):
            data = np.random.default_rng(n).standard_normal((n, 8)).astype(np.float32)
            np.testing.assert_allclose(
                sess.run(y, {x: data}), (np.abs(data) * 3).sum(1), rtol=1e-5, atol=1e-5
            )
        info = sess.cache_info()
    assert info.compiled == 1 and info.misses == 1 and info.hits == 4


def test_compiled_runs_from_many_threads() -> None:
    x = gf.placeholder(gf.float64, [None])
    y = gf.reduce_sum(x * x + 1.0)
    failures: list[BaseException] = []
    with gf.Session(mode="compiled") as sess:

        def work(seed: int) -> None:
            rng = np.random.default_rng(seed)
            try:
                for _ in range(40):
                    data = rng.standard_normal(int(rng.integers(1, 500)))
                    np.testing.assert_allclose(sess.run(y, {x: data}), (data * data + 1).sum())
            except BaseException as e:  # noqa: BLE001 - collected and reported below
                failures.append(e)

        threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert not failures, failures[0]


def test_variables_are_updated_in_place() -> None:
    w = gf.Variable(gf.zeros([4]), name="w")
    step = gf.assign_add(w, gf.ones([4]) * 0.5)
    with gf.Session(mode="compiled") as sess:
        sess.run(gf.global_variables_initializer())
        for _ in range(3):
            sess.run(step)
        np.testing.assert_array_equal(sess.run(w), [1.5] * 4)
        assert sess.cache_info().compiled >= 2


def test_uninitialized_variable_fails_before_running() -> None:
    w = gf.Variable(gf.zeros([2]), name="weights")
    with (
        gf.Session(mode="compiled") as sess,
        pytest.raises(gf.errors.FailedPreconditionError, match="uninitialized value weights"),
    ):
        sess.run(w * 2.0)


def test_bad_run_time_shapes_name_the_op() -> None:
    a = gf.placeholder(gf.float32, [None])
    b = gf.placeholder(gf.float32, [None])
    c = gf.add(a, b, name="sum")
    with (
        gf.Session(mode="compiled") as sess,
        pytest.raises(gf.errors.InvalidArgumentError, match="Add op 'sum'"),
    ):
        sess.run(c, {a: np.ones(2, np.float32), b: np.ones(3, np.float32)})


def test_disk_cache_detects_corruption(tmp_path: pathlib.Path) -> None:
    jit = JIT(DiskCache(tmp_path))
    x = gf.placeholder(gf.float32, [None])
    text = lower(optimize(x + 1.0, [x]).program).ir
    jit.object_code(text)
    (entry,) = list(tmp_path.rglob("*.o"))
    assert jit.stats.misses == 1
    jit.object_code(text)
    assert jit.stats.hits == 1
    for damage in (lambda d: d[:-7], lambda d: d[:20] + bytes([d[20] ^ 1]) + d[21:], lambda d: b""):
        entry.write_bytes(damage(entry.read_bytes()) if entry.exists() else b"junk")
        payload = jit.object_code(text)  # detected, rebuilt, never loaded
        assert payload and entry.exists()
    assert jit.stats.rebuilt_corrupt == 3


def test_a_new_process_loads_machine_code_from_disk(tmp_path: pathlib.Path) -> None:
    script = textwrap.dedent(
        """
        import numpy as np, graphflow as gf
        from graphflow.compiler.jit import get_jit
        x = gf.placeholder(gf.float32, [None, 4])
        y = gf.reduce_max(gf.exp(x) * 2.0, axis=1)
        with gf.Session(mode="compiled") as s:
            out = s.run(y, {x: np.zeros((3, 4), np.float32)})
        assert np.allclose(out, 2.0)
        print(get_jit().stats.hits, get_jit().stats.misses)
        """
    )
    env = {**os.environ, "GRAPHFLOW_CACHE_DIR": str(tmp_path)}
    runs = [
        subprocess.run(
            [sys.executable, "-c", script],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
            cwd=tmp_path,
        )
        for _ in range(2)
    ]
    for r in runs:
        assert r.returncode == 0, r.stderr
    assert runs[0].stdout.split() == ["0", "1"]
    assert runs[1].stdout.split() == ["1", "0"]


def test_layers_with_the_same_epilogue_share_one_gemm() -> None:
    g = gf.Graph()
    with g.as_default():
        x = gf.placeholder(gf.float32, [None, 8])
        h = x
        for width in (16, 16, 4):  # two relu layers, one plain: two GEMMs
            w = gf.constant(np.ones((h.shape[1], width), np.float32) / 8)
            h = gf.matmul(h, w) + gf.constant(np.full(width, 0.5, np.float32))
            h = gf.nn.relu(h) if width == 16 else h
    program = optimize([h], [x]).program
    lowered = lower(program)
    assert len(lowered.libraries) == 2  # three matmuls, two distinct epilogues
    assert all(f.symbol in lowered.ir for f in lowered.libraries)
    with gf.Session(graph=g, mode="compiled") as sess:
        out = sess.run(h, {x: np.ones((3, 8), np.float32)})
    want = np.ones((3, 8), np.float32)
    for width in (16, 16, 4):
        want = want @ (np.ones((want.shape[1], width), np.float32) / 8) + 0.5
        want = np.maximum(want, 0) if width == 16 else want
    np.testing.assert_allclose(out, want, rtol=1e-6)


def test_a_new_process_loads_the_gemm_without_emitting_it(tmp_path: pathlib.Path) -> None:
    script = textwrap.dedent(
        """
        import sys, numpy as np, graphflow as gf
        from graphflow.compiler.lowering import gemm
        if sys.argv[1] == "cached":
            def fail(*args, **kwargs):
                raise AssertionError("the GEMM was emitted despite the disk cache")
            gemm.emit_gemm = fail
        x = gf.placeholder(gf.float32, [None, 5])
        y = gf.nn.relu(gf.matmul(x, gf.constant(np.ones((5, 7), np.float32))) + 1.0)
        with gf.Session(mode="compiled") as s:
            out = s.run(y, {x: np.ones((2, 5), np.float32)})
        assert np.allclose(out, 6.0), out
        """
    )
    env = {**os.environ, "GRAPHFLOW_CACHE_DIR": str(tmp_path)}
    for how in ("fresh", "cached"):
        r = subprocess.run(
            [sys.executable, "-c", script, how],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
            cwd=tmp_path,
        )
        assert r.returncode == 0, r.stderr


def test_reduction_group_computes_side_outputs() -> None:
    # Found by the random-graph test: the second log_softmax's max groups
    # with gelu(l1), which reads the prologue but not the max; that output
    # was never written.
    g = gf.Graph()
    with g.as_default():
        x = gf.placeholder(gf.float32, [None, 4])
        l1 = gf.nn.log_softmax(x / 2.0)
        fetches = [gf.nn.log_softmax(l1), gf.nn.gelu(l1, approximate=True), gf.reduce_max(l1, 1)]
    feed = {x: np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32)}
    with gf.Session(graph=g, mode="interpreted") as sess:
        want = sess.run(fetches, feed)
    with gf.Session(graph=g, mode="compiled") as sess:
        got = sess.run(fetches, feed)
        assert sess.cache_info().fallbacks == ()
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_large_outputs_reuse_memory_only_after_the_caller_lets_go() -> None:
    x = gf.placeholder(gf.float32, [None])
    y = x * 2.0
    n = 1 << 19  # 2 MiB of float32: a pooled output
    with gf.Session(mode="compiled") as sess:
        run = sess.make_callable(y, feed_list=[x])
        first = run(np.ones(n, np.float32))
        view = first[::2]  # a view keeps the array alive as well
        address = first.ctypes.data
        del first
        second = run(np.full(n, 2.0, np.float32))
        third = run(np.full(n, 3.0, np.float32))
        assert np.all(view == 2.0) and np.all(second == 4.0) and np.all(third == 6.0)
        assert second.ctypes.data != address and third.ctypes.data != address
        del view
        frozen = second
        frozen.flags.writeable = False
        del frozen, second
        fourth = run(np.full(n, 4.0, np.float32))  # reuses a released array
        assert np.all(fourth == 8.0) and np.all(third == 6.0) and fourth.flags.writeable
        assert fourth.ctypes.data == address  # the first array, free again


def test_the_direct_dispatch_path_still_checks_every_feed() -> None:
    x = gf.placeholder(gf.float32, [2, 3])
    y = x * 2.0
    with gf.Session(mode="compiled") as sess:
        run = sess.make_callable(y, feed_list=[x])
        good = np.ones((2, 3), np.float32)
        for _ in range(3):  # the first call builds the direct path, the others take it
            np.testing.assert_array_equal(run(good), 2 * good)
            np.testing.assert_array_equal(sess.run(y, {x: good}), 2 * good)
        wide = np.arange(12, dtype=np.float32).reshape(2, 6)[:, ::2]  # not contiguous
        np.testing.assert_array_equal(run(wide), 2 * wide)
        np.testing.assert_array_equal(sess.run(y, {x: wide}), 2 * wide)
        as_double = np.full((2, 3), 1.5)  # float64 converts, as in TF1
        np.testing.assert_array_equal(run(as_double), np.full((2, 3), 3.0, np.float32))
        np.testing.assert_array_equal(run([[1, 2, 3], [4, 5, 6]])[1], [8.0, 10.0, 12.0])
        for bad in (np.ones((3, 2), np.float32), np.ones((2, 3, 1), np.float32)):
            with pytest.raises(gf.errors.InvalidArgumentError, match=r"\(2, 3\)"):
                run(bad)
            with pytest.raises(gf.errors.InvalidArgumentError, match=r"\(2, 3\)"):
                sess.run(y, {x: bad})


def test_graphs_compile_concurrently_from_several_threads() -> None:
    # Each compile runs LLVM in threads of its own (own context, own target machine).
    rng = np.random.default_rng(3)
    results: dict[int, np.ndarray] = {}
    wanted: dict[int, np.ndarray] = {}

    def work(k: int) -> None:
        g = gf.Graph()
        with g.as_default():
            x = gf.placeholder(gf.float32, [None, 6])
            w = rng.standard_normal((6, 5)).astype(np.float32)
            y = gf.nn.sigmoid(gf.matmul(x, w) * float(k + 1) + 0.25)
        feed = np.ones((4, 6), np.float32)
        wanted[k] = 1 / (1 + np.exp(-((feed @ w) * (k + 1) + 0.25)))
        with gf.Session(graph=g, mode="compiled") as sess:
            results[k] = sess.run(y, {x: feed})

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [0, 1, 2, 3]
    for k in range(4):
        np.testing.assert_allclose(results[k], wanted[k], rtol=1e-5)
