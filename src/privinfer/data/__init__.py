"""The privacy corpus: face crops split by person, natural-photo crops and scenes.

Read `corpus` for the splits and how to load them, `sources` for where every picture comes from
and which person is in which split, `build` for how `privinfer data fetch` makes them.
"""

from privinfer.data.corpus import (
    CROP_SPLITS,
    FACES_TEST,
    FACES_TRAIN,
    NATURAL,
    SCENES,
    SPLITS,
    CorpusFormatError,
    CorpusInfo,
    CorpusMissingError,
    CorpusSplit,
    available_splits,
    corpus_dir,
    load_info,
    load_split,
    summarize,
)

__all__ = [
    "CROP_SPLITS",
    "FACES_TEST",
    "FACES_TRAIN",
    "NATURAL",
    "SCENES",
    "SPLITS",
    "CorpusFormatError",
    "CorpusInfo",
    "CorpusMissingError",
    "CorpusSplit",
    "available_splits",
    "corpus_dir",
    "load_info",
    "load_split",
    "summarize",
]
