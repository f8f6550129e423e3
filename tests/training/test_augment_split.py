import itertools

import numpy as np
import pytest
import torch

from behavior_lab.training.augment import AugmentConfig, ImageAugmenter, adjust_brightness, adjust_contrast
from behavior_lab.training.datamodule import resolve_num_workers, split_episodes


def _images(b=4, size=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (b, 3, size, size, 3), generator=g, dtype=torch.uint8)


def test_disabled_is_identity_and_dtype_shape_kept():
    x = _images()
    assert torch.equal(ImageAugmenter(AugmentConfig(enabled=False))(x), x)
    y = ImageAugmenter(AugmentConfig())(x, generator=torch.Generator().manual_seed(0))
    assert y.dtype == torch.uint8 and y.shape == x.shape
    xf = x.float() / 255
    yf = ImageAugmenter(AugmentConfig())(xf, generator=torch.Generator().manual_seed(0))
    assert yf.dtype == torch.float32 and yf.shape == xf.shape and 0 <= yf.min() and yf.max() <= 1


def test_geometry_only_on_head_camera():
    x = _images()
    cfg = AugmentConfig(brightness=0.0, contrast=0.0, hue=0.0)  # geometric part only
    y = ImageAugmenter(cfg)(x, generator=torch.Generator().manual_seed(1))
    assert torch.equal(y[:, 1:], x[:, 1:])  # wrists untouched
    assert not torch.equal(y[:, 0], x[:, 0])


def test_no_crop_no_rotation_is_identity_up_to_rounding():
    x = _images()
    cfg = AugmentConfig(crop_scale=1.0, rotate_degrees=0.0, brightness=0.0, contrast=0.0, hue=0.0)
    y = ImageAugmenter(cfg)(x, generator=torch.Generator().manual_seed(1))
    assert (y.int() - x.int()).abs().max() <= 1


def test_jitter_probability_and_determinism():
    x = _images(b=64)
    cfg = AugmentConfig(crop_scale=1.0, rotate_degrees=0.0, jitter_p=0.0)
    assert (ImageAugmenter(cfg)(x).int() - x.int()).abs().max() <= 1  # p = 0: HSV round trip only
    aug = ImageAugmenter(AugmentConfig())
    a = aug(x, generator=torch.Generator().manual_seed(7))
    b = aug(x, generator=torch.Generator().manual_seed(7))
    assert torch.equal(a, b)
    changed = ((a[:, 1].int() - x[:, 1].int()).abs().amax((1, 2, 3)) > 2).float().mean()
    assert 0.2 < changed < 0.8  # about half of the wrist images are jittered (p = 0.5)


def test_augmax_brightness_contrast_formulas():
    v = torch.linspace(0, 1, 11)
    assert torch.allclose(adjust_brightness(v, torch.tensor(-0.5)), v * 0.5)
    assert torch.allclose(adjust_brightness(v, torch.tensor(0.5)), v * 0.5 + 0.5)
    assert torch.allclose(adjust_contrast(v, torch.tensor(0.0)), v, atol=1e-6)
    hi = adjust_contrast(v, torch.tensor(0.4))
    assert hi[0] == 0 and abs(hi[-1] - 1) < 1e-6 and hi[3] < v[3] and hi[7] > v[7]  # steeper around 0.5


def test_episode_split_deterministic_disjoint_per_task():
    eps = {0: list(range(10)), 3: [30000 + i for i in range(5)], 7: [70000]}
    tr, va = split_episodes(eps, 0.2, split_seed=0)
    tr2, va2 = split_episodes(eps, 0.2, split_seed=0)
    assert (tr, va) == (tr2, va2)
    assert not set(tr) & set(va) and sorted(tr + va) == sorted(sum(eps.values(), []))
    assert len([e for e in va if e < 10]) == 2 and len([e for e in va if e // 10000 == 3]) == 1
    assert 70000 in tr  # a single-episode task stays in training
    assert split_episodes(eps, 0.2, split_seed=1)[1] != va


def test_num_workers_auto():
    assert resolve_num_workers(3) == 3
    assert resolve_num_workers("auto") >= 0


class _Source:
    """Three episodes: task 0 (10 + 6 frames), task 1 (4 frames); items are their global index."""

    task_ids = np.array([0, 0, 1])
    offsets = np.array([0, 10, 16, 20])
    num_stages = {0: 5, 1: 5}

    def __len__(self):
        return 20

    def __getitem__(self, i):
        return i


def test_task_balanced_view_gives_every_task_equal_weight():
    from behavior_lab.training.datamodule import TaskBalancedView
    from behavior_lab.training.sampler import StepSeededSampler

    view = TaskBalancedView(_Source())
    assert len(view) == 2 * 16 and view.num_stages == {0: 5, 1: 5}
    items = [view[v] for v in range(len(view))]
    assert items[:16] == list(range(16))  # task 0: each of its samples once
    assert items[16:] == [16, 17, 18, 19] * 4  # task 1: its 4 samples, cycled to the block size
    drawn = [view[i] for i in itertools.islice(StepSeededSampler(len(view), seed=3), 3200)]
    share = np.mean([d >= 16 for d in drawn])
    assert 0.45 < share < 0.55  # uniform frames would give task 1 only 4/20 = 20 %
    with pytest.raises(IndexError):
        view[len(view)]
    with pytest.raises(TypeError, match="balance_tasks"):
        TaskBalancedView([1, 2, 3])
