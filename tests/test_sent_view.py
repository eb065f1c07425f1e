"""What the servers saw (NAME_sent.jpg) is built from the payloads recorded as they left the client:
each payload's pixels at its chunk's place, grey where nothing was sent, feature cells hatched."""

from __future__ import annotations

import numpy as np
import pytest
from skimage.data import astronaut

from fakes import FlakyPool
from privinfer.cli.sent_view import HATCH_COLOUR, HATCH_PERIOD, NOT_SENT, compose, feature_cells, render_sent
from privinfer.pipeline import Pipeline, PipelineConfig
from privinfer.serve import PATCHED, REPAIRED, create_pool
from privinfer.serve.recording import RecordingPool
from privinfer.types import Box, Treatment


def _zoomed(box: Box, zoom: int) -> tuple[slice, slice]:
    x1, y1, x2, y2 = (int(round(v * zoom)) for v in box.as_list())
    return slice(y1, y2), slice(x1, x2)


@pytest.fixture(scope="module")
def recorded():
    """A face photo cut into grid tiles over three servers, the right half outside the region of interest, recorded
    twice: by the pipeline (what the picture is built from) and by an outer pool of the test's own. The face
    goes with a feature patch (`token`), so the picture has cells to hatch."""
    frame = astronaut()  # 512 x 512: worked on at 416 x 416
    outer = RecordingPool(create_pool("threads", 3))
    config = PipelineConfig(
        servers=3, record_sent=True, partition="grid", tile=192, learn_capacities=False, roi="boxes",
        roi_options={"boxes": [Box(0, 0, 256, 512)]}, obfuscator="token",
    )  # fmt: skip
    with Pipeline(config, pool=outer) as pipeline:
        result = pipeline(frame)
    return result, outer.sent


def test_the_recording_is_every_payload_handed_to_a_server_and_nothing_else(recorded):
    result, outer = recorded
    sent = result.sent
    assert sent is not None and (sent.width, sent.height) == (416, 416)
    ours = [(server, chunk.payload) for chunk in sent.chunks for server in chunk.servers]
    assert sorted((s, id(p)) for s, p in ours) == sorted((s, id(p)) for s, p in outer)
    records = [t for t in result.tiles if t.treatment != Treatment.DISCARDED]
    assert len(sent.chunks) == len(records) >= 3 and len({server for server, _ in outer}) == 3
    assert any(chunk.payload.kind == PATCHED and chunk.payload.patch is not None for chunk in sent.chunks)


def test_the_picture_is_the_payloads_pixels_at_their_places_and_grey_elsewhere(recorded):
    result, _ = recorded
    sent = result.sent
    image = render_sent(sent)
    zoom = image.zoom
    assert image.pixels.shape == (416 * zoom, 416 * zoom, 3) and zoom >= 2
    covered = np.zeros(image.annotated.shape, bool)
    shows_a_payload = np.zeros(image.annotated.shape, bool)
    for chunk in sent.chunks:
        where = _zoomed(chunk.box, zoom)
        enlarged = np.repeat(np.repeat(chunk.payload.data, zoom, axis=0), zoom, axis=1)
        assert enlarged.shape == image.pixels[where].shape, "a chunk's payload fills its box exactly"
        covered[where] = True
        shows_a_payload[where] |= (image.pixels[where] == enlarged).all(axis=2)
    plain = ~image.annotated
    # Every pixel not drawn over is a recorded payload's own pixel, or grey where nothing was sent.
    assert (shows_a_payload | ~covered)[plain].all()
    assert (image.pixels[~covered & plain] == NOT_SENT).all()
    assert (~covered).sum() > 0.2 * covered.size, "the grid tiles outside the region of interest were not sent"
    assert image.annotated[covered].mean() < 0.25, "the drawing leaves most of what was sent visible"
    # compose alone is the same picture before anything is drawn on it.
    composed, composed_covered = compose(sent, zoom)
    assert np.array_equal(composed_covered, covered) and np.array_equal(composed[plain], image.pixels[plain])


def test_a_face_shows_as_it_was_sent_filled_and_its_feature_cells_hatched(recorded):
    result, _ = recorded
    image = render_sent(result.sent)
    zoom = image.zoom
    face = result.sensitive[0].box
    scale = 416 / 512
    inner = Box(face.x1 * scale + 2, face.y1 * scale + 2, face.x2 * scale - 2, face.y2 * scale - 2)
    where = _zoomed(inner, zoom)
    plain = ~image.annotated[where]
    assert plain.any() and (image.pixels[where][plain] == 0).all(), "filled black, as sent: no face pixel"
    cells = [cell for chunk in result.sent.chunks for cell in feature_cells(chunk.payload, chunk.box)]
    assert cells
    rows, columns = np.indices(image.annotated.shape)
    pattern = (rows + columns) % HATCH_PERIOD == 0  # diagonals across the whole picture
    shown = 0
    for cell in cells:
        cell_where = _zoomed(cell, zoom)
        assert image.annotated[cell_where][pattern[cell_where]].all(), "every feature cell is drawn over"
        shown += (image.pixels[cell_where] == HATCH_COLOUR).all(axis=2).any()
    assert shown > 0.8 * len(cells), "most cells show their hatching (a chunk's outline or label may cover some)"


def test_each_chunk_is_outlined_and_a_chunk_sent_again_names_both_servers(dog_rgb):
    pool = FlakyPool(create_pool("threads", 2), {"local-0"})
    config = PipelineConfig(servers=2, record_sent=True, sensitive=(), obfuscator="unaltered", min_gain=0.0)
    with Pipeline(config, pool=pool) as pipeline:
        sent = pipeline(dog_rgb).sent
    again = [chunk for chunk in sent.chunks if len(chunk.servers) > 1]
    assert again and all(chunk.servers == ("local-0", "local-1") for chunk in again)
    image = render_sent(sent)
    for chunk in sent.chunks:
        rows, columns = _zoomed(chunk.box, image.zoom)
        assert image.annotated[rows.start, columns].all() and image.annotated[rows, columns.start].all()


def test_the_pipeline_keeps_no_payload_unless_asked(dog_rgb):
    with Pipeline(PipelineConfig(servers=1, sensitive=(), obfuscator="unaltered")) as pipeline:
        assert pipeline(dog_rgb).sent is None and pipeline.recorder is None


def test_the_default_sends_no_feature_values_so_nothing_is_hatched():
    """`repair`, the default, sends the filled chunk and its regions' cell indices: no feature
    leaves, and the picture of what the servers saw hatches nothing."""
    config = PipelineConfig(servers=2, record_sent=True)
    assert config.obfuscator == "repair"
    with Pipeline(config) as pipeline:
        result = pipeline(astronaut())
    kinds = {chunk.payload.kind for chunk in result.sent.chunks}
    assert REPAIRED in kinds, kinds
    assert all(chunk.payload.patch is None for chunk in result.sent.chunks)
    assert not [cell for chunk in result.sent.chunks for cell in feature_cells(chunk.payload, chunk.box)]
