"""The peers of WORKLOADS.md: which are installed, and their adapters, each imported lazily.

Each adapter module (`numexpr_peer`, `tensorflow_peer`, ...) imports its
library only when `setup` is called, and exposes:

    setup(threads: int) -> str        imports the library, sets its threads; returns its version
    prepare(variant, workload_id, case) -> Prepared   or raises Unsupported(reason)

`prepare` builds the workload the way a user of that library would write it
(their ops, their autodiff and SGD for W6), from the arrays of the `Case`, and
returns the call to time: NumPy arrays in, NumPy arrays out. The runner
checks the first call's values exactly as it checks graphflow's.
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
from collections.abc import Callable
from typing import Any


class Unsupported(Exception):
    """A (peer, workload) pair the peer cannot express; the message says why."""


@dataclasses.dataclass(frozen=True)
class Prepared:
    """A peer's workload, ready to time.

    Attributes:
      call: one call as a user makes it (NumPy in, NumPy out); returns the
        fetched values (an array or a list of arrays).
      variables: for a training step, reads the variables after the calls so
        far (as NumPy arrays, in the order of `Case.variables`); else None.
    """

    call: Callable[[], Any]
    variables: Callable[[], list[Any]] | None = None


@dataclasses.dataclass(frozen=True)
class Peer:
    """One library, the contenders it gives, and how to install it.

    Attributes:
      name: as the table shows it ("PyTorch").
      module: the import name whose presence decides if it runs ("torch").
      pip: the install command to print when it is missing.
      adapter: the adapter module's name in this package.
      variants: (label, variant) of each contender, e.g. ("torch.compile", "compile").
    """

    name: str
    module: str
    pip: str
    adapter: str
    variants: tuple[tuple[str, str], ...]


@dataclasses.dataclass(frozen=True)
class Contender:
    """One peer contender: the label in the table, its peer, and its variant."""

    label: str
    peer: Peer
    variant: str

    @property
    def key(self) -> str:
        """A name for the command line of a fresh process: "torch_peer:compile"."""
        return f"{self.peer.adapter}:{self.variant}"


PEERS: tuple[Peer, ...] = (
    Peer("numexpr", "numexpr", "pip install numexpr", "numexpr_peer", (("numexpr", "evaluate"),)),
    Peer(
        "TensorFlow",
        "tensorflow",
        "pip install tensorflow-cpu",
        "tensorflow_peer",
        (
            ("TF1 Session", "session"),
            ("tf.function", "function"),
            ("tf.function XLA", "xla"),
        ),
    ),
    Peer("JAX", "jax", "pip install 'jax[cpu]'", "jax_peer", (("JAX jit", "jit"),)),
    Peer(
        "PyTorch",
        "torch",
        "pip install torch --index-url https://download.pytorch.org/whl/cpu",
        "torch_peer",
        (("PyTorch eager", "eager"), ("torch.compile", "compile")),
    ),
    Peer(
        "ONNX Runtime",
        "onnxruntime",
        "pip install onnx onnxruntime",
        "onnxruntime_peer",
        (("ONNX Runtime", "session"),),
    ),
    Peer("PyTensor", "pytensor", "pip install pytensor", "pytensor_peer", (("PyTensor", "c"),)),
)

# ONNX Runtime's adapter builds its graphs with the `onnx` package.
_ALSO_NEEDED = {"onnxruntime": ("onnx",)}


def _missing(peer: Peer) -> list[str]:
    needed = (peer.module, *_ALSO_NEEDED.get(peer.module, ()))
    return [m for m in needed if importlib.util.find_spec(m) is None]


def installed() -> tuple[list[Contender], list[str]]:
    """The contenders of the installed peers, and a "skipped: ..." line for each missing one."""
    contenders, skipped = [], []
    for peer in PEERS:
        missing = _missing(peer)
        if missing:
            what = " and ".join(missing)
            skipped.append(f"skipped: {peer.name}: {what} not installed ({peer.pip})")
            continue
        contenders += [Contender(label, peer, variant) for label, variant in peer.variants]
    return contenders, skipped


def adapter(peer: Peer) -> Any:
    """The adapter module of `peer` (importing it does not import the library)."""
    return importlib.import_module(f"{__name__}.{peer.adapter}")


def by_key(key: str) -> Contender:
    """The contender named by `Contender.key`.

    Raises:
      KeyError: no such contender.
    """
    for peer in PEERS:
        for label, variant in peer.variants:
            if f"{peer.adapter}:{variant}" == key:
                return Contender(label, peer, variant)
    raise KeyError(f"no peer contender {key!r}")


def kind(workload_id: str) -> str:
    """The workload family: "W5b256" -> "W5"; "W8" (the cold start of W5 b256) -> "W5"."""
    return "W5" if workload_id == "W8" else workload_id[:2]
