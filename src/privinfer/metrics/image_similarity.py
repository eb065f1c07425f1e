"""How close a reconstruction is to the original image: SSIM and PSNR, on images in [0, 1].

SSIM is scikit-image's implementation with the settings of Wang et al. (2004): Gaussian
window sigma 1.5 (11x11), population covariance, data range 1.0, computed per colour channel and
averaged. PSNR uses a peak of 1.0 because the data range is [0, 1] (a 255 peak on [0, 1] data,
as some research code does, inflates PSNR by 48 dB).
"""

from __future__ import annotations

import numpy as np
from skimage.metrics import peak_signal_noise_ratio, structural_similarity


def _as_hwc(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image, dtype=np.float64)
    if image.ndim == 3 and image.shape[0] == 3 and image.shape[-1] != 3:
        image = image.transpose(1, 2, 0)
    if image.min() < -1e-6 or image.max() > 1 + 1e-6:
        raise ValueError(f"images must be in [0, 1], got range [{image.min():.3f}, {image.max():.3f}]")
    return image


def ssim(reconstructed: np.ndarray, original: np.ndarray) -> float:
    """SSIM of one RGB pair (HxWx3 or 3xHxW, values in [0, 1])."""
    a, b = _as_hwc(reconstructed), _as_hwc(original)
    return float(
        structural_similarity(
            a, b, data_range=1.0, channel_axis=2, gaussian_weights=True, sigma=1.5, use_sample_covariance=False
        )
    )


def psnr(reconstructed: np.ndarray, original: np.ndarray) -> float:
    """PSNR in dB with peak 1.0 (capped at 100 dB for identical images)."""
    a, b = _as_hwc(reconstructed), _as_hwc(original)
    if np.array_equal(a, b):
        return 100.0
    return float(peak_signal_noise_ratio(b, a, data_range=1.0))


def batch_mean(metric, reconstructed: np.ndarray, original: np.ndarray) -> float:
    """Mean of a pairwise metric over a batch (N, ...)."""
    return float(np.mean([metric(r, o) for r, o in zip(reconstructed, original, strict=True)]))
