"""The JIT: LLVM IR text in, addresses of native functions out, with a disk cache.

One process-wide engine (MCJIT takes ownership of its target machine, and a
second engine from the same machine crashes). Every module is verified
before it is optimized, because LLVM crashes the process on invalid IR. The
pipeline is O3 for the host CPU and its features, loop vectorization on and
SLP vectorization off (it has known miscompiles).

Machine code is cached on disk, keyed by a hash of the IR, the target (CPU
name and features) and graphflow's and llvmlite's versions; a cache entry
carries its length and a SHA-256 of its payload, so a corrupt or truncated
entry is detected, deleted and rebuilt, never loaded. Library functions
(generated GEMMs shared by many graphs) are cached by their symbol, a digest
of everything their code depends on, so a cache hit skips emitting their IR.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
import hashlib
import os
import pathlib
import tempfile
import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import llvmlite
import llvmlite.binding as llvm

from graphflow import errors

if TYPE_CHECKING:
    from graphflow.compiler.lowering.library import LibraryFunction

_MAGIC = b"GFOBJ1\n"
_DIGEST = 32


def cache_dir() -> pathlib.Path:
    """`$GRAPHFLOW_CACHE_DIR`, else `~/.cache/graphflow`."""
    configured = os.environ.get("GRAPHFLOW_CACHE_DIR")
    if configured:
        return pathlib.Path(configured)
    return pathlib.Path.home() / ".cache" / "graphflow"


@dataclasses.dataclass
class CacheStats:
    hits: int = 0
    misses: int = 0
    rebuilt_corrupt: int = 0


class DiskCache:
    """Object files by key, each file `MAGIC | sha256(payload) | payload`."""

    def __init__(self, folder: pathlib.Path | None = None) -> None:
        self.folder = folder

    def _path(self, key: str) -> pathlib.Path:
        folder = self.folder or cache_dir()
        return folder / key[:2] / f"{key}.o"

    def load(self, key: str) -> bytes | None:
        """The payload, or None if missing; a corrupt entry is removed and reported as None."""
        path = self._path(key)
        try:
            data = path.read_bytes()
        except OSError:
            return None
        header = len(_MAGIC) + _DIGEST
        payload = data[header:]
        if (
            len(data) < header
            or not data.startswith(_MAGIC)
            or hashlib.sha256(payload).digest() != data[len(_MAGIC) : header]
        ):
            with contextlib.suppress(OSError):
                path.unlink()
            raise _CorruptEntry(str(path))
        return payload

    def store(self, key: str, payload: bytes) -> None:
        """Writes atomically (temp file + rename); a cache that cannot be written is skipped."""
        path = self._path(key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
            with os.fdopen(fd, "wb") as f:
                f.write(_MAGIC + hashlib.sha256(payload).digest() + payload)
            os.replace(tmp, path)
        except OSError:
            return


class _CorruptEntry(Exception):
    pass


class JIT:
    """Compiles LLVM IR for the host CPU and returns function addresses."""

    def __init__(self, cache: DiskCache | None = None) -> None:
        llvm.initialize_native_target()
        llvm.initialize_native_asmprinter()
        self.triple = llvm.get_process_triple()
        self.cpu = llvm.get_host_cpu_name()
        self.features = llvm.get_host_cpu_features().flatten()
        self._target = llvm.Target.from_triple(self.triple)
        self._machine = self._new_machine()  # emits objects; never given to the engine
        self._engine = llvm.create_mcjit_compiler(llvm.parse_assembly(""), self._new_machine())
        self._lock = threading.Lock()
        self.cache = cache or DiskCache()
        self.stats = CacheStats()
        self._keep: list[object] = []  # object files must outlive the engine's use of them
        self._loaded: dict[str, dict[str, int]] = {}
        self._libraries: set[str] = set()

    def _new_machine(self) -> llvm.TargetMachine:
        return self._target.create_target_machine(
            cpu=self.cpu, features=self.features, opt=3, reloc="default", codemodel="jitdefault"
        )

    @property
    def data_layout(self) -> str:
        return str(self._machine.target_data)

    def key(self, ir_text: str) -> str:
        from graphflow import __version__

        h = hashlib.sha256()
        for part in (
            ir_text,
            self.triple,
            self.cpu,
            self.features,
            __version__,
            llvmlite.__version__,
        ):
            h.update(part.encode())
            h.update(b"\0")
        return h.hexdigest()

    def optimize(
        self,
        module: llvm.ModuleRef,
        pipeline: str = "O3",
        machine: llvm.TargetMachine | None = None,
    ) -> None:
        """Runs an IR pipeline on `module`.

        "O3": O3 with loop vectorization, without SLP vectorization.
        "light": inlining of alwaysinline functions and local cleanups only
        (SROA, instcombine, simplifycfg, DCE), for code written vectorized
        already, such as the GEMM: its machine code is as fast as after O3
        here, and it compiles in a third of the time. The backend runs at
        O3 in both.
        """
        if pipeline == "O3":
            options = llvm.create_pipeline_tuning_options(speed_level=3)
            options.loop_vectorization = True
            options.slp_vectorization = False
            builder = llvm.create_pass_builder(machine or self._machine, options)
            builder.getModulePassManager().run(module, builder)
            return
        if pipeline != "light":
            raise errors.InternalError(f"JIT: unknown pipeline {pipeline!r}")
        builder = llvm.create_pass_builder(
            machine or self._machine, llvm.create_pipeline_tuning_options(speed_level=0)
        )
        passes = llvm.create_new_module_pass_manager()
        passes.add_always_inliner_pass()
        passes.add_sroa_pass()
        passes.add_instruction_combine_pass()
        passes.add_simplify_cfg_pass()
        passes.add_dead_code_elimination_pass()
        passes.run(module, builder)

    def optimized_ir(self, ir_text: str) -> str:
        """The IR after verification and optimization (for tests and debugging)."""
        module = self._parse(ir_text)
        self.optimize(module)
        return str(module)

    def _parse(self, ir_text: str, context: Any = None) -> llvm.ModuleRef:
        try:
            module = llvm.parse_assembly(ir_text, context)
            module.verify()
        except RuntimeError as e:
            raise errors.InternalError(f"the generated LLVM IR is invalid: {e}") from None
        module.triple = self.triple
        module.data_layout = self.data_layout
        return module

    def object_code(self, ir_text: str) -> bytes:
        """Machine code for `ir_text`, from the disk cache or compiled now."""
        return self._object_codes([(self.key(ir_text), lambda: ir_text, "O3")])[0]

    def _add_object(self, payload: bytes) -> None:
        obj = llvm.ObjectFileRef.from_data(payload)
        self._keep.append(obj)
        self._engine.add_object_file(obj)
        self._engine.finalize_object()

    def compile_with(
        self, libraries: Sequence[LibraryFunction], ir_text: str, names: list[str]
    ) -> dict[str, int]:
        """`compile`, after loading the library functions the module calls.

        What the disk cache lacks is compiled in parallel, one thread per
        core: each thread has its own LLVM context and target machine (an
        LLVM context and a target machine serve one thread at a time), and
        LLVM runs without the GIL. Emitting the IR stays in this thread.
        """
        pending = [f for f in libraries if f.symbol not in self._libraries]
        key = self.key(ir_text)
        main_loaded = key in self._loaded and all(n in self._loaded[key] for n in names)
        jobs = [(self.key(f"{f.symbol} {f.pipeline}"), f.emit, f.pipeline) for f in pending]
        if not main_loaded:
            jobs.append((key, lambda: ir_text, "O3"))
        payloads = self._object_codes(jobs)
        for function, payload in zip(pending, payloads):
            with self._lock:
                if function.symbol in self._libraries:
                    continue
                self._add_object(payload)
                if not self._engine.get_function_address(function.symbol):
                    raise errors.InternalError(f"JIT: no symbol {function.symbol} in its library")
                self._libraries.add(function.symbol)
        if main_loaded:
            return {n: self._loaded[key][n] for n in names}
        return self._load_module(key, payloads[-1], names)

    def _object_codes(self, jobs: list[tuple[str, Callable[[], str], str]]) -> list[bytes]:
        """Machine code of each (key, make_ir, pipeline): cached, or compiled in parallel."""
        results: list[bytes | None] = [None] * len(jobs)
        todo = []
        for index, (key, _, _) in enumerate(jobs):
            results[index] = self._cached(key)
            if results[index] is None:
                todo.append(index)
        texts = {index: jobs[index][1]() for index in todo}
        if len(todo) == 1 or _workers() == 1:
            compiled = {i: self._compile_alone(texts[i], jobs[i][2]) for i in todo}
        else:
            futures = {i: _pool().submit(self._compile_alone, texts[i], jobs[i][2]) for i in todo}
            compiled = {i: future.result() for i, future in futures.items()}
        for index in todo:
            payload = compiled[index]
            self.stats.misses += 1
            self.cache.store(jobs[index][0], payload)
            results[index] = payload
        return results  # type: ignore[return-value]

    def _compile_alone(self, ir_text: str, pipeline: str) -> bytes:
        """Object code for `ir_text` with a context and a target machine of its own."""
        context = llvm.create_context()
        machine = self._new_machine()
        module = self._parse(ir_text, context)
        try:
            self.optimize(module, pipeline, machine)
            return machine.emit_object(module)
        finally:
            module.close()  # before its context
            context.close()

    def _cached(self, key: str) -> bytes | None:
        try:
            cached = self.cache.load(key)
        except _CorruptEntry:
            self.stats.rebuilt_corrupt += 1
            return None
        if cached is not None:
            self.stats.hits += 1
        return cached

    def _load_module(self, key: str, payload: bytes, names: list[str]) -> dict[str, int]:
        with self._lock:
            self._add_object(payload)
            addresses = {n: self._engine.get_function_address(n) for n in names}
        missing = [n for n, a in addresses.items() if not a]
        if missing:
            raise errors.InternalError(f"JIT: no symbol {missing} in the compiled module")
        self._loaded[key] = addresses
        return addresses

    def compile(self, ir_text: str, names: list[str]) -> dict[str, int]:
        """Loads the code of `ir_text` into the process; returns the address of each name.

        External symbol names must be unique across modules (they share one
        engine); the same text compiled twice is loaded once.
        """
        key = self.key(ir_text)
        loaded = self._loaded.get(key)
        if loaded is not None and all(n in loaded for n in names):
            return {n: loaded[n] for n in names}
        return self._load_module(key, self.object_code(ir_text), names)


_jit: JIT | None = None
_jit_lock = threading.Lock()
_executor: concurrent.futures.ThreadPoolExecutor | None = None


def _workers() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _pool() -> concurrent.futures.ThreadPoolExecutor:
    """The compile threads (created on first use, one per usable core)."""
    global _executor
    with _jit_lock:
        if _executor is None:
            _executor = concurrent.futures.ThreadPoolExecutor(
                _workers(), thread_name_prefix="graphflow-llvm"
            )
        return _executor


def get_jit() -> JIT:
    """The process-wide JIT (created on first use)."""
    global _jit
    with _jit_lock:
        if _jit is None:
            _jit = JIT()
        return _jit
