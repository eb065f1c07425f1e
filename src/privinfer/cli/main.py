"""privinfer's command line: argument parsing only; the work happens in the modules it calls.

Every `PrivinferError` becomes one line on stderr and exit code 2, so scripts can rely on it.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable
from pathlib import Path

from privinfer.cli import options
from privinfer.cli.options import RUN_DEFAULTS
from privinfer.errors import ConfigError, PrivinferError, ServerCallError

_COMMANDS: dict[str, tuple[str, Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int]]] = {}


def command(name: str, help_text: str, configure: Callable[[argparse.ArgumentParser], None]):
    """Register a subcommand: its parser set-up and its handler (returns the exit code)."""

    def decorate(handler: Callable[[argparse.Namespace], int]):
        _COMMANDS[name] = (help_text, configure, handler)
        return handler

    return decorate


def _csv(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _floats(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(part) for part in _csv(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a comma-separated list of numbers") from None


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
    parser.add_argument("images", nargs="+", help="image files, or folders of images (as `run` takes them)")
    _add_sensitive(parser)
    parser.add_argument(
        "--out", type=Path, default=Path("out"), help="folder for annotated images and JSON (default: out)"
    )
    _add_thresh(parser)
    parser.add_argument(
        "--mask-scale", type=_MASK_SCALE, default=RUN_DEFAULTS["mask_scale"],
        help="grow sensitive boxes by this factor, at least 1 (default: %(default)s)",
    )  # fmt: skip
    parser.add_argument(
        "--input-size", type=_input_size, default=416, help="task-model input size, a multiple of 32 (default: 416)"
    )
    _add_anonymize(parser, "NAME_anonymized.jpg")
    _add_device(parser)
    _add_max_pixels(parser)


def _add_anonymize(parser: argparse.ArgumentParser, names: str) -> None:
    parser.add_argument(
        "--anonymize",
        type=options.one_of(options.ANONYMIZE, "--anonymize"),
        default=None,
        help=f"also write each image with every sensitive region hidden, as {names} under --out; "
        f"choose from: {', '.join(options.ANONYMIZE)} (default: none written)",
    )


_MASK_SCALE = options.bounded(float, 1, flag="--mask-scale")


def _input_size(text: str) -> int:
    size = options.bounded(int, 32, flag="--input-size", what="the model input size")(text)
    if size % 32:
        raise argparse.ArgumentTypeError(f"--input-size {text}: the model input size must be a multiple of 32")
    return size


def _add_sensitive(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--sensitive",
        type=options.names(options.SENSITIVE_DETECTORS, "sensitive detector", "--sensitive"),
        default=None,
        metavar="NAME[,NAME]",
        help="sensitive detectors, comma-separated, '' for none; choose from: "
        f"{', '.join(options.SENSITIVE_DETECTORS)} (default: {','.join(RUN_DEFAULTS['sensitive'])})",
    )


def _add_thresh(parser: argparse.ArgumentParser) -> None:
    own = ", ".join(f"{name} {value:g}" for name, value in options.DETECTOR_THRESHOLDS.items())
    parser.add_argument(
        "--thresh",
        type=options.bounded(float, 0, 1, flag="--thresh", what="the detector threshold"),
        default=None,
        help=f"sensitive-detector score threshold, 0-1 (default: each detector's own: {own})",
    )


def _add_device(parser: argparse.ArgumentParser, default: str | None = "cpu") -> None:
    parser.add_argument(
        "--device", type=options.device, default=default, help="torch device: cpu, cuda or cuda:N (default: cpu)"
    )


def _add_max_pixels(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--max-pixels",
        type=options.bounded(int, 1, flag="--max-pixels"),
        default=None,
        help="refuse images / video frames with more pixels, judged before decoding "
        "(default $PRIVINFER_MAX_PIXELS or 50000000)",
    )


@command("detect", "run the task model (and sensitive detectors) on images", _configure_detect)
def _detect(args: argparse.Namespace) -> int:
    options.check_device(args.device)
    from privinfer.cli.detect_images import DetectJob, run_detect_job

    sensitive = RUN_DEFAULTS["sensitive"] if args.sensitive is None else args.sensitive
    job = DetectJob(
        args.images, list(sensitive), args.out, args.thresh, args.mask_scale, args.input_size, args.device,
        args.max_pixels, args.anonymize,
    )  # fmt: skip
    failures = run_detect_job(job, report=print, warn=lambda line: print(f"privinfer: {line}", file=sys.stderr))
    return 2 if failures else 0


# ---------------------------------------------------------------- run


def _context(text: str) -> tuple[int, ...]:
    """'EDGE' or 'EDGE,OBJECT': pixels, 0 or more each."""
    parts = [part.strip() for part in text.split(",")]
    if not 1 <= len(parts) <= 2 or not all(part.isdigit() for part in parts):
        raise argparse.ArgumentTypeError(f"--context {text}: give EDGE or EDGE,OBJECT pixels (0 or more each)")
    return tuple(int(part) for part in parts)


def _configure_run(parser: argparse.ArgumentParser) -> None:
    # Pipeline options default to None so that PipelineConfig stays the one place defaults live;
    # the help quotes them from options.RUN_DEFAULTS, which a test holds equal to PipelineConfig.
    d = RUN_DEFAULTS
    parser.add_argument("inputs", nargs="+", help="images, folders of images, video files or a webcam index")
    parser.add_argument(
        "--servers",
        type=options.servers,
        default=None,
        metavar="N|HOST:PORT[,HOST:PORT]",
        help=f"number of local servers, or remote `privinfer serve` addresses (default: {d['servers']})",
    )
    parser.add_argument(
        "--backend",
        type=options.one_of(options.BACKENDS, "--backend"),
        default=None,
        help=f"local server backend: {', '.join(options.BACKENDS)} (default: {d['backend']})",
    )
    parser.add_argument(
        "--capacities", type=_floats, default=None, help="relative server speeds, e.g. 2,1,1 (default: equal)"
    )
    parser.add_argument("--token-file", type=Path, default=None, help="bearer token for remote servers (default: none)")
    parser.add_argument(
        "--tls-ca", type=Path, default=None, help="CA certificate to check remote servers' TLS by (default: plain TCP)"
    )
    parser.add_argument(
        "--deadline",
        type=options.bounded(float, 0, above=True, flag="--deadline", what="the server deadline"),
        default=None,
        help=f"seconds a remote call may take (default: {d['deadline']:g})",
    )
    parser.add_argument(
        "--obfuscator",
        type=options.one_of(options.OBFUSCATORS, "--obfuscator"),
        default=None,
        metavar="NAME",
        help="how sensitive regions are privatized: fill, blur, mosaic, or a feature patch; choose from: "
        f"{', '.join(options.OBFUSCATORS)} (default: {d['obfuscator']})",
    )
    parser.add_argument(
        "--fill",
        type=options.one_of(options.FILLS, "--fill"),
        default=None,
        help="what a sensitive region's pixels become before they leave: inpainted from the surroundings "
        f"(telea, ns; no pixel of the region is read) or black; choose from: {', '.join(options.FILLS)} "
        "(default: the obfuscator's own: telea for fill, black for repair and the feature obfuscators, "
        "the fill their weights were trained on)",
    )
    _add_sensitive(parser)
    parser.add_argument(
        "--roi",
        action="append",
        default=[],
        metavar="X1,Y1,X2,Y2",
        help="region of interest in frame pixels, repeatable (default: the whole frame)",
    )
    parser.add_argument(
        "--roi-mode",
        type=options.one_of(options.ROI_MODES, "--roi-mode"),
        default=None,
        help=f"RoI provider; choose from: {', '.join(options.ROI_MODES)} (default: {d['roi_mode']})",
    )
    parser.add_argument(
        "--partition",
        type=options.one_of(options.PARTITIONS, "--partition"),
        default=None,
        help="how frames are cut: content (one chunk per server, no known object cut) or grid (fixed tiles of "
        f"--tile px) (default: {d['partition']})",
    )
    parser.add_argument(
        "--discovery",
        type=options.one_of(options.DISCOVERY, "--discovery"),
        default=None,
        help="frames where no object is known yet (photos, a stream's first frame): blind (split anyway, around "
        f"the bodies the faces imply) or whole (one chunk) (default: {d['discovery']})",
    )
    parser.add_argument(
        "--context",
        type=_context,
        default=None,
        metavar="EDGE[,OBJECT]",
        help="pixels a chunk carries past each cut and around each known object "
        f"(default: {d['edge_context']},{d['object_context']})",
    )
    parser.add_argument(
        "--tile",
        type=options.bounded(int, options.MIN_TILE, options.MAX_TILE, flag="--tile", what="tile size"),
        default=None,
        help=f"grid tile size in pixels, {options.MIN_TILE}-{options.MAX_TILE} (default: {d['tile']})",
    )
    parser.add_argument(
        "--overlap",
        type=options.bounded(float, 0, options.MAX_OVERLAP, flag="--overlap", what="tile overlap"),
        default=None,
        help=f"grid tile overlap share, 0-{options.MAX_OVERLAP:g} (default: {d['overlap']:g})",
    )
    parser.add_argument(
        "--work-size",
        type=options.size_or_native(options.MIN_TILE, "--work-size"),
        default=None,
        help=f"long side frames are processed at, 0 = native (default: {d['work_size']})",
    )
    parser.add_argument(
        "--hold-frames",
        type=options.bounded(int, 0, flag="--hold-frames"),
        default=None,
        help=f"video frames a sensitive box is held after it was last seen (default: {d['hold_frames']})",
    )
    _add_thresh(parser)
    parser.add_argument(
        "--mask-scale",
        type=_MASK_SCALE,
        default=None,
        help=f"grow sensitive boxes by this factor, at least 1 (default: {d['mask_scale']:g})",
    )
    parser.add_argument(
        "--detect-size",
        type=options.size_or_native(options.MIN_DETECT_SIZE, "--detect-size"),
        default=None,
        help="long side sensitive detection runs at, instead of the one --min-face needs; 0 = native "
        "(default: from --work-size and --min-face)",
    )
    parser.add_argument(
        "--min-face",
        type=options.bounded(float, 0, flag="--min-face", what="face size", above=True),
        default=None,
        help="smallest face, in pixels of the sent frame (--work-size), that must be found; sensitive detection "
        f"runs at the size this needs (default: {d['min_face']:g}, below which a face cannot be recognised)",
    )
    parser.add_argument(
        "--client-runtime",
        type=options.one_of(options.CLIENT_RUNTIMES, "--client-runtime"),
        default=None,
        help=f"how the client embeds sensitive tiles: {', '.join(options.CLIENT_RUNTIMES)} "
        f"(default: {d['client_runtime']})",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="folder for annotated copies, and NAME_sent.jpg / .mp4: what the servers saw (default: none written)",
    )
    _add_anonymize(parser, "NAME_anonymized.jpg / .mp4")
    parser.add_argument(
        "--json",
        type=Path,
        default=None,
        help="write results: a JSON array, or JSON lines when an input is a video (default: none)",
    )
    parser.add_argument(
        "--max-frames",
        type=options.bounded(int, 1, flag="--max-frames"),
        default=None,
        help="stop after this many frames in all (default: no limit)",
    )
    _add_device(parser, default=None)
    _add_max_pixels(parser)


@command("run", "run the private pipeline on images, folders, videos or a webcam", _configure_run)
def _run(args: argparse.Namespace) -> int:
    options.check_anonymize(args.anonymize, args.out)
    # Answers that come at once come before torch loads: a refused port is known in milliseconds.
    if isinstance(args.servers, tuple):
        refused = options.refused_servers(args.servers)
        if len(refused) == len(args.servers):
            raise ServerCallError("; ".join(refused))
        for problem in refused:
            print(f"privinfer: warning: {problem}; starting without it", file=sys.stderr)
    if args.device is not None:
        options.check_device(args.device)
    from privinfer.cli.runner import RunJob, run_config, run_job

    context = args.context or ()
    config = run_config(
        roi_boxes=args.roi, roi_mode=args.roi_mode, servers=args.servers, backend=args.backend,
        capacities=args.capacities, token_file=args.token_file, tls_ca=args.tls_ca, server_deadline_s=args.deadline,
        obfuscator=args.obfuscator, fill=args.fill, sensitive=args.sensitive, tile=args.tile,
        overlap=args.overlap, partition=args.partition, discovery=args.discovery,
        edge_context=context[0] if context else None, object_context=context[1] if len(context) > 1 else None,
        work_size=args.work_size, hold_frames=args.hold_frames, detector_threshold=args.thresh,
        mask_scale=args.mask_scale, detect_size=args.detect_size, min_face=args.min_face,
        client_runtime=args.client_runtime, device=args.device,
    )  # fmt: skip
    job = RunJob(args.inputs, config, args.out, args.json, args.max_frames, args.max_pixels, args.anonymize)
    return run_job(job, report=print, warn=lambda line: print(line, file=sys.stderr))


# ---------------------------------------------------------------- serve


def _configure_serve(parser: argparse.ArgumentParser) -> None:
    # Defaults None: ServeConfig holds them.
    parser.add_argument("--host", default=None, help="address to listen on (default 127.0.0.1; 0.0.0.0 for all)")
    parser.add_argument("--port", type=int, default=None, help="port (default 8001; 0 picks a free one)")
    parser.add_argument("--tls-cert", type=Path, default=None, help="PEM certificate (chain): serve over TLS")
    parser.add_argument("--tls-key", type=Path, default=None, help="PEM private key of --tls-cert")
    parser.add_argument("--token-file", type=Path, default=None, help="require this bearer token on every call")
    parser.add_argument(
        "--device", type=options.device, default=None, help="torch device: cpu or cuda (onnxruntime runs on the CPU)"
    )
    parser.add_argument("--runtime", default=None, help="onnxruntime (default) or torch")
    parser.add_argument("--threads", type=int, default=None, help="intra-op threads for the model (default: all)")
    parser.add_argument(
        "--slowdown",
        type=float,
        default=None,
        help="test knob, not for serving: make every model call this many times slower (it sleeps after computing)",
    )
    parser.add_argument(
        "--max-in-flight", type=int, default=None,
        help="requests admitted at once (computing or waiting); one more is refused as busy (default 2 per core)",
    )  # fmt: skip


@command(
    "serve", "serve the task model's tail and full passes over gRPC (Open Inference Protocol v2)", _configure_serve
)
def _serve(args: argparse.Namespace) -> int:
    import logging

    from privinfer.serve.grpc_server import ServeConfig, serve

    if args.device is not None:
        options.check_device(args.device)
    logging.basicConfig(level=logging.INFO, format="privinfer serve: %(levelname)s: %(message)s")
    chosen = {
        key: value
        for key in (
            "host",
            "port",
            "tls_cert",
            "tls_key",
            "token_file",
            "device",
            "runtime",
            "threads",
            "slowdown",
            "max_in_flight",
        )
        if (value := getattr(args, key)) is not None
    }
    return serve(ServeConfig(**chosen), announce=lambda line: print(line, flush=True))


# ---------------------------------------------------------------- export


def _configure_export(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("out", type=Path, help="folder to write the model repository into (created if missing)")
    parser.add_argument("--format", required=True, choices=("triton", "mlserver"), help="which engine's layout")
    parser.add_argument(
        "--backend",
        type=options.one_of(options.TRITON_BACKENDS, "--backend"),
        default=None,
        help="Triton backend: onnxruntime (NVIDIA's containers) or python (model.py running the graph with "
        "onnxruntime, for a tritonserver with only the python backend) (default: onnxruntime)",
    )
    parser.add_argument(
        "--score-floor",
        type=float,
        default=0.05,
        help="the served graphs answer only detections scoring above this (default 0.05; keep it below "
        "every threshold the clients decode with)",
    )
    parser.add_argument("--top-k", type=int, default=300, help="at most this many detections per chunk (default 300)")


@command("export", "write the server models as a Triton model repository or MLServer models", _configure_export)
def _export(args: argparse.Namespace) -> int:
    from privinfer.models.served_decode import ServedDecode
    from privinfer.serve.export import export_repository

    written = export_repository(
        args.format, args.out, backend=args.backend, decode=ServedDecode(args.score_floor, args.top_k)
    )
    for path in written:
        print(path)
    return 0


# ---------------------------------------------------------------- testbed


def _ints(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in _csv(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a comma-separated list of whole numbers") from None


def _configure_testbed(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=["up", "down", "status"], help="build and start, take down, or inspect")
    parser.add_argument("--config", type=Path, default=None, help="TOML testbed description ([[servers]] tables)")
    parser.add_argument("--servers", type=int, default=None, help="number of servers (default 3, or the lists')")
    parser.add_argument(
        "--bandwidth", type=_csv, default=None, help="link rate for all servers or each, e.g. 100mbit,20mbit"
    )
    parser.add_argument("--loss", type=_floats, default=None, help="packet loss %% per direction, e.g. 0,1.5")
    parser.add_argument("--threads", type=_ints, default=None, help="server intra-op threads, e.g. 1,2")
    parser.add_argument("--cpus", type=lambda t: t.split("/"), default=None, help="taskset CPU lists, e.g. 0/1/0-1")
    parser.add_argument(
        "--cpu", type=_floats, default=None, help="CPU budget in cores (cgroup quota) for all or each, e.g. 0.25"
    )
    parser.add_argument("--subnet", default=None, help="private IPv4 subnet for the links (default 10.77.0.0/24)")
    parser.add_argument("--port", type=int, default=None, help="servers' port (default 8001)")
    parser.add_argument("--runtime", default=None, help="servers' runtime: onnxruntime (default) or torch")
    parser.add_argument("--token-file", type=Path, default=None, help="servers require this bearer token")
    parser.add_argument("--json", action="store_true", help="status: print JSON")


@command("testbed", "servers in network namespaces behind shaped links, on this machine (root)", _configure_testbed)
def _testbed(args: argparse.Namespace) -> int:
    from privinfer import testbed
    from privinfer.testbed.report import status_json, status_lines

    if args.action == "down":
        removed = testbed.down(progress=print)
        print(f"testbed down ({len(removed)} removed)" if removed else "no testbed was up")
        return 0
    if args.action == "status":
        found = testbed.status()
        print(json.dumps(status_json(found), indent=2) if args.json else "\n".join(status_lines(found)))
        return 0 if all(s.live for s in found) else 1
    config = testbed.load_config(
        args.config, args.servers, args.bandwidth, args.loss, args.threads, args.cpus, args.cpu,
        subnet=args.subnet, port=args.port, runtime=args.runtime, token_file=args.token_file,
    )  # fmt: skip
    bed = testbed.up(config, progress=print)
    print(f"testbed up: privinfer run ... --servers {','.join(bed.addresses)}")
    return 0


# ---------------------------------------------------------------- data


def _configure_data(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=["fetch", "list"], help="build the privacy corpus, or show what is built")
    parser.add_argument("--quick", action="store_true", help="a small corpus from local samples only (tests, CI)")
    parser.add_argument("--faces-dir", type=Path, default=None, help="build the face splits from this folder instead")
    parser.add_argument("--faces-limit", type=int, default=None, help="use at most this many images of --faces-dir")
    parser.add_argument("--out", type=Path, default=None, help="corpus folder (default: the cache's corpus/)")


@command(
    "data", "build (fetch) or list the privacy corpus: face crops by person, natural crops, scenes", _configure_data
)
def _data(args: argparse.Namespace) -> int:
    from privinfer.data import available_splits, corpus_dir, load_info, summarize
    from privinfer.data.build import BuildOptions, build_corpus

    root = args.out or corpus_dir()
    if args.action == "fetch":
        options = BuildOptions(quick=args.quick, faces_dir=args.faces_dir, faces_limit=args.faces_limit, root=root)
        info = build_corpus(options, progress=lambda line: print(line, file=sys.stderr))
    else:
        info = load_info(root)
    print("\n".join(summarize(info)))
    print(f"splits in {root}: {', '.join(available_splits(root)) or 'none'}")
    return 0


# ---------------------------------------------------------------- train / evaluate


def _configure_train(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--target", choices=("token", "repair", "patch-mask", "channel-mask"), default="token",
        help="token (default): the template written into a sensitive region's cells; repair: the server's "
        "network that rewrites a filled region's features and a ring around them; patch-mask: hard gates on "
        "the region's features, against a reconstruction adversary; channel-mask: the earlier whole-tile mask",
    )  # fmt: skip
    parser.add_argument("--ring", type=int, default=None, help="repair: cells rewritten around a region's own")
    parser.add_argument(
        "--fill", type=options.one_of(options.FILLS, "--fill"), default=None,
        help="token, repair: what the client fills regions with while training (default: black)",
    )  # fmt: skip
    parser.add_argument("--config", type=Path, default=None, help="TOML file of the target's training config fields")
    parser.add_argument("--alpha", type=float, default=None, help="privacy weight (the privacy-utility knob)")
    parser.add_argument("--budget", type=float, default=None, help="weight of the share of channels kept")
    parser.add_argument("--pool", action="store_true", default=None,
                        help="patch-mask: send each kept channel's mean over the region, not its map")  # fmt: skip
    parser.add_argument("--steps", type=int, default=None, help="training steps")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--out-dir", default=None, help="where checkpoints, losses and weights go")
    parser.add_argument("--quick", action="store_true", default=None, help="a few steps (CI)")
    _add_device(parser)


@command("train", "train a learned obfuscator against a reconstruction adversary", _configure_train)
def _train(args: argparse.Namespace) -> int:
    options.check_device(args.device)
    from privinfer.run_record import load_config

    overrides = {"alpha": args.alpha, "budget": args.budget, "steps": args.steps, "seed": args.seed,
                 "out_dir": args.out_dir, "quick": args.quick}  # fmt: skip
    if args.ring is not None and args.target != "repair":
        raise ConfigError("--ring is an option of --target repair")
    if args.fill is not None and args.target not in ("token", "repair"):
        raise ConfigError("--fill is an option of --target token and --target repair")
    if args.target in ("token", "repair") and (args.alpha is not None or args.budget is not None or args.pool):
        raise ConfigError(f"--alpha, --budget and --pool are options of the adversarial targets, not of {args.target}")
    if args.target == "repair":
        from privinfer.train.repair_training import RepairTrainingConfig
        from privinfer.train.run import run_repair_training

        repair_overrides = {k: v for k, v in overrides.items() if k not in ("alpha", "budget")}
        config = load_config(
            RepairTrainingConfig, args.config, {**repair_overrides, "ring": args.ring, "fill": args.fill}
        )
        weights = run_repair_training(config, args.device)
    elif args.target == "token":
        from privinfer.train.run import run_token_training
        from privinfer.train.token_training import TokenTrainingConfig

        token_overrides = {k: v for k, v in overrides.items() if k not in ("alpha", "budget")} | {"fill": args.fill}
        weights = run_token_training(load_config(TokenTrainingConfig, args.config, token_overrides), args.device)
    elif args.target == "patch-mask":
        from privinfer.train.patch_mask_training import PatchMaskTrainingConfig
        from privinfer.train.run import run_patch_training

        config = load_config(PatchMaskTrainingConfig, args.config, {**overrides, "pool": args.pool})
        weights = run_patch_training(config, args.device)
    else:
        if args.pool:
            raise ConfigError("--pool is an option of --target patch-mask")
        from privinfer.train.config import MaskTrainingConfig
        from privinfer.train.run import run_training

        weights = run_training(load_config(MaskTrainingConfig, args.config, overrides), args.device)
    print(f"trained {args.target} weights: {weights}")
    return 0


def _configure_evaluate(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--level", choices=("region", "tile"), default="region",
        help="region (default): attack what the product sends of a face (filled pixels + feature patch) and "
        "measure utility on whole frames; tile: the earlier whole-tile evaluation",
    )  # fmt: skip
    parser.add_argument("--config", type=Path, default=None, help="TOML file of the level's config fields")
    parser.add_argument("--out-dir", default=None, help="where summary.json and report.md go (default results)")
    parser.add_argument(
        "--attack-steps", type=int, default=None,
        help="tile: each attacker's training steps; region: the most steps (early stopping)",
    )  # fmt: skip
    parser.add_argument("--channel-mask", default=None, help="tile: trained channel-mask weights to evaluate")
    parser.add_argument("--quick", action="store_true", default=None, help="tiny subsets and few steps (CI)")
    parser.add_argument(
        "--coco-annotations", type=Path, default=None, metavar="FILE",
        help="tile: COCO-format annotation JSON: also report true mAP on it (needs --coco-images)",
    )  # fmt: skip
    parser.add_argument("--coco-images", type=Path, default=None, metavar="DIR", help="images of --coco-annotations")


@command("evaluate", "privacy (strong/weak/inversion/white-box attacks), utility and latency of every obfuscator",
         _configure_evaluate)  # fmt: skip
def _evaluate(args: argparse.Namespace) -> int:
    from privinfer.run_record import load_config

    if args.level == "region":
        if args.channel_mask or args.coco_annotations or args.coco_images:
            raise ConfigError("--channel-mask and --coco-* are options of --level tile")
        from privinfer.evaluate.region_config import RegionEvaluationConfig
        from privinfer.evaluate.region_run import run_region_evaluation

        overrides = {"out_dir": args.out_dir, "attack_max_steps": args.attack_steps, "quick": args.quick}
        config = load_config(RegionEvaluationConfig, args.config, overrides)
        run_region_evaluation(config, progress=lambda line: print(line, file=sys.stderr))
        print(f"report: {Path(config.out_dir) / 'report.md'}")
        return 0
    from privinfer.evaluate.config import DEFAULT_OBFUSCATORS, EvaluationConfig
    from privinfer.evaluate.run import run_evaluation

    obfuscators = None
    if args.channel_mask:
        obfuscators = {**DEFAULT_OBFUSCATORS, "channel-mask": {"weights": args.channel_mask}}
    overrides = {"out_dir": args.out_dir, "attack_steps": args.attack_steps, "quick": args.quick,
                 "obfuscators": obfuscators, "coco_annotations": args.coco_annotations,
                 "coco_images": args.coco_images}  # fmt: skip
    config = load_config(EvaluationConfig, args.config, overrides)
    run_evaluation(config, progress=lambda line: print(line, file=sys.stderr))
    print(f"report: {Path(config.out_dir) / 'report.md'}")
    return 0


# ---------------------------------------------------------------- bench


def _configure_bench(parser: argparse.ArgumentParser) -> None:
    # Section names are listed statically: importing the bench package here would load torch and
    # every model on each `privinfer` call (seconds), only to print a help line.
    parser.add_argument("--quick", action="store_true", help="a few frames per measurement (a smoke test)")
    parser.add_argument(
        "--device", type=options.device, default="cpu", help="torch device for the task model: cpu or cuda (cuda:N)"
    )
    parser.add_argument("--out", type=Path, default=Path("bench/results"), help="folder for the JSON, summary, plots")
    parser.add_argument(
        "--only",
        type=_csv,
        default=None,
        help="sections to run: latency, overhead, alternatives, partition, region, roi, growth, video, scaling, "
        "load (default all)",
    )
    parser.add_argument("--skip", type=_csv, default=[], help="sections not to run, e.g. scaling")
    parser.add_argument("--frames", type=int, default=None, help="frames per measurement (default 100; --quick 3)")
    parser.add_argument("--servers", type=int, default=2, help="N of the multi-server configurations (default 2)")
    parser.add_argument("--backend", default="processes", help="local servers: processes (default) or threads")
    parser.add_argument(
        "--threads", type=int, default=None, help="client torch threads (default all cores; 1 on a busy machine)"
    )
    parser.add_argument(
        "--privacy-summary", type=Path, default=Path("results/summary.json"),
        help="`privinfer evaluate` summary to quote the strong-attacker SSIM from",
    )  # fmt: skip


@command("bench", "measure privinfer against the alternatives (latency, bytes, utility, privacy)", _configure_bench)
def _bench(args: argparse.Namespace) -> int:
    options.check_device(args.device)
    from privinfer.bench import BenchOptions, run_bench

    chosen = BenchOptions(
        quick=args.quick, device=args.device, out=args.out, only=tuple(args.only) if args.only else None,
        skip=tuple(args.skip), frames=args.frames, servers=args.servers, backend=args.backend,
        threads=args.threads, privacy_summary=args.privacy_summary,
    )  # fmt: skip
    run_bench(chosen, progress=lambda line: print(line, file=sys.stderr))
    print(f"summary: {args.out / 'summary.md'}")
    return 0


# ---------------------------------------------------------------- demo


def _configure_demo(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, default=Path("demo-out"), help="where to write annotated images and JSON")
    _add_device(parser)


@command("demo", "run the private pipeline with 3 local servers on the sample photos", _configure_demo)
def _demo(args: argparse.Namespace) -> int:
    options.check_device(args.device)
    from skimage.data import astronaut

    from privinfer import assets
    from privinfer.images import write_image

    # A photo with a face (scikit-image's astronaut), so the demo shows privatized tiles too.
    face_photo = args.out / "inputs" / "astronaut.png"
    write_image(face_photo, astronaut())
    photos = [str(assets.require(name)) for name in ("dog.jpg", "person.jpg")] + [str(face_photo)]
    results = args.out / "results.json"
    code = main(
        ["run", *photos, "--servers", "3", "--sensitive", "faces",
         "--out", str(args.out), "--json", str(results), "--device", args.device]
    )  # fmt: skip
    if results.is_file():
        for record in json.loads(results.read_text()):
            treatments = [t["treatment"] for t in record.get("tiles", [])]
            print(
                f"\n{record['source']}: {len(record.get('sensitive', []))} sensitive regions, tiles "
                + ", ".join(f"{treatments.count(k)} {k}" for k in ("raw", "privatized", "discarded"))
            )
            for detection in record.get("detections", []):
                box = ", ".join(f"{v:.0f}" for v in detection["box"])
                print(f"  {detection['label']:14s} {detection['score']:.2f}  [{box}]")
    return code


# ---------------------------------------------------------------- entry point


class _Parser(argparse.ArgumentParser):
    """argparse, but a bad option is one line naming it, as every other privinfer error is."""

    def error(self, message: str):
        # Our option types say it all, starting with the flag: drop argparse's "argument --x: ".
        message = re.sub(r"^argument [^:]+: (?=--)", "", message)
        self.exit(2, f"privinfer: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="privinfer", description="Private, low-latency vision inference over servers.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for name, (help_text, configure, handler) in _COMMANDS.items():
        child = sub.add_parser(name, help=help_text, description=help_text)
        configure(child)
        child.set_defaults(handler=handler)
    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as done:  # --help, or a bad option (already said in one line): an exit code
        return done.code if isinstance(done.code, int) else 2
    try:
        return args.handler(args)
    except PrivinferError as error:
        print(f"privinfer: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # output piped into `head` and closed early
        return 0
