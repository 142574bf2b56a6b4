"""Weights the exported graph computes at run time from constants, folded into constants."""
import numpy as np
from onnx import ModelProto, numpy_helper

from graph import index, inferred_shapes, rebuild


def fold_weights(model: ModelProto) -> int:
    """MatMul weights the export computes at run time from an initializer (the temporal layers'
    cross-attention slices its packed in-projection: Transpose(Slice(W))) become initializers, so
    the quantizer, which only quantizes constant weights, sees them. Returns how many."""
    g = model.graph
    idx = index(g)
    initializers, producer, consumers = idx
    shapes = inferred_shapes(model)

    def const(name):
        # An initializer, a Constant, or arithmetic on them (the export computes the slice's end
        # as start + width).
        known = idx.value(name)
        if known is not None:
            return known
        n = producer.get(name)
        if n is None:
            return None
        if n.op_type == 'Slice' and producer.get(n.input[0]) is not None and producer[n.input[0]].op_type == 'Shape' and len(n.input) == 4:
            # The dims of a shape some of whose other dims are not static.
            shape_of = producer[n.input[0]]
            dims = shapes.get(shape_of.input[0])
            bounds = [const(i) for i in n.input[1:]]
            if dims is None or len(shape_of.attribute) or any(b is None for b in bounds) or bounds[2].tolist() != [0]:
                return None
            picked = dims[int(bounds[0][0]):int(bounds[1][0])]
            return np.array(picked, dtype=np.int64) if None not in picked else None
        args = [const(i) for i in n.input]
        if any(a is None for a in args):
            return None
        if n.op_type in ('Add', 'Sub', 'Mul'):
            return {'Add': np.add, 'Sub': np.subtract, 'Mul': np.multiply}[n.op_type](*args)
        if n.op_type == 'Slice' and len(args) == 4 and args[3].tolist() == [0] and args[0].ndim == 1:
            return args[0][int(args[1][0]):int(args[2][0])]
        if n.op_type == 'Squeeze' and len(args) == 2:
            return np.squeeze(args[0], axis=tuple(int(a) for a in args[1]))
        if n.op_type == 'Unsqueeze' and len(args) == 2:
            return np.expand_dims(args[0], axis=tuple(int(a) for a in args[1]))
        return None

    folded = 0
    for mm in [n for n in g.node if n.op_type == 'MatMul']:
        tr = producer.get(mm.input[1])
        sl = producer.get(tr.input[0]) if tr is not None and tr.op_type == 'Transpose' else None
        if sl is None or sl.op_type != 'Slice' or sl.input[0] not in initializers or len(consumers[tr.output[0]]) != 1:
            continue
        args = [const(i) for i in sl.input[1:]]
        if any(a is None for a in args):
            continue
        data = numpy_helper.to_array(initializers[sl.input[0]])
        starts, ends = args[0], args[1]
        axes = args[2] if len(args) > 2 else np.arange(len(starts))
        steps = args[3] if len(args) > 3 else np.ones(len(starts), dtype=np.int64)
        picked = [slice(None)] * data.ndim
        for a, b, e, st in zip(axes, starts, ends, steps):
            picked[int(a)] = slice(int(b), int(e), int(st))
        perm = next((list(a.ints) for a in tr.attribute if a.name == 'perm'), None)
        value = np.transpose(data[tuple(picked)], perm)
        name = mm.name + '/weight'
        g.initializer.append(numpy_helper.from_array(np.ascontiguousarray(value), name))
        initializers[name] = g.initializer[-1]
        mm.input[1] = name
        folded += 1
    rebuild(model, list(g.node))
    return folded
