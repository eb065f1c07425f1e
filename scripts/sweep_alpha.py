"""The privacy-utility curve of the channel-mask obfuscator: train one point per alpha, evaluate it.

Runs for a long time on a CPU (each point trains, then an attacker is trained against it), so it
checkpoints: a finished point is skipped when the script is run again. Results go to
``<out>/sweep.json`` (read by `privinfer evaluate` for the Pareto plot).

    .venv/bin/python scripts/sweep_alpha.py --alphas 0.5 1 2 4 8 --steps 1500 --out results
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

from privinfer.evaluate.config import EvaluationConfig
from privinfer.evaluate.run import run_evaluation
from privinfer.train.config import MaskTrainingConfig
from privinfer.train.run import run_training


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--alphas", type=float, nargs="+", default=[0.5, 1.0, 2.0, 4.0, 8.0])
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--budget", type=float, default=0.0)
    parser.add_argument("--attack-steps", type=int, default=500)
    parser.add_argument("--out", type=Path, default=Path("results"))
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()

    sweep_path = args.out / "sweep.json"
    points = json.loads(sweep_path.read_text()) if sweep_path.is_file() else []
    done = {(p["alpha"], p["budget"]) for p in points}
    for alpha in args.alphas:
        if (alpha, args.budget) in done:
            continue
        point_dir = args.out / "sweep" / f"alpha-{alpha:g}-budget-{args.budget:g}"
        training = MaskTrainingConfig(
            alpha=alpha, steps=args.steps, budget=args.budget, out_dir=str(point_dir / "train"), quick=args.quick
        )
        weights = run_training(training)
        evaluation = replace(EvaluationConfig(), obfuscators={"channel-mask": {"weights": str(weights)}},
                             attack_steps=args.attack_steps, whitebox_images=0, out_dir=str(point_dir / "eval"),
                             quick=args.quick)  # fmt: skip
        summary = run_evaluation(evaluation)
        entry = summary["channel-mask"]
        points.append({"alpha": alpha, "budget": args.budget, "weights": str(weights),
                       "strong_ssim": entry["strong"]["ssim"],
                       "weak_ssim": entry["weak"]["ssim"], "floor_ssim": summary["floor"]["strong"]["ssim"],
                       "map_degradation_pct": entry["map_degradation_pct"],
                       "map50_degradation_pct": entry["map50_degradation_pct"]})  # fmt: skip
        sweep_path.parent.mkdir(parents=True, exist_ok=True)
        sweep_path.write_text(json.dumps(points, indent=2))
        print(json.dumps(points[-1]))


if __name__ == "__main__":
    main()
