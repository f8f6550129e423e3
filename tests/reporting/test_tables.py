"""Tables: LaTeX well-formed (balanced environments, booktabs rules, escaped specials), markdown
shape, leaderboard reference data and comparability marks."""

import re
from pathlib import Path

import pandas as pd
import pytest

from behavior_lab.reporting.aggregate import Bootstrap, score_cells
from behavior_lab.reporting.collect import collect
from behavior_lab.reporting.effects import EffectSettings, toggle_effects
from behavior_lab.reporting.reference import LEADERBOARD_2025, LEADERBOARD_COLUMNS, TASK_DEMO_SECONDS, leaderboard_2025
from behavior_lab.reporting.table_format import Table, latex_escape
from behavior_lab.reporting.tables import cells_table, effects_table, leaderboard_table, per_task_table

REPO = Path(__file__).resolve().parents[2]


def assert_wellformed_latex(tex: str, n_cols: int) -> None:
    begins = re.findall(r"\\begin\{(\w+)\}", tex)
    ends = re.findall(r"\\end\{(\w+)\}", tex)
    assert begins == ["table", "tabular"] and ends == ["tabular", "table"]
    for rule in ("toprule", "midrule", "bottomrule"):
        assert tex.count("\\" + rule) == 1
    assert tex.index(r"\toprule") < tex.index(r"\midrule") < tex.index(r"\bottomrule")
    without_label = re.sub(r"\\label\{[^}]*\}", "", tex)
    assert not re.search(r"(?<!\\)_", without_label), "unescaped underscore"
    assert not re.search(r"(?<!\\)[%#]", without_label), "unescaped % or #"
    assert len(re.findall(r"(?<!\\)\{", tex)) == len(re.findall(r"(?<!\\)\}", tex)), "unbalanced braces"
    assert len(re.findall(r"(?<!\\)\$", tex)) % 2 == 0, "unbalanced math mode"
    spec = re.search(r"\\begin\{tabular\}\{([lcr]+)\}", tex).group(1)
    assert len(spec) == n_cols
    body = tex.split(r"\toprule")[1].split(r"\bottomrule")[0].replace(r"\midrule", "")
    for line in filter(None, (ln.strip() for ln in body.splitlines())):
        assert line.endswith(r"\\")
        assert len(re.findall(r"(?<!\\)&", line)) == n_cols - 1, line


def test_latex_escape():
    assert latex_escape("a_b & 50% #1 {x} ~ ^") == r"a\_b \& 50\% \#1 \{x\} \textasciitilde{} \textasciicircum{}"


@pytest.fixture
def scored(grid_tree):
    res = collect([grid_tree])
    s = score_cells(res, boot=Bootstrap(n=100))
    eff = toggle_effects(s.per_seed, res.toggles, EffectSettings(n_boot=100, n_perm=100))
    return res, s, eff


def test_all_tables_render_wellformed(scored, tmp_path):
    res, s, eff = scored
    tables = [
        leaderboard_table(s.overall, leaderboard_2025()),
        cells_table(s.overall, res.toggles),
        per_task_table(s.tasks, s.task_order, TASK_DEMO_SECONDS),
        effects_table(eff),
    ]
    for t in tables:
        n = len(t.display.columns)
        assert_wellformed_latex(t.to_latex(), n)
        md = t.to_markdown().split("\n\n")[0].strip().splitlines()
        assert len(md) == 2 + len(t.display) and all(line.count(" | ") == n - 1 for line in md if "---" not in line)
        paths = t.write(tmp_path)
        assert pd.read_csv(paths["csv"]).shape[0] == len(t.data)
    per_task = tables[2].to_latex()
    assert r"turning\_on\_radio" in per_task and "turning_on_radio" not in per_task


def test_leaderboard_marks_and_ranks(scored):
    _, s, _ = scored
    t = leaderboard_table(s.overall, leaderboard_2025())
    ours = t.data[t.data["source"] == "this run"]
    assert len(ours) == 4
    assert all(n.startswith("not comparable: embedded suite, 2 of 50 tasks") for n in ours["note"])
    pub = t.data[t.data["source"] == "published 2025"]
    assert pub["team"].tolist()[0] == "Robot Learning Collective"
    key = t.data["q_hidden"].fillna(t.data["q_public"])
    assert key.is_monotonic_decreasing
    assert "Q held-out" in t.display.columns and "SR public" in t.display.columns


def test_leaderboard_with_heldout_and_full_official_run():
    overall = pd.DataFrame([
        {"cell": "ours", "split": "public", "q_score": 0.3, "task_sr": 0.15, "num_tasks": 50, "suite": "omnigibson",
         "episodes_expected": 500, "seeds": 1},
        {"cell": "ours", "split": "heldout", "q_score": 0.27, "task_sr": 0.13, "num_tasks": 50, "suite": "omnigibson",
         "episodes_expected": 500, "seeds": 1},
    ])
    t = leaderboard_table(overall, leaderboard_2025())
    row = t.data[t.data["source"] == "this run"].iloc[0]
    assert row["note"] == "" and row["q_hidden"] == 0.27 and row["sr_public"] == 0.15
    assert t.data.index[t.data["source"] == "this run"][0] == 0  # 0.27 > 0.2599: placed first


def test_reference_csv_matches_constants():
    path = REPO / "reports" / "reference" / "leaderboard_2025.csv"
    frame = leaderboard_2025(path)
    assert list(frame.columns) == list(LEADERBOARD_COLUMNS)
    expected = pd.DataFrame(LEADERBOARD_2025, columns=list(LEADERBOARD_COLUMNS))
    pd.testing.assert_frame_equal(frame.reset_index(drop=True), expected, check_dtype=False)
    assert frame.loc[0, "q_hidden"] == 0.2599 and frame.loc[1, "q_public"] == 0.1830
    assert sum(TASK_DEMO_SECONDS.values()) / 50 == pytest.approx(397.1, abs=0.05)  # facts §1


def test_table_align_checked():
    t = Table("x", pd.DataFrame({"a": [1]}), pd.DataFrame({"a": ["1"], "b": ["2"]}), "c", align="l")
    with pytest.raises(ValueError, match="align"):
        t.to_latex()
