"""The people-facing side: argument parsing (``main``), option values (``options``), the runners
behind ``privinfer run`` and ``privinfer detect``, and what they write for people (the annotated
overlay, the anonymized copy). The work itself happens in the pipeline and its stages."""

from privinfer.cli.main import build_parser, main

__all__ = ["build_parser", "main"]
