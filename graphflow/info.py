"""What `graphflow info` and `graphflow cache clear` report: versions, the CPU, the JIT disk cache.

The cache layout is the JIT's (graphflow.compiler.jit.DiskCache): one file
`<key[:2]>/<key>.o` per compiled module under `cache_dir()`, plus `.tmp-*`
files of writes in flight. Clearing removes exactly those files and the
folders they leave empty, never anything else a user keeps in that folder.
"""

from __future__ import annotations

import dataclasses
import pathlib
import platform
import re

_KEY_FOLDER = re.compile(r"^[0-9a-f]{2}$")
_ENTRY = re.compile(r"^(?:[0-9a-f]{64}\.o|\.tmp-.*)$")


@dataclasses.dataclass(frozen=True)
class CacheSummary:
    """The JIT disk cache: its folder, entries and bytes."""

    folder: pathlib.Path
    entries: int
    bytes: int

    def text(self) -> str:
        exists = "" if self.folder.exists() else " (does not exist yet)"
        return f"{self.folder}{exists}: {self.entries} entries, {_size(self.bytes)}"


def _size(n: int) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


def cache_files(folder: pathlib.Path) -> list[pathlib.Path]:
    """The cache's files under `folder`: `??/<sha256>.o` and `??/.tmp-*`."""
    if not folder.is_dir():
        return []
    files = []
    for sub in sorted(folder.iterdir()):
        if sub.is_dir() and not sub.is_symlink() and _KEY_FOLDER.match(sub.name):
            files += [f for f in sorted(sub.iterdir()) if f.is_file() and _ENTRY.match(f.name)]
    return files


def cache_summary(folder: pathlib.Path | None = None) -> CacheSummary:
    """Entries (object files, not in-flight writes) and total bytes of the JIT disk cache."""
    from graphflow.compiler.jit import cache_dir

    folder = folder or cache_dir()
    files = cache_files(folder)
    entries = [f for f in files if f.suffix == ".o" and not f.name.startswith(".tmp-")]
    return CacheSummary(folder, len(entries), sum(f.stat().st_size for f in files))


def clear_cache(folder: pathlib.Path | None = None) -> CacheSummary:
    """Removes the JIT disk cache's files and the key folders they leave empty.

    Returns:
      What was removed (entries and bytes), in the folder that was cleared.

    Raises:
      OSError: a file could not be removed (permissions).
    """
    summary = cache_summary(folder)
    for f in cache_files(summary.folder):
        f.unlink(missing_ok=True)
    for sub in summary.folder.iterdir() if summary.folder.is_dir() else ():
        if sub.is_dir() and _KEY_FOLDER.match(sub.name) and not any(sub.iterdir()):
            sub.rmdir()
    return summary


def describe() -> list[tuple[str, str]]:
    """(name, value) rows: versions, the CPU, the features code is generated for, the cache."""
    import llvmlite
    import llvmlite.binding as llvm
    import networkx
    import numpy

    import graphflow
    from graphflow.benchmarks.limits import describe_machine
    from graphflow.compiler.jit import get_jit

    jit = get_jit()
    machine = describe_machine()
    major, minor, patch = llvm.llvm_version_info
    features = sorted(f[1:] for f in jit.features.split(",") if f.startswith("+"))
    return [
        ("graphflow", graphflow.__version__ + _source(machine.get("graphflow_source"))),
        ("Python", f"{platform.python_version()} ({platform.python_implementation()})"),
        ("numpy", f"{numpy.__version__} (BLAS: {machine['numpy_blas']})"),
        ("llvmlite", llvmlite.__version__),
        ("LLVM", f"{major}.{minor}.{patch}"),
        ("networkx", networkx.__version__),
        ("platform", platform.platform()),
        ("CPU", f"{machine['cpu']}; {machine['cores']} cores, {machine['cores_usable']} usable"),
        ("target", f"{jit.triple}, CPU {jit.cpu}"),
        ("CPU features", f"{len(features)} enabled: {' '.join(features)}"),
        ("JIT cache", cache_summary().text()),
    ]


def _source(revision: str | None) -> str:
    return f" (source {revision})" if revision else ""
