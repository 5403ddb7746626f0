"""ONNX Runtime: each workload as an ONNX graph built with the `onnx` helper API, run in an
InferenceSession (all graph optimizations on, `threads` intra-op threads).

W4 uses ONNX's LayerNormalization op (opset 17), the op an exporter emits for
layernorm; W5's weights are initializers of the graph. W6 is not expressible:
the `onnxruntime` package runs inference only (training needs the separate
onnxruntime-training build and its artifacts).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from graphflow.benchmarks.peers import Prepared, Unsupported, kind
from graphflow.benchmarks.workloads import GELU_C, LAYERNORM_EPS, PARAMETER_NAMES, Case

ort: Any = None
onnx: Any = None
_threads = 1
OPSET = 18
IR_VERSION = 8  # understood by every ONNX Runtime that supports opset 18


def setup(threads: int) -> str:
    """Imports onnx and onnxruntime; returns ONNX Runtime's version."""
    global ort, onnx, _threads
    import onnx as onnx_module
    import onnxruntime

    ort, onnx, _threads = onnxruntime, onnx_module, threads
    return onnxruntime.__version__


def _scalar(name: str, value: float) -> Any:
    return onnx.numpy_helper.from_array(np.array(value, np.float32), name)


def _nodes(family: str, a: dict[str, np.ndarray]) -> tuple[list[Any], list[Any], tuple[str, ...]]:
    """(nodes, initializers, fed input names) of the workload; the output is named "y"."""
    node = onnx.helper.make_node
    if family == "W1":
        return [node("Add", ["x", "one"], ["y"])], [_scalar("one", 1.0)], ("x",)
    if family == "W2":
        nodes = [
            node("Mul", ["x", "x"], ["x2"]),
            node("Mul", ["x2", "x"], ["x3"]),
            node("Mul", ["x3", "k"], ["kx3"]),
            node("Add", ["x", "kx3"], ["inner"]),
            node("Mul", ["inner", "c"], ["scaled"]),
            node("Tanh", ["scaled"], ["t"]),
            node("Add", ["t", "one"], ["t1"]),
            node("Mul", ["x", "half"], ["hx"]),
            node("Mul", ["hx", "t1"], ["y"]),
        ]
        constants = [
            _scalar("k", 0.044715),
            _scalar("c", GELU_C),
            _scalar("one", 1.0),
            _scalar("half", 0.5),
        ]
        return nodes, constants, ("x",)
    if family == "W3":
        return [node("Softmax", ["x"], ["y"], axis=-1)], [], ("x",)
    if family == "W4":
        layernorm = node(
            "LayerNormalization", ["x", "gamma", "beta"], ["y"], axis=-1, epsilon=LAYERNORM_EPS
        )
        return [layernorm], [], ("x", "gamma", "beta")
    if family == "W5":
        weights = [onnx.numpy_helper.from_array(a[n], n) for n in PARAMETER_NAMES]
        nodes = [
            node("MatMul", ["x", "w1"], ["m1"]),
            node("Add", ["m1", "b1"], ["a1"]),
            node("Relu", ["a1"], ["h1"]),
            node("MatMul", ["h1", "w2"], ["m2"]),
            node("Add", ["m2", "b2"], ["a2"]),
            node("Relu", ["a2"], ["h2"]),
            node("MatMul", ["h2", "w3"], ["m3"]),
            node("Add", ["m3", "b3"], ["logits"]),
            node("Softmax", ["logits"], ["y"], axis=-1),
        ]
        return nodes, weights, ("x",)
    if family == "W7":
        return [node("MatMul", ["a", "b"], ["y"])], [], ("a", "b")
    raise Unsupported(
        "the onnxruntime package runs inference only: no autodiff "
        "(training needs the separate onnxruntime-training build)"
    )


def prepare(variant: str, workload_id: str, case: Case) -> Prepared:
    """The workload as an ONNX model in an InferenceSession."""
    a = case.arrays
    nodes, initializers, fed = _nodes(kind(workload_id), a)
    helper = onnx.helper
    inputs = [
        helper.make_tensor_value_info(n, onnx.TensorProto.FLOAT, list(a[n].shape)) for n in fed
    ]
    shape = list(np.shape(case.numpy(np.float32)()))  # the output's: ONNX's checker wants it
    output = helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, shape)
    graph = helper.make_graph(nodes, workload_id, inputs, [output], initializer=initializers)
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", OPSET)], ir_version=IR_VERSION
    )
    onnx.checker.check_model(model)
    options = ort.SessionOptions()
    options.intra_op_num_threads = _threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    session = ort.InferenceSession(
        model.SerializeToString(), options, providers=["CPUExecutionProvider"]
    )
    feeds = {n: a[n] for n in fed}
    return Prepared(lambda: session.run(None, feeds)[0])
