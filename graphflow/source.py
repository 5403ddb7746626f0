"""Where in the user's code an op was created: a cheap walk up the stack.

A full traceback per op costs seconds on large graphs; walking frames with
`sys._getframe` and skipping graphflow's own files costs about a microsecond.
"""

from __future__ import annotations

import os
import sys

_INTERNAL_DIRS: list[str] = [os.path.dirname(os.path.abspath(__file__)) + os.sep]
_is_internal_cache: dict[str, bool] = {}


def register_internal_dir(module_file: str) -> None:
    """Mark the directory of `module_file` as graphflow's own (its frames are skipped).

    graphflow.compiler and graphflow.runtime call this at import, since in an
    editable install they live outside graphflow/'s directory.
    """
    path = os.path.dirname(os.path.abspath(module_file)) + os.sep
    if path not in _INTERNAL_DIRS:
        _INTERNAL_DIRS.append(path)
        _is_internal_cache.clear()


def _is_internal(filename: str) -> bool:
    known = _is_internal_cache.get(filename)
    if known is None:
        absolute = os.path.abspath(filename)
        known = any(absolute.startswith(d) for d in _INTERNAL_DIRS) or filename.startswith(
            "<frozen"
        )
        _is_internal_cache[filename] = known
    return known


def user_location() -> tuple[str, int] | None:
    """(file, line) of the innermost frame outside graphflow, or None."""
    frame = sys._getframe(1)
    while frame is not None:
        filename = frame.f_code.co_filename
        if not _is_internal(filename):
            return (filename, frame.f_lineno)
        frame = frame.f_back
    return None
