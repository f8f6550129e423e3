"""The reporting benchmark runs and returns flat figures (timings are never asserted)."""

import pytest


@pytest.mark.slow
def test_reporting_benchmark_quick():
    pytest.importorskip("behavior_lab.benchmarks")
    from behavior_lab.benchmarks import discover
    from behavior_lab.reporting.bench import bench_report

    assert "reporting.report" in discover()
    figures = bench_report(quick=True)
    assert figures["episodes"] == 64 * 5 * 10 and figures["cells"] == 64 and figures["report_s"] > 0
    assert all(isinstance(v, (int, float)) for v in figures.values())
