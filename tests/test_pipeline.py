"""The pipeline end to end on real photos, with real servers, and its scheduler and obfuscators."""

from __future__ import annotations

from concurrent.futures import Future

import numpy as np
import pytest
import torch

from fakes import FlakyPool
from matching import assert_same_detections
from privinfer import assets
from privinfer.client.dispatch import NoServerLeftError
from privinfer.client.schedule import CapacityModel, Task, assign
from privinfer.errors import ConfigError
from privinfer.images import read_image
from privinfer.metrics.detection_map import mean_average_precision
from privinfer.models import nanodet
from privinfer.obfuscate import EMBEDDING, available_obfuscators, create_obfuscator, obfuscator_space
from privinfer.pipeline import Pipeline, PipelineConfig
from privinfer.serve import ServerInfo, ServerPool, WorkBatch, create_pool
from privinfer.types import Treatment


@pytest.fixture(scope="module")
def scenes():
    return [read_image(assets.require(n)).pixels for n in ("dog.jpg", "person.jpg", "horses.jpg")]


def test_tiled_unaltered_pipeline_matches_the_untiled_model(scenes, nanodet_model):
    """Quality bar: no sensitive regions, unaltered features -> tiled ~ untiled (mAP@0.5 vs untiled)."""
    with Pipeline(PipelineConfig(servers=2, obfuscator="unaltered", sensitive=())) as pipeline:
        tiled = [pipeline(rgb).detections for rgb in scenes]
    untiled = [nanodet.detect(nanodet_model, rgb) for rgb in scenes]
    score = mean_average_precision(tiled, untiled, 0.5)
    assert score >= 0.6, f"tiled vs untiled mAP@0.5 = {score:.3f}"


def test_a_lower_score_threshold_only_adds_weaker_detections(dog_rgb):
    """What mAP evaluation relies on: at score 0.05 the confident detections are those at 0.35."""
    found = {}
    for threshold in (0.35, 0.05):
        config = PipelineConfig(servers=2, obfuscator="unaltered", sensitive=(), score_threshold=threshold)
        with Pipeline(config) as pipeline:
            found[threshold] = pipeline(dog_rgb).detections
    assert len(found[0.05]) > len(found[0.35])
    assert [d for d in found[0.05] if d.score >= 0.35] == found[0.35]


def test_faces_are_privatized_and_results_complete(dog_rgb):
    from skimage.data import astronaut

    with Pipeline(PipelineConfig(servers=3, obfuscator="channel-mask", sensitive=("faces",))) as pipeline:
        result = pipeline(astronaut())
        assert result.sensitive and result.sensitive[0].label == "face"
        treatments = {t.treatment for t in result.tiles}
        assert Treatment.PRIVATIZED in treatments
        assert all(t.server for t in result.tiles if t.treatment != Treatment.DISCARDED)
        assert set(result.timings_ms) >= {"detect", "obfuscate", "servers", "merge", "total"}
        # An unrelated photo without faces: a tile is privatized only where a sensitive box is (none
        # here; the int8 detector marks one 11x13 px false face at 0.23, float32 scores it 0.14),
        # and detections as usual.
        pipeline.reset()
        dog = pipeline(dog_rgb)
        for tile in dog.tiles:
            holds_sensitive = any(_intersects(tile.box, d.box) for d in dog.sensitive)
            assert (tile.treatment == Treatment.PRIVATIZED) == holds_sensitive, tile
        assert sum(d.box.area for d in dog.sensitive) < 0.01 * dog_rgb.shape[0] * dog_rgb.shape[1]
        assert {"dog", "bicycle"} <= {d.label for d in dog.detections}


def test_roi_outside_tiles_are_discarded_and_cost_nothing(dog_rgb):
    config = PipelineConfig(
        servers=2,
        obfuscator="unaltered",
        sensitive=(),
        roi="boxes",
        tile=128,
        overlap=0.1,
        roi_options={"boxes": [__import__("privinfer.types").types.Box(0, 0, 200, 200)]},
    )
    with Pipeline(config) as pipeline:
        result = pipeline(dog_rgb)
    discarded = [t for t in result.tiles if t.treatment == Treatment.DISCARDED]
    assert discarded and all(t.bytes == 0 and t.server is None for t in discarded)
    assert any(t.treatment == Treatment.RAW for t in result.tiles)


def test_failed_server_tiles_are_reassigned_without_changing_treatment(dog_rgb):
    inner = create_pool("threads", 3)
    pool = FlakyPool(inner, {"local-0"})
    config = PipelineConfig(servers=3, obfuscator="unaltered", sensitive=(), tile=128)
    with Pipeline(config, pool=pool) as pipeline:
        result = pipeline(dog_rgb)
    assert all(t.server != "local-0" for t in result.tiles)
    assert result.detections
    sent_kinds = [k for server, kinds in pool.calls for k in kinds]
    assert set(sent_kinds) == {"pixels"}


def test_no_server_left_is_an_explicit_error(dog_rgb):
    pool = FlakyPool(create_pool("threads", 2), {"local-0", "local-1"})
    with Pipeline(PipelineConfig(servers=2, obfuscator="unaltered", sensitive=()), pool=pool) as pipeline:
        with pytest.raises(NoServerLeftError, match="no server left"):
            pipeline(dog_rgb)


def test_process_backend_gives_the_same_detections_as_threads(dog_rgb):
    results = {}
    for backend in ("threads", "processes"):
        with Pipeline(PipelineConfig(servers=2, backend=backend, obfuscator="unaltered", sensitive=())) as pipeline:
            results[backend] = pipeline(dog_rgb).detections
    assert_same_detections(results["processes"], results["threads"], box_tol=0.05, score_tol=1e-3)


def test_schedule_balances_by_capacity():
    capacity = CapacityModel.from_hints({"fast": 3.0, "slow": 1.0})
    tasks = [Task(i, "full", 1.0) for i in range(8)]
    plan = assign(tasks, capacity)
    assert len(plan["fast"]) == 6 and len(plan["slow"]) == 2
    capacity.observe("fast", 1.0, 1.0)  # measured: "fast" is in fact slow
    capacity.observe("slow", 1.0, 0.1)
    plan = assign(tasks, capacity)
    assert len(plan["slow"]) > len(plan.get("fast", []))


class ScriptedPool(ServerPool):
    """Servers that answer zeros in the order of ``answers_at`` (server -> seconds on a fake clock),
    all at once when the first answer is waited for (every batch is sent, every timing callback
    attached by then): the clock is moved to each server's time before its answers are given, so the
    times dispatch measures are the script's, whatever the machine's load."""

    def __init__(self, answers_at: dict[str, float]) -> None:
        self.answers_at = answers_at
        self.now = 0.0
        self.futures: dict[str, list[tuple[Future, int]]] = {}

    def clock(self) -> float:
        return self.now

    def servers(self):
        return [ServerInfo(name) for name in self.answers_at]

    def submit(self, batch: WorkBatch, server: str) -> Future:
        future = _AnswersWhenWaitedFor(self)
        self.futures.setdefault(server, []).append((future, len(batch.payloads)))
        return future

    def answer_all(self) -> None:
        for server, at in sorted(self.answers_at.items(), key=lambda item: item[1]):
            self.now = at
            for future, count in self.futures.pop(server, []):
                future.set_result(np.zeros((count, 10, 124), np.float32))


class _AnswersWhenWaitedFor(Future):
    def __init__(self, pool: ScriptedPool) -> None:
        super().__init__()
        self.pool = pool

    def result(self, timeout=None):
        if not self.done():
            self.pool.answer_all()
        return super().result(timeout)


def test_dispatch_times_each_server_by_its_own_answers():
    from privinfer.client.dispatch import ServerHealth, dispatch
    from privinfer.serve import PIXELS, Payload

    # "slow" is sent to (and so collected) first; "fast" must not be charged for waiting on it.
    pool = ScriptedPool({"slow": 0.6, "fast": 0.05})
    capacity = CapacityModel.from_hints({"slow": 2.0, "fast": 1.0})
    payloads = [Payload(i, PIXELS, np.zeros((64, 64, 3), np.uint8)) for i in range(2)]
    pixels = {p.tile_index: 64.0 * 64 for p in payloads}
    outputs = dispatch(payloads, pool, capacity, ServerHealth(), pixels, clock=pool.clock)
    assert {o.server for o in outputs.values()} == {"slow", "fast"}
    work = 64 * 64 / 1e5
    assert capacity.seconds_per_unit["slow"] * work == pytest.approx(0.6)
    assert capacity.seconds_per_unit["fast"] * work == pytest.approx(0.05)


def test_config_errors_are_clear():
    with pytest.raises(ConfigError, match="unknown obfuscator 'nope'.*channel-mask"):
        create_obfuscator("nope")
    with pytest.raises(ConfigError, match="tile size"):
        PipelineConfig(tile=8).validate()
    with pytest.raises(ConfigError, match="unknown server backend"):
        create_pool("carrier-pigeon", 2)


@pytest.mark.parametrize(
    "name", [n for n in available_obfuscators() if obfuscator_space(n) == EMBEDDING and n != "pca"]
)
def test_embedding_obfuscators_keep_shape(name):
    z = torch.randn(2, 128, 8, 8)
    out = create_obfuscator(name)(z)
    assert out.shape == z.shape


def test_feature_baselines_do_what_they_say():
    z = torch.randn(4, 128, 8, 8)
    assert torch.equal(create_obfuscator("unaltered")(z), z)
    masked = create_obfuscator("random-mask", drop=0.5, seed=0)(z)
    zeroed = (masked.abs().sum(dim=(2, 3)) == 0).float().mean()
    assert 0.3 < zeroed < 0.7
    noisy = create_obfuscator("gaussian", sigma=0.5, seed=0)(z)
    assert abs(float((noisy - z).std()) - 0.5) < 0.05
    from skimage.data import astronaut

    from privinfer.models import nanodet

    face = astronaut()[20:148, 150:278]  # the astronaut's face: what the mask was trained on
    with torch.no_grad():
        z = nanodet.load_nanodet().head(nanodet.normalise([face, face[:, ::-1]]))
        mask = create_obfuscator("channel-mask").mask(z)
        sent = create_obfuscator("channel-mask")(z)
    assert mask.shape == (2, 128) and set(mask.unique().tolist()) <= {0.0, 1.0}, "each channel sent or zeroed"
    zeroed = mask == 0
    assert zeroed.any(), "the trained mask removes channels"
    assert (sent[zeroed] == 0).all() and torch.equal(sent[~zeroed], z[~zeroed]), "kept channels are not rescaled"


def test_pca_projection_is_a_projection():
    from privinfer.obfuscate.pca import fit_pca

    z = torch.randn(6, 128, 8, 8)
    pca = create_obfuscator("pca", basis=fit_pca(z, 8))
    once = pca(z)
    torch.testing.assert_close(pca(once), once, atol=1e-4, rtol=1e-4)
    assert float((once - z).abs().mean()) > 0.1


def test_pixel_obfuscators_change_only_the_sensitive_box():
    rng = np.random.default_rng(0)
    tile = rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)
    for name in ("fill", "blur", "mosaic"):
        out = create_obfuscator(name)(tile, [(10, 10, 40, 40)])
        outside = np.ones((64, 64), bool)
        outside[10:40, 10:40] = False
        assert np.array_equal(out[outside], tile[outside])
        assert not np.array_equal(out[10:40, 10:40], tile[10:40, 10:40])


def test_capacity_hints_must_match_servers():
    with pytest.raises(ConfigError, match="positive capacities"):
        create_pool("threads", 2, [1.0])
    assert [s.capacity for s in create_pool("threads", 2, [2.0, 1.0]).servers()] == [2.0, 1.0]
    assert isinstance(create_pool("threads", 1).servers()[0], ServerInfo)


def test_float16_embeddings_barely_move_the_tail_outputs(nanodet_model, dog_rgb):
    x, _ = nanodet.prepare(dog_rgb, 256)
    with torch.no_grad():
        z = nanodet_model.head(x)
        exact = nanodet_model.tail(z)
        halved = nanodet_model.tail(z.half().float())
    assert float((exact - halved).abs().max()) < 0.05
    assert float((exact[..., :80] - halved[..., :80]).abs().max()) < 0.01


def test_people_side_by_side_are_each_reported_as_the_whole_frame_finds_them(dog_rgb):
    """Four portraits touching side by side, split over two servers without privacy: every person
    the model finds on the whole frame comes back, none fused with a neighbour."""
    import cv2
    from skimage.data import astronaut

    from privinfer.boxes import iou
    from privinfer.data import media
    from privinfer.models import nanodet

    grace = next(media.read_pictures("matplotlib:grace_hopper.jpg")).rgb

    def at_height(rgb):
        return cv2.resize(rgb, (round(rgb.shape[1] * 300 / rgb.shape[0]), 300), interpolation=cv2.INTER_AREA)

    row = np.concatenate([at_height(p) for p in (astronaut(), grace, astronaut()[:, ::-1], grace[:, ::-1])], axis=1)
    whole = [d for d in nanodet.detect(nanodet.load_nanodet(), np.ascontiguousarray(row)) if d.label == "person"]
    config = PipelineConfig(servers=2, sensitive=(), learn_capacities=False, min_gain=0.0)
    with Pipeline(config) as pipeline:
        result = pipeline(np.ascontiguousarray(row))
    assert sum(t.server is not None for t in result.tiles) == 2, "the frame was split"
    persons = [d for d in result.detections if d.label == "person"]
    assert len(whole) >= 4 and len(persons) == len(whole)
    for person in whole:
        overlaps = iou(np.array(person.box.as_list()), np.array([p.box.as_list() for p in persons]))
        assert overlaps.max() >= 0.9, person


def test_the_default_private_pipeline_reports_the_persons_beside_each_hidden_face():
    """The same four portraits, every face found and privatized by the default obfuscator (`repair`):
    the persons the unprotected model finds on the whole frame at the working size still come back,
    each where it was. (With `fill`, the faces sent black, 3 of the 6 come back.)"""
    import cv2
    from scipy.optimize import linear_sum_assignment
    from skimage.data import astronaut

    from privinfer.boxes import iou
    from privinfer.data import media
    from privinfer.models import nanodet

    grace = next(media.read_pictures("matplotlib:grace_hopper.jpg")).rgb

    def at_height(rgb):
        return cv2.resize(rgb, (round(rgb.shape[1] * 300 / rgb.shape[0]), 300), interpolation=cv2.INTER_AREA)

    row = np.concatenate([at_height(p) for p in (astronaut(), grace, astronaut()[:, ::-1], grace[:, ::-1])], axis=1)
    work, _ = nanodet.fit_long_side(np.ascontiguousarray(row), 416)
    whole = [d for d in nanodet.detect(nanodet.load_nanodet(), work) if d.label == "person"]
    config = PipelineConfig(servers=2, learn_capacities=False, min_gain=0.0)
    assert config.obfuscator == "repair"
    with Pipeline(config) as pipeline:
        result = pipeline(np.ascontiguousarray(row))
    assert len(result.sensitive) == 4, "each face is found"
    scale = work.shape[1] / row.shape[1]
    persons = [d for d in result.detections if d.label == "person"]
    boxes = np.array([q.box.as_list() for q in persons]) * scale  # the pipeline answers in frame pixels
    overlap = np.array([iou(np.array(p.box.as_list()), boxes) for p in whole])  # (whole, pipeline)
    # Each person of the whole frame has a box of its own (one-to-one, not merely the nearest one).
    rows, cols = linear_sum_assignment(-overlap)
    assert len(whole) >= 4 and len(rows) == len(whole)
    assert overlap[rows, cols].min() >= 0.8, overlap[rows, cols]
    # A chunk sees its cut context, not the whole frame's: at most one extra, low-scored box.
    extra = [persons[i] for i in set(range(len(persons))) - set(cols.tolist())]
    assert len(extra) <= 1 and all(d.score < 0.5 for d in extra), extra


def _intersects(a, b) -> bool:
    return a.x1 < b.x2 and b.x1 < a.x2 and a.y1 < b.y2 and b.y1 < a.y2
