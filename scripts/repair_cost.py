"""What the server's repair costs: the `repaired` graph against `full` (what a server runs on a filled
chunk without it) and `patched`, on chunks of the pipeline's sizes, with one face's cells.

    .venv/bin/python scripts/repair_cost.py --runtime onnxruntime --repeats 50

Prints the median ms of each and the repair's share of the server's stage ((repaired - full) / full).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np

from privinfer.client.privatize import region_cell_indices
from privinfer.serve.worker import TileServer

SIZES = ((320, 416), (416, 224), (256, 256))  # a whole working-size frame, half of one, a small chunk
FACE = (120, 60, 168, 116)  # x1, y1, x2, y2: a 48 x 56 px face


def median_ms(runs: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """Median ms of each call, the calls taken in turn (the order rotating) so that a change of the
    machine's load hits them all alike."""
    names = list(runs)
    for name in names:
        runs[name]()  # the first call allocates
    times: dict[str, list[float]] = {name: [] for name in names}
    for index in range(repeats):
        shift = index % len(names)
        for name in names[shift:] + names[:shift]:
            started = time.perf_counter()
            runs[name]()
            times[name].append((time.perf_counter() - started) * 1e3)
    return {name: float(np.median(t)) for name, t in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runtime", default="onnxruntime", choices=("onnxruntime", "torch"))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args()
    server = TileServer(runtime=args.runtime, threads=args.threads)
    rng = np.random.default_rng(0)
    print(f"runtime {args.runtime}, {args.threads} thread(s), median of {args.repeats}")
    print("| chunk | full ms | patched ms | repaired ms | repair share of the server's stage |")
    print("|---|---|---|---|---|")
    for height, width in SIZES:
        pixels = rng.integers(0, 256, (1, height, width, 3), dtype=np.uint8)
        cells = region_cell_indices(height, width, [FACE])[None]
        patch = {"patch_cells": cells, "patch_channels": np.arange(128, dtype=np.int32)[None],
                 "patch_values": np.zeros((1, cells.shape[1], 128), np.float16)}  # fmt: skip
        ms = median_ms(
            {
                "full": lambda p=pixels: server.run("full", {"pixels": p}),
                "patched": lambda p=pixels, q=patch: server.run("patched", {"pixels": p, **q}),
                "repaired": lambda p=pixels, c=cells: server.run("repaired", {"pixels": p, "region_cells": c}),
            },
            args.repeats,
        )
        full, patched, repaired = ms["full"], ms["patched"], ms["repaired"]
        print(f"| {width}x{height} | {full:.2f} | {patched:.2f} | {repaired:.2f} | {(repaired - full) / full:.1%} |")


if __name__ == "__main__":
    main()
