"""Frame cache (build, reuse, invalidation) and ChunkSampleSource samples (docs/interfaces.md)."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch
from torch.utils.data import default_collate

from behavior_lab.data import schema
from behavior_lab.data import transforms as T
from behavior_lab.data.frame_cache import MANIFEST, FrameCache, default_cache_dir
from behavior_lab.data.reader import BehaviorDataset
from behavior_lab.data.samples import ChunkSampleSource, stage_label
from behavior_lab.data.stats import NormStats
from behavior_lab.data.video import encode_video


def test_cache_build_reuse_and_invalidation(dataset_copy):
    ds = BehaviorDataset(dataset_copy)
    cache = FrameCache(ds, 16, progress=False)
    assert cache.dir == dataset_copy / ".cache" / "frames_16"
    assert cache.ensure() == 4 * 4  # 4 episodes x (3 cameras + low-dim)
    frames = cache.frames(10000, "left_wrist")
    assert isinstance(frames, np.memmap) and frames.shape == (45, 16, 16, 3)
    np.testing.assert_array_equal(frames, ds.decode_video(10000, "left_wrist", 16))
    # a new process (new object) reuses everything
    again = FrameCache(BehaviorDataset(dataset_copy), 16, progress=False)
    assert again.ensure() == 0
    # replacing one source mp4 invalidates exactly that entry
    video = ds.decode_video(1, "head")
    encode_video(ds.video_path(1, "head"), 255 - video)
    assert again.ensure() == 1
    np.testing.assert_array_equal(again.frames(1, "head"), ds.decode_video(1, "head", 16))
    manifest = json.loads((cache.dir / MANIFEST).read_text())
    entry = manifest["entries"]["observation.images.rgb.head/episode_00000001"]
    assert entry["source_size"] == os.path.getsize(ds.video_path(1, "head"))
    # a touched parquet invalidates the low-dim arrays of that episode
    path = ds.data_path(0)
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))
    assert FrameCache(BehaviorDataset(dataset_copy), 16, progress=False).ensure() == 1


def test_cache_builds_on_demand(dataset_copy, tmp_path):
    cache = FrameCache(BehaviorDataset(dataset_copy), (8, 12), cache_dir=tmp_path / "c", progress=False)
    assert cache.frames(0, "right_wrist").shape == (40, 8, 12, 3)  # non-square: padded resize
    assert (tmp_path / "c" / MANIFEST).is_file()
    assert default_cache_dir(dataset_copy, (8, 12)).name == "frames_8x12"


def test_sample_contents(dataset_copy, lengths):
    stats = NormStats.load(dataset_copy)
    src = ChunkSampleSource(dataset_copy, stats, 16, progress=False)
    assert len(src) == sum(lengths)
    ds = BehaviorDataset(dataset_copy)
    ep, f = 1, 40  # episode 1 has 52 frames: the chunk runs 12 steps past the end
    i = lengths[0] + f
    s = src[i]
    assert s["images"].shape == (3, 16, 16, 3) and s["images"].dtype == np.uint8 and s["image_mask"].all()
    assert s["state"].shape == (32,) and s["actions"].shape == (30, 32)
    assert s["action_is_pad"].tolist() == [False] * 12 + [True] * 18
    assert s["task_id"] == 0 and s["num_stages"] == 5 and s["stage"] == (40 * 5) // 52
    state, action = ds.load_state_action(ep)
    chunk = action[np.minimum(f + np.arange(30), 51)]  # padding repeats the last action
    expect = T.apply(
        [T.DeltaActions(), T.NormalizeActions.from_stats(stats), T.PadTo(32)], {"state": state[f], "actions": chunk}
    )["actions"]
    np.testing.assert_allclose(s["actions"], expect, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(
        s["state"][:23], (state[f] - stats.state_mean[:23]) / (stats.state_std[:23] + 1e-6), rtol=1e-5, atol=1e-5
    )
    assert not s["state"][23:].any() and not s["actions"][:, 23:].any()
    for c, cam in enumerate(schema.CAMERA_NAMES):
        np.testing.assert_array_equal(s["images"][c], ds.decode_video(ep, cam, 16)[f])
    batch = default_collate([src[0], src[100]])
    assert batch["images"].shape == (2, 3, 16, 16, 3) and batch["task_id"].dtype == torch.int64


def test_raw_video_samples_match_cache(dataset_copy):
    cached = ChunkSampleSource(dataset_copy, None, 16, progress=False)
    raw = ChunkSampleSource(dataset_copy, None, 16, use_cache=False, progress=False)
    for i in (0, 57, 91, 170, 130, 3):
        a, b = cached[i], raw[i]
        for k in a:
            np.testing.assert_array_equal(a[k], b[k])


def test_stage_labels_and_override(dataset_copy):
    assert [stage_label(f, 10, 5) for f in range(10)] == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4]
    assert stage_label(899, 900, 1) == 0 and stage_label(12, 10, 5) == 4
    src = ChunkSampleSource(dataset_copy, None, 16, cameras=["head"], stage_table={"picking_up_trash": 9}, progress=False)
    assert src.num_stages == {0: 5, 1: 9}
    last = src[len(src) - 1]
    assert last["stage"] == 8 and last["num_stages"] == 9 and last["task_id"] == 1
    assert last["image_mask"].tolist() == [True, False, False] and not last["images"][1:].any()
    seed = ChunkSampleSource(dataset_copy, None, 16, stage_table="seed", progress=False)
    assert seed.num_stages == {0: 5, 1: 6}  # spec §6.1 table


def test_sample_settings_must_match_stats(dataset_copy, lengths):
    with pytest.raises(ValueError, match="delta mask"):
        ChunkSampleSource(dataset_copy, None, 16, delta_actions=False, progress=False)
    with pytest.raises(IndexError):
        ChunkSampleSource(dataset_copy, None, 16, progress=False)[sum(lengths)]
