"""Nothing sensitive on the wire: scripts/capture_proof.py on one small frame, server in-process.

The client's real gRPC traffic goes through a recording TCP proxy; no 8-pixel row of a planted
noise patch may appear in it, raw or de-framed, while blocks of raw tiles do (the search works),
and with the detector blinded the patches' rows all appear (the search would catch a leak).
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

from privinfer.types import Box

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "capture_proof.py"


def _load_script():
    spec = importlib.util.spec_from_file_location("privinfer_capture_proof", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


proof = _load_script()


@pytest.fixture(scope="module")
def server():
    with proof.served(in_process=True) as address:
        yield address


@pytest.fixture(scope="module")
def frame(dog_rgb):
    rng = np.random.default_rng(3)
    rgb = dog_rgb[100:356, 200:584].copy()  # 384 x 256: 12 tiles of 128
    boxes = (Box(30, 40, 100, 110), Box(250, 150, 310, 230))
    for box in boxes:
        x1, y1, x2, y2 = (int(v) for v in box.as_list())
        rgb[y1:y2, x1:x2] = rng.integers(0, 256, (y2 - y1, x2 - x1, 3), dtype=np.uint8)
    return proof.PlantedFrame("dog crop", rgb, boxes)


@pytest.mark.parametrize("obfuscator", ["channel-mask", "blur"])
def test_no_sensitive_pixel_row_is_on_the_wire_while_raw_tiles_are(server, frame, obfuscator):
    result = proof.run_proof(server, obfuscator, [frame], block=8, tile=128)

    assert result.bytes_captured > 12 * 128 * 128 * 3 // 2, "the traffic was captured"
    assert any(kind.startswith("privatized") for kind in result.tiles) and "raw as pixels" in result.tiles
    assert result.sensitive_rows > 5000
    assert result.sensitive_rows_in_tcp == 0 and result.sensitive_rows_in_data == 0, "a sensitive pixel row leaked"
    assert result.control_blocks >= 20 and result.control_in_data == result.control_blocks, "the search misses pixels"
    assert result.holds


def test_with_the_detector_blinded_the_search_finds_every_patch_row(server, frame):
    result = proof.run_proof(server, "channel-mask", [frame], block=8, tile=128, blind=True)

    assert result.tiles == {"raw as pixels": 12}
    assert result.sensitive_rows_in_data == result.sensitive_rows > 5000
    assert not result.holds


def test_http2_deframing_and_block_search_on_a_made_up_stream():
    rng = np.random.default_rng(0)
    tile = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    payload = b"\x00\x00\x00\x00\x00" + tile.tobytes()  # a gRPC message prefix, then the tile
    frames = b""
    for start in range(0, len(payload), 1000):  # split across DATA frames, the second one padded
        chunk = payload[start : start + 1000]
        flags = 0x8 if start == 1000 else 0
        body = bytes([3]) + chunk + b"pad" if flags else chunk
        frames += len(body).to_bytes(3, "big") + bytes([0, flags]) + (1).to_bytes(4, "big") + body
    stream = proof.HTTP2_PREFACE + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00" + frames  # an empty SETTINGS first

    data = proof.http2_data(stream)
    assert data == payload
    block = proof.block_rows(tile, 5, 7, 8)
    assert proof.blocks_found(proof.ByteIndex(data), [block], strides=[32 * 3]) == 1
    assert proof.blocks_found(proof.ByteIndex(data), [block], strides=[31 * 3]) == 0
    other = rng.integers(0, 256, (8, 24), dtype=np.uint8)
    assert proof.blocks_found(proof.ByteIndex(data), [other], strides=[32 * 3]) == 0
    assert proof.blocks_found(proof.ByteIndex(data), [block, other], strides=[32 * 3, 32 * 3]) == 1
