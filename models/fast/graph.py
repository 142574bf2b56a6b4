"""What the fast graph's rewrites share: an index of a graph's nodes and initializers, the shapes
ONNX infers, values ONNX Runtime computes, and putting a rewritten node list back into a valid
graph."""
import collections
from typing import NamedTuple

import numpy as np
from onnx import GraphProto, ModelProto, helper, numpy_helper, shape_inference


class Index(NamedTuple):
    initializers: dict
    producer: dict
    consumers: dict

    def value(self, name):
        """The value of an initializer or a Constant node's output, as numpy; None for anything else."""
        if name in self.initializers:
            return numpy_helper.to_array(self.initializers[name])
        n = self.producer.get(name)
        if n is not None and n.op_type == 'Constant' and n.attribute[0].name == 'value':
            return numpy_helper.to_array(n.attribute[0].t)
        return None


def index(g: GraphProto) -> Index:
    """Initializers by name, each value's producing node, each value's reading nodes."""
    consumers = collections.defaultdict(list)
    for n in g.node:
        for i in n.input:
            consumers[i].append(n)
    return Index({i.name: i for i in g.initializer}, {o: n for n in g.node for o in n.output}, consumers)


def inferred_shapes(model: ModelProto, data_prop: bool = False) -> dict:
    """Each value's shape as ONNX infers it, a dim it cannot tell as None."""
    inferred = shape_inference.infer_shapes(model, data_prop=data_prop).graph
    return {v.name: [d.dim_value if d.HasField('dim_value') else None for d in v.type.tensor_type.shape.dim] for v in list(inferred.value_info) + list(inferred.output)}


def rebuild(model: ModelProto, nodes) -> None:
    """Makes `nodes` the graph's: drops what no longer feeds an output, restores topological order
    (ONNX requires it; stable: the given order wherever it allows), drops unused initializers."""
    g = model.graph
    outputs = {o.name for o in g.output}
    while True:
        used = {i for n in nodes for i in n.input} | outputs
        live = [n for n in nodes if any(o in used for o in n.output)]
        if len(live) == len(nodes):
            break
        nodes = live
    ready = {i.name for i in g.input} | {i.name for i in g.initializer} | {''}
    ordered = []
    while nodes:
        rest = []
        for n in nodes:
            if all(i in ready for i in n.input):
                ordered.append(n)
                ready.update(n.output)
            else:
                rest.append(n)
        if len(rest) == len(nodes):
            raise ValueError('the rewritten graph has a cycle')
        nodes = rest
    used = {i for n in ordered for i in n.input}
    kept = [i for i in g.initializer if i.name in used]
    del g.initializer[:]
    g.initializer.extend(kept)
    del g.node[:]
    g.node.extend(ordered)


def runtime_values(model: ModelProto, names) -> dict:
    """The values of `names` in one run of the model on zeros (its inputs' shapes are static): what
    the export computes from shapes at run time (the temporal branch's lengths, the slices of a
    packed weight), as ONNX Runtime computes it."""
    import onnxruntime as ort
    probe = ModelProto()
    probe.CopyFrom(model)
    for name in dict.fromkeys(names):
        probe.graph.output.append(helper.make_tensor_value_info(name, 1, None))
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(probe.SerializeToString(), options, providers=['CPUExecutionProvider'])
    feeds = {i.name: np.zeros(i.shape, dtype=np.float32) for i in session.get_inputs()}
    outputs = [o.name for o in session.get_outputs()]
    return dict(zip(outputs, session.run(outputs, feeds)))
