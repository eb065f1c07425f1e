"""Writing matplotlib figures to files, the one way every report and benchmark does it."""

from __future__ import annotations

from pathlib import Path


def save_figure(fig, path: Path, dpi: int = 100) -> str:
    """Lay out, write and close ``fig`` (closing frees it: reports make many); returns the file name."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return path.name
