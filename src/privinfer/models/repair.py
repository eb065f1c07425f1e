"""`repaired`: the server's own repair of a filled region's features, inside its graph.

A filled face disturbs the head's features in its own cells and, through the receptive field, in
the cells around it, so the tail loses the person below the face. Whatever is computed from what
the server already receives (the filled chunk and where its regions are) tells it nothing new
about a face, so the repair runs on the server: a small convolutional network reads the head's
features of the filled chunk and a mask of the regions' cells, and rewrites the regions' cells
and a ring of ``ring`` cells around them (a residual added there, nothing changed elsewhere)
before the tail. The client sends pixels and the regions' cell indices only: no feature values.

The network is trained by distillation (`privinfer train --target repair`,
`privinfer.train.repair_training`) and ships in ``weights/repair.pt`` with its recipe.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from privinfer.errors import ConfigError
from privinfer.models.nanodet import EMBEDDING_CHANNELS, NanoDet, PixelsToRaw

SHIPPED = Path(__file__).parent / "weights" / "repair.pt"


@dataclass(frozen=True)
class RepairShape:
    """The repair network's size: ``hidden`` channels, one depthwise-separable residual block per
    dilation (a receptive field of 1 + 2 * sum(dilations) cells), rewriting ``ring`` cells around
    the regions' own."""

    channels: int = EMBEDDING_CHANNELS
    hidden: int = 48
    dilations: tuple[int, ...] = (1, 2, 4, 8)
    ring: int = 1


class RegionRepair(nn.Module):
    """(z (N,C,h,w) of the filled chunk, mask (N,1,h,w): 1 in the regions' cells) -> repaired z.

    Starts as the identity (its last layer is zero): untrained, it leaves the filled features as
    they are."""

    def __init__(self, shape: RepairShape = RepairShape()) -> None:
        super().__init__()
        self.shape = shape
        self.reduce = nn.Conv2d(shape.channels + 1, shape.hidden, 1)
        self.blocks = nn.ModuleList(
            nn.Sequential(
                nn.Conv2d(shape.hidden, shape.hidden, 3, padding=d, dilation=d, groups=shape.hidden),
                nn.Conv2d(shape.hidden, shape.hidden, 1),
            )
            for d in shape.dilations
        )
        self.expand = nn.Conv2d(shape.hidden, shape.channels, 1)
        nn.init.zeros_(self.expand.weight)
        nn.init.zeros_(self.expand.bias)

    def area(self, mask: torch.Tensor) -> torch.Tensor:
        """The cells rewritten: the regions' own and ``ring`` cells around them."""
        ring = self.shape.ring
        return F.max_pool2d(mask, 2 * ring + 1, stride=1, padding=ring) if ring else mask

    def forward(self, z: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.reduce(torch.cat([z, mask], dim=1)))
        for block in self.blocks:
            h = h + F.relu(block(h))
        return z + self.area(mask) * self.expand(h)


def load_repair(weights: str | Path | None = None) -> RegionRepair:
    """The repair network from ``weights`` (default: the shipped file), in eval mode.

    Raises ConfigError when the file is missing or not a repair network's."""
    path = Path(weights) if weights is not None else SHIPPED
    if not path.is_file():
        raise ConfigError(f"repair: weights file {path} does not exist (train it: privinfer train --target repair)")
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
        shape = RepairShape(**{**saved["shape"], "dilations": tuple(saved["shape"]["dilations"])})
        repair = RegionRepair(shape)
        repair.load_state_dict(saved["state"])
    except (KeyError, TypeError, RuntimeError) as error:
        raise ConfigError(f"repair: {path} is not a repair network's weights ({error})") from None
    return repair.eval()


def trained_fill(weights: str | Path | None = None) -> str:
    """The client fill (`client.fill`) the repair network in ``weights`` (default: the shipped file)
    was trained on; "black" when the file does not say or is missing."""
    path = Path(weights) if weights is not None else SHIPPED
    try:
        recipe = torch.load(path, map_location="cpu", weights_only=True).get("recipe", {})
    except (OSError, RuntimeError, AttributeError):
        return "black"
    return str(recipe.get("fill", "black"))


def save_repair(repair: RegionRepair, path: Path, **recipe) -> Path:
    """Write ``repair``'s weights, its shape and ``recipe`` (how it was trained) to ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu() for k, v in repair.state_dict().items()}
    torch.save({"state": state, "shape": asdict(repair.shape), "recipe": recipe}, path)
    return path


def cell_mask(cells: torch.Tensor, rows: int, cols: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """(K,) flat cell indices (row * cols + col) -> (1, 1, rows, cols) mask, 1 in those cells."""
    flat = torch.zeros(rows * cols, dtype=dtype, device=cells.device)
    flat = flat.index_put((cells.long(),), torch.ones_like(cells, dtype=dtype))
    return flat.reshape(1, 1, rows, cols)


class RepairedPixelsToRaw(PixelsToRaw):
    """What a server runs on a chunk whose sensitive regions were filled and whose regions' cells
    came along: its head on the filled pixels, the repair of those cells and a ring around them,
    its tail.

    pixels: RGB uint8 (1,H,W,3); region_cells: (1,K) int32 flat cell indices of the padded chunk's
    embedding grid (row * cells per row + column). One chunk per call, as ``PatchedPixelsToRaw``.
    """

    def __init__(self, model: NanoDet, repair: RegionRepair | None = None) -> None:
        super().__init__(model)
        self.repair = repair if repair is not None else load_repair()

    def forward(self, pixels: torch.Tensor, region_cells: torch.Tensor) -> torch.Tensor:
        z = self.model.head(self.prepared(pixels))
        mask = cell_mask(region_cells[0], z.shape[2], z.shape[3], z.dtype)
        return self.model.tail(self.repair(z, mask))
