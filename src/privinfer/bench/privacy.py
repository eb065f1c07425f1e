"""Privacy figures quoted by the benchmark: read from a `privinfer evaluate` summary, never made up.

The benchmark measures latency, bytes and utility itself; privacy (how well a strong attacker
rebuilds a face from what a server sees) takes an evaluation of its own, hours of attack
training. Its ``summary.json`` holds, per obfuscator, ``"strong": {"ssim": ...}`` and, under
``meta.config.obfuscators``, the settings each obfuscator was evaluated with; the benchmark runs
the obfuscators with those very settings so that its latency and the quoted SSIM belong together.

A region-level evaluation (``privinfer evaluate``, the default) attacks what the product sends of a
face: the filled chunk plus the feature patch, so every obfuscator's strong SSIM is quoted, ``fill``
at the inpainting floor. A tile-level summary (``--level tile``) attacked whole face tiles: a pixel
obfuscator's tile (a blurred face) is what a server sees of a face now too, but a feature
obfuscator's tile embedding is no longer sent, so from such a summary only pixel obfuscators' SSIMs
are quoted, and ``fill`` at the no-information floor.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from privinfer.evaluate.config import DEFAULT_OBFUSCATORS
from privinfer.obfuscate import PIXELS, available_obfuscators, obfuscator_space


@dataclass(frozen=True)
class PrivacyReference:
    """Strong-attacker SSIM per obfuscator (absent: not evaluated) and the settings to run each with.

    source: the summary file read, or None when there was none.
    untrained: obfuscators whose learned weights are missing here, run at their random start (not private).
    """

    source: Path | None
    strong_ssim: dict[str, float] = field(default_factory=dict)
    settings: dict[str, dict] = field(default_factory=dict)
    untrained: tuple[str, ...] = ()
    level: str = "region"  # what the summary attacked: "region" (what is sent now) or "tile"

    def options(self, obfuscator: str) -> dict:
        return dict(self.settings.get(obfuscator, {}))

    def ssim(self, obfuscator: str) -> float | None:
        """The evaluated strong SSIM, or None when there is none for what the benchmark runs."""
        if obfuscator in self.untrained:
            return None
        return self.strong_ssim.get(obfuscator)

    def describe(self) -> str:
        if self.source is None:
            return "no privacy evaluation found: strong-attacker SSIM is null (run `privinfer evaluate`)"
        if self.level == "region":
            note = f"strong-attacker region SSIM from {self.source} (the face rebuilt from what is sent of its chunk)"
        else:
            note = (
                f"strong-attacker SSIM from {self.source} (whole face tiles; pixel obfuscators only, fill at "
                "the no-information floor; feature patches are not evaluated there: null)"
            )
        if self.untrained:
            note += f"; {', '.join(self.untrained)} ran untrained (weights missing here): its SSIM is null"
        return note


def _still_sent(name: str) -> bool:
    """Whether what the evaluation attacked for ``name`` is what the pipeline sends (see above)."""
    kind = DEFAULT_OBFUSCATORS.get(name, {}).get("obfuscator", name)
    return kind in available_obfuscators() and obfuscator_space(kind) == PIXELS


def load_privacy_reference(path: Path) -> PrivacyReference:
    """Read ``path`` (a `privinfer evaluate` summary.json); a missing or unreadable file gives no figures."""
    settings = {name: dict(options) for name, options in DEFAULT_OBFUSCATORS.items()}
    try:
        summary = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        summary = None
    ssim = {}
    level = "region" if isinstance(summary, dict) and "front" in summary else "tile"
    if isinstance(summary, dict):
        evaluated = summary.get("meta", {}).get("config", {}).get("obfuscators", {})
        settings.update({name: dict(options) for name, options in evaluated.items() if isinstance(options, dict)})
        for name, entry in summary.items():
            value = entry.get("strong", {}).get("ssim") if isinstance(entry, dict) else None
            quoted = level == "region" or _still_sent(name)
            if name not in ("floor", "meta", "front") and isinstance(value, int | float) and quoted:
                ssim[name] = float(value)
        floor = (
            summary.get("floor", {}).get("strong", {}).get("ssim") if isinstance(summary.get("floor"), dict) else None
        )
        if isinstance(floor, int | float) and "fill" not in ssim:
            ssim["fill"] = float(floor)
    untrained = []
    for name, options in settings.items():
        weights = options.get("weights")
        if weights is not None and not Path(weights).is_file():
            options.pop("weights")
            untrained.append(name)
    source = Path(path) if isinstance(summary, dict) else None
    return PrivacyReference(source, ssim, settings, tuple(untrained), level)
