"""privinfer's command line: argument parsing only; the work happens in the modules it calls.

Every `PrivinferError` becomes one line on stderr and exit code 2, so scripts can rely on it.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from privinfer.errors import PrivinferError

_COMMANDS: dict[str, tuple[str, Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int]]] = {}


def command(name: str, help_text: str, configure: Callable[[argparse.ArgumentParser], None]):
    """Register a subcommand: its parser set-up and its handler (returns the exit code)."""

    def decorate(handler: Callable[[argparse.Namespace], int]):
        _COMMANDS[name] = (help_text, configure, handler)
        return handler

    return decorate


def _csv(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


# ---------------------------------------------------------------- assets


def _configure_assets(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "action", choices=["fetch", "list", "verify"], help="fetch missing assets, list them, or check hashes"
    )
    parser.add_argument("names", nargs="*", help="asset names (default: all)")


@command("assets", "fetch, list or verify the model and sample-image assets", _configure_assets)
def _assets(args: argparse.Namespace) -> int:
    from privinfer import assets

    names = args.names or list(assets.ASSETS)
    if args.action == "fetch":
        assets.fetch(names, progress=lambda line: print(line, file=sys.stderr))
        print(f"{len(names)} assets cached in {assets.cache_dir()}")
        return 0
    failed = 0
    for name in names:
        asset = assets.ASSETS.get(name) or assets.require(name)
        ok = assets.verify(name)
        failed += not ok
        if args.action == "list":
            state = "ok" if ok else "missing"
            print(f"{name:20s} {state:8s} {asset.package.kind}:{asset.package.spec}  {asset.member}  [{asset.license}]")
        else:
            print(f"{name}: {'ok' if ok else 'MISSING or hash mismatch'}")
    return 1 if failed and args.action == "verify" else 0


# ---------------------------------------------------------------- detect


def _configure_detect(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("images", nargs="+", help="image files")
    parser.add_argument("--sensitive", type=_csv, default=[], help="sensitive detectors, e.g. faces,text")
    parser.add_argument("--out", type=Path, default=Path("out"), help="folder for annotated images and JSON")
    parser.add_argument("--thresh", type=float, default=None, help="sensitive-detector score threshold")
    parser.add_argument("--mask-scale", type=float, default=1.3, help="grow sensitive boxes by this factor")
    parser.add_argument("--input-size", type=int, default=416, help="task-model input size (multiple of 32)")
    parser.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda:0")


@command("detect", "run the task model (and sensitive detectors) on images", _configure_detect)
def _detect(args: argparse.Namespace) -> int:
    from privinfer.detect_images import DetectJob, run_detect_job

    job = DetectJob(args.images, args.sensitive, args.out, args.thresh, args.mask_scale, args.input_size, args.device)
    failures = run_detect_job(job, report=print, warn=lambda line: print(f"privinfer: error: {line}", file=sys.stderr))
    return 2 if failures else 0


# ---------------------------------------------------------------- demo


def _configure_demo(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, default=Path("demo-out"), help="where to write the annotated image")
    parser.add_argument("--device", default="cpu", help="torch device")


@command("demo", "run the main job on the bundled sample photo (dog.jpg)", _configure_demo)
def _demo(args: argparse.Namespace) -> int:
    from privinfer import assets
    from privinfer.detect_images import DetectJob, run_detect_job

    image = assets.require("dog.jpg")
    job = DetectJob([str(image)], ["faces"], args.out, None, 1.3, 416, args.device)
    return 2 if run_detect_job(job, report=print, warn=lambda line: print(line, file=sys.stderr)) else 0


# ---------------------------------------------------------------- entry point


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="privinfer", description="Private, low-latency vision inference over servers."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (help_text, configure, handler) in _COMMANDS.items():
        child = sub.add_parser(name, help=help_text, description=help_text)
        configure(child)
        child.set_defaults(handler=handler)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except PrivinferError as error:
        print(f"privinfer: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # output piped into `head` and closed early
        return 0


if __name__ == "__main__":
    sys.exit(main())
