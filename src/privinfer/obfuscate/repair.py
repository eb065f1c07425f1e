"""`repair`: the region is filled on the client and repaired on the server, from what it sees anyway.

The client sends the chunk's pixels with every region filled (inpainted from its surroundings by
default, `client.fill`) and the indices of the regions' cells, and no feature values at all. The
server runs the `repaired` graph (`models.repair`): its head on the filled pixels, a small learned
network that rewrites the regions' cells and a ring around them from the features around them,
its tail. Everything the server computes is a function of what it received, which is what
`fill` sends plus where the regions are: its privacy is fill's, by construction.

To every attacker it is a pixel obfuscator: what a server sees of a region is the filled chunk.
"""

from __future__ import annotations

from privinfer.obfuscate.pixel_space import Fill
from privinfer.obfuscate.registry import register


@register("repair")
class Repair(Fill):
    """``fill``'s pixels, sent to the server's `repaired` model with the regions' cells."""

    repaired_on_server = True
