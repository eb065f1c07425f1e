"""What the server's tail makes of a face's cells, by what is written into them: the utility side of
region privacy, without an attacker.

On the utility data of `privinfer train` (windows around the faces the default detector finds in
scene frames, and training persons' face crops), the distillation loss (`train.distill`) of the
`patched` graph's outputs towards the unfilled chunk's, when a face's cells hold:

- fill: the server's own features of the filled pixels (no patch);
- zeros: every channel zero (a patch whose gates removed all channels);
- unaltered: the face's own features;
- mean: each channel's mean over the face, in every cell;
- token: the shipped template (`obfuscate/token.py`).

    .venv/bin/python scripts/patch_utility_probe.py            # about a minute
"""

from __future__ import annotations

import numpy as np
import torch

from privinfer.client import detect
from privinfer.client.privatize import filled
from privinfer.data.corpus import load_split
from privinfer.data.people_photos import from_people_photos
from privinfer.models import nanodet
from privinfer.obfuscate import create_obfuscator
from privinfer.train.distill import distillation_loss
from privinfer.train.patch_mask_training import PatchMaskTrainingConfig
from privinfer.train.patched import padded_batch, patched_features
from privinfer.train.region_chunks import SceneChunk, crop_region, scene_chunks


def main() -> None:
    torch.set_num_threads(1)
    model = nanodet.load_nanodet()
    windows = scene_chunks(load_split("scenes"), PatchMaskTrainingConfig().exclude_scene_files, detect.create("faces"))
    split = load_split("faces-train")
    faces = split.images[[not from_people_photos(f) for f in split.files]]
    rng = np.random.default_rng(1)
    crops = [SceneChunk(faces[i], (crop_region(128),)) for i in rng.choice(len(faces), 20, replace=False)]
    token = create_obfuscator("token")
    senders = {
        "zeros": lambda block: torch.zeros_like(block),
        "unaltered": lambda block: block,
        "mean": lambda block: block.mean(dim=(2, 3), keepdim=True).expand_as(block),
        "token": token,
    }
    for name, chunks in (("scene windows", windows), ("face crops", crops)):
        losses: dict[str, list[float]] = {key: [] for key in ("fill", *senders)}
        for start in range(0, len(chunks), 4):
            batch = chunks[start : start + 4]
            raw = padded_batch(batch)
            holes = np.stack([filled(p, list(c.regions)) for p, c in zip(raw, batch, strict=True)])
            with torch.no_grad():
                z_clean = model.head(nanodet.normalise(list(raw)))
                teacher = model.tail(z_clean)
                z_filled = model.head(nanodet.normalise(list(holes)))
                losses["fill"].append(float(distillation_loss(model.tail(z_filled), teacher)))
                for key, send in senders.items():
                    mixed = patched_features(z_filled, z_clean, batch, send)
                    losses[key].append(float(distillation_loss(model.tail(mixed), teacher)))
        print(f"{name} ({len(chunks)}): " + ", ".join(f"{k} {np.mean(v):.4f}" for k, v in losses.items()))


if __name__ == "__main__":
    main()
