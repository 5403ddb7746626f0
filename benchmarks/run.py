"""The benchmark runner: each workload, each contender, against NumPy, float64 and the machine.

    python -m graphflow.benchmarks.run                   # every workload, one thread
    python -m graphflow.benchmarks.run --quick           # fewer repetitions: under a minute
    python -m graphflow.benchmarks.run --workload W2 W5  # some workloads ("W5": both batches)
    python -m graphflow.benchmarks.run --json run.json --markdown run.md
    python -m graphflow.benchmarks.run --threads all --workload W2 W5b256 W7  # all cores
    python -m graphflow.benchmarks.run --quick --peers --plot speedup.png  # and the peers

`graphflow bench` is this command under the `graphflow` console script.

Contenders: graphflow compiled (`Session.run`, and `make_callable` for W1),
graphflow interpreted, NumPy; with `--peers`, every installed peer of
WORKLOADS.md through its adapter in `graphflow.benchmarks.peers` (a missing
peer is skipped with a line saying so and how to install it; a workload a
peer cannot express is skipped with the reason). A compiled Session that fell back to the
interpreter (an op without a lowering) is reported as such, never timed as
compiled. The error is `max|y - ref| / max|ref|` against NumPy in float64
(for a training step: of the loss and of each variable's update). The table
goes to stdout, progress to stderr.

Threads: BLAS libraries read OMP_NUM_THREADS, OPENBLAS_NUM_THREADS and
MKL_NUM_THREADS once, when NumPy loads them, and importing graphflow imports
NumPy. So `main` re-executes `python -m graphflow.benchmarks.run` with the
same arguments and these variables set whenever they are not already set to
the thread count asked for (`--threads`, default 1). `run_benchmarks`, the
in-process API, measures with what the process has and records it.

Compilation: the run uses a fresh, empty GRAPHFLOW_CACHE_DIR, so a compiled
contender's first call includes compiling its graph. W8 runs fresh processes
with a cache directory of their own.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import importlib.util
import json
import math
import os
import shlex
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TextIO

import numpy as np

import graphflow as gf
from graphflow.argparsing import OneLineErrorParser
from graphflow.benchmarks import peers as peer_adapters
from graphflow.benchmarks.limits import (
    THREAD_VARIABLES,
    Limits,
    describe_machine,
    measure_limits,
)
from graphflow.benchmarks.timing import FULL, QUICK, Budget, first_call, measure
from graphflow.benchmarks.workloads import Case, Workload, select

MODULE = "graphflow.benchmarks.run"
_REEXEC_MARK = "GRAPHFLOW_BENCH_REEXECUTED"  # guards against re-executing in a loop
MAKE_CALLABLE = {"W1"}  # workloads also timed through Session.make_callable


@dataclasses.dataclass
class Result:
    """One contender on one workload; times in seconds per call, None when not measured.

    Attributes:
      contender: the label in the table.
      mode: "compiled", "interpreted", "numpy" or "peer".
      api: "run" or "make_callable" for graphflow; None for NumPy; for a peer,
        its contender key ("torch_peer:compile").
      library: for a peer, the library and its version ("PyTorch 2.5.1").
      status: "ok"; "fallback" (compiled mode ran the interpreter: not timed);
        "failed" (the contender raised; `reason` says what); "skipped" (a
        peer that cannot express the workload; `reason` says why).
      reason: why a contender fell back or failed.
      first_s: the first call, compilation included.
      median_s, min_s, max_s: over the repetitions, after the warm-up.
      repetitions, number: repetitions, and calls per repetition.
      rate: in the workload's unit (µs and s: the median itself).
      of_limit: the rate against the machine's limit (a fraction; for µs, how
        many times the dispatch floor).
      ratio_to_numpy: median / NumPy's median (below 1: faster than NumPy).
      error: max|y - ref| / max|ref| against NumPy in float64.
      dtype: the dtype of the first result.
      import_s, beyond_import_s, process_s: W8 only: the import of the
        library, the rest until the first result, and the whole process.
    """

    contender: str
    mode: str
    api: str | None
    library: str | None = None
    status: str = "ok"
    reason: str | None = None
    first_s: float | None = None
    median_s: float | None = None
    min_s: float | None = None
    max_s: float | None = None
    repetitions: int | None = None
    number: int | None = None
    rate: float | None = None
    of_limit: float | None = None
    ratio_to_numpy: float | None = None
    error: float | None = None
    dtype: str | None = None
    import_s: float | None = None
    beyond_import_s: float | None = None
    process_s: float | None = None


class _Progress:
    def __init__(self, stream: TextIO | None) -> None:
        self._stream = stream

    def __call__(self, message: str) -> None:
        if self._stream is not None:
            print(message, file=self._stream, flush=True)


# -- numbers ---------------------------------------------------------------------------------
def relative_error(values: Sequence[np.ndarray], reference: Sequence[np.ndarray]) -> float:
    """max over the outputs of max|y - ref| / max|ref| (inf: a missing output or wrong shape)."""
    if len(values) != len(reference):
        return math.inf
    worst = 0.0
    for y, ref in zip(values, reference):
        y = np.asarray(y, np.float64)
        if y.shape != ref.shape:
            return math.inf
        if y.size == 0:
            continue
        diff = np.abs(y - ref)
        if np.isnan(diff).any():
            if not np.array_equal(np.isnan(y), np.isnan(ref)):
                return math.nan
            diff = np.where(np.isnan(diff), 0.0, diff)
        scale = float(np.nanmax(np.abs(ref))) if ref.size else 0.0
        error = float(diff.max()) / scale if scale > 0 else float(diff.max())
        worst = max(worst, error)
    return worst


def _as_list(value: Any) -> list[Any]:
    items = list(value) if isinstance(value, list | tuple) else [value]
    return [v for v in items if v is not None]  # an Operation's fetch gives None


def _compared(values: Sequence[Any], case: Case) -> list[np.ndarray]:
    """The outputs, then each variable's update (after - before), in float64."""
    count = len(values) - len(case.variables)
    outputs = [np.asarray(v, np.float64) for v in values[:count]]
    updates = [
        np.asarray(after, np.float64) - before.astype(np.float64)
        for after, before in zip(values[count:], case.variables)
    ]
    return outputs + updates


def _rate(unit: str, work: float, seconds: float) -> float:
    if unit == "µs":
        return seconds * 1e6
    if unit == "s":
        return seconds
    return work / seconds / 1e9


def _of_limit(unit: str, rate: float, limits: Limits) -> float | None:
    return {
        "GB/s": rate / limits.copy_gbs,
        "GFLOP/s": rate / limits.gemm_gflops,
        "µs": rate / limits.dispatch_us,
    }.get(unit)


# -- one contender in this process -----------------------------------------------------------
def _graphflow_contender(
    case: Case, mode: str, api: str
) -> tuple[Callable[[], Any], float, list[Any], str | None]:
    """(the call to time, its first call's seconds, the values to check, why it fell back)."""
    graph, fetches, feeds = case.build()
    session = gf.Session(graph=graph, mode=mode)
    with graph.as_default():
        variables = gf.global_variables()
        if variables:
            session.run(gf.global_variables_initializer())
    before = session.cache_info()
    if api == "make_callable":
        start = time.perf_counter()
        call = session.make_callable(fetches, list(feeds))
        fn = functools.partial(call, *feeds.values())
        value = fn()
        first = time.perf_counter() - start
    else:
        fn = functools.partial(session.run, fetches, feeds)
        first, value = first_call(fn)
    after = session.cache_info()
    reason = None
    if mode == "compiled":
        new = after.fallbacks[len(before.fallbacks) :]
        if new or after.compiled == before.compiled:
            reason = "; ".join(new) or "no native executable was built"
    values = _as_list(value)
    if variables:
        values += session.run(variables)
    return fn, first, values, reason


@dataclasses.dataclass(frozen=True)
class LoadedPeer:
    """A peer contender whose library is imported: its adapter and "Library version"."""

    contender: peer_adapters.Contender
    adapter: Any
    library: str


def _peer_contender(
    peer: LoadedPeer, workload: Workload, case: Case
) -> tuple[Callable[[], Any], float, list[Any]]:
    """(the call to time, prepare + first call's seconds, the values to check).

    Raises:
      peers.Unsupported: the peer cannot express the workload.
    """
    start = time.perf_counter()
    prepared = peer.adapter.prepare(peer.contender.variant, workload.id, case)
    value = prepared.call()
    first = time.perf_counter() - start  # building the peer's graph and compiling count
    values = _as_list(value)
    if prepared.variables is not None:
        values += list(prepared.variables())
    return prepared.call, first, values


def _contender(
    label: str,
    mode: str,
    api: str | None,
    workload: Workload,
    case: Case,
    reference: list[np.ndarray],
    budget: Budget,
    limits: Limits,
    log: _Progress,
    peer: LoadedPeer | None = None,
) -> Result:
    result = Result(label, mode, api, library=peer.library if peer else None)
    try:
        if mode == "numpy":
            fn = case.numpy(np.float32)
            first, value = first_call(fn)
            values, reason = _as_list(value), None
        elif peer is not None:
            try:
                fn, first, values = _peer_contender(peer, workload, case)
            except peer_adapters.Unsupported as e:
                result.status, result.reason = "skipped", str(e)
                log(f"  {label}: skipped: {e}")
                return result
            reason = None
        else:
            fn, first, values, reason = _graphflow_contender(case, mode, api or "run")
        if reason is not None:
            result.status, result.reason = "fallback", reason
            log(f"  {label}: fell back to the interpreter ({reason}); not timed")
            return result
        result.first_s = first
        result.dtype = np.asarray(values[0]).dtype.name
        result.error = relative_error(_compared(values, case), reference)
        timing = measure(fn, budget)
    except Exception as e:  # noqa: BLE001 - a contender that raises is a result to report
        result.status, result.reason = "failed", f"{type(e).__name__}: {e}"
        log(f"  {label}: failed: {result.reason}")
        return result
    result.median_s, result.min_s, result.max_s = timing.median, timing.min, timing.max
    result.repetitions, result.number = timing.repetitions, timing.number
    result.rate = _rate(workload.unit, case.work, timing.median)
    result.of_limit = _of_limit(workload.unit, result.rate, limits)
    log(
        f"  {label}: first {_seconds(first)}, median {_seconds(timing.median)} "
        f"({timing.repetitions} × {timing.number} calls), error {result.error:.1e}"
    )
    return result


def _run_workload(
    workload: Workload,
    scale: float,
    budget: Budget,
    limits: Limits,
    log: _Progress,
    peers: Sequence[LoadedPeer] = (),
) -> tuple[Case, list[Result]]:
    case = workload.case(scale)
    reference = _compared(_as_list(case.numpy(np.float64)()), case)
    contenders: list[tuple[str, str, str | None]] = [("graphflow compiled", "compiled", "run")]
    if workload.id in MAKE_CALLABLE:
        contenders.append(("graphflow compiled, make_callable", "compiled", "make_callable"))
    contenders += [("graphflow interpreted", "interpreted", "run"), ("NumPy", "numpy", None)]
    results = [
        _contender(label, mode, api, workload, case, reference, budget, limits, log)
        for label, mode, api in contenders
    ]
    results += [
        _contender(
            p.contender.label,
            "peer",
            p.contender.key,
            workload,
            case,
            reference,
            budget,
            limits,
            log,
            p,
        )
        for p in peers
    ]
    return case, results


# -- cold start, in fresh processes ----------------------------------------------------------
# The data is drawn between the two clocks: a user's weights come from somewhere,
# and drawing them is not graphflow's work.
_COLD_START_SCRIPT = """
import json, sys, time
start = time.perf_counter()
mode, workload, scale, out = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4]
if mode == "numpy":
    import numpy
elif mode.startswith("peer:"):
    import os
    from graphflow.benchmarks import peers
    contender = peers.by_key(mode[5:])
    adapter = peers.adapter(contender.peer)
    adapter.setup(int(os.environ.get("OMP_NUM_THREADS") or 1))
else:
    import graphflow as gf
imported = time.perf_counter()
import numpy as np
from graphflow.benchmarks.workloads import get
case = get(workload).case(scale)
begin = time.perf_counter()
info = {}
if mode == "numpy":
    value = case.numpy(np.float32)()
elif mode.startswith("peer:"):
    try:
        value = adapter.prepare(contender.variant, workload, case).call()
    except peers.Unsupported as e:
        print(json.dumps({"unsupported": str(e)}))
        sys.exit(0)
else:
    graph, fetches, feeds = case.build()
    session = gf.Session(graph=graph, mode=mode)
    value = session.run(fetches, feeds)
    cache = session.cache_info()
    info = {"compiled": cache.compiled, "fallbacks": list(cache.fallbacks)}
end = time.perf_counter()
values = value if isinstance(value, (list, tuple)) else [value]
np.savez(out, *[v for v in values if v is not None])
print(json.dumps({"import_s": imported - start, "beyond_import_s": end - begin, **info}))
"""


def _fresh_process(
    mode: str, workload: Workload, scale: float, cache_dir: str, scratch: str
) -> dict[str, Any]:
    out = os.path.join(scratch, "result.npz")
    env = {**os.environ, "GRAPHFLOW_CACHE_DIR": cache_dir}
    command = [sys.executable, "-c", _COLD_START_SCRIPT, mode, workload.id, repr(scale), out]
    start = time.perf_counter()
    # cwd: a scratch folder, so the graphflow imported is the installed one.
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=scratch)
    process = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"the process failed: {done.stderr.strip()[-2000:]}")
    report = json.loads(done.stdout.strip().splitlines()[-1])
    if "unsupported" in report:
        raise peer_adapters.Unsupported(report["unsupported"])
    with np.load(out) as arrays:
        report["values"] = [arrays[k] for k in sorted(arrays.files, key=lambda k: int(k[4:]))]
    report["process_s"] = process
    return report


def _cold_start(
    workload: Workload,
    scale: float,
    quick: bool,
    log: _Progress,
    peers: Sequence[LoadedPeer] = (),
) -> tuple[Case, list[Result]]:
    case = workload.case(scale)
    reference = _compared(_as_list(case.numpy(np.float64)()), case)
    repetitions = 1 if quick else 3
    contenders: list[tuple[str, str, str | None]] = [
        ("graphflow compiled, empty cache", "compiled", "empty"),
        ("graphflow compiled, cache filled", "compiled", "filled"),
        ("graphflow interpreted", "interpreted", None),
        ("NumPy", "numpy", None),
    ]
    # A peer's own caches (torch.compile's, PyTensor's) are left as the peer keeps them.
    contenders += [(p.contender.label, f"peer:{p.contender.key}", None) for p in peers]
    libraries = {f"peer:{p.contender.key}": p.library for p in peers}
    results = []
    with tempfile.TemporaryDirectory(prefix="graphflow-cold-") as root:
        filled = os.path.join(root, "cache-filled")
        for label, mode, cache in contenders:
            if mode.startswith("peer:"):
                result = Result(label, "peer", mode[5:], library=libraries[mode])
            else:
                result = Result(label, mode, "run" if mode != "numpy" else None)
            runs = []
            try:
                for k in range(repetitions):
                    scratch = tempfile.mkdtemp(dir=root)
                    # The first cold start fills the cache the "cache filled" runs use.
                    if cache == "filled" or (cache == "empty" and k == 0):
                        cache_dir = filled
                    else:
                        cache_dir = os.path.join(scratch, "cache")
                    runs.append(_fresh_process(mode, workload, scale, cache_dir, scratch))
            except peer_adapters.Unsupported as e:
                result.status, result.reason = "skipped", str(e)
                log(f"  {label}: skipped: {e}")
                results.append(result)
                continue
            except (RuntimeError, OSError, ValueError) as e:
                result.status, result.reason = "failed", f"{type(e).__name__}: {e}"
                log(f"  {label}: failed: {result.reason}")
                results.append(result)
                continue
            fallbacks = [f for run in runs for f in run.get("fallbacks", [])]
            if mode == "compiled" and (fallbacks or any(r["compiled"] == 0 for r in runs)):
                result.status = "fallback"
                result.reason = "; ".join(sorted(set(fallbacks))) or "no native executable"
                log(f"  {label}: fell back to the interpreter ({result.reason}); not timed")
                results.append(result)
                continue
            totals = [r["import_s"] + r["beyond_import_s"] for r in runs]
            result.median_s, result.min_s, result.max_s = (
                float(np.median(totals)),
                min(totals),
                max(totals),
            )
            result.repetitions, result.number = len(runs), 1
            result.rate = result.median_s
            result.import_s = float(np.median([r["import_s"] for r in runs]))
            result.beyond_import_s = float(np.median([r["beyond_import_s"] for r in runs]))
            result.process_s = float(np.median([r["process_s"] for r in runs]))
            result.dtype = runs[0]["values"][0].dtype.name
            result.error = relative_error(_compared(runs[0]["values"], case), reference)
            log(
                f"  {label}: {_seconds(result.median_s)} (import {_seconds(result.import_s)}, "
                f"beyond import {_seconds(result.beyond_import_s)}), error {result.error:.1e}"
            )
            results.append(result)
    return case, results


# -- the run ---------------------------------------------------------------------------------
@contextmanager
def _fresh_cache_dir() -> Iterator[str]:
    """GRAPHFLOW_CACHE_DIR set to an empty folder for the `with`, then restored."""
    previous = os.environ.get("GRAPHFLOW_CACHE_DIR")
    with tempfile.TemporaryDirectory(prefix="graphflow-bench-cache-") as folder:
        os.environ["GRAPHFLOW_CACHE_DIR"] = folder
        try:
            yield folder
        finally:
            if previous is None:
                os.environ.pop("GRAPHFLOW_CACHE_DIR", None)
            else:
                os.environ["GRAPHFLOW_CACHE_DIR"] = previous


def peers_not_run() -> list[str]:
    """One line per peer of WORKLOADS.md, for a run without `--peers`."""
    lines = []
    for peer in peer_adapters.PEERS:
        installed = importlib.util.find_spec(peer.module) is not None
        why = "installed; pass --peers to run it" if installed else f"not installed ({peer.pip})"
        lines.append(f"skipped: {peer.name}: {why}")
    return lines


def _default_threads() -> int:
    try:
        return max(1, int(os.environ.get("OMP_NUM_THREADS") or 1))
    except ValueError:
        return 1


def run_benchmarks(
    workload_ids: Sequence[str] | None = None,
    *,
    quick: bool = False,
    scale: float = 1.0,
    progress: TextIO | None = sys.stderr,
    command: str | None = None,
    peers: bool = False,
    threads: int | None = None,
) -> dict[str, Any]:
    """Runs the workloads in this process and returns every figure (what `--json` writes).

    Args:
      workload_ids: ids or prefixes ("W5" selects both batches); None: all.
      quick: the short budget (fewer, shorter repetitions; one cold start).
      scale: the sizes times `scale` (1.0: the sizes of WORKLOADS.md).
      progress: where progress lines go (None: nowhere).
      command: the command line to record.
      peers: also run every installed peer library (see graphflow.benchmarks.peers).
      threads: the thread count given to the peers' own thread pools
        (default: $OMP_NUM_THREADS, else 1).

    Returns:
      A dict with "command", "settings", "machine" (with "libraries": the
      version of each peer run), "limits", "other_contenders" (a line per peer
      skipped, and why) and "workloads": per workload its definition and a list
      of `Result` dicts.

    Raises:
      KeyError: an unknown workload id.
    """
    if scale <= 0:
        raise ValueError(f"scale must be positive; got {scale}")
    workloads = select(workload_ids)
    budget = QUICK if quick else FULL
    log = _Progress(progress)
    machine = describe_machine()
    log("measuring the machine's limits")
    limits = measure_limits(budget, scale)
    log(
        f"  copy {limits.copy_gbs:.1f} GB/s, BLAS {limits.gemm_gflops:.1f} GFLOP/s, "
        f"dispatch floor {limits.dispatch_us:.2f} µs"
    )
    threads = threads or _default_threads()
    machine["peer_threads"] = threads
    machine["libraries"] = []
    report: dict[str, Any] = {
        "command": command,
        "settings": {
            "quick": quick,
            "scale": scale,
            "peers": peers,
            "budget": dataclasses.asdict(budget),
            "cold_start_repetitions": 1 if quick else 3,
        },
        "machine": machine,
        "limits": dataclasses.asdict(limits),
        "other_contenders": [] if peers else peers_not_run(),
        "workloads": [],
    }
    timed = [w for w in workloads if not w.cold_start]
    entries: dict[str, tuple[Case, list[Result]]] = {}
    with _fresh_cache_dir():
        for index, workload in enumerate(timed, 1):
            log(f"[{index}/{len(timed)}] {workload.id} {workload.name}")
            entries[workload.id] = _run_workload(workload, scale, budget, limits, log)
        cold_peers: list[LoadedPeer] = []
        if peers:
            from graphflow.benchmarks.peer_process import run_peers

            runs = run_peers(
                [w.id for w in timed],
                scale=scale,
                quick=quick,
                threads=threads,
                limits=dataclasses.asdict(limits),
                log=log,
            )
            for workload_id, results in runs.results.items():
                entries[workload_id][1].extend(Result(**r) for r in results)
            machine["libraries"] = sorted(runs.libraries.values())
            report["other_contenders"] = runs.skipped
            # In a fresh process per cold start: no adapter is imported here.
            cold_peers = [LoadedPeer(c, None, runs.libraries[c.peer.name]) for c in runs.loaded]
        for workload in workloads:
            if workload.cold_start:
                log(f"[cold start] {workload.id} {workload.name}")
                entries[workload.id] = _cold_start(workload, scale, quick, log, cold_peers)
    for workload in workloads:
        case, results = entries[workload.id]
        numpy_median = next((r.median_s for r in results if r.mode == "numpy" and r.median_s), None)
        for r in results:
            if numpy_median and r.median_s is not None:
                r.ratio_to_numpy = r.median_s / numpy_median
        report["workloads"].append(
            {
                "id": workload.id,
                "name": workload.name,
                "description": workload.description,
                "size": case.size,
                "unit": workload.unit,
                "work": case.work,
                "cold_start": workload.cold_start,
                "results": [dataclasses.asdict(r) for r in results],
            }
        )
    return report


# -- tables ----------------------------------------------------------------------------------
def _seconds(s: float | None) -> str:
    if s is None:
        return ""
    if s < 1e-3:
        return f"{s * 1e6:.3g} µs"
    if s < 1.0:
        return f"{s * 1e3:.3g} ms"
    return f"{s:.3g} s"


def _number(x: float | None, digits: int = 3) -> str:
    return "" if x is None else f"{x:.{digits}g}"


def _error(e: float | None) -> str:
    if e is None:
        return ""
    return "0" if e == 0 else f"{e:.1e}"


def _rate_text(unit: str, r: dict[str, Any]) -> tuple[str, str]:
    if r["rate"] is None:
        return "", ""
    if unit == "µs":
        limit = "" if r["of_limit"] is None else f"{r['of_limit']:.1f}× floor"
        return f"{r['rate']:.3g} µs", limit
    limit = "" if r["of_limit"] is None else f"{100 * r['of_limit']:.0f}%"
    return f"{r['rate']:.3g} {unit}", limit


def _status_text(r: dict[str, Any]) -> str:
    if r["status"] == "fallback":
        return f"compiled: fell back to interpreter ({r['reason']})"
    if r["status"] == "skipped":
        return f"skipped: {r['reason']}"
    return f"failed ({r['reason']})"


def format_markdown(report: dict[str, Any]) -> str:
    """The report as markdown: machine, limits, the table, the cold start table, notes."""
    m, lim = report["machine"], report["limits"]
    threads = ", ".join(f"{k}={v}" for k, v in m["threads"].items())
    lines = [
        "# graphflow benchmarks",
        "",
        f"- Machine: {m['cpu']} (LLVM host CPU `{m['llvm_host_cpu']}`), {m['cores']} cores "
        f"({m['cores_usable']} usable); {threads}",
        f"- Software: Python {m['python']}, NumPy {m['numpy']} ({m['numpy_blas']}), "
        f"llvmlite {m['llvmlite']}, graphflow {m['graphflow']}"
        + (f" ({m['graphflow_source']})" if m["graphflow_source"] else "")
        + f"; {m['platform']}",
    ]
    if m.get("libraries"):
        lines.append(f"- Peers: {', '.join(m['libraries'])}; {m['peer_threads']} thread(s) each")
    if report["command"]:
        lines.append(f"- Command: `{report['command']}`")
    settings = report["settings"]
    lines += [
        f"- Settings: {'quick' if settings['quick'] else 'full'} budget, "
        f"scale {settings['scale']:g}",
        f"- Limits: copy bandwidth {lim['copy_gbs']:.1f} GB/s (np.copyto of "
        f"{lim['copy_bytes'] / 2**20:.0f} MiB, bytes read + written); BLAS "
        f"{lim['gemm_gflops']:.1f} GFLOP/s (NumPy float32 GEMM {lim['gemm_n']}³); "
        f"dispatch floor {lim['dispatch_us']:.2f} µs (NumPy x + 1 on one element)",
        "",
        "| id | workload | contender | first call | median | min | max | rate | of limit "
        "| ÷ NumPy | rel. error |",
        "|---|---|---|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for w in report["workloads"]:
        if w["cold_start"]:
            continue
        for k, r in enumerate(w["results"]):
            head = f"| {w['id']} | {w['name']}, {w['size']} " if k == 0 else "| | "
            if r["status"] != "ok":
                lines.append(head + f"| {r['contender']} | {_status_text(r)} |||||||")
                continue
            rate, limit = _rate_text(w["unit"], r)
            lines.append(
                head + f"| {r['contender']} | {_seconds(r['first_s'])} | {_seconds(r['median_s'])} "
                f"| {_seconds(r['min_s'])} | {_seconds(r['max_s'])} | {rate} | {limit} "
                f"| {_number(r['ratio_to_numpy'], 2)} | {_error(r['error'])} |"
            )
    for w in report["workloads"]:
        if not w["cold_start"]:
            continue
        lines += [
            "",
            f"{w['id']} {w['description']} ({w['size']}); seconds, median of "
            f"{settings['cold_start_repetitions']} fresh process(es):",
            "",
            "| contender | import + first result | min | max | import | beyond import "
            "| whole process | ÷ NumPy | rel. error |",
            "|---|--:|--:|--:|--:|--:|--:|--:|--:|",
        ]
        for r in w["results"]:
            if r["status"] != "ok":
                lines.append(f"| {r['contender']} | {_status_text(r)} ||||||||")
                continue
            lines.append(
                f"| {r['contender']} | {_seconds(r['median_s'])} | {_seconds(r['min_s'])} "
                f"| {_seconds(r['max_s'])} | {_seconds(r['import_s'])} "
                f"| {_seconds(r['beyond_import_s'])} | {_seconds(r['process_s'])} "
                f"| {_number(r['ratio_to_numpy'], 2)} | {_error(r['error'])} |"
            )
    lines += ["", "Workloads:", ""]
    lines += [f"- {w['id']}: {w['description']}; {w['size']}" for w in report["workloads"]]
    lines += [
        "",
        "Notes: times are per call, NumPy arrays in and out, after a warm-up; the first call "
        "is timed apart and, for graphflow compiled, includes compiling (the run starts with "
        "an empty disk cache). Rate: µs per call (W1), GB/s of 8 bytes per element (W2-W4), "
        "GFLOP/s of the matmuls (W5-W7); of limit: against the copy bandwidth, the BLAS rate "
        "or the dispatch floor above. ÷ NumPy: median time over NumPy's (below 1 is "
        "faster). rel. error: max|y - ref| / max|ref| against NumPy in float64 (W6: the loss "
        "and each variable's update).",
        "",
    ]
    if report["other_contenders"]:
        lines += ["", "Not run:", ""] + [f"- {line}" for line in report["other_contenders"]]
    return "\n".join(lines) + "\n"


def _json_safe(value: Any) -> Any:
    """Non-finite floats as strings (JSON has no NaN or Infinity)."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return value


# -- the command -----------------------------------------------------------------------------
def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of the command; `graphflow bench` adds the same ones to its parser."""
    parser.add_argument("--quick", action="store_true", help="fewer repetitions (< 1 minute)")
    parser.add_argument(
        "--workload", nargs="+", metavar="ID", help="ids or prefixes, e.g. W2 W5 (default: all)"
    )
    parser.add_argument(
        "--scale", type=float, default=1.0, help="sizes times this factor (default 1)"
    )
    parser.add_argument(
        "--threads",
        default="1",
        help='threads for BLAS/OpenMP and every peer: a number or "all" (default 1)',
    )
    parser.add_argument(
        "--peers", action="store_true", help="also run every installed peer library"
    )
    parser.add_argument("--json", metavar="FILE", help="write every figure as JSON")
    parser.add_argument("--markdown", metavar="FILE", help="write the table as markdown")
    parser.add_argument(
        "--plot",
        metavar="FILE.png",
        help="draw each contender's speedup over NumPy per workload (needs matplotlib)",
    )


def _parser(prog: str) -> argparse.ArgumentParser:
    parser = OneLineErrorParser(
        prog=prog,
        description="Times graphflow's workloads (WORKLOADS.md) against NumPy, the peers and "
        "the machine.",
    )
    add_arguments(parser)
    return parser


def _thread_count(text: str) -> str:
    if text == "all":
        return str(os.cpu_count() or 1)
    count = int(text)
    if count < 1:
        raise ValueError(text)
    return str(count)


def check_arguments(args: argparse.Namespace) -> str:
    """Checks what can be checked before running; returns the thread count.

    Raises:
      UsageError: a bad option, an unknown workload, an output folder that is
        missing, or --plot without matplotlib.
    """
    try:
        threads = _thread_count(args.threads)
    except ValueError:
        raise UsageError(
            f'--threads: expected a positive number or "all"; got {args.threads!r}'
        ) from None
    try:
        select(args.workload)
    except KeyError as e:
        raise UsageError(str(e.args[0])) from None
    if not args.scale > 0:
        raise UsageError(f"--scale: expected a positive number; got {args.scale}")
    for option in ("json", "markdown", "plot"):
        path = getattr(args, option)
        if path is not None and not os.path.isdir(os.path.dirname(os.path.abspath(path))):
            raise UsageError(f"--{option}: the folder of {path!r} does not exist")
    if args.plot is not None:
        from graphflow.benchmarks.plot import PlotUnavailable, require_matplotlib

        try:
            require_matplotlib()
        except PlotUnavailable as e:
            raise UsageError(str(e)) from None
    return threads


class UsageError(Exception):
    """A command line that cannot run as given; the message is one line."""


def _reexecute(command: Sequence[str], threads: str) -> None:
    """Runs `command` (this command again) in place of this process, the thread variables set."""
    if os.environ.get(_REEXEC_MARK):
        raise RuntimeError(
            f"{', '.join(THREAD_VARIABLES)} are still not {threads} after re-executing; "
            "set them before starting Python"
        )
    if not sys.executable:
        raise RuntimeError("cannot re-execute: no sys.executable; set the thread variables")
    env = {**os.environ, **dict.fromkeys(THREAD_VARIABLES, threads), _REEXEC_MARK: "1"}
    command = [sys.executable, *command]
    sys.stdout.flush()
    sys.stderr.flush()
    if os.name == "posix":
        os.execve(sys.executable, command, env)
    sys.exit(subprocess.run(command, env=env).returncode)


def main(
    argv: Sequence[str] | None = None,
    prog: str = f"python -m {MODULE}",
    reexecute_as: Sequence[str] = ("-m", MODULE),
) -> int:
    """The command line; see the module docstring. Returns the exit status.

    Args:
      argv: the arguments (default: sys.argv[1:]).
      prog: the command's name in messages and in the report.
      reexecute_as: Python's arguments that run this command again (before
        `argv`), used to set the thread variables before NumPy loads.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = _parser(prog)
    args = parser.parse_args(argv)
    try:
        threads = check_arguments(args)
    except UsageError as e:
        parser.error(str(e))
    if any(os.environ.get(name) != threads for name in THREAD_VARIABLES):
        _reexecute([*reexecute_as, *argv], threads)  # NumPy's BLAS read them when it loaded
    report = run_benchmarks(
        args.workload,
        quick=args.quick,
        scale=args.scale,
        command=shlex.join([*prog.split(), *argv]),
        peers=args.peers,
        threads=int(threads),
    )
    table = format_markdown(report)
    print(table, end="")
    if args.markdown:
        with open(args.markdown, "w", encoding="utf-8") as f:
            f.write(table)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(_json_safe(report), f, indent=2, ensure_ascii=False)
            f.write("\n")
    if args.plot:
        from graphflow.benchmarks.plot import plot_speedups

        plot_speedups(report, args.plot)
        print(f"wrote {args.plot}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
