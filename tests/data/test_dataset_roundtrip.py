"""Writer -> reader round trips in the BEHAVIOR LeRobot v2.1 layout, H.264 and HEVC."""

from __future__ import annotations

import json

import numpy as np
import pytest

from behavior_lab.data import layout, schema
from behavior_lab.data.layout import DatasetError
from behavior_lab.data.reader import BehaviorDataset
from behavior_lab.data.synthetic import synthetic_episode
from behavior_lab.data.video import video_codec_name
from behavior_lab.data.writer import DatasetWriter


@pytest.mark.parametrize("codec,name", [("libx264", "h264"), ("libx265", "hevc")])
def test_write_read_roundtrip(tmp_path, codec, name):
    rng = np.random.default_rng(0)
    eps = [synthetic_episode(n, 32, rng) for n in (34, 31)]
    ann = {"task_name": "turning_on_radio", "skill_annotation": [{"skill_idx": 0, "frame_duration": [0, 10]}]}
    with DatasetWriter(tmp_path / "ds", codec=codec) as w:
        assert w.add_episode("turning_on_radio", eps[0], annotations=ann) == 0
        assert w.add_episode(17, eps[1]) == 170000
    ds = BehaviorDataset(tmp_path / "ds")
    assert ds.episode_indices == [0, 170000]
    assert ds.info["codebase_version"] == "v2.1" and ds.info["total_videos"] == 6
    assert ds.info["features"]["observation.images.rgb.head"]["info"]["video.codec"] == name
    assert ds.tasks[17]["task_name"] == "bringing_water"
    for ep, frames in zip(ds.episode_indices, eps):
        arrays = ds.load_arrays(ep, list(layout.VECTOR_FEATURES))
        for key in layout.VECTOR_FEATURES:
            np.testing.assert_array_equal(arrays[key], frames[key])
        df = ds.load_parquet(ep)
        np.testing.assert_allclose(df["timestamp"].to_numpy(), np.arange(len(df)) / 30.0)
        assert (df["episode_index"] == ep).all() and (df["task_index"] == ep // 10000).all()
        for cam, key in zip(schema.CAMERA_NAMES, schema.DATASET_RGB_KEYS):
            assert video_codec_name(ds.video_path(ep, cam)) == name
            video = ds.decode_video(ep, cam)
            assert video.shape == frames[key].shape
            assert np.abs(video.astype(int) - frames[key]).mean() < 8  # lossy codec, but the same picture
        small = ds.decode_video(ep, "head", 16)
        assert small.shape == (len(frames[schema.DATASET_ACTION_KEY]), 16, 16, 3)
    assert ds.annotations(0) == ann and ds.annotations(170000) is None
    state, action = ds.load_state_action(0)
    np.testing.assert_allclose(state, schema.extract_state_from_proprio(eps[0][schema.DATASET_STATE_KEY]))


def test_meta_files(dataset_root, lengths):
    ds = BehaviorDataset(dataset_root)
    assert [ds.episode_length(e) for e in ds.episode_indices] == lengths
    assert ds.mean_length("turning_on_radio") == np.mean(lengths[:2])
    assert ds.info["total_frames"] == sum(lengths) and ds.info["splits"] == {"train": "0:4"}
    rows = [json.loads(x) for x in (dataset_root / layout.EPISODES_FILE).read_text().splitlines()]
    assert set(rows[0]) >= {"episode_index", "tasks", "length", "distance_traveled", "left_eef_displacement"}
    # per-episode stats equal a direct numpy computation
    arrays = ds.load_arrays(1, list(layout.VECTOR_FEATURES))
    for key in layout.STATS_FEATURES:
        st = ds.episode_stats[1][key]
        x = arrays[key].astype(np.float64)
        np.testing.assert_allclose(st["mean"], x.mean(0), rtol=1e-12)
        np.testing.assert_allclose(st["std"], x.std(0), rtol=1e-12)
        np.testing.assert_allclose(st["q01"], np.quantile(x, 0.01, axis=0))
        np.testing.assert_allclose(st["q99"], np.quantile(x, 0.99, axis=0))
        np.testing.assert_allclose(st["min"], x.min(0))
        np.testing.assert_allclose(st["max"], x.max(0))
        assert st["count"] == [len(x)]


def test_selection(dataset_root):
    assert BehaviorDataset(dataset_root, tasks=["picking_up_trash"]).episode_indices == [10000, 10001]
    assert BehaviorDataset(dataset_root, tasks=[0]).episode_indices == [0, 1]
    assert BehaviorDataset(dataset_root, tasks=["1"]).episode_indices == [10000, 10001]
    assert BehaviorDataset(dataset_root, episodes=[10001, 0]).episode_indices == [0, 10001]
    ds = BehaviorDataset(dataset_root, cameras=["head"])
    assert ds.cameras == ("observation.images.rgb.head",)
    with pytest.raises(DatasetError, match="not in this dataset"):
        BehaviorDataset(dataset_root, tasks=["make_pizza"])
    with pytest.raises(DatasetError, match="Did you mean"):
        BehaviorDataset(dataset_root, tasks=["turning_on_radoi"])
    with pytest.raises(KeyError, match="valid cameras"):
        BehaviorDataset(dataset_root, cameras=["top"])


def test_reader_accepts_nine_stream_info(dataset_copy, lengths):
    """The real info.json lists 9 video streams (facts §2.2); the reader uses the RGB ones."""
    path = dataset_copy / layout.INFO_FILE
    info = json.loads(path.read_text())
    for key in schema.DATASET_DEPTH_KEYS + schema.DATASET_SEG_KEYS:
        info["features"][key] = layout.video_feature_spec(32, 32, "hevc", 30)
    info["features"]["observation.task_info"] = {"dtype": "float32", "shape": [7], "names": None}
    path.write_text(json.dumps(info))
    ds = BehaviorDataset(dataset_copy)
    assert len(ds.cameras) == 3 and ds.decode_video(0, "left_wrist").shape == (lengths[0], 32, 32, 3)


def test_append_and_image_size(tmp_path):
    rng = np.random.default_rng(3)
    w = DatasetWriter(tmp_path / "ds", image_size=16)
    w.add_episode(2, synthetic_episode(31, 32, rng))
    w.finalize()
    with pytest.raises(DatasetError, match="append=True"):
        DatasetWriter(tmp_path / "ds")
    w2 = DatasetWriter(tmp_path / "ds", image_size=16, append=True)
    assert w2.add_episode(2, synthetic_episode(33, 32, rng)) == 20001
    w2.finalize()
    ds = BehaviorDataset(tmp_path / "ds")
    assert ds.episode_indices == [20000, 20001]
    assert ds.decode_video(20001, "head").shape == (33, 16, 16, 3)
    assert ds.info["features"]["observation.images.rgb.head"]["shape"] == [16, 16, 3]


def test_writer_rejects_bad_episodes(tmp_path):
    rng = np.random.default_rng(4)
    w = DatasetWriter(tmp_path / "ds")
    good = synthetic_episode(31, 32, rng)
    bad = dict(good, action=good["action"][:, :22])
    with pytest.raises(DatasetError, match=r"expected \(31, 23\)"):
        w.add_episode(0, bad)
    nan = dict(good, action=good["action"].copy())
    nan["action"][5, 3] = np.nan
    with pytest.raises(DatasetError, match="row 5, dim 3"):
        w.add_episode(0, nan)
    short = dict(good, **{"observation.cam_rel_poses": good["observation.cam_rel_poses"][:30]})
    with pytest.raises(DatasetError, match="has 30 frames"):
        w.add_episode(0, short)
    with pytest.raises(KeyError, match="unknown task"):
        w.add_episode("not_a_task", good)
    assert not (tmp_path / "ds" / "data").exists()  # nothing written for rejected episodes


def test_task_info_column_roundtrip_and_consistency(tmp_path):
    """The optional privileged `observation.task_info` column (facts §2.2): written when the episodes
    carry it, width recorded in info.json, read back exactly; every episode must carry it or none."""
    from behavior_lab.data.samples import ChunkSampleSource
    from behavior_lab.data.stats import compute_stats

    rng = np.random.default_rng(5)
    key = schema.DATASET_TASK_INFO_KEY
    eps = [synthetic_episode(n, 16, rng) for n in (31, 35)]
    infos = [rng.normal(size=(len(e["action"]), 6)).astype(np.float32) for e in eps]
    w = DatasetWriter(tmp_path / "ds")
    w.add_episode(0, dict(eps[0], **{key: infos[0]}))
    with pytest.raises(DatasetError, match="carry optional feature"):
        w.add_episode(0, eps[1])  # the first episode has task_info, this one not
    with pytest.raises(DatasetError, match=r"expected \(35, 6\)"):
        w.add_episode(0, dict(eps[1], **{key: infos[1][:, :5]}))
    w.add_episode(0, dict(eps[1], **{key: infos[1]}))
    w.finalize()
    ds = BehaviorDataset(tmp_path / "ds")
    assert ds.info["features"][key]["shape"] == [6]
    np.testing.assert_array_equal(ds.load_task_info(1), infos[1])
    compute_stats(tmp_path / "ds", progress=False)
    src = ChunkSampleSource(tmp_path / "ds", image_size=16, task_info=True, progress=False)
    np.testing.assert_array_equal(src[len(eps[0]["action"]) + 4]["task_info"], infos[1][4])
    assert "task_info" not in ChunkSampleSource(tmp_path / "ds", image_size=16, progress=False)[0]

    plain = DatasetWriter(tmp_path / "plain")
    plain.add_episode(0, eps[0])
    plain.finalize()
    with pytest.raises(DatasetError, match=r"info.json: features lack 'observation.task_info'"):
        BehaviorDataset(tmp_path / "plain").load_task_info(0)
