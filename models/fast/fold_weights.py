"""Weights the exported graph computes at run time from constants, folded into constants."""
import numpy as np
from onnx import ModelProto, numpy_helper

from graph import index, rebuild, runtime_values


def fold_weights(model: ModelProto) -> int:
    """MatMul weights the export computes at run time from an initializer (the temporal layers'
    cross-attention slices its packed in-projection, the slice's end derived from an activation's
    shape: Transpose(Slice(W))) become initializers, so the quantizer, which only quantizes constant
    weights, sees them. Their values are ONNX Runtime's (a slice and a transpose: exact copies).
    Returns how many."""
    g = model.graph
    initializers, producer, consumers = index(g)
    folded = {}
    for mm in [n for n in g.node if n.op_type == 'MatMul']:
        tr = producer.get(mm.input[1])
        sl = producer.get(tr.input[0]) if tr is not None and tr.op_type == 'Transpose' else None
        if sl is not None and sl.op_type == 'Slice' and sl.input[0] in initializers and len(consumers[tr.output[0]]) == 1:
            folded[mm.name] = (mm, tr.output[0])
    values = runtime_values(model, [w for _, w in folded.values()]) if folded else {}
    for name, (mm, weight) in folded.items():
        g.initializer.append(numpy_helper.from_array(np.ascontiguousarray(values[weight]), name + '/weight'))
        mm.input[1] = name + '/weight'
    rebuild(model, list(g.node))
    return len(folded)
