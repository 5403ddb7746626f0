"""Lowering: the optimized graph to one LLVM module."""
