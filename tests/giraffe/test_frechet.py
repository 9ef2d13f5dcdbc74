"""The Fréchet distance: zero for identical sets, larger for a shifted set, and equal to a scipy reference."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
import torch

from pipelines.giraffe import frechet


def _scipy_fd(mu1, s1, mu2, s2) -> float:
    covmean = scipy.linalg.sqrtm(s1 @ s2).real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


def test_fd_of_identical_sets_is_zero_and_a_shift_is_larger():
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(400, 16, generator=gen)
    stats = frechet.statistics(a)
    assert abs(frechet.frechet_distance(*stats, *stats)) < 1e-8
    shifted = frechet.statistics(a + 0.5)
    assert frechet.frechet_distance(*stats, *shifted) == pytest.approx(16 * 0.25, rel=1e-6)


def test_fd_agrees_with_scipy_on_random_features():
    gen = torch.Generator().manual_seed(1)
    a = torch.randn(300, 24, generator=gen) @ torch.randn(24, 24, generator=gen) * 0.3
    b = torch.randn(300, 24, generator=gen) * 1.2 + 0.3
    sa, sb = frechet.statistics(a), frechet.statistics(b)
    assert frechet.frechet_distance(*sa, *sb) == pytest.approx(_scipy_fd(*sa, *sb), rel=1e-6)


def test_the_procedural_encoder_is_fixed_and_tells_images_apart():
    images = torch.rand(6, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    f1, f2 = frechet.ProceduralEncoder()(images), frechet.ProceduralEncoder()(images)
    assert f1.shape == (6, 387) and torch.equal(f1, f2)
    assert not torch.allclose(f1[0], f1[1])
