"""Reading a TensorFlow.js graph model (``model.json`` + weight shards) without TensorFlow.

The format is small: a GraphDef-like list of nodes in JSON, and a weight manifest describing
how the little-endian shards hold each constant (optionally float16- or uint8-quantized).
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from privinfer.errors import ModelGraphError

_DTYPES = {"float32": np.float32, "int32": np.int32, "float16": np.float16, "uint8": np.uint8, "uint16": np.uint16}


@dataclass(frozen=True)
class GraphNode:
    """One operation: its name, TensorFlow op type, input tensor refs ("node" or "node:k") and attributes."""

    name: str
    op: str
    inputs: tuple[str, ...]
    attrs: dict = field(default_factory=dict, hash=False, compare=False)

    def attr_int_list(self, key: str) -> list[int]:
        return [int(v) for v in self.attrs.get(key, {}).get("list", {}).get("i", [])]

    def attr_str(self, key: str) -> str:
        raw = self.attrs.get(key, {}).get("s", "")
        return base64.b64decode(raw).decode() if raw else ""

    def attr_float(self, key: str, default: float) -> float:
        return float(self.attrs.get(key, {}).get("f", default))

    def attr_bool(self, key: str) -> bool:
        return bool(self.attrs.get(key, {}).get("b", False))


@dataclass(frozen=True)
class TfjsGraph:
    """The nodes (constants excluded) in topological order, the constants by name, and the signature."""

    nodes: tuple[GraphNode, ...]
    constants: dict[str, np.ndarray]
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]


def read_tfjs_graph(model_json: Path, weights_dir: Path | None = None) -> TfjsGraph:
    """Parse a TF.js graph model.

    Args:
        model_json: the ``model.json`` file.
        weights_dir: folder holding the shards named in the manifest (default: next to the JSON,
            or the file itself when a single shard was cached under another folder).

    Raises:
        ModelGraphError: the file is not a TF.js graph model or a shard is short.
    """
    spec = json.loads(Path(model_json).read_text())
    if spec.get("format") != "graph-model" or "modelTopology" not in spec:
        raise ModelGraphError(f"{model_json}: not a TensorFlow.js graph model")
    constants = _read_weights(spec["weightsManifest"], weights_dir or Path(model_json).parent)
    all_nodes = [
        GraphNode(n["name"], n["op"], tuple(n.get("input", [])), n.get("attr", {}))
        for n in spec["modelTopology"]["node"]
    ]
    nodes = tuple(_topological([n for n in all_nodes if n.op != "Const"], set(constants)))
    signature = spec.get("signature", {})
    inputs = tuple(_strip_port(k) for k in signature.get("inputs", {})) or tuple(
        n.name for n in nodes if n.op == "Placeholder"
    )
    outputs = tuple(sorted(_strip_port(k) for k in signature.get("outputs", {})))
    return TfjsGraph(nodes, constants, inputs, outputs)


def _strip_port(ref: str) -> str:
    return ref.split(":")[0]


def _read_weights(manifest: list[dict], weights_dir: Path) -> dict[str, np.ndarray]:
    constants: dict[str, np.ndarray] = {}
    for group in manifest:
        buffer = b"".join(_shard(weights_dir, p).read_bytes() for p in group["paths"])
        offset = 0
        for entry in group["weights"]:
            count = int(np.prod(entry["shape"])) if entry["shape"] else 1
            quant = entry.get("quantization")
            stored = _DTYPES[quant["dtype"] if quant else entry["dtype"]]
            size = count * np.dtype(stored).itemsize
            if offset + size > len(buffer):
                raise ModelGraphError(f"weight shard too short for '{entry['name']}' in {weights_dir}")
            values = np.frombuffer(buffer, stored, count, offset).reshape(entry["shape"])
            offset += size
            if quant and quant["dtype"] in ("uint8", "uint16"):
                values = values.astype(np.float32) * quant["scale"] + quant["min"]
            constants[entry["name"]] = values.astype(_DTYPES[entry["dtype"]])
    return constants


def _shard(weights_dir: Path, name: str) -> Path:
    path = weights_dir / name
    if path.is_file():
        return path
    raise ModelGraphError(f"weight shard '{name}' not found in {weights_dir}")


def _topological(nodes: list[GraphNode], known: set[str]) -> list[GraphNode]:
    """Order nodes so every input is produced before use (the JSON order is not guaranteed)."""
    pending = {n.name: n for n in nodes}
    ready = set(known)
    ordered: list[GraphNode] = []
    while pending:
        progressed = False
        for name, node in list(pending.items()):
            if all(_strip_port(ref) in ready for ref in node.inputs):
                ordered.append(node)
                ready.add(name)
                del pending[name]
                progressed = True
        if not progressed:
            raise ModelGraphError(f"graph has unresolvable inputs for: {', '.join(sorted(pending)[:5])}")
    return ordered
