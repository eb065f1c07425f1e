"""Compile a TensorFlow.js graph into a differentiable PyTorch module that can be cut in two.

The converted NanoDet graph computes in NCHW but wraps every convolution in NCHW→NHWC→NCHW
transposes (an artefact of ONNX→TF conversion). Rather than executing those, each tensor keeps
its *physical* layout NCHW and carries a *logical* layout tag; a transpose between the two
layouts only flips the tag, and NHWC-logical ops (Conv2D, MaxPool, ResizeBilinear, bias Add)
run as their NCHW torch equivalents. Zero padding in front of a convolution and -inf padding
in front of a max-pool are folded into the op, so the compiled program is one torch op per
layer, fast in eager mode and exportable to ONNX.

Cutting: the program is a list of steps; a cut after step k is valid when the only tensor
still needed by later steps is step k's output, so ``tail(head(x)) == full(x)`` bit for bit.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from privinfer.errors import ModelGraphError
from privinfer.models.tfjs_graph import GraphNode, TfjsGraph

PLAIN, NHWC = "plain", "nhwc"
# logical NHWC axis -> physical NCHW axis
_NHWC_TO_PHYSICAL = (0, 2, 3, 1)


@dataclass
class _Tensor:
    """What the compiler knows of a graph tensor: a folded constant, or a runtime value."""

    key: str = ""
    layout: str = PLAIN
    rank: int = 4
    const: np.ndarray | None = None


@dataclass
class Step:
    """One executable op: reads ``inputs`` keys, writes ``outputs`` keys."""

    name: str
    kind: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    params: dict = field(default_factory=dict)


def _ref(ref: str) -> tuple[str, int]:
    node, _, port = ref.partition(":")
    return node, int(port or 0)


def _key(node: str, port: int = 0) -> str:
    return f"{node}:{port}"


@dataclass(frozen=True)
class Calibration:
    """What one run at the reference size records: every tensor's shape, and each resize step's
    ratio (step index -> (height, width)). Saved, it spares a later start the run (most of a
    second on a CPU: the first convolutions also pay torch's one-time set-up)."""

    shapes: dict[str, tuple[int, ...]]
    ratios: dict[int, tuple[float, float]]

    def to_json(self) -> str:
        return json.dumps({"shapes": self.shapes, "ratios": {str(i): r for i, r in self.ratios.items()}})

    @classmethod
    def from_json(cls, text: str) -> Calibration:
        """Raises ValueError (or KeyError / TypeError) on text that is not a calibration."""
        data = json.loads(text)
        shapes = {key: tuple(int(d) for d in dims) for key, dims in data["shapes"].items()}
        ratios = {int(i): (float(h), float(w)) for i, (h, w) in data["ratios"].items()}
        return cls(shapes, ratios)


class GraphModule(nn.Module):
    """A TF.js graph compiled to torch; ``forward`` runs it whole, ``run_range`` runs a slice.

    Weights are frozen (``requires_grad=False``) but the computation is differentiable with
    respect to the input and any intermediate tensor.
    """

    def __init__(
        self, graph: TfjsGraph, reference_input_shape: tuple[int, ...], calibration: Calibration | None = None
    ) -> None:
        """``calibration``: a saved `Calibration` of this graph at this shape, used instead of running
        it when it fits the graph (the same resize steps, a shape for every output)."""
        super().__init__()
        if len(graph.inputs) != 1:
            raise ModelGraphError(f"expected one graph input, found {graph.inputs}")
        self.weights = nn.ParameterDict()
        self.steps: list[Step] = []
        self._compile(graph)
        self.input_key = _key(graph.inputs[0])
        self.output_keys = tuple(self._tensors[o].key for o in graph.outputs)
        self.output_names = graph.outputs
        del self._tensors, self._consumers
        self._plan_lifetimes()
        self.shapes: dict[str, tuple[int, ...]] = {}
        if calibration is not None and self._fits(calibration):
            self.shapes = dict(calibration.shapes)
            for index, ratio in calibration.ratios.items():
                self.steps[index].params["ratio"] = ratio
        else:
            self._calibrate(reference_input_shape)

    @property
    def calibration(self) -> Calibration:
        """The shapes and resize ratios recorded at the reference size, to save and pass back."""
        ratios = {i: tuple(s.params["ratio"]) for i, s in enumerate(self.steps) if s.kind == "resize"}
        return Calibration(dict(self.shapes), ratios)

    def _fits(self, calibration: Calibration) -> bool:
        resizes = {i for i, s in enumerate(self.steps) if s.kind == "resize"}
        produced = {key for step in self.steps for key in step.outputs}
        return set(calibration.ratios) == resizes and produced <= set(calibration.shapes)

    # ---------------------------------------------------------------- execution

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        env = self.run_range({self.input_key: x}, 0, len(self.steps))
        return tuple(env[k] for k in self.output_keys)

    def run_range(self, env: dict[str, torch.Tensor], start: int, stop: int) -> dict[str, torch.Tensor]:
        """Execute steps[start:stop] on an environment of named tensors; returns it updated."""
        env = dict(env)
        for index in range(start, stop):
            step = self.steps[index]
            results = _EXECUTORS[step.kind](self, step, *(env[k] for k in step.inputs))
            if not isinstance(results, tuple):
                results = (results,)
            env.update(zip(step.outputs, results, strict=True))
            for key in self._release_after[index]:
                env.pop(key, None)
        return env

    def valid_cuts(self) -> list[int]:
        """Step indices after which exactly one tensor (that step's output) carries all state."""
        return list(self._valid_cuts)

    # ---------------------------------------------------------------- compilation

    def _compile(self, graph: TfjsGraph) -> None:
        self._tensors: dict[str, _Tensor] = {}
        self._consumers: dict[str, int] = {}
        for node in graph.nodes:
            for ref in node.inputs:
                self._consumers[_key(*_ref(ref))] = self._consumers.get(_key(*_ref(ref)), 0) + 1
        for name, value in graph.constants.items():
            self._tensors[name] = _Tensor(const=value)
        for node in graph.nodes:
            handler = _COMPILERS.get(node.op)
            if handler is None:
                raise ModelGraphError(f"unsupported graph op '{node.op}' at node '{node.name}'")
            handler(self, node)
        self._eliminate_dead(graph.outputs)

    def _in(self, node: GraphNode, index: int) -> _Tensor:
        node_name, port = _ref(node.inputs[index])
        tensor = self._tensors.get(node_name if port == 0 else f"{node_name}:{port}")
        if tensor is None:
            raise ModelGraphError(f"node '{node.name}' reads unknown tensor '{node.inputs[index]}'")
        return tensor

    def _const(self, node: GraphNode, index: int) -> np.ndarray:
        tensor = self._in(node, index)
        if tensor.const is None:
            raise ModelGraphError(f"node '{node.name}' needs a constant as input {index}")
        return tensor.const

    def _emit(self, node: GraphNode, kind: str, inputs: list[_Tensor], layout: str, rank: int, **params) -> None:
        key = _key(node.name)
        self.steps.append(Step(node.name, kind, tuple(t.key for t in inputs), (key,), params))
        self._tensors[node.name] = _Tensor(key, layout, rank)

    def _add_weight(self, name: str, value: np.ndarray) -> str:
        safe = name.replace("/", "__").replace(".", "_").replace(":", "_")
        self.weights[safe] = nn.Parameter(
            torch.from_numpy(np.ascontiguousarray(value, np.float32)), requires_grad=False
        )
        return safe

    def _producer(self, key: str) -> Step | None:
        for step in reversed(self.steps):
            if key in step.outputs:
                return step
        return None

    def _single_use(self, node_ref: str) -> bool:
        return self._consumers.get(_key(*_ref(node_ref)), 0) == 1

    def _fold_padding(self, node: GraphNode, x: _Tensor, fill: float) -> tuple[_Tensor, tuple[int, int]]:
        """If x is a single-use Pad of `fill` (seen through a layout-only transpose), drop the pad."""
        transposed_ref = node.inputs[0]
        pad_step = self._producer(x.key)
        if pad_step is None or pad_step.kind != "pad" or pad_step.params["value"] != fill:
            return x, (0, 0)
        pad_node_ref = pad_step.name
        if not (self._single_use(transposed_ref) and self._single_use(pad_node_ref)):
            return x, (0, 0)
        left, right, top, bottom = pad_step.params["pads"][:4]
        rest = pad_step.params["pads"][4:]
        if left != right or top != bottom or any(rest):
            return x, (0, 0)
        source_key = pad_step.inputs[0]
        return _Tensor(source_key, x.layout, x.rank), (top, left)

    def _eliminate_dead(self, outputs: tuple[str, ...]) -> None:
        needed = {self._tensors[o].key for o in outputs}
        kept: list[Step] = []
        for step in reversed(self.steps):
            if needed.intersection(step.outputs):
                kept.append(step)
                needed.update(step.inputs)
        self.steps = kept[::-1]

    def _plan_lifetimes(self) -> None:
        last_use: dict[str, int] = {}
        for index, step in enumerate(self.steps):
            for key in step.inputs:
                last_use[key] = index
        keep = set(self.output_keys)
        self._release_after: list[list[str]] = [[] for _ in self.steps]
        for key, index in last_use.items():
            if key not in keep:
                self._release_after[index].append(key)
        self._valid_cuts: list[int] = []
        produced: set[str] = {self.input_key}
        for index, step in enumerate(self.steps):
            produced.update(step.outputs)
            later_inputs = {k for s in self.steps[index + 1 :] for k in s.inputs} | keep
            live = produced & later_inputs
            if len(step.outputs) == 1 and live == set(step.outputs) and index < len(self.steps) - 1:
                self._valid_cuts.append(index)

    def _calibrate(self, shape: tuple[int, ...]) -> None:
        """Run once at the reference size: record shapes, turn fixed resize sizes into ratios."""
        env: dict[str, torch.Tensor] = {self.input_key: torch.zeros(shape)}
        with torch.no_grad():
            for step in self.steps:
                args = [env[k] for k in step.inputs]
                if step.kind == "resize":
                    in_h, in_w = args[0].shape[-2:]
                    out_h, out_w = step.params["size"]
                    step.params["ratio"] = (out_h / in_h, out_w / in_w)
                results = _EXECUTORS[step.kind](self, step, *args)
                results = results if isinstance(results, tuple) else (results,)
                for key, value in zip(step.outputs, results, strict=True):
                    env[key] = value
                    self.shapes[key] = tuple(value.shape)


# ------------------------------------------------------------------- compilers (graph node -> Step)


def _compile_placeholder(module: GraphModule, node: GraphNode) -> None:
    module._tensors[node.name] = _Tensor(_key(node.name), PLAIN, 4)


def _compile_identity(module: GraphModule, node: GraphNode) -> None:
    module._tensors[node.name] = module._in(node, 0)


def _compile_transpose(module: GraphModule, node: GraphNode) -> None:
    x, perm = module._in(node, 0), tuple(int(v) for v in module._const(node, 1))
    if x.const is not None:
        module._tensors[node.name] = _Tensor(const=np.transpose(x.const, perm))
    elif x.rank == 4 and x.layout == PLAIN and perm == (0, 2, 3, 1):
        module._tensors[node.name] = _Tensor(x.key, NHWC, 4)
    elif x.rank == 4 and x.layout == NHWC and perm == (0, 3, 1, 2):
        module._tensors[node.name] = _Tensor(x.key, PLAIN, 4)
    elif x.layout == PLAIN:
        module._emit(node, "permute", [x], PLAIN, x.rank, perm=perm)
    else:
        raise ModelGraphError(f"transpose {perm} of an NHWC tensor at '{node.name}' is not supported")


def _physical_pads(x: _Tensor, pads: np.ndarray) -> list[int]:
    """Graph paddings (rank, 2) in logical order -> F.pad order (last physical axis first)."""
    order = _NHWC_TO_PHYSICAL if x.layout == NHWC else tuple(range(x.rank))
    physical = [None] * x.rank
    for logical_axis, physical_axis in enumerate(order):
        physical[physical_axis] = pads[logical_axis]
    flat: list[int] = []
    for before, after in reversed(physical):
        flat += [int(before), int(after)]
    return flat


def _compile_pad(module: GraphModule, node: GraphNode) -> None:
    x = module._in(node, 0)
    value = float(module._const(node, 2)) if node.op == "PadV2" else 0.0
    module._emit(node, "pad", [x], x.layout, x.rank, pads=_physical_pads(x, module._const(node, 1)), value=value)


def _check_nhwc(node: GraphNode, x: _Tensor) -> None:
    if node.attr_str("data_format") not in ("", "NHWC") or x.layout != NHWC:
        raise ModelGraphError(f"'{node.name}' expects an NHWC-logical input")
    if node.attr_str("padding") != "VALID":
        raise ModelGraphError(f"'{node.name}' uses padding {node.attr_str('padding')}, only VALID is supported")


def _compile_conv(module: GraphModule, node: GraphNode) -> None:
    x = module._in(node, 0)
    _check_nhwc(node, x)
    kernel = module._const(node, 1)  # H, W, in/groups, out
    x, padding = module._fold_padding(node, x, 0.0)
    strides, dilations = node.attr_int_list("strides"), node.attr_int_list("dilations") or [1, 1, 1, 1]
    weight = module._add_weight(node.name + "/kernel", np.transpose(kernel, (3, 2, 0, 1)))
    module._emit(
        node,
        "conv",
        [x],
        NHWC,
        4,
        weight=weight,
        stride=(strides[1], strides[2]),
        dilation=(dilations[1], dilations[2]),
        padding=padding,
        in_per_group=int(kernel.shape[2]),
        bias=None,
    )


def _compile_maxpool(module: GraphModule, node: GraphNode) -> None:
    x = module._in(node, 0)
    _check_nhwc(node, x)
    x, padding = module._fold_padding(node, x, float("-inf"))
    ksize, strides = node.attr_int_list("ksize"), node.attr_int_list("strides")
    module._emit(
        node, "maxpool", [x], NHWC, 4, kernel=(ksize[1], ksize[2]), stride=(strides[1], strides[2]), padding=padding
    )


def _compile_add(module: GraphModule, node: GraphNode) -> None:
    a, b = module._in(node, 0), module._in(node, 1)
    if a.const is not None and b.const is not None:
        module._tensors[node.name] = _Tensor(const=a.const + b.const)
    elif a.const is None and b.const is None:
        if a.layout != b.layout:
            raise ModelGraphError(f"'{node.name}' adds tensors of different layouts")
        module._emit(node, "add", [a, b], a.layout, a.rank)
    else:
        x, const = (a, b.const) if b.const is not None else (b, a.const)
        if const.ndim != 1 or x.rank != 4:
            raise ModelGraphError(f"'{node.name}': only per-channel constant adds are supported")
        producer = module._producer(x.key)
        if x.layout == NHWC and producer is not None and producer.kind == "conv" and producer.params["bias"] is None:
            # conv + per-channel add is a biased conv: one op instead of two.
            producer.params["bias"] = module._add_weight(node.name + "/bias", const)
            module._tensors[node.name] = x
            return
        shape = (1, -1, 1, 1) if x.layout == NHWC else (1, 1, 1, -1)
        weight = module._add_weight(node.name + "/bias", const.reshape(shape))
        module._emit(node, "bias", [x], x.layout, 4, weight=weight)


def _compile_unary(kind: str):
    def compile_unary(module: GraphModule, node: GraphNode) -> None:
        x = module._in(node, 0)
        module._emit(node, kind, [x], x.layout, x.rank, alpha=node.attr_float("alpha", 0.2))

    return compile_unary


def _physical_axis(x: _Tensor, axis: int) -> int:
    axis = axis % x.rank
    return _NHWC_TO_PHYSICAL[axis] if x.layout == NHWC else axis


def _compile_concat(module: GraphModule, node: GraphNode) -> None:
    parts = [module._in(node, i) for i in range(len(node.inputs) - 1)]
    if len({p.layout for p in parts}) != 1 or any(p.const is not None for p in parts):
        raise ModelGraphError(f"'{node.name}': concat of mixed layouts or constants is not supported")
    axis = _physical_axis(parts[0], int(module._const(node, len(node.inputs) - 1)))
    module._emit(node, "concat", parts, parts[0].layout, parts[0].rank, axis=axis)


def _compile_resize(module: GraphModule, node: GraphNode) -> None:
    x = module._in(node, 0)
    if x.layout != NHWC or node.attr_bool("align_corners") or not node.attr_bool("half_pixel_centers"):
        raise ModelGraphError(f"'{node.name}': only NHWC half-pixel bilinear resize is supported")
    size = tuple(int(v) for v in module._const(node, 1))
    module._emit(node, "resize", [x], NHWC, 4, size=size, ratio=None)


def _compile_split(module: GraphModule, node: GraphNode) -> None:
    x = module._in(node, 0)
    sizes = [int(v) for v in module._const(node, 1)]
    axis = _physical_axis(x, int(module._const(node, 2)))
    keys = tuple(_key(node.name, i) for i in range(len(sizes)))
    module.steps.append(Step(node.name, "split", (x.key,), keys, {"sizes": sizes, "axis": axis}))
    for i, key in enumerate(keys):
        module._tensors[node.name if i == 0 else f"{node.name}:{i}"] = _Tensor(key, x.layout, x.rank)


def _compile_reshape(module: GraphModule, node: GraphNode) -> None:
    x, shape = module._in(node, 0), [int(v) for v in module._const(node, 1)]
    if x.layout != PLAIN:
        raise ModelGraphError(f"'{node.name}': reshape of an NHWC-logical tensor is not supported")
    # The converted graph fixes the batch at 1; keep whatever batch arrives instead.
    module._emit(node, "reshape", [x], PLAIN, len(shape), shape=tuple(shape[1:]))


def _compile_sparse_to_dense(module: GraphModule, node: GraphNode) -> None:
    indices, shape, values, default = (module._const(node, i) for i in range(4))
    dense = np.full(shape.astype(np.int64), default, dtype=values.dtype if values.size else default.dtype)
    if indices.size:
        dense[tuple(indices.T.astype(np.int64))] = values
    module._tensors[node.name] = _Tensor(const=dense)


_COMPILERS = {
    "Placeholder": _compile_placeholder,
    "Identity": _compile_identity,
    "Transpose": _compile_transpose,
    "Pad": _compile_pad,
    "PadV2": _compile_pad,
    "Conv2D": _compile_conv,
    "MaxPool": _compile_maxpool,
    "Add": _compile_add,
    "AddV2": _compile_add,
    "LeakyRelu": _compile_unary("leaky_relu"),
    "Sigmoid": _compile_unary("sigmoid"),
    "ConcatV2": _compile_concat,
    "ResizeBilinear": _compile_resize,
    "SplitV": _compile_split,
    "Reshape": _compile_reshape,
    "SparseToDense": _compile_sparse_to_dense,
}


# ------------------------------------------------------------------- executors (Step -> torch op)


def _run_conv(module: GraphModule, step: Step, x: torch.Tensor) -> torch.Tensor:
    p = step.params
    bias = module.weights[p["bias"]] if p["bias"] is not None else None
    groups = x.shape[1] // p["in_per_group"]
    return F.conv2d(x, module.weights[p["weight"]], bias, p["stride"], p["padding"], p["dilation"], groups)


def _run_resize(module: GraphModule, step: Step, x: torch.Tensor) -> torch.Tensor:
    ratio = step.params["ratio"]
    if ratio is None:  # only while calibrating at the reference size
        return F.interpolate(x, size=step.params["size"], mode="bilinear", align_corners=False)
    # A scale factor rather than a size computed from x.shape: the same numbers for NanoDet's exact
    # ratios (2 and 1/2 on even maps), and an ONNX export keeps the spatial size dynamic.
    return F.interpolate(x, scale_factor=ratio, mode="bilinear", align_corners=False)


_EXECUTORS = {
    "conv": _run_conv,
    "bias": lambda m, s, x: x + m.weights[s.params["weight"]],
    "maxpool": lambda m, s, x: F.max_pool2d(x, s.params["kernel"], s.params["stride"], s.params["padding"]),
    "pad": lambda m, s, x: F.pad(x, s.params["pads"], value=s.params["value"]),
    "add": lambda m, s, a, b: a + b,
    "leaky_relu": lambda m, s, x: F.leaky_relu(x, s.params["alpha"]),
    "sigmoid": lambda m, s, x: torch.sigmoid(x),
    "concat": lambda m, s, *xs: torch.cat(xs, dim=s.params["axis"]),
    "resize": _run_resize,
    "split": lambda m, s, x: tuple(torch.split(x, s.params["sizes"], dim=s.params["axis"])),
    "reshape": lambda m, s, x: x.reshape(x.shape[0], *s.params["shape"]),
    "permute": lambda m, s, x: x.permute(*s.params["perm"]),
}
