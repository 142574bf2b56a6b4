"""The fast graph: htdemucs with its MatMul weights quantized to int8 (dynamic quantization:
activations are quantized at run time; the four cross-attention projections the export slices out
of a packed weight at run time are folded into constants first, so the quantizer, which takes only
constant weights, reaches them), its attention cores fused into ONNX Runtime's MultiHeadAttention
(fuse_attention.py; after the quantizer, which cannot type the fused node's output) and exact
rewrites that take whole passes over large activations out (simplify.py); every other node in fp32.
Measured on the project's 2-core machines: convolutions quantized too (dynamic or static QDQ) were
slower and lost 2 dB of agreement on the spectral branch, so they stay fp32; the attention's own
products (q·kᵀ, ·v) quantized lost 15 dB on the spectral branch for less than the fusion gains.
Deterministic: the same input and tool versions give the same bytes, which the manifest pins by
sha256.

    python make_fast.py <htdemucs.onnx> <out.onnx>
"""
import logging
import sys
import tempfile
from pathlib import Path

import onnx
from onnxruntime.quantization import QuantType, quantize_dynamic

from fuse_attention import fuse_attention
from fold_weights import fold_weights
from simplify import simplify

# What htdemucs's export has of each pattern; another count means another export, to be looked at.
EXPECTED = {'weights': 4, 'attention': 10, 'conv_glu': 16, 'layer_scale': 32, 'norm_as_batch_norm': 42, 'norm_as_layer_norm': 32, 'conv_transpose': 8}

logging.getLogger().setLevel(logging.ERROR)  # the quantizer's advice to pre-process does not apply: shapes are static
with tempfile.TemporaryDirectory() as tmp:
    model = onnx.load(sys.argv[1])
    counts = {'weights': fold_weights(model)}
    folded, quantized = Path(tmp) / 'folded.onnx', Path(tmp) / 'quantized.onnx'
    onnx.save(model, folded)
    quantize_dynamic(folded, quantized, op_types_to_quantize=["MatMul"], weight_type=QuantType.QInt8)
    model = onnx.load(quantized)
counts['attention'] = fuse_attention(model)
counts.update(simplify(model))
if counts != EXPECTED:
    sys.exit(f'rewrote {counts}; htdemucs has {EXPECTED} (another export?)')
onnx.save(model, sys.argv[2])
