"""Checkpoints: saving and restoring variable values as NumPy .npz files (TF1's tf.train.Saver).

A checkpoint is one uncompressed `.npz` archive with one array per variable,
keyed by the variable's op name ("dense/w", "dense/w/Adam"). It is read with
`allow_pickle=False`: a checkpoint holds numbers only, and loading one never
runs code. Saving writes a temporary file and renames it, so a crash never
leaves a half-written checkpoint under the final name.

Restoring checks the whole file against the saver's variables before it
changes any of them: a failed restore leaves the session as it was.
"""

from __future__ import annotations

import os
import tempfile
import zipfile
import zlib
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from graphflow import errors
from graphflow.graph import Tensor
from graphflow.ops.state_ops import Variable, global_variables
from graphflow.source import user_location

_SUFFIX = ".npz"
_STATE_FILE = "checkpoint"


class Saver:
    """Saves and restores variables (TF1's tf.train.Saver, with a NumPy .npz format).

    ```python
    saver = gf.train.Saver()
    path = saver.save(sess, "/tmp/model.ckpt", global_step=step)  # "/tmp/model.ckpt-100.npz"
    saver.restore(sess, path)  # or the prefix "/tmp/model.ckpt-100"
    ```

    Args:
      var_list: the variables to save: a list of gf.Variables (saved under
        their op names) or a dict from checkpoint name to gf.Variable.
        Default: every global variable when the Saver is created.
      reshape, sharded, restore_sequentially, saver_def, builder,
        write_version, pad_step_number, save_relative_paths, filename:
        accepted for TF1 compatibility; they do not change the format.
      max_to_keep: how many of the most recent checkpoints this Saver wrote
        to keep; older ones are deleted. None or 0 keeps all of them.
      keep_checkpoint_every_n_hours: additionally keep one checkpoint per
        this many hours.
      name: unused (TF1 names the save ops with it).
      defer_build: take the default var_list at the first save or restore.
      allow_empty: with no variables, save and restore do nothing (and
        return None) instead of raising.

    Raises:
      InvalidArgumentError: an entry of var_list is not a gf.Variable, two
        entries share a name, or there is nothing to save (and not allow_empty).
    """

    def __init__(
        self,
        var_list: Sequence[Variable] | Mapping[str, Variable] | None = None,
        reshape: bool = False,
        sharded: bool = False,
        max_to_keep: int | None = 5,
        keep_checkpoint_every_n_hours: float = 10000.0,
        name: str | None = None,
        restore_sequentially: bool = False,
        saver_def: Any = None,
        builder: Any = None,
        defer_build: bool = False,
        allow_empty: bool = False,
        write_version: int = 2,
        pad_step_number: bool = False,
        save_relative_paths: bool = False,
        filename: str | None = None,
    ) -> None:
        self._location = user_location()
        self._var_list = var_list
        self._allow_empty = allow_empty
        self._max_to_keep = max_to_keep
        self._keep_every_seconds = keep_checkpoint_every_n_hours * 3600.0
        self._last_checkpoints: list[tuple[str, float]] = []
        self._next_keep_time: float | None = None
        self._variables: dict[str, Variable] | None = None
        if not defer_build:
            self.build()

    def build(self) -> None:
        """Resolves var_list into the name -> variable table (done at creation unless deferred)."""
        if self._variables is not None:
            return
        var_list = self._var_list if self._var_list is not None else global_variables()
        self._variables = _name_table(var_list, self._location)
        if not self._variables and not self._allow_empty:
            raise errors.InvalidArgumentError(
                _message(self._location, "No variables to save", expected="at least one variable")
            )

    @property
    def last_checkpoints(self) -> list[str]:
        """The checkpoints this Saver wrote and has not deleted, oldest first."""
        return [path for path, _ in self._last_checkpoints]

    # -- saving ----------------------------------------------------------------------------
    def save(
        self,
        sess: Any,
        save_path: str,
        global_step: Any = None,
        latest_filename: str | None = None,
        meta_graph_suffix: str = "meta",
        write_meta_graph: bool = True,
        write_state: bool = True,
        strip_default_attrs: bool = False,
        save_debug_info: bool = False,
    ) -> str | None:
        """Writes the variables' current values in `sess` to a checkpoint file.

        Args:
          sess: the Session holding the values.
          save_path: the checkpoint's path prefix; ".npz" is appended unless
            it already ends with it.
          global_step: optional int, or integer Tensor/Variable evaluated in
            `sess`; the file is then "<save_path>-<step>.npz".
          latest_filename: the name of the state file that records the recent
            checkpoints in the same directory (default "checkpoint"), read by
            `gf.train.latest_checkpoint`.
          meta_graph_suffix, write_meta_graph, strip_default_attrs,
            save_debug_info: accepted for TF1 compatibility (no meta graph
            is written).
          write_state: update the state file.

        Returns:
          The path of the file written (None for an empty Saver with allow_empty).

        Raises:
          InvalidArgumentError: `sess` is not a Session of the variables' graph.
          NotFoundError: the directory of `save_path` does not exist.
          FailedPreconditionError: a variable is not initialized in `sess`.
        """
        self.build()
        assert self._variables is not None
        if not self._variables:
            return None
        location = user_location()
        self._check_session(sess, "save", location)
        prefix = save_path[: -len(_SUFFIX)] if save_path.endswith(_SUFFIX) else save_path
        if global_step is not None:
            if isinstance(global_step, Tensor):
                global_step = sess.run(global_step)
            prefix = f"{prefix}-{int(global_step)}"
        path = prefix + _SUFFIX
        directory = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(directory):
            raise errors.NotFoundError(
                _message(
                    location,
                    f"cannot save to {path!r}: its directory does not exist",
                    got=directory,
                    expected="an existing directory",
                    op="save",
                )
            )
        names = list(self._variables)
        values = sess.run([self._variables[n] for n in names])
        _write_atomically(path, dict(zip(names, values)))
        self._remember(path)
        if write_state:
            _write_state(directory, latest_filename or _STATE_FILE, self.last_checkpoints)
        return path

    def _remember(self, path: str) -> None:
        import time

        now = time.time()
        self._last_checkpoints = [(p, t) for p, t in self._last_checkpoints if p != path]
        self._last_checkpoints.append((path, now))
        if self._next_keep_time is None:
            self._next_keep_time = now + self._keep_every_seconds
        if not self._max_to_keep:
            return
        while len(self._last_checkpoints) > self._max_to_keep:
            oldest, saved_at = self._last_checkpoints.pop(0)
            if saved_at >= self._next_keep_time:
                self._next_keep_time += self._keep_every_seconds
                continue  # kept for good: one per keep_checkpoint_every_n_hours
            if os.path.exists(oldest):
                os.remove(oldest)

    # -- restoring -------------------------------------------------------------------------
    def restore(self, sess: Any, save_path: str) -> None:
        """Sets the variables in `sess` to the values of a checkpoint.

        The whole checkpoint is checked first; if anything is wrong, no
        variable changes.

        Args:
          sess: the Session to restore into.
          save_path: the path `save` returned, or the same without ".npz".

        Raises:
          NotFoundError: no checkpoint at `save_path`.
          InvalidArgumentError: the file is not a readable .npz checkpoint
            (truncated, corrupt, another format, or holding non-numeric
            data), or it does not match the variables: one message lists
            every missing name, unexpected name, and shape or dtype mismatch.
        """
        self.build()
        assert self._variables is not None
        if not self._variables:
            return
        location = user_location()
        if save_path is None:
            raise errors.InvalidArgumentError(
                _message(
                    location,
                    "cannot restore",
                    got="save_path=None",
                    expected="a checkpoint path",
                    op="restore",
                )
            )
        self._check_session(sess, "restore", location)
        path = _resolve(str(save_path), location)
        arrays = _read_checkpoint(path, location)
        problems = _mismatches(self._variables, arrays)
        if problems:
            raise errors.InvalidArgumentError(
                _message(
                    location,
                    f"checkpoint {path!r} does not match the variables to restore: "
                    + "; ".join(problems),
                    expected="the names, shapes and dtypes of the Saver's variables",
                    op="restore",
                )
            )
        for name, variable in self._variables.items():
            variable.load(arrays[name], sess)

    def _check_session(self, sess: Any, method: str, location: tuple[str, int] | None) -> None:
        assert self._variables is not None
        graph = next(iter(self._variables.values())).graph
        # Duck-typed: the core does not import the runtime.
        if getattr(sess, "graph", None) is not graph or not callable(getattr(sess, "run", None)):
            raise errors.InvalidArgumentError(
                _message(
                    location,
                    f"Saver.{method} needs the Session that holds the variables",
                    got=repr(sess)[:80],
                    expected="a gf.Session of the variables' graph",
                    op=method,
                )
            )


def latest_checkpoint(checkpoint_dir: str, latest_filename: str | None = None) -> str | None:
    """The path of the newest checkpoint a Saver recorded in `checkpoint_dir`, or None."""
    state = os.path.join(checkpoint_dir, latest_filename or _STATE_FILE)
    try:
        with open(state, encoding="utf-8") as f:
            first = f.readline()
    except OSError:
        return None
    key = "model_checkpoint_path:"
    if not first.startswith(key):
        return None
    name = first[len(key) :].strip().strip('"')
    path = name if os.path.isabs(name) else os.path.join(checkpoint_dir, name)
    return path if os.path.exists(path) else None


def checkpoint_exists(checkpoint_prefix: str) -> bool:
    """Whether a checkpoint exists at this path (with or without ".npz")."""
    return os.path.isfile(checkpoint_prefix) or os.path.isfile(checkpoint_prefix + _SUFFIX)


# -- the file format ---------------------------------------------------------------------------
def _name_table(var_list: Any, location: tuple[str, int] | None) -> dict[str, Variable]:
    items = var_list.items() if isinstance(var_list, Mapping) else [(None, v) for v in var_list]
    table: dict[str, Variable] = {}
    for name, v in items:
        if not isinstance(v, Variable):
            raise errors.InvalidArgumentError(
                _message(
                    location,
                    "var_list may only hold gf.Variables",
                    got=repr(v)[:80],
                    expected="a gf.Variable",
                )
            )
        key = v.op.name if name is None else str(name)
        if key in table:
            raise errors.InvalidArgumentError(
                _message(
                    location,
                    f"two variables are saved under the name {key!r}",
                    expected="unique names",
                )
            )
        table[key] = v
    return table


def _write_atomically(path: str, arrays: dict[str, np.ndarray]) -> None:
    directory = os.path.dirname(os.path.abspath(path))
    fd, temporary = tempfile.mkstemp(prefix=".tmp-", suffix=_SUFFIX, dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.remove(temporary)
        raise


def _write_state(directory: str, filename: str, paths: list[str]) -> None:
    """TF1's text "checkpoint" file: the newest checkpoint and all that are kept."""
    lines = [f'model_checkpoint_path: "{os.path.basename(paths[-1])}"']
    lines += [f'all_model_checkpoint_paths: "{os.path.basename(p)}"' for p in paths]
    _write_text_atomically(os.path.join(directory, filename), "\n".join(lines) + "\n")


def _write_text_atomically(path: str, text: str) -> None:
    fd, temporary = tempfile.mkstemp(prefix=".tmp-", dir=os.path.dirname(path))
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(temporary, path)


def _resolve(save_path: str, location: tuple[str, int] | None) -> str:
    for candidate in (save_path, save_path + _SUFFIX):
        if os.path.isfile(candidate):
            return candidate
    raise errors.NotFoundError(
        _message(
            location,
            f"The passed save_path is not a valid checkpoint: {save_path}",
            got="no such file" + ("" if save_path.endswith(_SUFFIX) else f" (nor {_SUFFIX})"),
            expected="a path returned by Saver.save",
            op="restore",
        )
    )


def _read_checkpoint(path: str, location: tuple[str, int] | None) -> dict[str, np.ndarray]:
    """Every array of the .npz at `path`, read completely (so corruption shows now)."""

    def unreadable(reason: str) -> errors.InvalidArgumentError:
        return errors.InvalidArgumentError(
            _message(
                location,
                f"cannot read the checkpoint {path!r}: {reason}",
                expected="an .npz file written by Saver.save",
                op="restore",
            )
        )

    try:
        with np.load(path, allow_pickle=False) as archive:
            if not isinstance(archive, np.lib.npyio.NpzFile):
                raise unreadable("it is not an .npz archive")
            return {name: archive[name] for name in archive.files}
    except errors.GraphflowError:
        raise
    except TypeError:
        # np.load returns a bare array (a .npy file), which is not a context manager.
        raise unreadable("it is a single .npy array, not an .npz archive") from None
    except ValueError as e:
        if "allow_pickle" in str(e) or "Object arrays" in str(e):
            raise unreadable("it holds pickled objects, which are never loaded") from None
        raise unreadable(f"it is not a NumPy file ({e})") from None
    except (OSError, EOFError, zipfile.BadZipFile, zlib.error, KeyError) as e:
        raise unreadable(f"it is truncated or corrupt ({type(e).__name__}: {e})") from None


def _mismatches(variables: Mapping[str, Variable], arrays: Mapping[str, np.ndarray]) -> list[str]:
    problems = []
    missing = [n for n in variables if n not in arrays]
    unexpected = [n for n in arrays if n not in variables]
    if missing:
        problems.append("missing " + ", ".join(repr(n) for n in missing))
    if unexpected:
        problems.append("unexpected " + ", ".join(repr(n) for n in unexpected))
    for name, v in variables.items():
        if name not in arrays:
            continue
        value = arrays[name]
        if not v.shape.is_compatible_with(value.shape):
            problems.append(f"{name!r} has shape {tuple(value.shape)}, the variable {v.shape}")
        if value.dtype != v.dtype.np:
            problems.append(f"{name!r} has dtype {value.dtype}, the variable {v.dtype.name}")
    return problems


def _message(
    location: tuple[str, int] | None,
    what: str,
    got: str | None = None,
    expected: str | None = None,
    op: str = "Saver",
) -> str:
    """The one error format, naming the Saver's method and the user's line that called it."""
    return errors.op_message("Saver", op, location, what, got, expected)
