"""Command-line option checks that run before torch loads, and that they agree with what they mirror."""

from __future__ import annotations

import argparse
import dataclasses
import math
import socket
import subprocess
import sys

import pytest

from privinfer import assets
from privinfer.cli import build_parser, options
from privinfer.errors import ConfigError
from privinfer.ports import free_loopback_ports

# A process that parses the command line and reports whether torch was imported on the way.
_PROBE = """
import sys
from privinfer.cli import main
try:
    code = main(sys.argv[1:])
except SystemExit as exit:
    code = exit.code
print("torch imported" if "torch" in sys.modules else "torch not imported")
sys.exit(code)
"""


def test_names_defaults_and_ranges_match_what_they_mirror():
    from privinfer import pipeline
    from privinfer.client import detect, tiling
    from privinfer.client.fill import available_fills
    from privinfer.client.head import HEAD_RUNTIMES
    from privinfer.client.partition import DISCOVERY, PARTITIONS
    from privinfer.client.roi import ROI_PROVIDERS
    from privinfer.obfuscate import available_obfuscators
    from privinfer.serve import BACKENDS
    from privinfer.serve.export import TRITON_BACKENDS
    from privinfer.serve.protocol import RequestLimits

    assert options.SENSITIVE_DETECTORS == tuple(detect.available())
    assert options.OBFUSCATORS == tuple(available_obfuscators())
    assert options.FILLS == tuple(available_fills())
    assert options.ROI_MODES == tuple(sorted(ROI_PROVIDERS))
    assert options.BACKENDS == tuple(sorted(BACKENDS))
    assert options.CLIENT_RUNTIMES == tuple(sorted(HEAD_RUNTIMES))
    assert options.TRITON_BACKENDS == tuple(sorted(TRITON_BACKENDS))
    assert (options.PARTITIONS, options.DISCOVERY) == (tuple(sorted(PARTITIONS)), tuple(sorted(DISCOVERY)))
    assert options.DETECTOR_THRESHOLDS == {
        name: detect._REGISTRY[name].default_threshold for name in detect.available()
    }
    assert (options.MIN_TILE, options.MAX_OVERLAP) == (tiling.MIN_TILE, tiling.MAX_OVERLAP)
    assert options.MAX_TILE == RequestLimits().max_side
    assert options.MIN_DETECT_SIZE == pipeline.MIN_DETECT_SIZE
    config = pipeline.PipelineConfig()
    fields = {"deadline": "server_deadline_s", "roi_mode": "roi"}
    for key, value in options.RUN_DEFAULTS.items():
        assert getattr(config, fields.get(key, key)) == value, key
    assert {f.name for f in dataclasses.fields(config)} >= {fields.get(key, key) for key in options.RUN_DEFAULTS}


@pytest.mark.parametrize(
    ("kind", "low", "high", "above", "good", "bad"),
    [
        (float, 0, 1, False, ["0", "0.5", "1"], ["-0.1", "1.01", "nan", "x"]),
        (float, 0, math.inf, True, ["0.001", "30"], ["0", "-1", "inf", "nan"]),
        (int, 32, 2048, False, ["32", "2048"], ["31", "2049", "1.5"]),
    ],
)
def test_bounded_takes_the_range_and_refuses_the_rest(kind, low, high, above, good, bad):
    parse = options.bounded(kind, low, high, above=above, flag="--value")
    for text in good:
        assert parse(text) == kind(text)
    for text in bad:
        with pytest.raises(argparse.ArgumentTypeError):
            parse(text)


def test_cli_ranges_refuse_exactly_what_the_pipeline_config_refuses():
    from privinfer.pipeline import PipelineConfig

    parser = build_parser()
    cases = [("--tile", "tile", ["31", "32", "2048", "2049"]), ("--overlap", "overlap", ["0", "0.9", "0.91"]),
             ("--thresh", "detector_threshold", ["-0.01", "0", "1", "1.01"]),
             ("--mask-scale", "mask_scale", ["0.99", "1", "2"]), ("--work-size", "work_size", ["31", "32"]),
             ("--detect-size", "detect_size", ["0", "63", "64"]),
             ("--min-face", "min_face", ["0", "0.5", "8"]), ("--hold-frames", "hold_frames", ["-1", "0"])]  # fmt: skip
    for flag, field, values in cases:
        for text in values:
            try:
                parser.parse_args(["run", "x", flag, text])
                cli_ok = True
            except SystemExit:
                cli_ok = False
            value = (
                float(text)
                if "." in text or field in ("overlap", "detector_threshold", "mask_scale", "min_face")
                else int(text)
            )
            try:
                PipelineConfig(**{field: value}).validate()
                config_ok = True
            except ConfigError:
                config_ok = False
            assert cli_ok == config_ok, (flag, text)


@pytest.mark.parametrize(
    "args",
    [
        ["run", "IMG", "--thresh", "5"],
        ["run", "IMG", "--obfuscator", "chanel-mask"],
        ["run", "IMG", "--sensitive", "face"],
        ["run", "IMG", "--tile", "8"],
        ["run", "IMG", "--work-size", "10"],
        ["run", "IMG", "--device", "gpu"],
        ["run", "IMG", "--servers", "0"],
        ["run", "IMG", "--servers", "edge-1"],
        ["run", "IMG", "--roi-mode", "eyes"],
        ["detect", "IMG", "--sensitive", "face"],
        ["detect", "IMG", "--thresh", "-1"],
        ["detect", "IMG", "--input-size", "100"],
    ],
)
def test_a_mistyped_option_is_refused_in_one_line_before_torch_loads(args):
    argv = [str(assets.require("dog.jpg")) if a == "IMG" else a for a in args]
    done = subprocess.run([sys.executable, "-c", _PROBE, *argv], capture_output=True, text=True, timeout=60)

    assert done.returncode == 2
    assert done.stdout.strip() == "torch not imported"
    errors = done.stderr.strip().splitlines()
    assert len(errors) == 1 and errors[0].startswith(f"privinfer: error: {args[2]}"), errors


def test_refused_and_unresolvable_servers_are_reported_and_a_listening_one_is_not():
    with socket.socket() as listening:
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        up = f"127.0.0.1:{listening.getsockname()[1]}"
        closed = f"127.0.0.1:{free_loopback_ports()[0]}"
        problems = options.refused_servers([up, closed, "no-such-host.invalid:8001"])

    assert len(problems) == 2
    assert problems[0].startswith(f"{closed}: connection refused")
    assert problems[1].startswith("no-such-host.invalid:8001: the host name does not resolve")


def test_a_server_slower_than_the_probe_is_left_to_the_pool(monkeypatch):
    def slow(*args, **kwargs):
        raise TimeoutError("timed out")

    monkeypatch.setattr(socket, "create_connection", slow)
    assert options.refused_servers(["10.77.0.2:8001"]) == []


def test_check_device_refuses_cuda_without_a_gpu_and_passes_cpu():
    import torch

    assert options.check_device("cpu") == "cpu"
    if torch.cuda.is_available():
        with pytest.raises(ConfigError, match="numbered from 0"):
            options.check_device(f"cuda:{torch.cuda.device_count()}")
    else:
        with pytest.raises(ConfigError, match="--device cuda: torch finds no usable CUDA GPU"):
            options.check_device("cuda")


@pytest.mark.parametrize("command", ["run", "detect"])
def test_help_gives_every_option_its_default_or_choices(command):
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices[command]
    for action in sub._actions:
        if not action.option_strings or action.option_strings == ["-h", "--help"]:
            continue
        assert "default" in action.help or action.choices, action.option_strings
    # argparse wraps the help at the terminal width, also after a hyphen ("faces- cascade")
    text = " ".join(sub.format_help().split()).replace("- ", "-")
    for expected in (
        "faces, faces-cascade, faces-fast, heads, persons, plates, screens, text",
        "(default: faces)",
        "faces 0.2",
        "faces-cascade 0.2",
    ):
        assert expected in text
    if command == "run":
        assert "(default: 416)" in text and "(default: repair)" in text and "(default: content)" in text
