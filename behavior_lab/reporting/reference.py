"""Reference data the reports compare against: demo lengths per task and the 2025 leaderboard.

Kept in code so an installed package needs no data files; `reports/reference/leaderboard_2025.csv`
is the human-readable copy (a test pins that both agree).
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pandas as pd

from behavior_lab.data.schema import TASK_NAMES

# Mean human-demonstration duration in seconds per task: facts §1 "avg s" column (the `duration`
# field of B1K docs/challenge/task_data.json; mean of the 50 = 397.1 s).
TASK_DEMO_SECONDS: dict[str, float] = {
    "turning_on_radio": 72,
    "picking_up_trash": 176,
    "putting_away_Halloween_decorations": 460,
    "cleaning_up_plates_and_food": 457,
    "can_meat": 395,
    "setting_mousetraps": 339,
    "hiding_Easter_eggs": 254,
    "picking_up_toys": 630,
    "rearranging_kitchen_furniture": 298,
    "putting_up_Christmas_decorations_inside": 457,
    "set_up_a_coffee_station_in_your_kitchen": 209,
    "putting_dishes_away_after_cleaning": 365,
    "preparing_lunch_box": 275,
    "loading_the_car": 641,
    "carrying_in_groceries": 476,
    "bringing_in_wood": 451,
    "moving_boxes_to_storage": 487,
    "bringing_water": 315,
    "tidying_bedroom": 368,
    "outfit_a_basic_toolbox": 355,
    "sorting_vegetables": 397,
    "collecting_childrens_toys": 640,
    "putting_shoes_on_rack": 258,
    "boxing_books_up_for_storage": 808,
    "storing_food": 662,
    "clearing_food_from_table_into_fridge": 436,
    "assembling_gift_baskets": 869,
    "sorting_household_items": 527,
    "getting_organized_for_work": 522,
    "clean_up_your_desk": 714,
    "setting_the_fire": 304,
    "clean_boxing_gloves": 275,
    "wash_a_baseball_cap": 278,
    "wash_dog_toys": 374,
    "hanging_pictures": 80,
    "attach_a_camera_to_a_tripod": 130,
    "clean_a_patio": 402,
    "clean_a_trumpet": 177,
    "spraying_for_bugs": 216,
    "spraying_fruit_trees": 278,
    "make_microwave_popcorn": 108,
    "cook_cabbage": 471,
    "chop_an_onion": 213,
    "slicing_vegetables": 495,
    "chopping_wood": 358,
    "cook_hot_dogs": 305,
    "cook_bacon": 256,
    "freeze_pies": 415,
    "canning_food": 766,
    "make_pizza": 640,
}
assert tuple(TASK_DEMO_SECONDS) == TASK_NAMES

# Final 2025 leaderboard, top five (facts §6.2: RLC Table 1, arXiv 2512.06951 = COMET Table 1,
# arXiv 2512.10071). public = self-reported on the 10 public instances; hidden = organisers' run on
# the 10 hidden instances, which decided the ranking. COMET's public q covers unfinished tasks.
LEADERBOARD_COLUMNS = ("rank", "team", "affiliation", "track", "sr_public", "sr_hidden", "q_public", "q_hidden", "note")
LEADERBOARD_2025: tuple[tuple, ...] = (
    (1, "Robot Learning Collective", "independent", "standard", 0.112, 0.124, 0.2605, 0.2599, ""),
    (2, "Comet", "NVIDIA Research", "standard", 0.144, 0.114, 0.1830, 0.2514,
     "did not finish all public tasks before the deadline"),
    (3, "SimpleAI Robot", "Beijing Simple AI Technology", "standard", 0.140, 0.108, 0.1943, 0.1591, ""),
    (4, "The North Star", "Huawei CRI EAI", "standard", 0.128, 0.076, 0.1702, 0.1204, ""),
    (5, "Embodied Intelligence", "independent", "privileged (third-party notes)", 0.062, 0.052, 0.1110, 0.0947, ""),
)
LEADERBOARD_SOURCE = "BEHAVIOR-1K 2025 final leaderboard (RLC arXiv 2512.06951 Table 1; COMET arXiv 2512.10071 Table 1)"


def leaderboard_2025(path: str | Path | None = None) -> pd.DataFrame:
    """The published leaderboard; from `path` (a CSV with LEADERBOARD_COLUMNS) when given."""
    if path is not None:
        frame = pd.read_csv(path, keep_default_na=False)
        missing = set(LEADERBOARD_COLUMNS) - set(frame.columns)
        if missing:
            raise ValueError(f"{path}: leaderboard CSV lacks columns {sorted(missing)}; expected {LEADERBOARD_COLUMNS}")
        return frame[list(LEADERBOARD_COLUMNS)]
    return pd.DataFrame(LEADERBOARD_2025, columns=list(LEADERBOARD_COLUMNS))


def write_leaderboard_csv(path: str | Path) -> None:
    """Regenerate reports/reference/leaderboard_2025.csv from the constants above."""
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(LEADERBOARD_COLUMNS)
        w.writerows(LEADERBOARD_2025)


def dataset_demo_seconds(root: str | Path, fps: float = 30.0) -> dict[str, float]:
    """Mean demonstration length per task (seconds) from a LeRobot v2.1 dataset's meta files.

    Reads `meta/episodes.jsonl` (episode_index, length) and `meta/tasks.jsonl` (task_index,
    task_name); task = episode_index // 10000 (DESIGN §5). `fps` from meta/info.json when present.
    """
    meta = Path(root) / "meta"
    episodes_file = meta / "episodes.jsonl"
    if not episodes_file.is_file():
        raise FileNotFoundError(f"{episodes_file} not found: task_lengths_from needs a LeRobot v2.1 dataset root")
    info = meta / "info.json"
    if info.is_file():
        fps = float(json.loads(info.read_text()).get("fps", fps))
    names: dict[int, str] = {}
    tasks_file = meta / "tasks.jsonl"
    if tasks_file.is_file():
        for line in tasks_file.read_text().splitlines():
            if line.strip():
                rec = json.loads(line)
                names[int(rec["task_index"])] = str(rec.get("task_name") or TASK_NAMES[int(rec["task_index"])])
    lengths: dict[str, list[int]] = {}
    for n, line in enumerate(episodes_file.read_text().splitlines(), 1):
        if not line.strip():
            continue
        rec = json.loads(line)
        try:
            tid = int(rec["episode_index"]) // 10000
            length = int(rec["length"])
        except KeyError as e:
            raise ValueError(f"{episodes_file} line {n}: missing key {e.args[0]!r}") from e
        name = names.get(tid, TASK_NAMES[tid] if tid < len(TASK_NAMES) else str(tid))
        lengths.setdefault(name, []).append(length)
    return {t: sum(v) / len(v) / fps for t, v in lengths.items()}


def demo_seconds(mapping: dict | None = None, dataset_root: str | Path | None = None) -> dict[str, float]:
    """Task -> mean demo seconds: an explicit mapping wins, then a dataset's meta, then facts §1."""
    out = dict(TASK_DEMO_SECONDS)
    if dataset_root:
        out.update(dataset_demo_seconds(dataset_root))
    if mapping:
        out.update({str(k): float(v) for k, v in mapping.items() if v is not None and not math.isnan(float(v))})
    return out
