"""Test-only stand-ins for the model and the sample source (docs/interfaces.md shapes).

FakePolicy mimics PiBehavior.compute_loss: a small network from (images, state) to a 30x32 velocity,
a flow-matching loss with noise/time drawn from the global RNG (like the real model), a stage head
when ``stage=True``; it lets the training mechanics be tested without the real model.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

H, D, DR = 30, 32, 23


class FakePolicy(nn.Module):
    def __init__(self, stage: bool = True, hidden: int = 32, image_size: int = 16):
        super().__init__()
        self.vision = nn.Sequential(nn.Conv2d(3, 4, 3, stride=2), nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten())
        self.body = nn.Sequential(nn.Linear(3 * 16 + 32 + H * D + 1, hidden), nn.GELU(), nn.Linear(hidden, H * D))
        self.stage_head = nn.Linear(3 * 16 + 32, 15) if stage else None

    def _features(self, batch):
        imgs = batch["images"].float() / 127.5 - 1.0  # (B, 3, h, w, 3)
        b, c = imgs.shape[:2]
        f = self.vision(imgs.flatten(0, 1).permute(0, 3, 1, 2)).view(b, -1)
        return torch.cat([f, batch["state"]], -1)

    def compute_loss(self, batch, noise=None, time=None):
        a = batch["actions"]
        b = a.shape[0]
        noise = torch.randn_like(a) if noise is None else noise
        t = torch.rand(b, 1, 1) if time is None else time
        x_t = t * noise + (1 - t) * a
        feats = self._features(batch)
        v = self.body(torch.cat([feats, x_t.flatten(1), t.flatten(1)], -1)).view(b, H, D)
        err = (v - (noise - a)) ** 2
        action_loss = err.mean()
        out = {"action_loss": action_loss, "action_loss_per_dim": err[..., :DR].mean((0, 1)), "loss": action_loss}
        if self.stage_head is not None:
            logits = self.stage_head(feats)
            ce = nn.functional.cross_entropy(logits, batch["stage"])
            out["stage_loss"] = ce
            out["stage_acc"] = (logits.argmax(-1) == batch["stage"]).float().mean()
            out["loss"] = action_loss + 0.1 * ce
        return out


class FakeSource(torch.utils.data.Dataset):
    """Deterministic samples: action chunk = smooth function of the state, so the task is learnable."""

    def __init__(self, root, stats, image_size, cache_dir=None, episodes=None, frames_per_episode=20):
        self.episodes = list(episodes or [])
        self.n = frames_per_episode
        self.image_size = image_size

    def __len__(self):
        return len(self.episodes) * self.n

    def __getitem__(self, i):
        ep, f = divmod(i, self.n)
        rng = np.random.default_rng([self.episodes[ep], f])
        state = np.zeros(32, np.float32)
        state[:23] = rng.normal(size=23)
        actions = np.zeros((H, D), np.float32)
        ramp = np.linspace(0, 1, H, dtype=np.float32)[:, None]
        actions[:, :23] = np.tanh(state[:23])[None] * ramp
        img = (rng.integers(0, 255, (3, self.image_size, self.image_size, 3))).astype(np.uint8)
        return {
            "images": img,
            "image_mask": np.ones(3, bool),
            "state": state,
            "actions": actions,
            "action_is_pad": np.zeros(H, bool),
            "task_id": np.int64(self.episodes[ep] // 10000),
            "stage": np.int64(min(4, f * 5 // self.n)),
            "num_stages": np.int64(5),
        }


def fake_datamodule(episodes_by_task=None, **kwargs):
    from behavior_lab.training.datamodule import BehaviorDataModule

    kwargs.setdefault("batch_size", 8)
    kwargs.setdefault("num_workers", 0)
    kwargs.setdefault("image_size", 16)
    dm = BehaviorDataModule(root="/nonexistent", source=FakeSource, **kwargs)
    eps = episodes_by_task or {0: list(range(0, 6)), 1: list(range(10000, 10006))}
    dm.episodes_by_task = lambda: eps
    dm.load_norm_stats = lambda: None
    return dm
