"""End to end: `behavior-lab report` on hand-built trees — numbers, every figure written and of
the expected size, report.md tying it together, the CLI entry composing conf/report.yaml."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.image import imread

from behavior_lab.reporting import fig_effects, fig_episodes, fig_task_bars
from behavior_lab.reporting.plotting import DPI
from behavior_lab.reporting.report import ReportSettings, build_report

from .conftest import metrics

CONF = Path(__file__).resolve().parents[2] / "behavior_lab" / "conf"


def assert_png(path: Path, size_in: tuple[float, float]) -> None:
    assert path.is_file() and path.stat().st_size > 5_000, path
    img = imread(path)
    h, w = img.shape[:2]
    assert abs(w - size_in[0] * DPI) <= 1 and abs(h - size_in[1] * DPI) <= 1, (path.name, w, h, size_in)
    assert img[..., :3].std() > 0.05  # not a blank canvas


@pytest.fixture(scope="module")
def grid_report(tmp_path_factory):
    from .conftest import write_grid_tree

    root = tmp_path_factory.mktemp("rep")
    tree = write_grid_tree(root / "grid")
    out = build_report(ReportSettings(results=[str(tree)], out=str(root / "out")), command="behavior-lab report ...")
    return out


def test_grid_report_numbers(grid_report):
    out = grid_report.out
    summary = pd.read_csv(out / "summary.csv")
    assert list(summary.columns[:4]) == ["task", "episodes", "q_score", "success_rate"]
    row = summary[(summary["cell"] == "a0b0") & (summary["task"] == "can_meat")].iloc[0]
    assert row["episodes"] == 3 and row["q_score"] == pytest.approx(0.075)
    overall = json.loads((out / "overall.json").read_text())
    assert overall["cell"] == "a1b1" and overall["num_tasks"] == 2
    assert overall["q_score"] == pytest.approx((0.675 + 0.55) / 2)
    assert overall["task_sr"] == pytest.approx(0.125)
    assert overall["cells"]["a0b0"]["public"]["q_score"] == pytest.approx(0.1125)
    assert {"time_score", "base_distance_score", "q_score_ci", "task_sr_ci"} <= set(overall)
    # tasks ordered by demo length in the summary: turning_on_radio (72 s) before can_meat (395 s)
    assert summary[summary["cell"] == "a0b0"]["task"].tolist() == ["turning_on_radio", "can_meat"]


def test_grid_report_figures(grid_report):
    figs = {p.name: p for p in grid_report.figures}
    assert set(figs) == {"episodes_a0b0.png", "episodes_a0b1.png", "episodes_a1b0.png", "episodes_a1b1.png",
                         "task_bars_q.png", "task_bars_sr.png", "effects.png"}
    for name in ("episodes_a0b0.png", "episodes_a1b1.png"):
        assert_png(figs[name], fig_episodes.figure_size(columns=4, rows=2))
    assert_png(figs["task_bars_q.png"], fig_task_bars.figure_size(cells=4, rows=3))
    assert_png(figs["task_bars_sr.png"], fig_task_bars.figure_size(cells=4, rows=3))
    assert_png(figs["effects.png"], fig_effects.figure_size(terms=3))


def test_report_md_and_tables(grid_report):
    out = grid_report.out
    md = (out / "report.md").read_text()
    for fig in grid_report.figures:
        assert f"]({fig.relative_to(out)})" in md
    for name in ("leaderboard", "cells", "per_task", "effects"):
        for ext in ("md", "tex", "csv"):
            assert (out / "tables" / f"{name}.{ext}").stat().st_size > 100
        assert f"tables/{name}.tex" in md
    assert "behavior-lab report ..." in md and "sign-flip" in md
    assert "not comparable: embedded suite" in md
    episodes = pd.read_csv(out / "episodes.csv")
    assert len(episodes) == 31 and {"cell", "a", "b", "task", "seed", "q", "success"} <= set(episodes.columns)


def test_many_cells_small_multiples(tmp_path):
    """> 6 cells switch the bar chart to one panel per task; episode grids are capped."""
    for c in range(8):
        m = tmp_path / "runs" / f"c{c}"
        m.mkdir(parents=True)
        for task in ("can_meat", "turning_on_radio", "hanging_pictures"):
            for i in range(3):
                (m / f"{task}_{i}_0.json").write_text(json.dumps(metrics(min(1.0, 0.1 * c + 0.1 * i))))
    out = build_report(ReportSettings(results=[str(tmp_path / "runs")], out=str(tmp_path / "out"), max_episode_grids=2))
    names = sorted(p.name for p in out.figures)
    assert names == ["episodes_c6.png", "episodes_c7.png", "task_bars_q.png", "task_bars_sr.png"]
    assert_png(tmp_path / "out" / "figures" / "task_bars_q.png", fig_task_bars.figure_size(cells=8, rows=4))
    assert "effects" not in out.tables


def test_heldout_split_and_missing_task(tmp_path):
    for split in ("public", "heldout"):
        m = tmp_path / split
        m.mkdir()
        (m / "cell.json").write_text(json.dumps({"cell": "run", "split": split}))
        for i in range(2):
            (m / f"can_meat_{i}_0.json").write_text(json.dumps(metrics(1.0 if split == "public" else 0.5)))
    out = build_report(ReportSettings(results=[str(tmp_path)], out=str(tmp_path / "out"),
                                      tasks=["can_meat", "make_pizza"], episodes_per_task=4))
    o = out.scores.overall.set_index("split")
    assert o.loc["public", "q_score"] == pytest.approx((2 / 4 + 0) / 2)
    assert o.loc["heldout", "q_score"] == pytest.approx((1.0 / 4 + 0) / 2)
    lb = out.tables["leaderboard"].data
    ours = lb[lb["source"] == "this run"].iloc[0]
    assert ours["q_public"] == pytest.approx(0.25) and ours["q_hidden"] == pytest.approx(0.125)
    names = {p.name for p in out.figures}
    assert {"episodes_run_public.png", "episodes_run_heldout.png", "task_bars_q_heldout.png"} <= names
    assert_png(tmp_path / "out" / "figures" / "episodes_run_public.png", fig_episodes.figure_size(4, 2))


def test_cli_run_composes_report_config(tmp_path, capsys):
    from hydra import compose, initialize_config_dir

    from behavior_lab.cli.report import run

    m = tmp_path / "res" / "metrics"
    m.mkdir(parents=True)
    for i, q in enumerate((1.0, 0.25, 0.0)):
        (m / f"turning_on_radio_{i}_0.json").write_text(json.dumps(metrics(q, extra=False)))
    with initialize_config_dir(config_dir=str(CONF), version_base=None):
        cfg = compose("report", overrides=[f"results={tmp_path / 'res'}", f"out={tmp_path / 'out'}",
                                           "episodes_per_task=4", "bootstrap.resamples=50"])
    run(cfg)
    summary = pd.read_csv(tmp_path / "out" / "summary.csv")
    assert summary.loc[0, ["task", "episodes"]].tolist() == ["turning_on_radio", 3]
    assert summary.loc[0, "q_score"] == pytest.approx(1.25 / 4)
    assert summary.loc[0, "success_rate"] == pytest.approx(0.25)
    overall = json.loads((tmp_path / "out" / "overall.json").read_text())
    assert overall["bootstrap"]["resamples"] == 50 and overall["num_tasks"] == 1
    assert "report written to" in capsys.readouterr().out.strip().splitlines()[-1]
    assert "episodes_per_task: 4" in (tmp_path / "out" / "report.md").read_text()


def test_settings_errors():
    with pytest.raises(ValueError, match="results=DIR"):
        ReportSettings(results=[], out="x")
    with pytest.raises(ValueError, match="episodes_per_task"):
        ReportSettings(results=["a"], out="x", episodes_per_task=0)
    assert np.isclose(fig_episodes.figure_size(10, 50)[1], 16.35)


def test_overall_json_is_strict_when_secondary_metrics_are_absent(tmp_path):
    """Embedded runs without a human reference store null normalized_time: scores stay, time is null."""
    m = tmp_path / "res"
    m.mkdir()
    payload = {"q_score": {"final": 0.5}, "time": {"simulator_steps": 9, "normalized_time": None}, "success": False}
    (m / "can_meat_0_0.json").write_text(json.dumps(payload))
    build_report(ReportSettings(results=[str(m)], out=str(tmp_path / "out")))
    text = (tmp_path / "out" / "overall.json").read_text()
    assert "NaN" not in text
    overall = json.loads(text)
    assert overall["q_score"] == 0.5 and overall["time_score"] is None


def test_reach_diagnostics_table_from_embedded_episodes(tmp_path):
    """Episodes with `diagnostics` give a per-task reach and grasp table (median and IQR of the closest
    approach in cm, share of episodes with a grasp, grasps per episode); files without them none."""
    m = tmp_path / "run" / "metrics"
    m.mkdir(parents=True)
    closest = [0.05, 0.10, 0.20, 0.40]
    for i, (near, grasps) in enumerate(zip(closest, [0, 1, 0, 2])):
        rec = metrics(0.0) | {"diagnostics": {"closest_approach_m": {"can_1": near, "can_2": 0.9},
                                              "grasp_events": {"can_1": grasps, "can_2": 0}}}
        (m / f"picking_up_trash_{i}_0.json").write_text(json.dumps(rec))
        radio = metrics(1.0) | {"diagnostics": {"closest_approach_m": {"radio": 0.03}, "grasp_events": {}}}
        (m / f"turning_on_radio_{i}_0.json").write_text(json.dumps(radio))
    out = build_report(ReportSettings(results=[str(tmp_path / "run")], out=str(tmp_path / "out")))
    data = out.tables["diagnostics"].data.set_index("task")
    trash = data.loc["picking_up_trash"]
    assert trash["episodes"] == 4
    assert trash["closest_cm_median"] == pytest.approx(15.0)
    assert (trash["closest_cm_q25"], trash["closest_cm_q75"]) == pytest.approx((8.75, 25.0))
    assert trash["grasped_share"] == pytest.approx(0.5) and trash["grasps_mean"] == pytest.approx(0.75)
    assert np.isnan(data.loc["turning_on_radio", "grasped_share"])  # nothing to grasp
    md = (tmp_path / "out" / "report.md").read_text()
    assert "## Reach and grasp diagnostics" in md and "| picking_up_trash | 4 | 0.000 | 15.0 | [8.8, 25.0] | 0.500 | 0.75 |" in md
    assert (tmp_path / "out" / "tables" / "diagnostics.csv").is_file()
    episodes = pd.read_csv(tmp_path / "out" / "episodes.csv")
    assert sorted(episodes.loc[episodes["task"] == "picking_up_trash", "grasp_events"]) == [0, 0, 1, 2]


def test_no_diagnostics_table_without_diagnostics(grid_report):
    assert "diagnostics" not in grid_report.tables
    assert "Reach and grasp" not in (grid_report.out / "report.md").read_text()
