"""Runs each peer library in a process of its own, and collects its results.

Peers cannot share a process: TensorFlow and torch.compile each bring their
own LLVM, and loading both aborts the process ("Option registered more than
once"); their thread pools would also compete. So the runner starts one
process per peer library (`python -m graphflow.benchmarks.peer_process
SPEC OUT`), which imports the library, runs every contender of that peer on
every workload with the same harness code as graphflow's contenders
(`run._contender`: same timing, same error against float64 NumPy), and
writes its `Result`s as JSON to OUT. Progress goes to the shared stderr.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from typing import Any

from graphflow.benchmarks import peers as peer_adapters

MODULE = "graphflow.benchmarks.peer_process"
TIMEOUT_S = 3600.0  # a peer that takes longer than this has hung


@dataclasses.dataclass
class PeerRuns:
    """What the peer processes gave.

    Attributes:
      results: per workload id, the peers' Result dicts, in PEERS order.
      libraries: "Library version" of every peer that imported.
      loaded: the contenders of the peers that imported (for the cold start).
      skipped: a line per peer that is not installed or failed to import.
    """

    results: dict[str, list[dict[str, Any]]]
    libraries: dict[str, str]
    loaded: list[peer_adapters.Contender]
    skipped: list[str]


def run_peers(
    workload_ids: Sequence[str],
    *,
    scale: float,
    quick: bool,
    threads: int,
    limits: dict[str, Any],
    log: Callable[[str], None],
) -> PeerRuns:
    """Runs every installed peer on `workload_ids`, each peer in a fresh process."""
    contenders, skipped = peer_adapters.installed()
    for line in skipped:
        log(line)
    runs = PeerRuns({w: [] for w in workload_ids}, {}, [], list(skipped))
    for peer in dict.fromkeys(c.peer for c in contenders):
        log(f"[peers] {peer.name}, in a process of its own")
        spec = {
            "peer": peer.adapter,
            "workloads": list(workload_ids),
            "scale": scale,
            "quick": quick,
            "threads": threads,
            "limits": limits,
        }
        output = _run_process(peer, spec)
        if "error" in output:
            line = f"skipped: {peer.name}: {output['error']}"
            log(line)
            runs.skipped.append(line)
            continue
        runs.libraries[peer.name] = output["library"]
        runs.loaded += [c for c in contenders if c.peer == peer]
        for workload_id, results in output["results"].items():
            runs.results[workload_id] += results
    return runs


def _run_process(peer: peer_adapters.Peer, spec: dict[str, Any]) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="graphflow-peer-") as folder:
        out = os.path.join(folder, "results.json")
        command = [sys.executable, "-m", MODULE, json.dumps(spec), out]
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2")}
        try:
            done = subprocess.run(
                command,
                stdout=subprocess.DEVNULL,  # libraries print banners; results go to `out`
                stderr=subprocess.PIPE,
                text=True,
                env=env,
                cwd=folder,
                timeout=TIMEOUT_S,
            )
        except subprocess.TimeoutExpired:
            return {"error": f"its process did not finish in {TIMEOUT_S:.0f} s"}
        sys.stderr.write(done.stderr)
        if done.returncode != 0 or not os.path.exists(out):
            tail = " ".join(done.stderr.strip().splitlines()[-3:])[-500:]
            return {"error": f"its process failed (exit status {done.returncode}): {tail}"}
        with open(out, encoding="utf-8") as f:
            return json.load(f)


def _worker(spec: dict[str, Any], out: str) -> None:
    """The peer process: import the peer, run its contenders, write the results to `out`."""
    import numpy as np

    from graphflow.benchmarks import run
    from graphflow.benchmarks.timing import FULL, QUICK
    from graphflow.benchmarks.workloads import get

    (peer,) = [p for p in peer_adapters.PEERS if p.adapter == spec["peer"]]
    adapter = peer_adapters.adapter(peer)
    log = run._Progress(sys.stderr)
    try:
        library = f"{peer.name} {adapter.setup(spec['threads'])}"
    except Exception as e:  # noqa: BLE001 - a peer that fails to import is reported, not raised
        output: dict[str, Any] = {"error": f"import failed: {type(e).__name__}: {e}"}
    else:
        limits = run.Limits(**spec["limits"])
        budget = QUICK if spec["quick"] else FULL
        results: dict[str, list[dict[str, Any]]] = {}
        for workload_id in spec["workloads"]:
            workload = get(workload_id)
            log(f"[{peer.name}] {workload.id} {workload.name}")
            case = workload.case(spec["scale"])
            reference = run._compared(run._as_list(case.numpy(np.float64)()), case)
            results[workload_id] = []
            for label, variant in peer.variants:
                contender = peer_adapters.Contender(label, peer, variant)
                loaded = run.LoadedPeer(contender, adapter, library)
                result = run._contender(
                    label,
                    "peer",
                    contender.key,
                    workload,
                    case,
                    reference,
                    budget,
                    limits,
                    log,
                    loaded,
                )
                results[workload_id].append(dataclasses.asdict(result))
        output = {"library": library, "results": results}
    with open(out, "w", encoding="utf-8") as f:
        json.dump(output, f)


if __name__ == "__main__":
    _worker(json.loads(sys.argv[1]), sys.argv[2])
