"""`repair`: the region is filled on the client and repaired on the server, from what it sees anyway.

The client sends the chunk's pixels with every region filled (`client.fill`: by default as the
shipped repair network was trained, black) and the indices of the regions' cells, and no feature
values at all. The
server runs the `repaired` graph (`models.repair`): its head on the filled pixels, a small learned
network that rewrites the regions' cells and a ring around them from the features around them,
its tail. Everything the server computes is a function of what it received, which is what
`fill` sends plus where the regions are: its privacy is fill's, by construction.

To every attacker it is a pixel obfuscator: what a server sees of a region is the filled chunk.
"""

from __future__ import annotations

from privinfer.models.repair import trained_fill
from privinfer.obfuscate.pixel_space import Fill
from privinfer.obfuscate.registry import register


@register("repair")
class Repair(Fill):
    """``fill``'s pixels, sent to the server's `repaired` model with the regions' cells. The fill
    is by default the one the shipped repair network was trained on: the server repairs best what
    it learned from."""

    repaired_on_server = True

    def __init__(self, fill: str | None = None) -> None:
        self.preferred_fill = trained_fill()
        super().__init__(fill or self.preferred_fill)
