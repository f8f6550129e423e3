"""Per-episode summaries written to meta/episodes_stats.jsonl and meta/episodes.jsonl.

episodes_stats.jsonl has min/max/mean/std/q01/q99/count for `action`, `observation.state` and
`observation.cam_rel_poses`; episodes.jsonl carries `distance_traveled`, `left_eef_displacement`
and `right_eef_displacement`, summed from proprio `robot_pos` / `eef_*_pos` (facts §2.2,
B1K `lerobot_utils.generate_episode_json`).
"""

from __future__ import annotations

import numpy as np

from behavior_lab.data import schema


def feature_stats(values: np.ndarray) -> dict[str, list]:
    """(T, D) -> {min, max, mean, std, q01, q99: [D], count: [T]} as JSON-ready lists."""
    x = np.asarray(values, dtype=np.float64)
    return {
        "min": x.min(axis=0).tolist(),
        "max": x.max(axis=0).tolist(),
        "mean": x.mean(axis=0).tolist(),
        "std": x.std(axis=0).tolist(),
        "q01": np.quantile(x, 0.01, axis=0).tolist(),
        "q99": np.quantile(x, 0.99, axis=0).tolist(),
        "count": [int(x.shape[0])],
    }


def path_length(points: np.ndarray) -> float:
    """Sum of Euclidean steps along a (T, 3) trajectory."""
    p = np.asarray(points, dtype=np.float64)
    if len(p) < 2:
        return 0.0
    return float(np.linalg.norm(np.diff(p, axis=0), axis=-1).sum())


def episode_displacements(proprio: np.ndarray) -> dict[str, float]:
    """Base distance and end-effector path lengths from the 256-D proprio (facts §2.2, §2.4)."""
    idx = schema.PROPRIO_INDICES
    return {
        "distance_traveled": path_length(proprio[:, idx["robot_pos"]]),
        "left_eef_displacement": path_length(proprio[:, idx["eef_left_pos"]]),
        "right_eef_displacement": path_length(proprio[:, idx["eef_right_pos"]]),
    }
