"""graphflow.runtime: the Session, the interpreter, and executables."""

from graphflow.source import register_internal_dir

register_internal_dir(__file__)

from graphflow.runtime.session import InteractiveSession, Session  # noqa: E402

__all__ = ["InteractiveSession", "Session"]
