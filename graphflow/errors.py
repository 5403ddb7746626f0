"""Exceptions raised for errors a user can cause, with TF1's names.

Every message says what was wrong, where (the op and the user's source line)
and what would be right. Build messages with `op_message` so that they all
read the same way.
"""

from __future__ import annotations

from typing import Any


class GraphflowError(Exception):
    """Base class of every error graphflow raises for a user's mistake.

    Attributes:
      message: the whole message.
      op: the `Operation` the error is about, or None.
    """

    def __init__(self, message: str, op: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.op = op

    def __str__(self) -> str:
        # KeyError's __str__ would quote the message; every subclass reads plainly.
        return self.message


class InvalidArgumentError(GraphflowError, ValueError):
    """An argument (a feed, a shape, a dtype, an attribute) is not acceptable."""


class NotFoundError(GraphflowError, KeyError):
    """A name (of a tensor, an op, a checkpoint entry) does not exist."""


class FailedPreconditionError(GraphflowError):
    """The state does not allow the operation, e.g. an uninitialized variable."""


class UnimplementedError(GraphflowError, NotImplementedError):
    """The request is valid TF1 but graphflow does not support it (yet)."""


class InternalError(GraphflowError):
    """A bug in graphflow; please report it with the message."""


def location_text(location: tuple[str, int] | None) -> str:
    """'file.py:12' for a (file, line) pair, or '<unknown>'."""
    if location is None:
        return "<unknown>"
    return f"{location[0]}:{location[1]}"


def op_message(
    op_type: str,
    name: str,
    location: tuple[str, int] | None,
    what: str,
    got: str | None = None,
    expected: str | None = None,
) -> str:
    """The one message format: which op, where it was defined, what came, what was expected."""
    text = f"{op_type} op '{name}' (defined at {location_text(location)}): {what}"
    if got is not None:
        text += f"; got {got}"
    if expected is not None:
        text += f"; expected {expected}"
    return text
