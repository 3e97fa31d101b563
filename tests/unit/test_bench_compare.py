"""`bench.compare`'s report: what the latency and `tasks/get` targets ask of the stack, worked out from
the run's own figures."""

from __future__ import annotations

from typing import Any

from bench.compare import target_demands


def _run(rps: float, p50_ms: float = 0.0, **cpu_ms: float) -> dict[str, Any]:
    return {"rps": rps, "p50_ms": p50_ms, "server_cpu_ms": cpu_ms}


def test_the_report_shows_what_bares_p50_and_twice_the_references_rate_ask() -> None:
    figures = {
        "machine": {"usable_cpus": 2},
        "results": {
            "message/send": {
                "ours": {
                    "1": _run(50.0, 18.0, **{"Temporal dev server": 12.0, "Redis": 1.0}),
                    "32": _run(64.0, 400.0, **{"Temporal dev server": 16.0, "Redis": 14.0}),
                },
                "bare": {"1": _run(40.0, 20.0), "32": _run(50.0, 200.0)},
            },
            "tasks/get": {
                "ours": {"1": _run(7_000.0), "32": _run(15_000.0)},
                "reference": {"1": _run(4_500.0), "32": _run(6_000.0)},
                "bare ASGI": {"1": _run(10_000.0), "32": _run(40_000.0)},
            },
            "tasks/get (open task)": {"ours": {"1": _run(6_500.0), "32": _run(14_000.0)}},
        },
    }

    lines = target_demands(figures)

    assert lines[0] == "## What the targets ask of the stack"
    assert "at most 2 CPUs x p50 / C of CPU per task" in lines[2]
    assert lines[4:8] == [
        "| C | ours mean / p50 ms | bare mean / p50 ms | tasks/s for bare's p50 in turn "
        "| CPU per task that allows, ms | ours CPU per task, all / Temporal, ms |",
        "| ---: | ---: | ---: | ---: | ---: | ---: |",
        "| 1 | 20.00 / 18.00 | 25.00 / 20.00 | 50.0 | 40.00 | 13.00 / 12.00 |",
        "| 32 | 500.00 / 400.00 | 640.00 / 200.00 | 160.0 | 12.50 | 30.00 / 16.00 |",
    ]
    assert lines[-4:] == [
        "| C | target share | ours | ours, open task | reference |",
        "| ---: | ---: | ---: | ---: | ---: |",
        "| 1 | 90% | 70% | 65% | 45% |",
        "| 32 | 30% | 38% | 35% | 15% |",
    ]
