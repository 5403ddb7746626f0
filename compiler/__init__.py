"""graphflow.compiler: graph passes, lowering to LLVM, the JIT, and DOT output."""

from graphflow.source import register_internal_dir

register_internal_dir(__file__)
