"""The fast graph: htdemucs with its MatMul weights quantized to int8 (dynamic quantization:
activations are quantized at run time), every other node in fp32. Measured on the project's
2-core machine: convolutions quantized too (dynamic or static QDQ) were slower and lost 2 dB of
agreement on the spectral branch, so they stay fp32. Deterministic: the same input and tool
versions give the same bytes, which the manifest pins by sha256.

    python make_fast.py <htdemucs.onnx> <out.onnx>
"""
import logging
import sys

from onnxruntime.quantization import QuantType, quantize_dynamic

logging.getLogger().setLevel(logging.ERROR)  # the quantizer's advice to pre-process does not apply: shapes are static
quantize_dynamic(sys.argv[1], sys.argv[2], op_types_to_quantize=["MatMul"], weight_type=QuantType.QInt8)
