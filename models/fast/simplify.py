"""Exact rewrites of the exported htdemucs graph that ONNX Runtime's own optimizer does not make,
each taking a full pass over a large activation out (the separator runs one thread per session,
where those passes were a fifth of a run, and the memory they move is what two sessions side by
side contend for):

- a gated linear unit fed by a convolution (each layer's `rewrite`: Conv → Split → Sigmoid → Mul)
  becomes two convolutions, one per half of the weights; ONNX Runtime then fuses the gate's
  Sigmoid into its convolution, and the Split's copy is gone;
- a GroupNorm with one group (exported as Reshape → InstanceNormalization → Reshape → Mul(γ) →
  Add(β): five passes) becomes one pass: where the norm's batch is one sample (the temporal branch,
  the transformer's norms) its statistics are two scalars, E[x] and E[x²] − E[x]², reduced without
  a copy and handed to a BatchNormalization as every channel's mean and variance, which
  normalizes and applies γ and β together; where it is many (the spectral branch's DConv, one
  sample per frequency row of 336 frames) a LayerNormalization over (channels, time) with γ and β
  spread over the frames (ORT's LayerNormalization broadcasts a [C, 1] γ too, but through a
  generic path that measured slower than the five passes);
- a DConv layer's LayerScale (a per-channel Mul after the gate) is folded into the gate's value
  half of the norm's γ and β: (a·γ + β)·s·σ(b) = (a·γs + βs)·σ(b);
- a transposed convolution with kernel 2·stride followed by the decoder's crop becomes a
  convolution over three taps with one group of output channels per phase, interleaved by a
  Transpose (ORT's ConvTranspose scatters its product through a buffer kernel-size times its
  output).

Every rewrite matches the exported pattern exactly or leaves the nodes alone, and make_fast.py
checks the counts against htdemucs's. The temporal branch's lengths are computed from shapes at run
time, so the shapes the rewrites need are asked of ONNX Runtime (one run on zeros). The outputs
agree with the graph before them to float rounding, except where an int8 activation rounds the
other way downstream; the fidelity test holds the result to the full graph.
"""
import collections

import numpy as np
from onnx import ModelProto, helper, numpy_helper

from graph import index, rebuild, runtime_values

# The most elements a spread γ or β may have (4 MB of float32 each).
SPREAD_LIMIT = 1 << 20


class Rewrite:
    """A graph being rewritten: its index and shapes, the nodes taken out and put in, what each
    rewrite did (its count), and the helpers the rewrites share."""

    def __init__(self, model: ModelProto):
        self.model, self.g = model, model.graph
        idx = index(self.g)
        self.initializers, self.producer, self.consumers = idx
        self.array = idx.value
        # The shapes the rewrites read: the norms' inputs and the transposed convolutions' crops.
        # ONNX's inference leaves the temporal branch's lengths open (they are computed from shapes
        # at run time), so they are asked of ONNX Runtime: one run on zeros of the static-shaped graph.
        g, producer, consumers = self.g, self.producer, self.consumers
        wanted = [producer[n.input[0]].input[0] for n in g.node if n.op_type == 'InstanceNormalization' and n.input[0] in producer]
        wanted += [c.output[0] for n in g.node if n.op_type == 'ConvTranspose' for c in consumers[n.output[0]]]
        wanted += [n.input[0] for n in g.node if n.op_type == 'ConvTranspose']
        self.shapes = {name: list(v.shape) for name, v in runtime_values(model, wanted).items()}
        self.graph_outputs = {o.name for o in g.output}
        self.removed, self.added = set(), []
        self.counts = collections.Counter()

    def sole(self, name, op):
        """The one node reading `name`, if it is an `op` and `name` is not a graph output."""
        cs = self.consumers[name]
        return cs[0] if len(cs) == 1 and cs[0].op_type == op and name not in self.graph_outputs else None

    def private_initializer(self, name):
        """An initializer only one node reads (so it can be rewritten in place)."""
        return name in self.initializers and len(self.consumers[name]) == 1

    def add_initializer(self, name, value):
        return self._add(numpy_helper.from_array(np.ascontiguousarray(value.astype(np.float32)), name))

    def add_ints(self, name, values):
        return self._add(numpy_helper.from_array(np.array(values, dtype=np.int64), name))

    def _add(self, t):
        self.g.initializer.append(t)
        self.initializers[t.name] = t
        return t.name

    def set_initializer(self, name, value):
        self.initializers[name].CopyFrom(numpy_helper.from_array(np.ascontiguousarray(value.astype(np.float32)), name))

    def glu(self, split):
        """(value, gate Sigmoid, product Mul) of a Split → Sigmoid → Mul gate, or None."""
        axis = next((a.i for a in split.attribute if a.name == 'axis'), 0)
        if axis != 1 or len(split.input) != 1 or len(split.output) != 2:
            return None
        sig = self.sole(split.output[1], 'Sigmoid')
        mul = self.sole(split.output[0], 'Mul')
        if sig is None or mul is None or self.sole(sig.output[0], 'Mul') is not mul:
            return None
        return split.output[0], sig, mul


def simplify(model: ModelProto) -> dict:
    """Rewrites `model` in place; returns how many of each rewrite it made."""
    r = Rewrite(model)
    for rewrite in (split_conv_gates, fold_layer_scales, one_pass_group_norms, transposed_convs_as_convs):
        rewrite(r)
    rebuild(model, [n for n in r.g.node if id(n) not in r.removed] + r.added)
    return dict(r.counts)


def split_conv_gates(r: 'Rewrite') -> None:
    # 1. Conv → GLU: two convolutions.
    for split in [n for n in r.g.node if n.op_type == 'Split']:
        conv = r.producer.get(split.input[0])
        if conv is None or conv.op_type != 'Conv' or r.glu(split) is None or r.sole(conv.output[0], 'Split') is not split or len(conv.input) != 3:
            continue
        w, b = r.array(conv.input[1]), r.array(conv.input[2])
        if w is None or b is None or w.shape[0] % 2:
            continue
        half = w.shape[0] // 2
        for part, out in ((0, split.output[0]), (1, split.output[1])):
            name = f'{conv.name}/half{part}'
            rows = slice(part * half, (part + 1) * half)
            r.added.append(helper.make_node('Conv', [conv.input[0], r.add_initializer(name + '/W', w[rows]), r.add_initializer(name + '/B', b[rows])], [out], name=name))
            r.added[-1].attribute.extend(conv.attribute)
        r.removed.update((id(conv), id(split)))
        r.counts['conv_glu'] += 1


def fold_layer_scales(r: 'Rewrite') -> None:
    # 2. LayerScale after a norm-fed gate: folded into the value half of γ and β.
    for split in [n for n in r.g.node if n.op_type == 'Split' and id(n) not in r.removed]:
        gate = r.glu(split)
        add = r.producer.get(split.input[0])
        if gate is None or add is None or add.op_type != 'Add':
            continue
        mul = r.producer.get(add.input[0])
        scale_mul = r.sole(gate[2].output[0], 'Mul')
        if mul is None or mul.op_type != 'Mul' or scale_mul is None or r.sole(add.output[0], 'Split') is not split or r.sole(mul.output[0], 'Add') is not add:
            continue
        s_name = next((i for i in scale_mul.input if i in r.initializers), None)
        gamma, beta, s = r.array(mul.input[1]), r.array(add.input[1]), r.array(s_name) if s_name else None
        if s is None or gamma is None or beta is None or not r.private_initializer(mul.input[1]) or not r.private_initializer(add.input[1]) or gamma.ndim != 2 or gamma.shape[1] != 1 or gamma.shape != beta.shape or s.shape != (gamma.shape[0] // 2, 1):
            continue
        half = s.shape[0]
        gamma, beta = gamma.copy(), beta.copy()
        gamma[:half] *= s
        beta[:half] *= s
        r.set_initializer(mul.input[1], gamma)
        r.set_initializer(add.input[1], beta)
        other = next(i for i in scale_mul.input if i != s_name)
        for c in r.consumers[scale_mul.output[0]]:
            c.input[:] = [other if i == scale_mul.output[0] else i for i in c.input]
        if scale_mul.output[0] in r.graph_outputs:
            raise ValueError(f'{scale_mul.name}: a LayerScale that is a graph output')
        r.removed.add(id(scale_mul))
        r.counts['layer_scale'] += 1


def one_pass_group_norms(r: 'Rewrite') -> None:
    # 3. GroupNorm(1, C) → one BatchNormalization (one sample) or LayerNormalization (many) pass.
    for norm in [n for n in r.g.node if n.op_type == 'InstanceNormalization']:
        flat, back = r.producer.get(norm.input[0]), r.sole(norm.output[0], 'Reshape')
        if flat is None or flat.op_type != 'Reshape' or back is None:
            continue
        mul = r.sole(back.output[0], 'Mul')
        add = r.sole(mul.output[0], 'Add') if mul is not None else None
        if add is None or not np.array_equal(r.array(flat.input[1]), [0, 1, -1]):
            continue
        shape_of = r.producer.get(back.input[1])
        if shape_of is None or shape_of.op_type != 'Shape' or shape_of.input[0] != flat.input[0]:
            continue
        x = flat.input[0]
        shape = r.shapes.get(x)
        one, zero = r.array(norm.input[1]), r.array(norm.input[2])
        gamma, beta = r.array(mul.input[1]), r.array(add.input[1])
        if shape is None or len(shape) != 3 or one is None or zero is None or one.size != 1 or float(one.ravel()[0]) != 1.0 or float(zero.ravel()[0]) != 0.0:
            continue
        if gamma is None or beta is None or gamma.shape != (shape[1], 1) or beta.shape != (shape[1], 1):
            continue
        eps = next((a.f for a in norm.attribute if a.name == 'epsilon'), 1e-5)
        if shape[0] == 1:
            # One sample: its statistics are two scalars, and BatchNormalization with them as every
            # channel's mean and variance normalizes and applies γ and β in one pass.
            name = norm.name.rsplit('/', 1)[0] + '/BatchNormalization'
            c = shape[1]
            r.added += [
                helper.make_node('ReduceMean', [x], [name + '/mean'], name=name + '/mean', keepdims=0),
                helper.make_node('ReduceSumSquare', [x], [name + '/sum_sq'], name=name + '/sum_sq', keepdims=0),
                helper.make_node('Mul', [name + '/sum_sq', r.add_initializer(name + '/inv_n', np.array(1.0 / (shape[1] * shape[2])))], [name + '/mean_sq'], name=name + '/mean_sq'),
                helper.make_node('Mul', [name + '/mean', name + '/mean'], [name + '/sq_mean'], name=name + '/sq_mean'),
                helper.make_node('Sub', [name + '/mean_sq', name + '/sq_mean'], [name + '/var'], name=name + '/var'),
                helper.make_node('Expand', [name + '/mean', r.add_ints(name + '/c', [c])], [name + '/means'], name=name + '/means'),
                helper.make_node('Expand', [name + '/var', name + '/c'], [name + '/vars'], name=name + '/vars'),
                helper.make_node('BatchNormalization', [x, r.add_initializer(name + '/scale', gamma.ravel()), r.add_initializer(name + '/bias', beta.ravel()), name + '/means', name + '/vars'], [add.output[0]], name=name, epsilon=eps),
            ]
            r.removed.update((id(flat), id(norm), id(back), id(mul), id(add)))
            r.counts['norm_as_batch_norm'] += 1
            continue
        if shape[1] * shape[2] > SPREAD_LIMIT:
            continue
        name = norm.name.rsplit('/', 1)[0] + '/LayerNormalization'
        spread = (shape[1], shape[2])
        r.added.append(helper.make_node(
            'LayerNormalization', [x, r.add_initializer(name + '/scale', np.broadcast_to(gamma, spread)), r.add_initializer(name + '/bias', np.broadcast_to(beta, spread))],
            [add.output[0]], name=name, axis=1, epsilon=eps))
        r.removed.update((id(flat), id(norm), id(back), id(mul), id(add)))
        r.counts['norm_as_layer_norm'] += 1


def transposed_convs_as_convs(r: 'Rewrite') -> None:
    # 4. ConvTranspose with kernel 2·stride and the decoder's crop → Conv + interleave. Output
    # sample s·j + r of the crop reads inputs j-1, j and j+1 through taps of the transposed kernel, so
    # one convolution with s·C_out channels (one group per phase r) computes every phase, and a
    # Reshape → Transpose → Reshape interleaves them. ONNX Runtime's ConvTranspose scatters its
    # product through a buffer K times the output; its Conv is the blocked, vectorized one.
    for ct in [n for n in r.g.node if n.op_type == 'ConvTranspose']:
        attrs = {a.name: (list(a.ints) if a.ints else a.i) for a in ct.attribute}
        crop = r.sole(ct.output[0], 'Slice')
        w = r.array(ct.input[1])
        b = r.array(ct.input[2]) if len(ct.input) > 2 else None
        if crop is None or w is None or b is None or attrs.get('group', 1) != 1 or 'output_padding' in attrs or 'output_shape' in attrs:
            continue
        kernel, strides = attrs.get('kernel_shape'), attrs.get('strides')
        if not kernel or kernel[1:] != [1] * (len(kernel) - 1) or strides[1:] != [1] * (len(strides) - 1) or any(attrs.get('pads', [0])) or any(d != 1 for d in attrs.get('dilations', [1])):
            continue
        stride, size = strides[0], kernel[0]
        starts = r.array(crop.input[1])
        axes = r.array(crop.input[3]) if len(crop.input) > 3 else None
        steps = r.array(crop.input[4]) if len(crop.input) > 4 else None
        if size != 2 * stride or starts is None or axes is None or list(axes) != [2] or (steps is not None and list(steps) != [1]):
            continue
        start = int(starts[0])
        # What the crop keeps (the temporal branch computes its end from a skip's length) and what
        # the interleave makes: stride·L samples, cropped again where the crop keeps fewer.
        length, made = r.shapes[crop.output[0]][2], stride * r.shapes[ct.input[0]][2]
        if length > made:
            continue
        c_in, c_out = w.shape[0], w.shape[1]
        taps = {}
        for phase in range(stride):
            for d in range(-2, 3):
                k = phase + start - stride * d
                if 0 <= k < size:
                    taps[(phase, d)] = k
        lo, hi = min(d for _, d in taps), max(d for _, d in taps)
        if lo != -1 or hi != 1:
            continue
        w2 = np.zeros((stride * c_out, c_in, hi - lo + 1) + w.shape[3:], dtype=np.float32)
        for (phase, d), k in taps.items():
            w2[phase * c_out:(phase + 1) * c_out, :, d - lo] = w[:, :, k].transpose(1, 0, *range(2, w.ndim - 1))
        p = ct.name.rsplit('/', 1)[0] + '/phases'
        two_d = len(kernel) == 2
        t = r.shapes[ct.input[0]][-1] if two_d else None
        conv = helper.make_node('Conv', [ct.input[0], r.add_initializer(p + '/W', w2), r.add_initializer(p + '/B', np.tile(b, stride))], [p + '/out'], name=p,
                                kernel_shape=[hi - lo + 1] + [1] * (len(kernel) - 1), pads=[-lo] + [0] * (len(kernel) - 1) + [hi] + [0] * (len(kernel) - 1))

        split_shape = [0, stride, c_out, -1] + ([t] if two_d else [])
        merged_shape = [0, c_out, -1] + ([t] if two_d else [])
        perm = [0, 2, 3, 1] + ([4] if two_d else [])
        out = crop.output[0] if length == made else p + '/interleaved'
        r.added += [
            conv,
            helper.make_node('Reshape', [p + '/out', r.add_ints(p + '/split_shape', split_shape)], [p + '/split'], name=p + '/split'),
            helper.make_node('Transpose', [p + '/split'], [p + '/moved'], name=p + '/moved', perm=perm),
            helper.make_node('Reshape', [p + '/moved', r.add_ints(p + '/merged_shape', merged_shape)], [out], name=p + '/merged'),
        ]
        if length < made:
            r.added.append(helper.make_node('Slice', [out, r.add_ints(p + '/starts', [0]), r.add_ints(p + '/ends', [length]), r.add_ints(p + '/axes', [2])], [crop.output[0]], name=p + '/crop'))
        r.removed.update((id(ct), id(crop)))
        r.counts['conv_transpose'] += 1
