"""What region privacy costs in detection, on whole photos of people, per obfuscator
(`privinfer.evaluate.frame_utility`). Privacy is not measured here: `privinfer evaluate` attacks
what each obfuscator sends.
"""

from __future__ import annotations

from privinfer.bench.context import BenchContext
from privinfer.bench.partition_quality import people_photos
from privinfer.bench.registry import Section, register
from privinfer.evaluate.config import utility_entry
from privinfer.evaluate.frame_utility import frame_utility

OBFUSCATORS = ("repair", "token", "token telea", "unaltered", "patch-mask", "patch-mask pooled", "channel-mask",
               "gaussian", "random-mask", "fill", "fill black", "blur", "mosaic")  # fmt: skip
# Settings by label, where the label is not an obfuscator's name (the privacy summary's own settings win).
SETTINGS = {
    "patch-mask pooled": {"obfuscator": "patch-mask", "pool": True},
    "token telea": {"obfuscator": "token", "fill": "telea"},  # the template was fitted on black fills
    "fill black": {"obfuscator": "fill", "fill": "black"},  # the context fill's own baseline
}


def measure(ctx: BenchContext) -> dict:
    photos = people_photos(4 if ctx.options.quick else None)
    entries = {label: utility_entry(label, ctx.privacy.options(label) or SETTINGS.get(label, {}))
               for label in OBFUSCATORS}  # fmt: skip
    return frame_utility(entries, photos, ctx.servers)


def markdown(figures: dict) -> list[str]:
    lines = [
        f"{figures['photos']} photos of people at 640 px ({figures['with_faces']} with a face found), the private "
        f"pipeline over {figures['servers']} servers against the unprotected whole frame: mAP@[.5:.95] / mAP@0.5.",
        "",
        "| obfuscator | fill | photos with faces | person AP, photos with faces | all photos | obfuscate ms (median) "
        "| bytes vs raw frame |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, row in figures["obfuscators"].items():
        cells = [f"{row[k]['map']:.3f} / {row[k]['map50']:.3f}" for k in ("with_faces", "person_with_faces", "all")]
        lines.append(
            f"| {name} | {row.get('fill', 'black')} | " + " | ".join(cells)
            + f" | {row['obfuscate_ms']:.1f} | {row['bytes_vs_raw']:.2f} |"
        )  # fmt: skip
    return lines


SECTION = register(Section("region", "Region privacy: detection kept per obfuscator", measure, markdown))
