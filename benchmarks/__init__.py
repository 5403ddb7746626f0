"""graphflow.benchmarks: the workloads of WORKLOADS.md, timed against NumPy and the machine.

    python -m graphflow.benchmarks.run                    # every workload, one thread
    python -m graphflow.benchmarks.run --quick            # under a minute
    python -m graphflow.benchmarks.run --workload W2 W7 --json out.json --markdown out.md
    graphflow bench --quick --peers --plot speedup.png  # the same, as the `graphflow` command

Modules:
  workloads: W1..W8, each a graphflow graph builder and its NumPy baseline.
  timing: warm-up, repetitions, median/min/max; the first call timed apart.
  limits: the machine's memory bandwidth, BLAS FLOP rate and dispatch floor.
  run: the runner (contenders, errors against float64, tables, JSON).
  peers: the peer libraries' adapters (numexpr, TensorFlow, JAX, PyTorch, ONNX
    Runtime, PyTensor), each importing its library lazily.
  peer_process: runs each peer in a process of its own and collects its results.
  plot: the speedup chart (matplotlib, optional).
"""
