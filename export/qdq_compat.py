"""Make a Q/DQ INT8 graph acceptable to TensorRT without changing what it computes.

ONNX Runtime's static quantizer stores Conv biases as INT32 behind a DequantizeLinear.
TensorRT's parser rejects that node ("only activation types allowed as input to this
layer": DequantizeLinear takes INT8/FP8/INT4 there) and wants the bias in float, which it
fuses itself. Folding ``DequantizeLinear(int32 bias)`` into the float32 initializer it
produces is exact (the values are the ones the DQ would compute) and leaves ONNX Runtime's
output bit-identical.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import numpy_helper


def fold_int32_bias_dequantize(model: onnx.ModelProto) -> int:
    """Replace every DequantizeLinear of a constant INT32 tensor by its float32 result, in
    place; unused initializers are dropped. Returns how many nodes were folded."""
    graph = model.graph
    initializers = {init.name: init for init in graph.initializer}
    kept, folded = [], 0
    for node in graph.node:
        source = initializers.get(node.input[0]) if node.op_type == "DequantizeLinear" else None
        if source is None or source.data_type != onnx.TensorProto.INT32 or node.input[1] not in initializers:
            kept.append(node)
            continue
        values = numpy_helper.to_array(source).astype(np.float64)
        scale = numpy_helper.to_array(initializers[node.input[1]]).astype(np.float64)
        zero: np.ndarray = np.zeros(())
        if len(node.input) > 2 and node.input[2]:
            if node.input[2] not in initializers:
                kept.append(node)
                continue
            zero = numpy_helper.to_array(initializers[node.input[2]]).astype(np.float64)
        if scale.size > 1 and values.ndim > 1:  # per-axis scale: broadcast along the node's axis
            axis = next((a.i for a in node.attribute if a.name == "axis"), 1)
            shape = [1] * values.ndim
            shape[axis] = -1
            scale = scale.reshape(shape)
            zero = zero.reshape(shape) if zero.size > 1 else zero
        dequantized = ((values - zero) * scale).astype(np.float32)
        graph.initializer.append(numpy_helper.from_array(dequantized, node.output[0]))
        folded += 1
    if folded:
        del graph.node[:]
        graph.node.extend(kept)
        used = {name for node in graph.node for name in node.input} | {o.name for o in graph.output}
        remaining = [init for init in graph.initializer if init.name in used]
        del graph.initializer[:]
        graph.initializer.extend(remaining)
    return folded
