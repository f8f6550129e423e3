"""The serving benchmark runs and reports its figures (values are not asserted: shared 2-core machine)."""

from __future__ import annotations

import math

import pytest


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_serving_overhead_quick_reports_figures():
    from behavior_lab import benchmarks

    bench = benchmarks.select(["serving.overhead"])[0]
    out = bench.fn(quick=True)
    for key in ("overhead_median_ms", "decode_median_ms", "runtime_median_ms", "encode_median_ms",
                "loopback_rtt_median_ms", "clients4_steps_per_s"):
        assert key in out and math.isfinite(out[key]) and out[key] >= 0
