"""The fast graph: htdemucs with its MatMul weights quantized to int8 (dynamic quantization:
activations are quantized at run time) and then its attention cores fused into ONNX Runtime's
MultiHeadAttention (fuse_attention.py; in that order: the quantizer cannot type the fused node's
output), every other node in fp32. Measured on the project's 2-core machine:
convolutions quantized too (dynamic or static QDQ) were slower and lost 2 dB of agreement on the
spectral branch, so they stay fp32; the attention's own products (q·kᵀ, ·v) quantized lost 15 dB
on the spectral branch for less than the fusion gains. Deterministic: the same input and tool
versions give the same bytes, which the manifest pins by sha256.

    python make_fast.py <htdemucs.onnx> <out.onnx>
"""
import logging
import sys
import tempfile
from pathlib import Path

import onnx
from onnxruntime.quantization import QuantType, quantize_dynamic

from fuse_attention import fuse_attention

logging.getLogger().setLevel(logging.ERROR)  # the quantizer's advice to pre-process does not apply: shapes are static
with tempfile.TemporaryDirectory() as tmp:
    quantized = Path(tmp) / 'quantized.onnx'
    quantize_dynamic(sys.argv[1], quantized, op_types_to_quantize=["MatMul"], weight_type=QuantType.QInt8)
    model = onnx.load(quantized)
fused = fuse_attention(model)
if fused != 10:
    sys.exit(f'fused {fused} attention cores; htdemucs has 10 (another export?)')
onnx.save(model, sys.argv[2])
