"""What splitting a frame would buy on the testbed, whatever the partition decides (needs root).

The content-aware partition keeps a frame whole when its cost model predicts too little gain. This
measures the counterfactual: the street video (vtest.avi) over two unshaped testbed servers, the
default partition beside splits forced into two chunks (``min_gain`` 0) with 64, 32 and 0 px of
context past the cut, all against one server. Frames are taken in turn by every pipeline.

    sudo .venv/bin/python scripts/forced_split.py [--frames 30]
"""

from __future__ import annotations

import argparse
import statistics

from privinfer import testbed
from privinfer.bench.scaling import street_frames
from privinfer.pipeline import Pipeline, PipelineConfig
from privinfer.serve import RemoteOptions, create_pool

WARMUP = 3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=30, help="measured frames (after 3 warm-up frames)")
    args = parser.parse_args()
    frames = street_frames(args.frames + WARMUP)
    specs = tuple(testbed.ServerSpec(None, threads=1) for _ in range(2))
    bed = testbed.up(testbed.TestbedConfig(servers=specs, ready_timeout_s=300).validate())
    try:
        settings = {"one server": (1, {}), "default partition": (2, {})}
        for edge in (64, 32, 0):
            settings[f"split forced, {edge} px context"] = (
                2, {"min_gain": 0.0, "edge_context": edge, "object_context": min(edge, 32)},
            )  # fmt: skip
        pipelines = {}
        for name, (count, options) in settings.items():
            config = PipelineConfig(servers=bed.addresses[:count], obfuscator="unaltered", sensitive=(), **options)
            pool = create_pool("threads", bed.addresses[:count], remote=RemoteOptions(deadline_s=120))
            pipelines[name] = Pipeline(config, pool=pool)
        for frame in frames[:WARMUP]:
            for pipeline in pipelines.values():
                pipeline(frame)
        results: dict[str, list] = {name: [] for name in pipelines}
        for index, frame in enumerate(frames[WARMUP:]):
            names = list(pipelines)
            for name in names[index % len(names) :] + names[: index % len(names)]:
                results[name].append(pipelines[name](frame))
        base = {
            key: statistics.median(r.timings_ms[key] for r in results["one server"]) for key in ("servers", "total")
        }
        print("| setting | servers ms | speed-up | frame ms | speed-up | chunks per frame |\n|---|---|---|---|---|---|")
        for name, measured in results.items():
            servers = statistics.median(r.timings_ms["servers"] for r in measured)
            total = statistics.median(r.timings_ms["total"] for r in measured)
            chunks = statistics.mean(sum(t.server is not None for t in r.tiles) for r in measured)
            print(
                f"| {name} | {servers:.1f} | {base['servers'] / servers:.2f}x | {total:.1f} | "
                f"{base['total'] / total:.2f}x | {chunks:.2f} |"
            )
        for pipeline in pipelines.values():
            pipeline.close()
    finally:
        testbed.down()


if __name__ == "__main__":
    main()
