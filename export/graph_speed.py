"""Speed rewrites of the simplified FP32 graph: the same function in patterns that ONNX
Runtime's CPU provider runs faster, built only from standard ONNX operators (opset 17+,
all in TensorRT's parser matrix). Pure onnx + numpy; torch is never imported.

Each pass takes an ``onnx.ModelProto``, rewrites it in place and returns how many patterns
it changed; :func:`speed_up` runs them (:data:`DEFAULT_PASSES` unless told) in this order
on a copy, removes what they left dead and reports the counts, so the export can record them. None changes what the graph
computes; the rounding of some sums moves (ONNX Runtime's LayerNormalization kernel takes
the variance as E[x^2] - E[x]^2, the traced chain as E[(x - E[x])^2]), which is why the
export re-checks the result against PyTorch and keeps the graph before if it misses.

``channel_layernorm``
    The channel LayerNorm of the Restormer blocks is traced as ReduceMean over axis 1 of an
    NCHW tensor, Sub, Mul, ReduceMean, Add(eps), Sqrt, Div and the per-channel Mul/Add
    affine: nine kernels, two of them slow strided reductions. It becomes
    Transpose(NCHW->NHWC), LayerNormalization(axis=-1, the affine as its scale and bias),
    Transpose(NHWC->NCHW). ONNX Runtime's NCHWc layout transformer turns the first
    transpose into the reorder it needs after the convolution before anyway
    (``ReorderOutput`` with ``channels_last``), and the second into the reorder before the
    next convolution when that is its only reader. ``Shape`` nodes that read the norm's
    output read its input instead (same shape).
``broadcast_expand``
    ``Div(b, Expand(a, Shape(b)))`` (and Mul/Add/Sub), which the traced ``F.normalize``
    contains, becomes ``Div(b, a)``: the broadcast gives the same values without
    materialising the expanded tensor.
``ffn_channel_pad``
    The gated FFN's hidden width (``int(C * 2.66)``: 127, 255, 510, 1021 in the published
    configuration) is padded with zero weights to a multiple of 16, the NCHWc block of
    AVX-512 (8 on AVX2). The depthwise conv and the output projection then run in the
    NCHWc layout instead of falling back to NCHW with reorders around them. The padded
    channels are exact zeros and meet zero weights, so the output is unchanged.
``chunk_to_convs``
    ``chunk(k, dim=1)`` right after a 1x1 projection and its depthwise conv (the FFN's two
    halves, the attention's q, k, v), a Split that copies every channel, becomes one
    projection and one depthwise conv per chunk: the same output channels, computed by k
    smaller convolutions, which ONNX Runtime keeps in NCHWc through the FFN's GELU gate.
``static_reshape``
    Replaces the Shape/Gather/Slice/Concat chains that compute a Reshape's target by a
    constant with 0 (copy) and -1 (infer) where that is what the target always is, or by
    ``Shape(t)`` of a tensor ``t`` whose shape it always equals (preferably one that a
    Reshape or MatMul reads anyway: ONNX Runtime would convert a convolution's NCHWc output
    back to NCHW just for a Shape); then chains of view ops ending in a Reshape read the
    chain's source. "Always" is established by ONNX shape inference with data propagation
    at three unrelated concrete input shapes (batch, height and width all different), and
    each chosen target is re-checked against all three.
``matmul_transpose``
    ``Transpose(MatMul(a, W))`` over the last two axes with a constant ``W`` that widens
    ``a`` (the degradation query's ``(attn @ ndr).transpose(1, 2)``: 32 NDR entries to 128
    channels at full resolution) becomes ``MatMul(W^T, Transpose(a))``; ONNX Runtime folds
    the now smaller transpose into its MatMul kernel.
``pixel_unshuffle_conv``
    Restormer's Downsample (3x3 conv, then PixelUnshuffle(2), traced as Reshape/Transpose
    chains) becomes one 4x4 conv with stride 2 whose output channels are the unshuffled
    ones (checked by moving an index tensor through the chain at the probe shapes): the
    same sums plus zero taps, and the level that follows starts from a convolution output,
    which ONNX Runtime keeps in NCHWc with its residual adds and norms.
``symbolic_shapes`` (last)
    Every intermediate tensor's shape goes into ``value_info`` with symbolic dims named
    after the input's (``batch``, ``height/2``, ``height*width/16``): ONNX shape inference
    loses the spatial dims after the first convolution, and without them ONNX Runtime's
    layout transformer cannot tell that the operands of a residual add or of the FFN gate
    have the same shape, so it runs them outside NCHWc with reorders around them.
"""

from __future__ import annotations

import functools
import itertools
from collections import Counter, defaultdict, deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

FFN_CHANNEL_MULTIPLE = 16  # the NCHWc block of AVX-512; a multiple of AVX2's 8
ELEMENTWISE = frozenset({"Add", "Sub", "Mul", "Div", "Erf", "Tanh", "Sigmoid", "Relu", "Gelu", "Neg"})
VIEW_OPS = frozenset({"Reshape", "Squeeze", "Unsqueeze", "Flatten"})
BROADCAST_BINARY = frozenset({"Add", "Sub", "Mul", "Div"})
# ops ONNX Runtime's CPU provider runs on plain NCHW tensors only (never in its NCHWc layout)
PLAIN_LAYOUT_OPS = frozenset({"Reshape", "MatMul", "Flatten", "Squeeze", "Unsqueeze", "Split", "Slice",
                              "ReduceL2", "Softmax"})


# -- a small mutable view of a graph ---------------------------------------------------
class _Graph:
    """Producers, consumers and constants of ``model.graph``; ``refresh()`` after edits."""

    def __init__(self, model: onnx.ModelProto) -> None:
        self.model = model
        self.graph = model.graph
        self._counter = itertools.count()
        self.refresh()

    def refresh(self) -> None:
        self.producer: dict[str, onnx.NodeProto] = {o: n for n in self.graph.node for o in n.output if o}
        self.consumers: dict[str, list[onnx.NodeProto]] = defaultdict(list)
        for node in self.graph.node:
            for name in dict.fromkeys(i for i in node.input if i):  # a node once per tensor
                self.consumers[name].append(node)
        self.inits = {i.name: i for i in self.graph.initializer}
        self.outputs = {o.name for o in self.graph.output}
        self.names = set(self.producer) | set(self.inits) | {i.name for i in self.graph.input}
        self.node_names = {n.name for n in self.graph.node}

    def const(self, name: str) -> np.ndarray | None:
        """The value of an initializer or Constant node output, else None."""
        if name in self.inits:
            return numpy_helper.to_array(self.inits[name])
        node = self.producer.get(name)
        if node is not None and node.op_type == "Constant":
            for attr in node.attribute:
                if attr.name == "value":
                    return numpy_helper.to_array(attr.t)
        return None

    def sole_use(self, name: str, node: onnx.NodeProto) -> bool:
        """``name`` is read by ``node`` only and is not a graph output."""
        users = self.consumers.get(name, [])
        return name not in self.outputs and len(users) == 1 and users[0] is node

    def unique(self, base: str, taken: set[str]) -> str:
        name = base
        while name in taken:
            name = f"{base}_{next(self._counter)}"
        taken.add(name)
        return name

    def add_initializer(self, array: np.ndarray, base: str) -> str:
        name = self.unique(base, self.names)
        self.graph.initializer.append(numpy_helper.from_array(array, name))
        self.inits[name] = self.graph.initializer[-1]
        return name

    def node_name(self, base: str) -> str:
        return self.unique(base, self.node_names)

    def tensor_name(self, base: str) -> str:
        return self.unique(base, self.names)


def _drop_value_info(graph: onnx.GraphProto, names: Iterable[str]) -> None:
    """Forget the recorded shapes of tensors a pass changed (shape inference redoes them)."""
    names = set(names)
    keep = [v for v in graph.value_info if v.name not in names]
    if len(keep) != len(graph.value_info):
        del graph.value_info[:]
        graph.value_info.extend(keep)


def _attr(node: onnx.NodeProto, name: str, default: Any = None) -> Any:
    for attr in node.attribute:
        if attr.name == name:
            return helper.get_attribute_value(attr)
    return default


def _set_attr(node: onnx.NodeProto, name: str, value: Any) -> None:
    for index, attr in enumerate(node.attribute):
        if attr.name == name:
            del node.attribute[index]
            break
    node.attribute.append(helper.make_attribute(name, value))


def opset_version(model: onnx.ModelProto) -> int:
    return next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)


def _scope(name: str) -> str:
    return name.rsplit("/", 1)[0] if "/" in name else name


def _remove_and_sort(g: _Graph, removed: Iterable[onnx.NodeProto] = (), added: Iterable[onnx.NodeProto] = ()) -> None:
    gone = {id(n) for n in removed}
    nodes = [n for n in g.graph.node if id(n) not in gone] + list(added)
    del g.graph.node[:]
    g.graph.node.extend(_toposort(g.graph, nodes))
    g.refresh()


def _toposort(graph: onnx.GraphProto, nodes: list[onnx.NodeProto]) -> list[onnx.NodeProto]:
    """Nodes in an order where every input is produced first, as close to ``nodes`` as can be."""
    producer = {o: i for i, n in enumerate(nodes) for o in n.output if o}
    done = [False] * len(nodes)
    entered = [False] * len(nodes)
    order: list[onnx.NodeProto] = []
    for start in range(len(nodes)):
        stack = [(start, False)]
        while stack:
            index, expanded = stack.pop()
            if done[index]:
                continue
            if expanded:
                done[index] = True
                order.append(nodes[index])
                continue
            if entered[index]:
                raise ValueError(f"the rewritten graph has a cycle through {nodes[index].name or nodes[index].op_type}")
            entered[index] = True
            stack.append((index, True))
            for name in reversed(nodes[index].input):
                src = producer.get(name)
                if src is not None and not done[src]:
                    stack.append((src, False))
    return order


def remove_dead(model: onnx.ModelProto) -> int:
    """Drop nodes none of whose outputs is used, then unused initializers; the node count."""
    graph = model.graph
    outputs = {o.name for o in graph.output}
    removed = 0
    while True:
        used = {i for n in graph.node for i in n.input if i} | outputs
        keep = [n for n in graph.node if any(o in used for o in n.output if o)]
        if len(keep) == len(graph.node):
            break
        removed += len(graph.node) - len(keep)
        del graph.node[:]
        graph.node.extend(keep)
    used = {i for n in graph.node for i in n.input if i} | outputs
    inits = [i for i in graph.initializer if i.name in used]
    if len(inits) != len(graph.initializer):
        del graph.initializer[:]
        graph.initializer.extend(inits)
    return removed


# -- shapes ----------------------------------------------------------------------------
def _dims(value: onnx.ValueInfoProto) -> list[int | str | None] | None:
    t = value.type.tensor_type
    if not t.HasField("shape"):
        return None
    return [d.dim_value if d.HasField("dim_value") else (d.dim_param or None) for d in t.shape.dim]


def _infer(model: onnx.ModelProto, data_prop: bool = False) -> dict[str, tuple[int, list[int | str | None] | None]]:
    """name -> (element type, dims) for every tensor ONNX shape inference can type."""
    try:
        inferred = onnx.shape_inference.infer_shapes(model, data_prop=data_prop)
    except Exception:  # noqa: BLE001 - inference errors are C++ exceptions of several types
        return {}
    info: dict[str, tuple[int, list[int | str | None] | None]] = {}
    for value in itertools.chain(inferred.graph.input, inferred.graph.value_info, inferred.graph.output):
        info[value.name] = (value.type.tensor_type.elem_type, _dims(value))
    for init in model.graph.initializer:
        info[init.name] = (init.data_type, list(init.dims))
    return info


def probe_inputs(model: onnx.ModelProto, size_multiple: int = 8) -> list[dict[str, list[int]]]:
    """Three concrete shapes for the graph inputs, every dynamic axis different in each:
    the batch 1, 2, 3 and the spatial axes multiples of ``size_multiple`` in unrelated ratios."""
    m = max(1, size_multiple)
    values = ((1, 3 * m, 4 * m), (2, 5 * m, 2 * m), (3, 2 * m, 7 * m))
    init_names = {i.name for i in model.graph.initializer}
    probes = []
    for batch, height, width in values:
        probe = {}
        for value in model.graph.input:
            if value.name in init_names:
                continue
            dims = _dims(value) or []
            concrete = []
            for axis, dim in enumerate(dims):
                if isinstance(dim, int) and dim > 0:
                    concrete.append(dim)
                else:
                    concrete.append(batch if axis == 0 else height if axis == len(dims) - 2 else width
                                    if axis == len(dims) - 1 else m)
            probe[value.name] = concrete
        probes.append(probe)
    return probes


def probe_shapes(model: onnx.ModelProto, size_multiple: int = 8) -> list[dict[str, tuple[int, ...]]]:
    """For each of :func:`probe_inputs`, the concrete shape of every tensor that ONNX shape
    inference (with data propagation through the shape arithmetic) can fully resolve."""
    results = []
    for probe in probe_inputs(model, size_multiple):
        fixed = onnx.ModelProto()
        fixed.CopyFrom(model)
        for value in fixed.graph.input:
            if value.name in probe:
                shape = value.type.tensor_type.shape
                for dim, size in zip(shape.dim, probe[value.name]):
                    dim.Clear()
                    dim.dim_value = size
        info = _infer(fixed, data_prop=True)
        shapes: dict[str, tuple[int, ...]] = {}
        for name, (_, dims) in info.items():
            sizes = [d for d in dims or [] if isinstance(d, int) and d > 0]
            if dims is not None and len(sizes) == len(dims):
                shapes[name] = tuple(sizes)
        results.append(shapes)
        for name, shape in probe.items():
            results[-1][name] = tuple(shape)
    return results


# -- pass: channel LayerNorm -> LayerNormalization in NHWC ------------------------------
def _reduces_channels(g: _Graph, node: onnx.NodeProto, opset: int) -> bool:
    if node.op_type != "ReduceMean" or _attr(node, "keepdims", 1) != 1:
        return False
    if opset >= 18:
        given = g.const(node.input[1]) if len(node.input) > 1 and node.input[1] else None
        axes = None if given is None else [int(a) for a in np.asarray(given).reshape(-1)]
    else:
        attribute = _attr(node, "axes")
        axes = None if attribute is None else [int(a) for a in attribute]
    return axes in ([1], [-3])


def _scalar(g: _Graph, name: str) -> float | None:
    value = g.const(name)
    if value is None or value.size != 1 or value.dtype.kind != "f":
        return None
    return float(value.reshape(-1)[0])


def _per_channel(g: _Graph, name: str, channels: int | None) -> np.ndarray | None:
    """A constant laid out along axis 1 of an NCHW tensor ((C,1,1) or (1,C,1,1)), as (C,)."""
    value = g.const(name)
    if value is None or value.dtype != np.float32:
        return None
    shape = tuple(value.shape)
    while len(shape) < 4:
        shape = (1, *shape)
    if len(shape) != 4 or shape[0] != 1 or shape[2:] != (1, 1):
        return None
    if channels is not None and shape[1] != channels:
        return None
    return value.reshape(-1).astype(np.float32)


def _other(node: onnx.NodeProto, name: str) -> str | None:
    """The other input of a two-input node one of whose inputs is ``name``."""
    if len(node.input) != 2 or name not in node.input:
        return None
    return node.input[1] if node.input[0] == name else node.input[0]


def _single_consumer(g: _Graph, name: str, op_type: str) -> onnx.NodeProto | None:
    users = g.consumers.get(name, [])
    if name in g.outputs or len(users) != 1 or users[0].op_type != op_type:
        return None
    return users[0]


def channel_layernorm(model: onnx.ModelProto) -> int:
    """Channel LayerNorm chains -> Transpose + LayerNormalization(axis=-1) + Transpose."""
    opset = opset_version(model)
    if opset < 17:  # LayerNormalization is opset 17
        return 0
    g = _Graph(model)
    info = _infer(model)
    removed: list[onnx.NodeProto] = []
    added: list[onnx.NodeProto] = []
    probed: list[dict[str, tuple[int, ...]]] | None = None
    for mean in list(g.graph.node):
        if not _reduces_channels(g, mean, opset):
            continue
        x = mean.input[0]
        elem, dims = info.get(x, (0, None))
        if elem != TensorProto.FLOAT or dims is None or len(dims) != 4:
            continue
        channels = dims[1] if isinstance(dims[1], int) and dims[1] > 0 else None
        if channels is None:
            if probed is None:
                probed = probe_shapes(model)
            found = {p[x][1] for p in probed if x in p}
            channels = found.pop() if len(found) == 1 else None
        sub = _single_consumer(g, mean.output[0], "Sub")
        if sub is None or list(sub.input) != [x, mean.output[0]]:
            continue
        centred = sub.output[0]
        users = g.consumers.get(centred, [])
        if centred in g.outputs or len(users) != 2:
            continue
        square = next((u for u in users if (u.op_type == "Mul" and list(u.input) == [centred, centred])
                       or (u.op_type == "Pow" and u.input[0] == centred and _scalar(g, u.input[1]) == 2.0)), None)
        div = next((u for u in users if u.op_type == "Div" and u.input[0] == centred), None)
        if square is None or div is None or square is div:
            continue
        var = _single_consumer(g, square.output[0], "ReduceMean")
        if var is None or not _reduces_channels(g, var, opset):
            continue
        add = _single_consumer(g, var.output[0], "Add")
        eps = _scalar(g, _other(add, var.output[0]) or "") if add is not None else None
        if add is None or eps is None or eps < 0:
            continue
        sqrt = _single_consumer(g, add.output[0], "Sqrt")
        if sqrt is None or div.input[1] != sqrt.output[0] or not g.sole_use(sqrt.output[0], div):
            continue
        chain = [mean, sub, square, var, add, sqrt, div]
        end = div
        affine: dict[str, Any] = {}  # the per-channel scale (Mul) and bias (Add) that follow, if any
        for op in ("Mul", "Add"):
            node = _single_consumer(g, end.output[0], op)
            values = None if node is None else _per_channel(g, _other(node, end.output[0]) or "", channels)
            if node is not None and values is not None:
                channels = values.size
                chain.append(node)
                end = node
            affine[op] = values
        scale, bias = affine["Mul"], affine["Add"]
        if channels is None:
            continue
        scope = _scope(div.name or div.output[0])
        scale_name = g.add_initializer(scale if scale is not None else np.ones(channels, np.float32), f"{scope}/ln_scale")
        bias_name = g.add_initializer(bias if bias is not None else np.zeros(channels, np.float32), f"{scope}/ln_bias")
        nhwc = g.tensor_name(f"{scope}/nhwc_output_0")
        normed = g.tensor_name(f"{scope}/LayerNormalization_output_0")
        added += [
            helper.make_node("Transpose", [x], [nhwc], name=g.node_name(f"{scope}/Transpose_to_nhwc"), perm=[0, 2, 3, 1]),
            helper.make_node("LayerNormalization", [nhwc, scale_name, bias_name], [normed],
                             name=g.node_name(f"{scope}/LayerNormalization"), axis=-1, epsilon=eps),
            helper.make_node("Transpose", [normed], [end.output[0]], name=g.node_name(f"{scope}/Transpose_to_nchw"),
                             perm=[0, 3, 1, 2]),
        ]
        removed += chain
        for user in g.consumers.get(end.output[0], []):  # same shape as the norm's input
            if user.op_type == "Shape":
                user.input[0] = x
    if removed:
        _remove_and_sort(g, removed, added)
    return len(added) // 3


# -- pass: Expand feeding a broadcasting binary op --------------------------------------
def broadcast_expand(model: onnx.ModelProto, size_multiple: int = 8) -> int:
    """``op(b, Expand(a, Shape(b)))`` -> ``op(b, a)`` where ``a`` broadcasts to ``b``'s shape."""
    g = _Graph(model)
    candidates = []
    for expand in g.graph.node:
        if expand.op_type != "Expand":
            continue
        shape_node = g.producer.get(expand.input[1])
        if shape_node is None or shape_node.op_type != "Shape" or shape_node.attribute:
            continue
        b = shape_node.input[0]
        users = g.consumers.get(expand.output[0], [])
        if expand.output[0] in g.outputs or not users or not all(
                u.op_type in BROADCAST_BINARY and _other(u, expand.output[0]) == b for u in users):
            continue
        candidates.append((expand, expand.input[0], b, users))
    if not candidates:
        return 0
    probes = probe_shapes(model, size_multiple)
    changed = 0
    for expand, a, b, users in candidates:
        ok = True
        for shapes in probes:
            sa, sb = shapes.get(a), shapes.get(b)
            if sa is None or sb is None or len(sa) != len(sb) or any(x not in (1, y) for x, y in zip(sa, sb)):
                ok = False
                break
        if not ok:
            continue
        for user in users:
            for index, name in enumerate(user.input):
                if name == expand.output[0]:
                    user.input[index] = a
        changed += 1
    if changed:
        remove_dead(model)
    return changed


# -- pass: pad the gated FFN's hidden channels -------------------------------------------
def _conv_weight(g: _Graph, node: onnx.NodeProto) -> np.ndarray | None:
    if node.op_type != "Conv" or len(node.input) < 2:
        return None
    weight = g.const(node.input[1])
    if weight is None or weight.dtype != np.float32 or weight.ndim != 4:
        return None
    if len(node.input) > 2 and node.input[2] and g.const(node.input[2]) is None:
        return None
    return weight


def _bias(g: _Graph, node: onnx.NodeProto) -> np.ndarray | None:
    return g.const(node.input[2]) if len(node.input) > 2 and node.input[2] else None


def _channel_parts(g: _Graph, name: str, total: int) -> list[tuple[onnx.NodeProto, int, int, int]] | None:
    """The consumers of ``name`` if they cut its channel axis into two or more equal,
    contiguous parts (``chunk(k, dim=1)``, traced as Slices or one Split):
    [(node, output index, start, stop)] in channel order; else None."""
    users = g.consumers.get(name, [])
    if name in g.outputs or not users:
        return None
    parts: list[tuple[onnx.NodeProto, int, int, int]] = []
    for user in users:
        if user.op_type == "Slice" and user.input[0] == name and len(user.input) >= 4:
            values = [g.const(user.input[i]) for i in (1, 2, 3)]
            values.append(g.const(user.input[4]) if len(user.input) > 4 and user.input[4] else np.ones(1, np.int64))
            scalars = [int(v.reshape(-1)[0]) for v in values if v is not None and v.size == 1]
            if len(scalars) != 4:
                return None
            first, last, axis, step = scalars
            if axis not in (1, -3) or step != 1:
                return None
            start, stop = (min(max(v, 0), total) for v in (first, last))
            parts.append((user, 0, start, stop))
        elif user.op_type == "Split" and user.input[0] == name and _attr(user, "axis", 0) in (1, -3):
            sizes = g.const(user.input[1]) if len(user.input) > 1 and user.input[1] else _attr(user, "split")
            if sizes is None:
                return None
            sizes = [int(v) for v in np.asarray(sizes).reshape(-1)]
            if len(sizes) != len(user.output):
                return None
            offsets = np.cumsum([0, *sizes]).tolist()
            parts += [(user, i, offsets[i], offsets[i + 1]) for i in range(len(sizes))]
        else:
            return None
    parts.sort(key=lambda p: p[2])
    k = len(parts)
    if k < 2 or total % k or [(p[2], p[3]) for p in parts] != [(i * total // k, (i + 1) * total // k) for i in range(k)]:
        return None
    return parts


def _channel_slices(g: _Graph, name: str, total: int) -> list[tuple[onnx.NodeProto, int, int, int]] | None:
    """:func:`_channel_parts` when they are two halves."""
    parts = _channel_parts(g, name, total)
    return parts if parts is not None and len(parts) == 2 else None


def _gated_region(g: _Graph, starts: list[str]) -> tuple[list[onnx.NodeProto], onnx.NodeProto] | None:
    """Elementwise nodes from the two halves to the one Conv they all end in (the output
    projection): (region nodes, that Conv); None unless every path ends there and no other
    input enters but scalar constants, and nothing divides by a region tensor."""
    region: dict[int, onnx.NodeProto] = {}
    tensors = set(starts)
    frontier = list(starts)
    sink: onnx.NodeProto | None = None
    while frontier:
        name = frontier.pop()
        if name in g.outputs:
            return None
        users = g.consumers.get(name, [])
        if not users:
            return None
        for user in users:
            if user.op_type == "Conv":
                if user.input[0] != name or (sink is not None and sink is not user):
                    return None
                sink = user
                continue
            if user.op_type not in ELEMENTWISE or len(user.output) != 1:
                return None
            if id(user) not in region:
                region[id(user)] = user
                tensors.add(user.output[0])
                frontier.append(user.output[0])
    if sink is None:
        return None
    for node in region.values():
        for index, name in enumerate(node.input):
            if name in tensors:
                if node.op_type == "Div" and index == 1:
                    return None
                continue
            value = g.const(name)
            if value is None or value.size != 1 or (node.op_type == "Div" and float(value.reshape(-1)[0]) == 0.0):
                return None
    return list(region.values()), sink


def _spread_halves(array: np.ndarray, hidden: int, padded: int) -> np.ndarray:
    """Two halves of ``hidden`` rows along axis 0 -> each padded with zero rows to ``padded``."""
    out = np.zeros((2 * padded, *array.shape[1:]), array.dtype)
    out[:hidden], out[padded:padded + hidden] = array[:hidden], array[hidden:]
    return out


def _projection_and_depthwise(g: _Graph, project_in: onnx.NodeProto) -> tuple[Any, int, Any, Any] | None:
    """``(w_in, channels, dw, w_dw)`` when ``project_in`` is a dense Conv whose only reader is a
    depthwise Conv over all its output channels (Restormer's projection + 3x3 depthwise)."""
    w_in = _conv_weight(g, project_in)
    if w_in is None or _attr(project_in, "group", 1) != 1:
        return None
    total = w_in.shape[0]
    dw = _single_consumer(g, project_in.output[0], "Conv")
    w_dw = _conv_weight(g, dw) if dw is not None else None
    if (dw is None or w_dw is None or dw.input[0] != project_in.output[0] or _attr(dw, "group", 1) != total
            or w_dw.shape[:2] != (total, 1)):
        return None
    return w_in, total, dw, w_dw


def ffn_channel_pad(model: onnx.ModelProto, multiple: int = FFN_CHANNEL_MULTIPLE) -> int:
    """Pad ``Conv -> depthwise Conv -> two channel halves -> elementwise gate -> Conv``
    hidden widths to a multiple of ``multiple`` with zero weights."""
    g = _Graph(model)
    changed = 0
    for project_in in list(g.graph.node):
        found_pd = _projection_and_depthwise(g, project_in)
        if found_pd is None:
            continue
        w_in, total, dw, w_dw = found_pd
        if total % 2 or (total // 2) % multiple == 0:
            continue
        parts = _channel_slices(g, dw.output[0], total)
        if parts is None:
            continue
        halves = [p[0].output[p[1]] for p in parts]
        found = _gated_region(g, halves)
        if found is None:
            continue
        region, project_out = found
        w_out = _conv_weight(g, project_out)
        hidden = total // 2
        if w_out is None or _attr(project_out, "group", 1) != 1 or w_out.shape[1] != hidden:
            continue
        padded = -(-hidden // multiple) * multiple
        spread = functools.partial(_spread_halves, hidden=hidden, padded=padded)

        scope = _scope(project_in.name or project_in.output[0])
        b_in, b_dw = _bias(g, project_in), _bias(g, dw)
        project_in.input[1] = g.add_initializer(spread(w_in), f"{scope}/weight_pad{multiple}")
        if b_in is not None:
            project_in.input[2] = g.add_initializer(spread(b_in), f"{scope}/bias_pad{multiple}")
        scope = _scope(dw.name or dw.output[0])
        dw.input[1] = g.add_initializer(spread(w_dw), f"{scope}/weight_pad{multiple}")
        if b_dw is not None:
            dw.input[2] = g.add_initializer(spread(b_dw), f"{scope}/bias_pad{multiple}")
        _set_attr(dw, "group", 2 * padded)
        w_new = np.zeros((w_out.shape[0], padded, *w_out.shape[2:]), np.float32)
        w_new[:, :hidden] = w_out
        scope = _scope(project_out.name or project_out.output[0])
        project_out.input[1] = g.add_initializer(w_new, f"{scope}/weight_pad{multiple}")
        for node, index, start, _ in parts:
            lo, hi = (0, padded) if start == 0 else (padded, 2 * padded)
            if node.op_type == "Slice":
                base = _scope(node.name or node.output[0])
                node.input[1] = g.add_initializer(np.array([lo], np.int64), f"{base}/starts_pad")
                node.input[2] = g.add_initializer(np.array([hi], np.int64), f"{base}/ends_pad")
            elif index == 0:  # a Split: both halves at once
                if len(node.input) > 1 and node.input[1]:
                    node.input[1] = g.add_initializer(np.array([padded, padded], np.int64),
                                                      f"{_scope(node.name)}/split_pad")
                else:
                    _set_attr(node, "split", [padded, padded])
        _drop_value_info(g.graph, [project_in.output[0], dw.output[0], *halves,
                                   *(o for node in region for o in node.output)])
        changed += 1
        g.refresh()
    if changed:
        remove_dead(model)
    return changed


def chunk_to_convs(model: onnx.ModelProto) -> int:
    """``Conv -> depthwise Conv -> chunk(k, dim=1)`` -> one Conv and one depthwise Conv per
    chunk: the same output channels computed by k smaller convolutions, and no Split copy."""
    g = _Graph(model)
    changed = 0
    removed: list[onnx.NodeProto] = []
    added: list[onnx.NodeProto] = []
    for project_in in list(g.graph.node):
        found_pd = _projection_and_depthwise(g, project_in)
        if found_pd is None:
            continue
        w_in, total, dw, w_dw = found_pd
        parts = _channel_parts(g, dw.output[0], total)
        if parts is None:
            continue
        b_in, b_dw = _bias(g, project_in), _bias(g, dw)
        size = total // len(parts)
        for number, (node, index, start, stop) in enumerate(parts, 1):
            suffix = f"x{number}"
            rows = slice(start, stop)
            scope = _scope(project_in.name or project_in.output[0])
            inputs = [project_in.input[0], g.add_initializer(np.ascontiguousarray(w_in[rows]), f"{scope}/weight_{suffix}")]
            if b_in is not None:
                inputs.append(g.add_initializer(np.ascontiguousarray(b_in[rows]), f"{scope}/bias_{suffix}"))
            hidden = g.tensor_name(f"{project_in.output[0]}_{suffix}")
            conv = helper.make_node("Conv", inputs, [hidden], name=g.node_name(f"{project_in.name}_{suffix}"))
            conv.attribute.extend(project_in.attribute)
            scope = _scope(dw.name or dw.output[0])
            inputs = [hidden, g.add_initializer(np.ascontiguousarray(w_dw[rows]), f"{scope}/weight_{suffix}")]
            if b_dw is not None:
                inputs.append(g.add_initializer(np.ascontiguousarray(b_dw[rows]), f"{scope}/bias_{suffix}"))
            depthwise = helper.make_node("Conv", inputs, [node.output[index]], name=g.node_name(f"{dw.name}_{suffix}"))
            depthwise.attribute.extend(a for a in dw.attribute if a.name != "group")
            depthwise.attribute.append(helper.make_attribute("group", size))
            added += [conv, depthwise]
        removed += [project_in, dw, *{id(p[0]): p[0] for p in parts}.values()]
        _drop_value_info(g.graph, [project_in.output[0], dw.output[0]])
        changed += 1
    if removed:
        _remove_and_sort(g, removed, added)
    return changed


# -- pass: a convolution followed by PixelUnshuffle -> one strided convolution -----------
def _apply_view(g: _Graph, node: onnx.NodeProto, array: np.ndarray, opset: int) -> np.ndarray | None:
    """``node`` (a view op with constant operands) applied to ``array`` with numpy, else None."""
    def axes_of() -> list[int] | None:
        if opset >= 13 and node.op_type in ("Squeeze", "Unsqueeze"):
            if len(node.input) < 2 or not node.input[1]:
                return None
            value = g.const(node.input[1])
            return None if value is None else [int(a) for a in value.reshape(-1)]
        found = _attr(node, "axes")
        return None if found is None else [int(a) for a in found]

    if node.op_type == "Reshape":
        target = g.const(node.input[1])
        if target is None:
            return None
        dims = [array.shape[i] if v == 0 and i < array.ndim else int(v) for i, v in enumerate(target.reshape(-1))]
        return array.reshape(dims)
    if node.op_type == "Transpose":
        perm = _attr(node, "perm")
        return array.transpose(perm if perm is not None else list(reversed(range(array.ndim))))
    if node.op_type == "Squeeze":
        axes = axes_of()
        return np.squeeze(array) if axes is None else np.squeeze(array, axis=tuple(axes))
    if node.op_type == "Unsqueeze":
        axes = axes_of()
        if axes is None:
            return None
        rank = array.ndim + len(axes)
        for axis in sorted(a % rank for a in axes):
            array = np.expand_dims(array, axis)
        return array
    if node.op_type == "Flatten":
        axis = _attr(node, "axis", 1) % max(array.ndim, 1)
        return array.reshape(int(np.prod(array.shape[:axis])), -1)
    return None


def _is_pixel_unshuffle(g: _Graph, chain: list[onnx.NodeProto], shape: tuple[int, ...], r: int, opset: int) -> bool:
    """Whether ``chain`` moves every element of a ``shape`` tensor as PixelUnshuffle(r) does."""
    index = np.arange(int(np.prod(shape)), dtype=np.int64).reshape(shape)
    moved: np.ndarray | None = index
    for node in chain:
        moved = _apply_view(g, node, moved, opset) if moved is not None else None
    n, c, h, w = shape
    expected = index.reshape(n, c, h // r, r, w // r, r).transpose(0, 1, 3, 5, 2, 4).reshape(n, c * r * r, h // r, w // r)
    return moved is not None and moved.shape == expected.shape and bool(np.array_equal(moved, expected))


def pixel_unshuffle_conv(model: onnx.ModelProto, size_multiple: int = 8) -> int:
    """A stride-1 "same" Conv whose output only goes through view ops that amount to
    PixelUnshuffle(r) (Restormer's Downsample) -> one Conv with stride r and a kernel
    r - 1 larger that writes the unshuffled channels directly. The extra kernel taps are
    zeros; in exchange the result is a convolution output, which ONNX Runtime keeps in its
    NCHWc layout (with the residual adds and norms of the level that follows)."""
    opset = opset_version(model)
    g = _Graph(model)
    probes: list[dict[str, tuple[int, ...]]] | None = None
    changed = 0
    removed: list[onnx.NodeProto] = []
    added: list[onnx.NodeProto] = []
    for conv in list(g.graph.node):
        weight = _conv_weight(g, conv)
        if weight is None or _attr(conv, "group", 1) != 1 or _attr(conv, "auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
            continue
        k = weight.shape[2]
        half = (k - 1) // 2
        if (k % 2 == 0 or weight.shape[3] != k or list(_attr(conv, "pads", [0] * 4)) != [half] * 4
                or set(_attr(conv, "strides", [1, 1])) != {1} or set(_attr(conv, "dilations", [1, 1])) != {1}):
            continue
        chain: list[onnx.NodeProto] = []
        tensor = conv.output[0]
        while True:
            users = g.consumers.get(tensor, [])
            if tensor in g.outputs or len(users) != 1 or users[0].op_type not in VIEW_OPS | {"Transpose"}:
                break
            chain.append(users[0])
            tensor = users[0].output[0]
        if not chain:
            continue
        if probes is None:
            probes = probe_shapes(model, size_multiple)
        pairs = [(p.get(conv.output[0]), p.get(tensor)) for p in probes]
        shapes = [(a, b) for a, b in pairs if a is not None and b is not None and len(a) == 4 and len(b) == 4]
        if len(shapes) != len(pairs):
            continue
        r = shapes[0][0][2] // shapes[0][1][2] if shapes[0][1][2] else 0
        if r < 2 or any(a[2] != b[2] * r or a[3] != b[3] * r or b[1] != a[1] * r * r or a[0] != b[0]
                        for a, b in shapes):
            continue
        if not all(_is_pixel_unshuffle(g, chain, a, r, opset) for a, _ in shapes):
            continue
        co, ci = weight.shape[:2]
        kk = k + r - 1
        fused = np.zeros((co * r * r, ci, kk, kk), np.float32)
        for i in range(r):
            for j in range(r):
                fused[i * r + j::r * r, :, i:i + k, j:j + k] = weight
        scope = _scope(conv.name or conv.output[0])
        inputs = [conv.input[0], g.add_initializer(fused, f"{scope}/weight_unshuffle{r}")]
        bias = _bias(g, conv)
        if bias is not None:
            inputs.append(g.add_initializer(np.repeat(bias, r * r).astype(np.float32), f"{scope}/bias_unshuffle{r}"))
        added.append(helper.make_node("Conv", inputs, [tensor], name=g.node_name(f"{conv.name}_unshuffle{r}"),
                                      kernel_shape=[kk, kk], pads=[half] * 4, strides=[r, r]))
        removed += [conv, *chain]
        _drop_value_info(g.graph, [conv.output[0], *(o for node in chain for o in node.output)])
        changed += 1
    if removed:
        _remove_and_sort(g, removed, added)
    return changed


# -- pass: the transpose of a product with a constant ------------------------------------
def matmul_transpose(model: onnx.ModelProto) -> int:
    """``Transpose(MatMul(a, W))`` swapping the last two axes, ``W`` constant ->
    ``MatMul(W^T, Transpose(a))``: the same products, but the transpose moves to the operand
    with fewer columns when ``W`` widens ``a`` (ONNX Runtime folds it into its MatMul)."""
    g = _Graph(model)
    info = _infer(model)
    changed = 0
    removed: list[onnx.NodeProto] = []
    added: list[onnx.NodeProto] = []
    for transpose in list(g.graph.node):
        perm = _attr(transpose, "perm")
        if transpose.op_type != "Transpose" or perm is None or len(perm) < 2:
            continue
        rank = len(perm)
        if list(perm) != [*range(rank - 2), rank - 1, rank - 2]:
            continue
        matmul = g.producer.get(transpose.input[0])
        if matmul is None or matmul.op_type != "MatMul" or not g.sole_use(matmul.output[0], transpose):
            continue
        a, w = matmul.input
        weight = g.const(w)
        rank_a = len(info.get(a, (0, None))[1] or [])
        if weight is None or weight.ndim < 2 or weight.ndim > rank or rank_a != rank:
            continue
        k, n = weight.shape[-2:]
        if n <= k:  # the transpose would not get smaller
            continue
        scope = _scope(matmul.name or matmul.output[0])
        wt = g.add_initializer(np.ascontiguousarray(np.swapaxes(weight, -1, -2)), f"{scope}/weight_t")
        at = g.tensor_name(f"{a}_t")
        added += [helper.make_node("Transpose", [a], [at], name=g.node_name(f"{scope}/Transpose_operand"), perm=perm),
                  helper.make_node("MatMul", [wt, at], [transpose.output[0]], name=g.node_name(matmul.name or f"{scope}/MatMul"))]
        removed += [matmul, transpose]
        changed += 1
    if removed:
        _remove_and_sort(g, removed, added)
    return changed


# -- pass: static Reshape targets --------------------------------------------------------
def _reshape_result(shape: Sequence[int], target: Sequence[int]) -> tuple[int, ...] | None:
    """What Reshape (allowzero=0) gives ``shape`` for ``target``, or None if invalid."""
    out = [shape[i] if t == 0 and i < len(shape) else t for i, t in enumerate(target)]
    if any(t == 0 for i, t in enumerate(target) if i >= len(shape)):
        return None
    total = int(np.prod(shape)) if shape else 1
    if out.count(-1) > 1:
        return None
    if -1 in out:
        known = int(np.prod([d for d in out if d != -1])) if len(out) > 1 else 1
        if known <= 0 or total % known:
            return None
        out[out.index(-1)] = total // known
    return tuple(out) if int(np.prod(out)) == total else None


def _static_target(ins: list[tuple[int, ...]], outs: list[tuple[int, ...]]) -> list[int] | None:
    """A constant target giving outs[k] from ins[k] for every probe k, or None."""
    rank = len(outs[0])
    if any(len(o) != rank for o in outs):
        return None
    target = []
    for axis in range(rank):
        values = {o[axis] for o in outs}
        if len(values) == 1:
            target.append(values.pop())
        elif all(axis < len(i) and i[axis] == o[axis] for i, o in zip(ins, outs)):
            target.append(0)
        else:
            target.append(-1)
    if target.count(-1) > 1:
        return None
    if all(_reshape_result(i, target) == o for i, o in zip(ins, outs)):
        return target
    return None


def _ancestor_shape_nodes(g: _Graph, name: str, limit: int = 64) -> list[onnx.NodeProto]:
    found: list[onnx.NodeProto] = []
    stack, seen = [name], set[str]()
    while stack and len(seen) < limit:
        current = stack.pop()
        if current in seen:
            continue
        seen.add(current)
        node = g.producer.get(current)
        if node is None:
            continue
        if node.op_type == "Shape":
            found.append(node)
            continue
        stack.extend(i for i in node.input if i)
    return found


def _materialised_twin(g: _Graph, start: str, probes: list[dict[str, tuple[int, ...]]],
                       shapes: list[tuple[int, ...]], limit: int = 256) -> str | None:
    """The nearest ancestor of ``start`` with ``shapes`` at every probe that some op outside
    ONNX Runtime's NCHWc set already reads (so its plain layout exists anyway): taking
    ``Shape()`` of it costs no layout conversion, which a convolution's output would."""
    queue, seen = deque([start]), set[str]()
    while queue and len(seen) < limit:
        name = queue.popleft()
        if name in seen:
            continue
        seen.add(name)
        if all(p.get(name) == s for p, s in zip(probes, shapes)) and any(
                u.op_type in PLAIN_LAYOUT_OPS for u in g.consumers.get(name, [])):
            return name
        producer = g.producer.get(name)
        if producer is not None:
            queue.extend(i for i in producer.input if i and i not in g.inits)
    return None


def static_reshape(model: onnx.ModelProto, size_multiple: int = 8) -> int:
    """Constant (0/-1) or ``Shape(t)`` Reshape targets; then view chains ending in a
    Reshape read the chain's source."""
    g = _Graph(model)
    probes = probe_shapes(model, size_multiple)
    changed = 0
    added: list[onnx.NodeProto] = []
    for node in [n for n in g.graph.node if n.op_type == "Reshape" and not _attr(n, "allowzero", 0)]:
        if g.const(node.input[1]) is not None:
            continue
        ins = [p.get(node.input[0]) for p in probes]
        outs = [p.get(node.output[0]) for p in probes]
        if any(s is None for s in ins + outs):
            continue
        target = _static_target(ins, outs)  # type: ignore[arg-type]
        if target is not None:
            node.input[1] = g.add_initializer(np.array(target, np.int64), f"{_scope(node.name)}/shape_static")
            changed += 1
            continue
        source = _materialised_twin(g, node.input[0], probes, outs)  # type: ignore[arg-type]
        if source is not None:
            scope = _scope(node.name or node.output[0])
            shape_out = g.tensor_name(f"{scope}/Shape_static_output_0")
            added.append(helper.make_node("Shape", [source], [shape_out], name=g.node_name(f"{scope}/Shape_static")))
            node.input[1] = shape_out
            changed += 1
            continue
        for shape_node in _ancestor_shape_nodes(g, node.input[1]):
            source = shape_node.input[0]
            if all(p.get(source) == o for p, o in zip(probes, outs)):
                node.input[1] = shape_node.output[0]
                changed += 1
                break
    _remove_and_sort(g, (), added)
    remove_dead(model)
    g.refresh()
    while True:  # Reshape(view(x)) -> Reshape(x) when the view has no other reader
        collapsed = 0
        for node in list(g.graph.node):
            if node.op_type != "Reshape" or _attr(node, "allowzero", 0):
                continue
            source = g.producer.get(node.input[0])
            if source is None or source.op_type not in VIEW_OPS or not g.sole_use(source.output[0], node):
                continue
            constant = g.const(node.input[1])
            if constant is not None and bool((constant == 0).any()):  # a 0 copies a dim of the input: re-derive it
                ins = [p.get(source.input[0]) for p in probes]
                outs = [p.get(node.output[0]) for p in probes]
                if any(s is None for s in ins + outs):
                    continue
                new_target = _static_target(ins, outs)  # type: ignore[arg-type]
                if new_target is None:
                    continue
                node.input[1] = g.add_initializer(np.array(new_target, np.int64), f"{_scope(node.name)}/shape_static")
            node.input[0] = source.input[0]
            collapsed += 1
            g.refresh()
        if not collapsed:
            break
        changed += collapsed
        remove_dead(model)
        g.refresh()
    if changed:
        remove_dead(model)
    return changed


# -- pass: symbolic shapes for every intermediate tensor ----------------------------------
def _symbol(values: tuple[int, ...], refs: list[tuple[str, tuple[int, ...]]]) -> int | str | None:
    """A dim seen as ``values`` at the probes: a constant, an input dim (``height``), a fixed
    fraction or multiple of one (``height/4``, ``width*2``) or of a product of two
    (``height*width/16``); None if it is none of those."""
    if len(set(values)) == 1:
        return values[0]
    candidates = list(refs) + [(f"{a}*{b}", tuple(x * y for x, y in zip(va, vb)))
                               for (a, va), (b, vb) in itertools.combinations(refs, 2)]
    for name, ref in candidates:
        if values == ref:
            return name
        if all(r % v == 0 for r, v in zip(ref, values)) and len({r // v for r, v in zip(ref, values)}) == 1:
            return f"{name}/{ref[0] // values[0]}"
        if all(v % r == 0 for r, v in zip(ref, values)) and len({v // r for r, v in zip(ref, values)}) == 1:
            return f"{name}*{values[0] // ref[0]}"
    return None


def symbolic_shapes(model: onnx.ModelProto, size_multiple: int = 8) -> int:
    """Record every intermediate tensor's shape in ``value_info`` with symbolic dims named
    after the input's (``batch``, ``height/2``, ``height*width/16``, ...): ONNX shape
    inference loses the spatial dims after the first convolution, so ONNX Runtime cannot
    tell that two branches of a block have the same shape, and then runs the residual adds
    and the FFN gate outside its NCHWc layout (with a layout conversion before and after).
    Dims that are equal get the same name only if they agree at every probe shape."""
    refs: list[tuple[str, tuple[int, ...]]] = []
    probes = probe_shapes(model, size_multiple)
    init_names = {i.name for i in model.graph.initializer}
    for value in model.graph.input:
        if value.name in init_names:
            continue
        for axis, dim in enumerate(value.type.tensor_type.shape.dim):
            if dim.dim_param and all(value.name in p for p in probes):
                refs.append((dim.dim_param, tuple(p[value.name][axis] for p in probes)))
    if not refs:
        return 0
    types = {name: elem for name, (elem, _) in _infer(model).items() if elem}
    types.update({v.name: v.type.tensor_type.elem_type for v in model.graph.value_info
                  if v.type.tensor_type.elem_type})
    skip = init_names | {v.name for v in model.graph.input} | {v.name for v in model.graph.output}
    annotated = []
    for node in model.graph.node:
        for name in node.output:
            if not name or name in skip or name not in types or any(name not in p for p in probes):
                continue
            shapes = [p[name] for p in probes]
            if len({len(shape) for shape in shapes}) != 1:
                continue
            dims = [_symbol(tuple(shape[axis] for shape in shapes), refs) for axis in range(len(shapes[0]))]
            annotated.append(helper.make_tensor_value_info(name, types[name], dims))
    del model.graph.value_info[:]
    model.graph.value_info.extend(annotated)
    return len(annotated)


# -- the whole set -----------------------------------------------------------------------
PASSES: dict[str, Callable[..., int]] = {
    "channel_layernorm": channel_layernorm,
    "broadcast_expand": broadcast_expand,
    "ffn_channel_pad": ffn_channel_pad,
    "chunk_to_convs": chunk_to_convs,
    "static_reshape": static_reshape,
    "matmul_transpose": matmul_transpose,
    "pixel_unshuffle_conv": pixel_unshuffle_conv,
    "symbolic_shapes": symbolic_shapes,
}
#: what ``ndr-export`` runs (``--no-speed-passes``: none): every pass. OpenVINO 2026.4's CPU
#: plugin misreads the INT8 graph quantised after ``pixel_unshuffle_conv`` when it is compiled
#: with dynamic H/W (an INT8 conv output that is both a residual and the next branch's input;
#: ``benchmarks/int8_crossruntime_repro.py`` A4), and reads it right compiled per input shape,
#: which is what ``runtime/openvino_backend.py`` does.
DEFAULT_PASSES: tuple[str, ...] = tuple(PASSES)
_TAKES_SIZE = {"broadcast_expand", "static_reshape", "pixel_unshuffle_conv", "symbolic_shapes"}


def op_counts(model: onnx.ModelProto) -> dict[str, int]:
    return dict(sorted(Counter(node.op_type for node in model.graph.node).items()))


@dataclass
class SpeedResult:
    model: onnx.ModelProto
    counts: dict[str, int]
    nodes_before: int
    nodes_after: int
    op_counts: dict[str, int] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)

    @property
    def changed(self) -> bool:
        return any(self.counts.values())

    def details(self) -> dict[str, Any]:
        data: dict[str, Any] = {"passes": dict(self.counts), "nodes_before": self.nodes_before,
                                "nodes_after": self.nodes_after, "op_counts": self.op_counts}
        if self.errors:
            data["errors"] = dict(self.errors)
        return data


def speed_up(model: onnx.ModelProto, passes: Sequence[str] = DEFAULT_PASSES, size_multiple: int = 8) -> SpeedResult:
    """Run ``passes`` in order on a copy of ``model``; a pass that raises is skipped (and
    named in ``errors``) with the graph as the previous pass left it."""
    unknown = [p for p in passes if p not in PASSES]
    if unknown:
        raise ValueError(f"unknown graph pass {', '.join(unknown)}; choose from {', '.join(PASSES)}")
    current = onnx.ModelProto()
    current.CopyFrom(model)
    counts: dict[str, int] = {}
    errors: dict[str, str] = {}
    for name in passes:
        trial = onnx.ModelProto()
        trial.CopyFrom(current)
        try:
            kwargs = {"size_multiple": size_multiple} if name in _TAKES_SIZE else {}
            counts[name] = PASSES[name](trial, **kwargs)
            remove_dead(trial)
            onnx.checker.check_model(trial)
        except Exception as exc:  # noqa: BLE001 - a failed rewrite leaves the graph as it was
            counts[name] = 0
            errors[name] = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
            continue
        current = trial
    return SpeedResult(current, counts, len(model.graph.node), len(current.graph.node), op_counts(current), errors)


__all__ = [
    "DEFAULT_PASSES",
    "FFN_CHANNEL_MULTIPLE",
    "PASSES",
    "SpeedResult",
    "broadcast_expand",
    "channel_layernorm",
    "chunk_to_convs",
    "ffn_channel_pad",
    "matmul_transpose",
    "op_counts",
    "pixel_unshuffle_conv",
    "probe_inputs",
    "probe_shapes",
    "remove_dead",
    "speed_up",
    "static_reshape",
    "symbolic_shapes",
]
