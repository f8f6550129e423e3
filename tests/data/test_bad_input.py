"""Bad datasets fail with an error naming the file and what was expected there."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from behavior_lab.data import layout
from behavior_lab.data.layout import DatasetError
from behavior_lab.data.reader import BehaviorDataset
from behavior_lab.data.stats import compute_stats


def _edit_info(root, fn):
    path = root / layout.INFO_FILE
    info = json.loads(path.read_text())
    fn(info)
    path.write_text(json.dumps(info))


def test_missing_root_and_info(tmp_path, dataset_copy):
    with pytest.raises(DatasetError, match="dataset directory not found"):
        BehaviorDataset(tmp_path / "nope")
    (dataset_copy / layout.INFO_FILE).unlink()
    with pytest.raises(DatasetError, match=r"meta/info.json: missing"):
        BehaviorDataset(dataset_copy)


def test_missing_meta_jsonl(dataset_copy):
    (dataset_copy / layout.TASKS_FILE).unlink()
    with pytest.raises(DatasetError, match=r"tasks.jsonl: missing"):
        BehaviorDataset(dataset_copy)


def test_truncated_meta_jsonl(dataset_copy):
    path = dataset_copy / layout.EPISODES_FILE
    path.write_text(path.read_text()[:-40])
    with pytest.raises(DatasetError, match=r"episodes.jsonl: line 4 is not valid JSON"):
        BehaviorDataset(dataset_copy)


def test_v3_dataset_is_named(dataset_copy):
    _edit_info(dataset_copy, lambda i: i.update(codebase_version="v3.0"))
    with pytest.raises(DatasetError, match=r"LeRobot v3.0.*BEHAVIOR-1K 2025.*v2.1"):
        BehaviorDataset(dataset_copy)


def test_v3_layout_without_info(tmp_path):
    (tmp_path / "meta" / "episodes" / "chunk-000").mkdir(parents=True)
    with pytest.raises(DatasetError, match="v3.0"):
        BehaviorDataset(tmp_path)


def test_wrong_vector_size_in_info(dataset_copy):
    _edit_info(dataset_copy, lambda i: i["features"]["observation.state"].update(shape=[258]))
    with pytest.raises(DatasetError, match=r"info.json: feature 'observation.state' has shape \[258\]; expected \[256\]"):
        BehaviorDataset(dataset_copy)


def test_task_missing_from_tasks_jsonl(dataset_copy):
    path = dataset_copy / layout.TASKS_FILE
    path.write_text(path.read_text().splitlines()[0] + "\n")
    with pytest.raises(DatasetError, match=r"tasks.jsonl: has no task_index 1, needed by episode 10000"):
        BehaviorDataset(dataset_copy)


def test_missing_parquet(dataset_copy):
    ds = BehaviorDataset(dataset_copy)
    ds.data_path(1).unlink()
    with pytest.raises(DatasetError, match=r"episode_00000001.parquet: episode parquet file missing"):
        compute_stats(dataset_copy, progress=False)


def test_truncated_parquet(dataset_copy):
    path = BehaviorDataset(dataset_copy).data_path(0)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(DatasetError, match=r"episode_00000000.parquet: not a readable parquet file"):
        BehaviorDataset(dataset_copy).load_arrays(0)


def _rewrite_column(path, name, values):
    table = pq.read_table(path)
    arr = np.asarray(values, dtype=np.float32)
    col = pa.FixedSizeListArray.from_arrays(pa.array(arr.reshape(-1)), arr.shape[1])
    pq.write_table(table.set_column(table.schema.get_field_index(name), name, col), path)


@pytest.mark.parametrize("key", ["action", "observation.state"])
@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nonfinite_values(dataset_copy, key, bad):
    ds = BehaviorDataset(dataset_copy)
    values = ds.load_arrays(0, [key])[key].copy()
    values[7, 2] = bad
    _rewrite_column(ds.data_path(0), key, values)
    with pytest.raises(DatasetError, match=rf"episode_00000000.parquet: '{key}' has 1 non-finite.*row 7, dim 2"):
        ds.load_state_action(0)


def test_wrong_vector_width_in_parquet(dataset_copy):
    ds = BehaviorDataset(dataset_copy)
    action = ds.load_arrays(0, ["action"])["action"]
    _rewrite_column(ds.data_path(0), "action", action[:, :21])
    with pytest.raises(DatasetError, match=r"column 'action' holds 21-D vectors; expected 23-D"):
        ds.load_state_action(0)


def test_parquet_length_disagrees_with_meta(dataset_copy):
    ds = BehaviorDataset(dataset_copy)
    path = ds.data_path(0)
    pq.write_table(pq.read_table(path).slice(0, 30), path)
    with pytest.raises(DatasetError, match=r"30 rows; expected 40"):
        ds.load_arrays(0)


def test_missing_and_truncated_video(dataset_copy):
    ds = BehaviorDataset(dataset_copy)
    ds.video_path(0, "head").unlink()
    with pytest.raises(DatasetError, match=r"observation.images.rgb.head/episode_00000000.mp4: video file missing"):
        ds.decode_video(0, "head")
    path = ds.video_path(1, "left_wrist")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])
    with pytest.raises(DatasetError, match=r"episode_00000001.mp4: .*truncated"):
        ds.decode_video(1, "left_wrist")


def test_video_with_too_few_frames(dataset_copy, dataset_root):
    ds = BehaviorDataset(dataset_copy)
    # episode 10001 has 36 frames; put it where episode 10000 (45 frames) should be
    shutil.copy(ds.video_path(10001, "head"), ds.video_path(10000, "head"))
    with pytest.raises(DatasetError, match=r"episode_00010000.mp4: decoded 36 frames, expected 45"):
        ds.decode_video(10000, "head")


def test_unknown_episode(dataset_root):
    with pytest.raises(DatasetError, match=r"no episode\(s\) \[5\]"):
        BehaviorDataset(dataset_root, episodes=[5])
