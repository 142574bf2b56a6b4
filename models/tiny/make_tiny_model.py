"""Builds tiny-htdemucs.onnx: htdemucs's inputs, outputs, names and shapes, and no weights.

Stem s (drums, bass, other, vocals) is w_s * mix with w = 0.1, 0.2, 0.3, 0.4, half of it through the
frequency branch (the spectrogram scaled) and half through the time branch. The four stems sum to
the mix, so tests of the host code (STFT, iSTFT, chunking, overlap-add, normalization, resume)
can check exact answers in milliseconds. Run: python3 models/tiny/make_tiny_model.py
(needs the `onnx` package: pip install onnx==1.19.1).
"""
import os

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

T, F, FR = 343980, 2048, 336
w = np.array([0.1, 0.2, 0.3, 0.4], dtype=np.float32) / 2

mix = helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 2, T])
spec = helper.make_tensor_value_info("onnx::ReduceMean_1", TensorProto.FLOAT, [1, 4, F, FR])
freq = helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 4, 4, F, FR])
time = helper.make_tensor_value_info("5073", TensorProto.FLOAT, [1, 4, 2, T])

inits = [
    numpy_helper.from_array(np.array([1], dtype=np.int64), "axis1"),
    numpy_helper.from_array(w.reshape(1, 4, 1, 1, 1), "wf"),
    numpy_helper.from_array(w.reshape(1, 4, 1, 1), "wt"),
]
nodes = [
    helper.make_node("Unsqueeze", ["onnx::ReduceMean_1", "axis1"], ["spec5"]),  # [1,1,4,F,FR]
    helper.make_node("Mul", ["spec5", "wf"], ["output"]),  # broadcast → [1,4,4,F,FR]
    helper.make_node("Unsqueeze", ["input", "axis1"], ["mix4"]),  # [1,1,2,T]
    helper.make_node("Mul", ["mix4", "wt"], ["5073"]),  # → [1,4,2,T]
]
graph = helper.make_graph(nodes, "tiny-htdemucs", [mix, spec], [freq, time], inits)
model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="stemflow")
model.ir_version = 8
onnx.checker.check_model(model)
out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "tiny-htdemucs.onnx")
onnx.save(model, out)
print(out, os.path.getsize(out), "bytes")
