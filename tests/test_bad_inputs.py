"""Bad input gives one clear line naming the file and the problem; a batch goes on; the exit code tells.

Read-level checks call `read_image` directly (fast); one `privinfer run` over a mixed batch shows
the same from the command line; option checks run before any model is loaded.
"""

from __future__ import annotations

import io
import json
import os
import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image as PILImage
from skimage.data import astronaut

from privinfer import assets
from privinfer.cli import main
from privinfer.cli.runner import VideoSource, expand_input
from privinfer.errors import ConfigError, ImageReadError
from privinfer.images import DEFAULT_MAX_PIXELS, MAX_PIXELS_ENV, pixel_limit, read_image

FAST = ["--servers", "1", "--obfuscator", "unaltered", "--sensitive", ""]


# ---------------------------------------------------------------- crafted files


def _png_bytes(rgb_or_gray: np.ndarray) -> bytes:
    ok, encoded = cv2.imencode(".png", rgb_or_gray)
    assert ok
    return encoded.tobytes()


def _jpeg_bytes(rgb: np.ndarray, progressive: bool = False) -> bytes:
    buffer = io.BytesIO()
    PILImage.fromarray(rgb).save(buffer, "JPEG", quality=90, progressive=progressive)
    return buffer.getvalue()


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height, with almost no pixel data behind it (a 'bomb')."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")
    )


def _write(folder: Path, name: str, data: bytes) -> Path:
    path = folder / name
    path.write_bytes(data)
    return path


@pytest.fixture(autouse=True)
def _default_pixel_limit(monkeypatch):
    monkeypatch.delenv(MAX_PIXELS_ENV, raising=False)


# ---------------------------------------------------------------- read_image: refused


def test_missing_empty_and_folder_are_named(tmp_path):
    with pytest.raises(ImageReadError, match=r"missing\.jpg: no such file"):
        read_image(tmp_path / "missing.jpg")
    with pytest.raises(ImageReadError, match=r"empty\.png: file is empty"):
        read_image(_write(tmp_path, "empty.png", b""))
    with pytest.raises(ImageReadError, match="is a folder"):
        read_image(tmp_path)


@pytest.mark.parametrize("cut", [2, 1, 100, 5000, "half"])
@pytest.mark.parametrize("progressive", [False, True])
def test_a_truncated_jpeg_is_refused_not_half_decoded(tmp_path, cut, progressive):
    # Decision: refuse. A half-decoded frame may show part of a face that the detector then misses.
    data = _jpeg_bytes(astronaut(), progressive)
    cut = len(data) // 2 if cut == "half" else cut  # cut 2 removes only the end-of-image marker
    path = _write(tmp_path, "cut.jpg", data[:-cut])
    with pytest.raises(ImageReadError, match=r"cut\.jpg: not a readable image \(JPEG header, .*truncated"):
        read_image(path)


@pytest.mark.parametrize("cut", [4, 1000, "half"])
def test_a_truncated_png_is_refused(tmp_path, cut):
    data = _png_bytes(astronaut())
    cut = len(data) // 2 if cut == "half" else cut
    with pytest.raises(ImageReadError, match=r"cut\.png: not a readable image \(PNG header"):
        read_image(_write(tmp_path, "cut.png", data[:-cut]))


def test_non_image_bytes_and_a_text_file_named_png_fail_cleanly(tmp_path):
    noise = np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes()
    for name, data in [("noise.bin", noise), ("notes.png", b"just some text\n" * 10), ("fake.jpg", b"\xff\xd8\xff")]:
        with pytest.raises(ImageReadError, match=rf"{name}: not a readable image"):
            read_image(_write(tmp_path, name, data))


def test_zero_sized_image_is_refused(tmp_path):
    for width, height in [(0, 5), (5, 0)]:
        with pytest.raises(ImageReadError, match=r"zero\.png: not a readable image"):
            read_image(_write(tmp_path, "zero.png", _png_header_only(width, height)))


def test_unreadable_file_names_the_reason(tmp_path, monkeypatch):
    path = _write(tmp_path, "secret.png", _png_bytes(astronaut()))

    def denied(self):
        raise PermissionError(13, "Permission denied", str(self))

    # Tests run as root here, where chmod does not stop a read: simulate the refusal instead.
    monkeypatch.setattr(Path, "read_bytes", denied)
    with pytest.raises(ImageReadError, match=r"secret\.png: cannot read the file \(Permission denied\)"):
        read_image(path)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_unreadable_file_for_real(tmp_path):
    path = _write(tmp_path, "secret.png", _png_bytes(astronaut()))
    path.chmod(0)
    with pytest.raises(ImageReadError, match="Permission denied"):
        read_image(path)


def test_odd_channel_counts_are_refused_not_crashed(tmp_path, monkeypatch):
    path = _write(tmp_path, "odd.tif", _png_bytes(astronaut()))
    for channels in (2, 5):
        monkeypatch.setattr(cv2, "imdecode", lambda *_, c=channels: np.zeros((4, 4, c), np.uint8))
        with pytest.raises(ImageReadError, match=rf"odd\.tif: {channels} colour channels"):
            read_image(path)


# ---------------------------------------------------------------- read_image: the pixel limit


def test_a_huge_image_is_refused_from_its_header_before_decoding(tmp_path, monkeypatch):
    path = _write(tmp_path, "bomb.png", _png_header_only(10_000, 6_000))  # 60 MP claimed, ~100 bytes
    decoded = []
    monkeypatch.setattr(cv2, "imdecode", lambda *args: decoded.append(args))
    with pytest.raises(
        ImageReadError, match=r"bomb\.png: 10000x6000 is 60,000,000 pixels, over the limit of 50,000,000"
    ):
        read_image(path)
    assert not decoded, "the limit is applied before any decoding"
    with pytest.raises(ImageReadError, match="decompression-bomb limit"):  # over Pillow's own guard too
        read_image(_write(tmp_path, "bigger.png", _png_header_only(100_000, 100_000)))
    assert not decoded


def test_the_pixel_limit_is_configurable_by_argument_and_environment(tmp_path, monkeypatch):
    path = _write(tmp_path, "small.png", _png_bytes(np.zeros((40, 50, 3), np.uint8)))
    assert pixel_limit() == DEFAULT_MAX_PIXELS
    assert read_image(path).pixels.shape == (40, 50, 3)
    assert read_image(path, max_pixels=2000).pixels.shape == (40, 50, 3)
    with pytest.raises(ImageReadError, match="2,000 pixels, over the limit of 1,999 .*--max-pixels"):
        read_image(path, max_pixels=1999)
    monkeypatch.setenv(MAX_PIXELS_ENV, "1999")
    with pytest.raises(ImageReadError, match="over the limit of 1,999"):
        read_image(path)
    assert read_image(path, max_pixels=2000).pixels.shape == (40, 50, 3), "the argument wins"
    monkeypatch.setenv(MAX_PIXELS_ENV, "lots")
    with pytest.raises(ConfigError, match=rf"\${MAX_PIXELS_ENV}='lots' is not a whole number"):
        read_image(path)
    with pytest.raises(ConfigError, match="--max-pixels 0 must be at least 1"):
        pixel_limit(0)


def test_a_video_over_the_pixel_limit_is_refused_before_its_frames_decode(tmp_path):
    clip = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 48))
    for _ in range(3):
        writer.write(np.zeros((48, 64, 3), np.uint8))
    writer.release()
    assert sum(1 for _ in VideoSource.file(clip, max_pixels=64 * 48).frames()) == 3
    with pytest.raises(ImageReadError, match=r"clip\.avi: 64x48 is 3,072 pixels, over the limit of 3,071"):
        next(VideoSource.file(clip, max_pixels=64 * 48 - 1).frames())


# ---------------------------------------------------------------- read_image: accepted, normalised to RGB uint8


def test_a_png_named_jpg_is_read_by_its_content(tmp_path):
    rgb = astronaut()[:64, :80]
    image = read_image(_write(tmp_path, "really-a-png.jpg", _png_bytes(rgb[:, :, ::-1])))
    assert np.array_equal(image.pixels, rgb)


def test_tiny_gray_alpha_and_16_bit_images_become_rgb8(tmp_path):
    rng = np.random.default_rng(0)
    one = read_image(_write(tmp_path, "one.png", _png_bytes(np.full((1, 1, 3), (30, 20, 10), np.uint8))))
    assert one.pixels.shape == (1, 1, 3) and one.pixels.tolist() == [[[10, 20, 30]]]

    gray = rng.integers(0, 256, (20, 30), dtype=np.uint8)
    got = read_image(_write(tmp_path, "gray.png", _png_bytes(gray))).pixels
    assert got.shape == (20, 30, 3) and all(np.array_equal(got[..., c], gray) for c in range(3))

    rgba = np.dstack([rng.integers(0, 256, (20, 30, 3), dtype=np.uint8), np.zeros((20, 30), np.uint8)])
    buffer = io.BytesIO()
    PILImage.fromarray(rgba, "RGBA").save(buffer, "PNG")
    got = read_image(_write(tmp_path, "rgba.png", buffer.getvalue())).pixels
    assert got.shape == (20, 30, 3) and np.array_equal(got, rgba[..., :3]), "alpha dropped, colours kept"

    deep = rng.integers(0, 2**16, (20, 30, 3), dtype=np.uint16)
    got = read_image(_write(tmp_path, "deep.png", _png_bytes(deep))).pixels
    assert got.dtype == np.uint8 and np.array_equal(got, (deep[..., ::-1] >> 8).astype(np.uint8))
    deep_gray = rng.integers(0, 2**16, (20, 30), dtype=np.uint16)
    got = read_image(_write(tmp_path, "deep-gray.png", _png_bytes(deep_gray))).pixels
    assert np.array_equal(got[..., 1], (deep_gray >> 8).astype(np.uint8))

    buffer = io.BytesIO()
    PILImage.fromarray(gray, "L").convert("LA").save(buffer, "PNG")
    assert read_image(_write(tmp_path, "gray-alpha.png", buffer.getvalue())).pixels.shape == (20, 30, 3)


# ---------------------------------------------------------------- folders


def test_folders_without_images_or_unlistable_fail_with_their_name(tmp_path, monkeypatch):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("no images here")
    with pytest.raises(ImageReadError, match=r"empty: folder has no images"):
        expand_input(str(empty))

    locked = tmp_path / "locked"
    locked.mkdir()

    def denied(self):
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "iterdir", denied)  # root lists any folder: simulate a refusal
    with pytest.raises(ImageReadError, match=r"locked: cannot list the folder \(Permission denied\)"):
        expand_input(str(locked))


# ---------------------------------------------------------------- privinfer run over a mixed batch


def test_run_over_a_mixed_batch_names_each_bad_input_and_processes_the_rest(tmp_path, capsys):
    rng = np.random.default_rng(1)
    photo = astronaut()[:120, :160]
    jpeg = _jpeg_bytes(photo)
    empty_folder = tmp_path / "no-images"
    empty_folder.mkdir()
    good = {
        "photo.png": _png_bytes(photo[:, :, ::-1]),
        "one.png": _png_bytes(np.full((1, 1, 3), 128, np.uint8)),
        "gray.png": _png_bytes(photo[:, :, 0]),
        "deep.png": _png_bytes(photo.astype(np.uint16) * 257),
        "png-named.jpg": _png_bytes(photo),
    }
    bad = {
        "empty.jpg": (b"", "file is empty"),
        "truncated.jpg": (jpeg[: len(jpeg) // 2], "truncated"),
        "truncated.png": (good["photo.png"][:-50], "truncated"),
        "text.png": (b"hello, not a picture\n", "not a readable image"),
        "noise.jpg": (rng.integers(0, 256, 3000, dtype=np.uint8).tobytes(), "not a readable image"),
        "bomb.png": (_png_header_only(20_000, 3_000), "over the limit of 50,000,000"),
    }
    paths = {name: _write(tmp_path, name, data) for name, data in good.items()}
    paths.update({name: _write(tmp_path, name, data) for name, (data, _) in bad.items()})
    inputs = [str(paths[name]) for name in [*good, *bad]]
    inputs += [str(tmp_path / "missing.png"), str(empty_folder)]
    results = tmp_path / "results.json"

    code = main(["run", *inputs, *FAST, "--json", str(results)])

    assert code == 2, "something failed: the exit code says so"
    printed = capsys.readouterr()
    errors = [line for line in printed.err.splitlines() if line.startswith("privinfer: error: ")]
    expected = {name: problem for name, (_, problem) in bad.items()}
    expected.update({"missing.png": "no such file", "no-images": "folder has no images"})
    assert len(errors) == len(expected), errors
    for name, problem in expected.items():
        assert sum(name in line and problem in line for line in errors) == 1, (name, errors)
    assert "Traceback" not in printed.err
    records = {Path(r["source"]).name: r for r in json.loads(results.read_text())}
    assert all("detections" in records[name] and "error" not in records[name] for name in good)
    assert all("error" in records[name] for name in expected)
    assert f"frames processed: {len(good)}" in printed.out and f"failed inputs: {len(expected)}" in printed.out


def test_run_with_only_good_inputs_exits_0_and_max_pixels_applies(tmp_path, capsys):
    photo = _write(tmp_path, "photo.png", _png_bytes(astronaut()[:60, :80]))
    assert main(["run", str(photo), *FAST]) == 0
    assert main(["run", str(photo), *FAST, "--max-pixels", "4799"]) == 2
    assert "photo.png: 80x60 is 4,800 pixels, over the limit of 4,799" in capsys.readouterr().err


def test_detect_refuses_over_max_pixels_and_goes_on(tmp_path, capsys):
    small = _write(tmp_path, "small.png", _png_bytes(astronaut()[:60, :80]))
    dog = assets.require("dog.jpg")  # 768x576
    code = main(["detect", str(dog), str(small), "--max-pixels", "100000", "--out", str(tmp_path / "out")])
    assert code == 2
    captured = capsys.readouterr()
    assert "dog.jpg: 768x576 is 442,368 pixels, over the limit of 100,000" in captured.err
    assert (tmp_path / "out" / "small.json").is_file()


# ---------------------------------------------------------------- options, checked before anything loads


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--obfuscator", "nope"], "--obfuscator 'nope' is unknown; choose from: blur, channel-mask"),
        (["--sensitive", "faces,ghosts"], "unknown sensitive detector 'ghosts'; choose from: faces"),
        (["--backend", "pigeons"], "--backend 'pigeons' is unknown; choose from: processes, threads"),
        (["--roi-mode", "nowhere"], "--roi-mode 'nowhere' is unknown; choose from: boxes, fovea, frame, tracked"),
        (["--tile", "16"], "--tile 16: tile size must be between 32 and 2048"),
        (["--tile", "4096"], "--tile 4096: tile size must be between 32 and 2048"),
        (["--overlap", "0.95"], "--overlap 0.95: tile overlap must be between 0 and 0.9"),
        (["--overlap", "-0.1"], "--overlap -0.1"),
        (["--thresh", "1.5"], "--thresh 1.5: the detector threshold must be between 0 and 1"),
        (["--thresh", "nan"], "--thresh nan"),
        (["--mask-scale", "0.5"], "--mask-scale 0.5: must be at least 1"),
        (["--servers", "0"], "--servers 0: need at least one server"),
        (["--servers", "-2"], "--servers -2: need at least one server"),
        (["--servers", "edge-1"], "--servers: server address 'edge-1' is not host:port"),
        (["--servers", "3", "--capacities", "1,2"], "--capacities 1,2: give 3 capacities, one per server"),
        (["--servers", "2", "--capacities", "1,0"], "--capacities 1,0: every capacity must be a positive number"),
        (["--work-size", "16"], "--work-size 16: must be at least 32"),
        (["--hold-frames", "-1"], "--hold-frames -1: must be at least 0"),
        (["--deadline", "0"], "--deadline 0: the server deadline must be above 0"),
        (["--max-frames", "0"], "--max-frames 0: must be at least 1"),
        (["--max-pixels", "0"], "--max-pixels 0: must be at least 1"),
    ],
)
def test_bad_run_options_are_one_line_naming_the_option(args, expected, capsys, monkeypatch):
    import privinfer.cli.runner

    def no_pipeline(*_, **__):
        raise AssertionError("a model was loaded before the options were checked")

    monkeypatch.setattr(privinfer.cli.runner, "Pipeline", no_pipeline)
    code = main(["run", str(assets.require("dog.jpg")), *args])
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("privinfer: error: ") and expected in err, err


def test_a_bad_pixel_limit_in_the_environment_is_named(capsys, monkeypatch):
    monkeypatch.setenv(MAX_PIXELS_ENV, "-5")
    assert main(["run", str(assets.require("dog.jpg")), *FAST]) == 2
    assert capsys.readouterr().err.strip() == f"privinfer: error: ${MAX_PIXELS_ENV} -5 must be at least 1 pixel"


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--input-size", "100"], "--input-size 100: the model input size must be a multiple of 32"),
        (["--thresh", "2"], "--thresh 2: the detector threshold must be between 0 and 1"),
        (["--mask-scale", "0"], "--mask-scale 0: must be at least 1"),
        (["--max-pixels", "-1"], "--max-pixels -1: must be at least 1"),
        (["--sensitive", "ghosts"], "unknown sensitive detector 'ghosts'; choose from: faces"),
    ],
)
def test_bad_detect_options_are_one_line_naming_the_option(args, expected, capsys, monkeypatch):
    from privinfer.models import nanodet

    monkeypatch.setattr(nanodet, "load_nanodet", lambda *_: pytest.fail("model loaded before the options were checked"))
    assert main(["detect", str(assets.require("dog.jpg")), *args]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and expected in err, err
