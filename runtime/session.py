"""The Session: runs fetches of a graph with feeds, and holds the values of variables."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np

from graphflow import errors
from graphflow.compiler.pipeline import LEVELS, optimize
from graphflow.graph import (
    Graph,
    Operation,
    Tensor,
    get_default_graph,
    pop_default_session,
    push_default_session,
)
from graphflow.runtime.compiled import CompiledExecutable, compile_reason
from graphflow.runtime.executable import InterpretedExecutable
from graphflow.runtime.feeds import check_feed, check_feeds, resolve_feed_key
from graphflow.runtime.fetch import FetchStructure
from graphflow.runtime.interpreter import needed_ops, require_feeds

MODES = ("interpreted", "compiled")


class CacheInfo(NamedTuple):
    hits: int
    misses: int
    maxsize: int
    currsize: int
    compiled: int
    fallbacks: tuple[str, ...]


_PLAN_CACHE_SIZE = 256


class _State:
    """A session's mutable state: variable values and random generators (thread-safe)."""

    def __init__(self) -> None:
        self.variables: dict[Operation, np.ndarray] = {}
        self.buffers: dict[Operation, np.ndarray] = {}  # compiled mode: updated in place
        self.generators: dict[Operation, tuple[np.random.Generator, threading.Lock]] = {}
        self.lock = threading.Lock()
        self.update_lock = threading.Lock()

    def read_variable(self, op: Operation) -> np.ndarray:
        value = self.variables.get(op)
        if value is None:
            raise op.error(
                errors.FailedPreconditionError,
                f"attempting to use uninitialized value {op.name}",
                got="a variable that was never assigned in this session",
                expected="sess.run(gf.global_variables_initializer()) (or the variable's "
                "initializer) before reading it",
            )
        return value

    def write_variable(
        self, op: Operation, value: np.ndarray, validate_shape: bool = True
    ) -> np.ndarray:
        shape = op.attrs["shape"]
        if validate_shape and not shape.is_compatible_with(value.shape):
            raise op.error(
                errors.InvalidArgumentError,
                f"cannot assign a value of shape {tuple(value.shape)} to {op.name}",
                got=str(tuple(value.shape)),
                expected=str(shape),
            )
        # Stored values are private and read-only: kernels never write into
        # them, and fetches copy them, so a user cannot change a variable by
        # mutating an array they were given or fed.
        buffer = self.buffers.get(op)
        if buffer is not None and buffer.shape == np.shape(value):
            np.copyto(buffer, value, casting="unsafe")  # compiled code holds this array
            self.variables[op] = buffer
            return buffer
        stored = np.array(value, dtype=op.attrs["dtype"].np, copy=True)
        stored.flags.writeable = False
        with self.lock:
            self.variables[op] = stored
        return stored

    def update_variable(
        self, op: Operation, update: Callable[[np.ndarray], np.ndarray]
    ) -> np.ndarray:
        with self.update_lock:
            return self.write_variable(op, update(self.read_variable(op)))

    def buffer(self, op: Operation) -> np.ndarray:
        """The variable's own writable array, which compiled code updates in place."""
        array = self.buffers.get(op)
        if array is None:
            with self.lock:
                array = self.buffers.get(op)
                if array is None:
                    shape = tuple(op.attrs["shape"].as_list())
                    array = np.empty(shape, op.attrs["dtype"].np)
                    if op in self.variables:
                        np.copyto(array, self.variables[op])
                        self.variables[op] = array
                    self.buffers[op] = array
        return array

    def mark_initialized(self, op: Operation) -> None:
        """Compiled code assigned the variable: its buffer now holds its value."""
        self.variables[op] = self.buffers[op]

    def rng(self, op: Operation) -> np.random.Generator:
        entry = self.generators.get(op)
        if entry is None:
            with self.lock:
                entry = self.generators.get(op)
                if entry is None:
                    seeds = op.attrs.get("seed")
                    generator = np.random.default_rng(list(seeds) if seeds else None)
                    entry = self.generators[op] = (generator, threading.Lock())
        return entry[0]


class _LockedState:
    """The ExecutionContext handed to kernels: serializes draws from one op's generator."""

    def __init__(self, state: _State) -> None:
        self._state = state

    def read_variable(self, op: Operation) -> np.ndarray:
        return self._state.read_variable(op)

    def write_variable(
        self, op: Operation, value: np.ndarray, validate_shape: bool = True
    ) -> np.ndarray:
        return self._state.write_variable(op, value, validate_shape)

    def update_variable(
        self, op: Operation, update: Callable[[np.ndarray], np.ndarray]
    ) -> np.ndarray:
        return self._state.update_variable(op, update)

    def rng(self, op: Operation) -> np.random.Generator:
        generator = self._state.rng(op)
        return _SerializedGenerator(generator, self._state.generators[op][1])  # type: ignore[return-value]


class _SerializedGenerator:
    """Forwards draws to a Generator under a lock (Generators are not thread-safe)."""

    def __init__(self, generator: np.random.Generator, lock: threading.Lock) -> None:
        self._generator = generator
        self._lock = lock

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._generator, name)

        def locked(*args: Any, **kwargs: Any) -> Any:
            with self._lock:
                return method(*args, **kwargs)

        return locked


class Session:
    """Runs graphs: `sess.run(fetches, feed_dict)` computes the fetches with the fed values.

    Args:
      target: ignored (TF1 compatibility: graphflow runs in-process).
      graph: the graph to run (default: the default graph).
      config: ignored (TF1 compatibility).
      mode: "interpreted" runs each op with its NumPy reference kernel.
      level: None runs the graph as built; "O0", "O1" or "O2" first
        optimizes it with graphflow.compiler at that level (to check the
        compiler, or to see what it does to your results).

    A Session can be used as a context manager, which also makes it the
    default session for `Tensor.eval()` and `Operation.run()`. `run` may be
    called from several threads at once.
    """

    def __init__(
        self,
        target: str = "",
        graph: Graph | None = None,
        config: Any = None,
        mode: str | None = None,
        level: str | None = None,
    ) -> None:
        if isinstance(target, Graph) and graph is None:
            target, graph = "", target
        mode = mode or "compiled"
        if mode not in MODES:
            raise errors.InvalidArgumentError(
                f"unknown Session mode {mode!r}; expected one of {', '.join(MODES)}"
            )
        if level is not None and level not in LEVELS:
            raise errors.InvalidArgumentError(
                f"unknown optimization level {level!r}; expected None or one of "
                + ", ".join(LEVELS)
            )
        self._graph = graph if graph is not None else get_default_graph()
        self._mode = mode
        self._level = level
        self._state = _State()
        self._context = _LockedState(self._state)
        self._plans: OrderedDict[tuple[Any, ...], InterpretedExecutable] = OrderedDict()
        self._plans_lock = threading.Lock()
        self._fast_runs: dict[Any, Callable[[Any], Any]] = {}
        self._hits = 0
        self._misses = 0
        self._fallbacks: list[str] = []
        self._closed = False

    @property
    def graph(self) -> Graph:
        return self._graph

    @property
    def mode(self) -> str:
        return self._mode

    # -- lifetime --------------------------------------------------------------------------
    def close(self) -> None:
        """Frees the session's state; later calls to run raise an error."""
        self._closed = True
        self._state = _State()
        self._context = _LockedState(self._state)
        with self._plans_lock:
            self._plans.clear()

    def __enter__(self) -> Session:
        push_default_session(self)
        return self

    def __exit__(self, *exc: object) -> None:
        pop_default_session(self)
        self.close()

    def as_default(self) -> Any:
        """A context manager that makes this session the default one (without closing it)."""
        import contextlib

        @contextlib.contextmanager
        def scope() -> Any:
            push_default_session(self)
            try:
                yield self
            finally:
                pop_default_session(self)

        return scope()

    def _check_open(self) -> None:
        if self._closed:
            raise errors.FailedPreconditionError(
                "attempted to use a closed Session; expected a session that is still open "
                "(create a new gf.Session())"
            )

    # -- running ---------------------------------------------------------------------------
    def run(
        self,
        fetches: Any,
        feed_dict: Mapping[Any, Any] | None = None,
        options: Any = None,
        run_metadata: Any = None,
    ) -> Any:
        """Computes `fetches` with the values in `feed_dict`.

        Args:
          fetches: a Tensor, an Operation, a "name:0" or op name string, or any
            nesting of lists, tuples, namedtuples and dicts of them.
          feed_dict: maps Tensors (or their names) to values; any tensor may be
            fed, and then its producer does not run.

        Returns:
          The fetches' structure with a NumPy array per tensor, None per op.

        Raises:
          InvalidArgumentError: a bad fetch or feed (wrong dtype or shape, a
            placeholder not fed), or an op that fails on the fed values.
          NotFoundError: an unknown name.
          FailedPreconditionError: an uninitialized variable, a closed session.
        """
        if self._fast_runs:
            try:
                if type(fetches) in (list, tuple):
                    key: Any = (type(fetches), *fetches, None, *(feed_dict or ()))
                else:
                    key = (fetches, None, *(feed_dict or ()))
                entry = self._fast_runs.get(key)
            except TypeError:  # an unhashable fetch structure: the general path
                entry = None
            if entry is not None:
                self._hits += 1
                return entry(feed_dict)
        self._check_open()
        structure = FetchStructure(self._graph, fetches)
        feeds = check_feeds(self._graph, feed_dict)
        executable = self._executable(structure.elements, tuple(feeds))
        values = executable.run(feeds, self._context)
        if isinstance(executable, CompiledExecutable) and _flat(fetches):
            self._remember_fast_run(fetches, feed_dict, executable)
        return structure.rebuild(_detach(values, feeds))

    def _remember_fast_run(
        self, fetches: Any, feed_dict: Any, executable: CompiledExecutable
    ) -> None:
        """A shortcut for the next run with the same fetches and feed keys (compiled mode)."""
        keys = tuple(feed_dict) if feed_dict else ()
        checker = _FeedChecker(executable.fed)
        by_tensor = {resolve_feed_key(self._graph, k): k for k in keys}
        user_keys = [by_tensor[t] for t in executable.fed]
        kind = type(fetches)
        single = not isinstance(fetches, list | tuple)

        direct = executable.direct_call(checker.exact())  # this is not the first run

        def entry(feed: Mapping[Any, Any] | None) -> Any:
            if self._closed:
                self._check_open()
            values = [feed[k] for k in user_keys]  # type: ignore[index]
            result = None if direct is None else direct(*values)
            if result is None:
                result = executable.call(checker(values))
            return result[0] if single else kind(result)

        self._fast_runs[_fast_key(fetches, feed_dict)] = entry

    def make_callable(
        self, fetches: Any, feed_list: Sequence[Any] | None = None, accept_options: bool = False
    ) -> Callable[..., Any]:
        """A function `f(*feed_values)` that runs `fetches` with `feed_list` fed positionally.

        The fetch structure and feed keys are resolved once, so each call does
        less work than `run`.
        """
        self._check_open()
        structure = FetchStructure(self._graph, fetches)
        keys = [resolve_feed_key(self._graph, k) for k in (feed_list or [])]
        if len(set(keys)) != len(keys):
            raise errors.InvalidArgumentError("feed_list names a tensor more than once")
        executable = self._executable(structure.elements, tuple(keys))
        if isinstance(executable, CompiledExecutable):
            checker = _FeedChecker(keys)
            count = len(keys)
            rebuild = structure.rebuild
            exact = checker.exact()
            direct: list[Any] = [None]  # built after the first run

            def compiled_call(*feed_values: Any, **kwargs: Any) -> Any:
                if self._closed or len(feed_values) != count:
                    return call(*feed_values)  # raises the right error
                if direct[0] is not None:
                    values = direct[0](*feed_values)
                    if values is not None:
                        return rebuild(values)
                values = executable.call(checker(list(feed_values)))
                if direct[0] is None:
                    direct[0] = executable.direct_call(exact)
                return rebuild(values)

        def call(*feed_values: Any, **kwargs: Any) -> Any:
            self._check_open()
            if len(feed_values) != len(keys):
                raise errors.InvalidArgumentError(
                    f"this callable takes {len(keys)} feed value(s) "
                    f"({', '.join(k.name for k in keys) or 'none'}); got {len(feed_values)}"
                )
            feeds = {k: check_feed(k, v) for k, v in zip(keys, feed_values)}
            values = executable.run(feeds, self._context)
            return structure.rebuild(_detach(values, feeds))

        return compiled_call if isinstance(executable, CompiledExecutable) else call

    def _executable(self, elements: Sequence[Tensor | Operation], fed: tuple[Tensor, ...]) -> Any:
        key = (tuple(elements), frozenset(fed))
        with self._plans_lock:
            executable = self._plans.get(key)
            if executable is not None:
                self._plans.move_to_end(key)
                self._hits += 1
                return executable
            self._misses += 1
        executable = self._build(elements, fed)
        with self._plans_lock:
            self._plans[key] = executable
            if len(self._plans) > _PLAN_CACHE_SIZE:
                self._plans.popitem(last=False)
        return executable

    def _build(self, elements: Sequence[Tensor | Operation], fed: tuple[Tensor, ...]) -> Any:
        if self._mode == "interpreted":
            return InterpretedExecutable(elements, fed, self._level)
        level = self._level or "O2"
        require_feeds(needed_ops(elements, frozenset(fed)))
        program = optimize(list(elements), feeds=fed, level=level).program
        reason = compile_reason(program)
        if reason is None:
            return CompiledExecutable(program, fed, self._state)
        # Some op has no lowering yet: run the optimized graph with the
        # reference kernels, and say so in cache_info().
        self._fallbacks.append(reason)
        return InterpretedExecutable(elements, fed, level, program)

    def cache_info(self) -> CacheInfo:
        """Executables cached by this session, like functools.lru_cache's cache_info().

        `compiled` counts native executables; `fallbacks` lists why a graph ran
        interpreted in compiled mode (an op without a lowering).
        """
        with self._plans_lock:
            compiled = sum(isinstance(e, CompiledExecutable) for e in self._plans.values())
            return CacheInfo(
                self._hits,
                self._misses,
                _PLAN_CACHE_SIZE,
                len(self._plans),
                compiled,
                tuple(self._fallbacks),
            )

    def _load_variable(self, variable: Tensor, value: Any) -> None:
        self._check_open()
        array = check_feed(variable, value)
        self._state.write_variable(variable.op, array)

    def __repr__(self) -> str:
        return f"<gf.Session mode={self._mode!r}>"


def _fast_key(fetches: Any, feed_dict: Any) -> Any:
    if type(fetches) in (list, tuple):
        return (type(fetches), *fetches, None, *(feed_dict or ()))
    return (fetches, None, *(feed_dict or ()))


def _flat(fetches: Any) -> bool:
    """A Tensor or Operation, or a plain list/tuple of them (the shapes with a fast path)."""
    if type(fetches) in (list, tuple):
        return all(isinstance(f, Tensor | Operation) for f in fetches)
    return isinstance(fetches, Tensor | Operation)


class _FeedChecker:
    """Checks positional feed values fast: arrays of the right dtype and shape pass as they are.

    Anything else (Python data, another dtype, a doubtful shape) goes through
    `check_feed`, which converts or raises the full error.
    """

    def __init__(self, tensors: Sequence[Tensor]) -> None:
        self._specs = []
        for t in tensors:
            dims = t.shape.dims
            exact = tuple(dims) if dims is not None and None not in dims else None
            known = [(a, d) for a, d in enumerate(dims or ()) if d is not None]
            self._specs.append((t, np.dtype(t.dtype.np), t.shape.rank, exact, known))

    def exact(self) -> list[tuple[np.dtype, tuple[int, ...]]]:
        """(dtype, shape) of each feed when every shape is fully known, else []."""
        specs = [(dtype, exact) for _, dtype, _, exact, _ in self._specs]
        return specs if all(exact is not None for _, exact in specs) else []

    def __call__(self, values: list[Any]) -> list[np.ndarray]:
        for k, (tensor, dtype, rank, exact, known) in enumerate(self._specs):
            v = values[k]
            # Native dtypes are singletons: `is` is the fast test, `!=` the exact one.
            if type(v) is not np.ndarray or (v.dtype is not dtype and v.dtype != dtype):
                values[k] = check_feed(tensor, v)
            elif exact is not None:
                if v.shape != exact:
                    values[k] = check_feed(tensor, v)
            elif rank is not None and (v.ndim != rank or any(v.shape[a] != d for a, d in known)):
                values[k] = check_feed(tensor, v)
        return values


def _detach(values: list[Any], feeds: Mapping[Tensor, np.ndarray]) -> list[Any]:
    """Results the caller owns: arrays that alias graph, variable or fed data are copied."""
    fed = {id(v) for v in feeds.values()}
    out = []
    for v in values:
        if isinstance(v, np.ndarray) and (
            not v.flags.writeable or v.base is not None or id(v) in fed
        ):
            v = v.copy()
        out.append(v)
    return out


class InteractiveSession(Session):
    """A Session that makes itself the default session when created (for notebooks)."""

    def __init__(
        self,
        target: str = "",
        graph: Graph | None = None,
        config: Any = None,
        mode: str | None = None,
        level: str | None = None,
    ) -> None:
        super().__init__(target, graph, config, mode, level)
        push_default_session(self)

    def close(self) -> None:
        pop_default_session(self)
        super().close()
