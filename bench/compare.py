"""`python -m bench.compare [--duration S] [--concurrency 1,8,32] [--rounds R] [--quick]`: the gateway
side by side with the official `a2a-sdk==0.2.12` server (`bench.reference_server`) and with bare
Temporal workflows (`bench.bare`), each scenario's sides under the same load generator, and
`tasks/get` over the floor under them both (`bench.floor_server`: a bare ASGI app under the same
uvicorn sending the gateway's answer).

Starts a Temporal dev server and a Redis on free loopback ports (or uses TEMPORAL_ADDRESS /
REDIS_URL), ONE gateway process, an echo worker, a bare worker, the reference server and the floor
server (one uvicorn process each). Creates one completed task on each server with a blocking
`message/send`, and one task waiting for input on ours. Then, per concurrency level C and round, runs
a load generator (a process of its own) for S seconds per scenario, the sides taking turns:
`tasks/get` of the completed task on ours, then on the reference, then on the floor, then of the open
task on ours (kept by the gateway while Redis tracks it, as a completed task is remembered; see
gateway.tasks.pipelined); a blocking `message/send` on ours, on the reference, then bare workflows
(one activity) at the same C. Around each run it reads the CPU time of every
process of the stack from /proc, and reports each one's CPU per request.

The HTTP scenarios are driven by `wrk` when it is on PATH (one thread, C connections,
`bench/jsonrpc.lua`), by `bench.load` (Python, httpx) otherwise: `bench.load` needs a whole CPU
before either server does at C > 1. Bare workflows are always `bench.load`'s: they are not HTTP.

Writes `bench/results/compare.json`, `bench/results/compare.md` (tables, ratios and targets) and,
when matplotlib is installed, `compare-throughput.png` and `compare-latency.png`. Every process it
started is stopped on the way out, Ctrl-C included. The exit code reflects failures only, never the
figures.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import logging
import math
import resource
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import httpx
from temporalio.client import Client

from bench.harness import (
    HOST,
    NAMESPACE,
    RESULTS_DIR,
    ROOT,
    BenchError,
    Stack,
    exit_with,
    machine_info,
    percentile,
    start_stack,
    stopping,
    wait_ready,
)
from bench.streaming import cpu_seconds
from gateway.devstack.processes import (
    TEMPORAL_DEV_SERVER,
    ManagedProcess,
    free_port,
    register_search_attributes,
)

logger = logging.getLogger("bench.compare")

OURS = "ours"
REFERENCE = "reference"
BARE = "bare"
# A bare ASGI app under the same uvicorn sending the gateway's tasks/get answer (bench.floor_server).
FLOOR = "bare ASGI"
TASKS_GET = "tasks/get"
# tasks/get of a task waiting for input: its snapshot read from Redis once, then kept by the gateway
# until Redis says it changed (a terminal task is remembered for a minute). Ours only: the
# reference's trivial agent ends every task.
TASKS_GET_OPEN = "tasks/get (open task)"
MESSAGE_SEND = "message/send"
# Scenario, side: the order in which the sides take turns within a round.
TURNS = [
    (TASKS_GET, OURS),
    (TASKS_GET, REFERENCE),
    (TASKS_GET, FLOOR),
    (TASKS_GET_OPEN, OURS),
    (MESSAGE_SEND, OURS),
    (MESSAGE_SEND, REFERENCE),
    (MESSAGE_SEND, BARE),
]
TARGET_TASKS_GET_RATIO = 2.0
TARGET_TASKS_PER_SECOND_RATIO = 1.0
# Beyond warm-up and the measured seconds, for the load generator to start and finish.
LOAD_SLACK_SECONDS = 120.0
WRK_SCRIPT = ROOT / "bench" / "jsonrpc.lua"
PYTHON_LOAD = "bench.load"
# bench.load's REQUEST_TIMEOUT; wrk's own 2 s would count a slow blocking message/send as an error.
WRK_TIMEOUT = "60s"


def load_args(
    stack: Stack, urls: dict[str, str], task_ids: dict[str, str], scenario: str, side: str
) -> list[str]:
    if side == BARE:
        return [
            "bare",
            "--address",
            stack.temporal_address,
            "--namespace",
            NAMESPACE,
            "--task-queue",
            stack.bare_queue,
        ]
    args = ["http", "--url", urls[side]]
    if scenario in (TASKS_GET, TASKS_GET_OPEN):
        return [*args, "--request", "tasks-get", "--task-id", task_ids[task_key(scenario, side)]]
    return [*args, "--request", "message-send"]


def run_load(
    stack: Stack,
    target: list[str],
    concurrency: int,
    warmup: float,
    duration: float,
) -> dict[str, Any]:
    """`bench.load`'s figures, every latency included."""
    args = [sys.executable, "-m", "bench.load", "--concurrency", str(concurrency)]
    args += ["--warmup", str(warmup), "--duration", str(duration), *target]
    done = subprocess.run(
        args,
        env=stack.env,
        capture_output=True,
        timeout=warmup + duration + LOAD_SLACK_SECONDS,
        check=False,
    )
    if done.returncode != 0:
        raise BenchError(
            f"the load generator exited with code {done.returncode}: {done.stderr.decode()[-2000:]}"
        )
    figures: dict[str, Any] = json.loads(done.stdout)
    figures["generator"] = PYTHON_LOAD
    return figures


def children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def wrk_once(wrk: str, stack: Stack, target: list[str], concurrency: int, seconds: int) -> str:
    url, request, *task_id = target
    args = [
        wrk,
        "-t1",
        "-c",
        str(concurrency),
        "-d",
        f"{seconds}s",
        "--latency",
        "--timeout",
        WRK_TIMEOUT,
    ]
    args += ["-s", str(WRK_SCRIPT), url, "--", request, *task_id]
    done = subprocess.run(
        args, env=stack.env, capture_output=True, timeout=seconds + LOAD_SLACK_SECONDS, check=False
    )
    output = done.stdout.decode()
    if done.returncode != 0:
        raise BenchError(f"wrk exited with code {done.returncode}: {done.stderr.decode()[-2000:]}")
    return output.rstrip().rsplit("\n", 1)[-1]


def run_wrk(
    wrk: str, stack: Stack, target: list[str], concurrency: int, warmup: float, duration: float
) -> dict[str, Any]:
    """wrk's figures: latency percentiles, not every latency. wrk counts whole seconds, so
    `warmup` and `duration` are rounded up."""
    if warmup > 0:
        wrk_once(wrk, stack, target, concurrency, math.ceil(warmup))
    cpu = children_cpu_seconds()
    line = wrk_once(wrk, stack, target, concurrency, math.ceil(duration))
    cpu = children_cpu_seconds() - cpu
    try:
        out = json.loads(line)
    except json.JSONDecodeError as err:
        raise BenchError(f"wrk printed no figures: {line[-2000:]!r}") from err
    seconds = out["duration_us"] / 1e6
    errors = out["socket_errors"] + out["non_2xx"] + out["rpc_errors"]
    requests = out["requests"] - out["non_2xx"] - out["rpc_errors"]
    return {
        "generator": "wrk",
        "requests": requests,
        "errors": errors,
        "first_error": (
            f"{out['non_2xx']} non-2xx answers, {out['rpc_errors']} JSON-RPC errors, "
            f"{out['socket_errors']} socket errors or timeouts"
            if errors
            else None
        ),
        "seconds": seconds,
        "rps": requests / seconds,
        "client_cpu_percent": 100 * cpu / seconds,
        # wrk's latencies include the failed requests'.
        "p50_ms": out["p50_us"] / 1000,
        "p90_ms": out["p90_us"] / 1000,
        "p99_ms": out["p99_us"] / 1000,
    }


def with_server_cpu(
    stack: Stack, loaded_seconds: float, run_once: Callable[[], dict[str, Any]]
) -> dict[str, Any]:
    """A run's figures, with the CPU each process of the stack spent per request, in ms: its CPU
    over the whole run (warm-up included) over the requests of `loaded_seconds` at the measured
    rate."""
    pids = {process.name: process.pid for process in stack.processes}
    before = {name: cpu_seconds(pid) for name, pid in pids.items()}
    figures = run_once()
    requests = figures["rps"] * loaded_seconds
    figures["server_cpu_ms"] = {
        name: 1000 * (cpu_seconds(pid) - before[name]) / requests if requests else None
        for name, pid in pids.items()
    }
    return figures


def task_key(scenario: str, side: str) -> str:
    """Which of `prepare`'s tasks a tasks/get scenario reads (the floor is asked for ours)."""
    if scenario == TASKS_GET_OPEN:
        return TASKS_GET_OPEN
    return OURS if side == FLOOR else side


def http_target(
    urls: dict[str, str], task_ids: dict[str, str], scenario: str, side: str
) -> list[str]:
    """wrk's URL and `bench/jsonrpc.lua`'s arguments."""
    if scenario in (TASKS_GET, TASKS_GET_OPEN):
        return [urls[side], "tasks-get", task_ids[task_key(scenario, side)]]
    return [urls[side], "message-send"]


async def create_task(url: str, state: str = "completed") -> str:
    """The id of a task a blocking `message/send` to `url` left in `state` (`input-required`: by
    asking the gateway's echo agent for it)."""
    body: dict[str, Any] = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "message/send",
        "params": {
            "message": {
                "role": "user",
                "parts": [{"kind": "text", "text": "hello"}],
                "messageId": str(uuid.uuid4()),
                "kind": "message",
            }
        },
    }
    if state != "completed":
        body["params"]["message"]["metadata"] = {"echo": {"finalState": state}}
    async with httpx.AsyncClient(timeout=60.0) as http:
        response = await http.post(url, json=body)
    reply: dict[str, Any] = response.json()
    result = reply.get("result")
    if not (
        isinstance(result, dict)
        and result.get("kind") == "task"
        and result.get("status", {}).get("state") == state
    ):
        raise BenchError(f"message/send to {url} did not answer a task {state}: {reply}")
    task_id: str = result["id"]
    return task_id


async def prepare(stack: Stack, urls: dict[str, str]) -> dict[str, str]:
    """Wait for the stack, then one completed task on each server and one waiting for input on
    ours, for `tasks/get`."""
    client = await Client.connect(stack.temporal_address, namespace=NAMESPACE)
    if stack.temporal_reused:
        added = await register_search_attributes(client, NAMESPACE)
        if added:
            logger.info("registered search attributes %s", added)
    async with httpx.AsyncClient(base_url=stack.gateway_url) as http:
        logger.info("waiting for the gateway and the workers")
        await wait_ready(stack, http, client)
    tasks = {side: await create_task(url) for side, url in urls.items()}
    tasks[TASKS_GET_OPEN] = await create_task(urls[OURS], "input-required")
    return tasks


def pool_wrk(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """One row from wrk's rounds: their percentiles averaged, weighted by requests, for wrk reports
    percentiles and not every latency."""
    requests = sum(run["requests"] for run in runs)
    if not requests:
        raise BenchError(f"no request succeeded; {runs[0]['first_error']}")
    seconds = sum(run["seconds"] for run in runs)
    return {
        "generator": "wrk",
        "requests": requests,
        "errors": sum(run["errors"] for run in runs),
        "first_error": next((run["first_error"] for run in runs if run["first_error"]), None),
        "rps": requests / seconds,
        **{
            q: sum(run[q] * run["requests"] for run in runs) / requests
            for q in ("p50_ms", "p90_ms", "p99_ms")
        },
        "client_cpu_percent": max(run["client_cpu_percent"] for run in runs),
        "server_cpu_ms": pool_server_cpu(runs),
    }


def pool_server_cpu(runs: list[dict[str, Any]]) -> dict[str, float | None]:
    """Each process's CPU ms per request over the rounds, weighted by their requests."""
    pooled: dict[str, float | None] = {}
    for name in runs[0]["server_cpu_ms"]:
        weighted = [(run["server_cpu_ms"][name], run["rps"]) for run in runs]
        total = sum(rps for value, rps in weighted if value is not None)
        pooled[name] = (
            sum(value * rps for value, rps in weighted if value is not None) / total
            if total
            else None
        )
    return pooled


def pool(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """One row from the rounds of one scenario, side and concurrency."""
    if runs[0]["generator"] == "wrk":
        return pool_wrk(runs)
    latencies = sorted(value for run in runs for value in run["latencies_ms"])
    seconds = sum(run["seconds"] for run in runs)
    errors = sum(run["errors"] for run in runs)
    first_error = next((run["first_error"] for run in runs if run["first_error"]), None)
    if not latencies:
        raise BenchError(f"no request succeeded; the first error: {first_error}")
    cpu = [run["client_cpu_percent"] for run in runs if run["client_cpu_percent"] is not None]
    return {
        "generator": PYTHON_LOAD,
        "requests": len(latencies),
        "errors": errors,
        "first_error": first_error,
        "rps": len(latencies) / seconds,
        "p50_ms": percentile(latencies, 50),
        "p99_ms": percentile(latencies, 99),
        "client_cpu_percent": max(cpu) if cpu else None,
        "server_cpu_ms": pool_server_cpu(runs),
    }


def measure(
    stack: Stack,
    urls: dict[str, str],
    task_ids: dict[str, str],
    levels: list[int],
    rounds: int,
    warmup: float,
    duration: float,
) -> dict[str, dict[str, dict[str, Any]]]:
    """results[scenario][side][str(concurrency)]"""
    wrk = shutil.which("wrk")
    logger.info("HTTP load generator: %s", wrk or f"{PYTHON_LOAD} (wrk is not on PATH)")
    results: dict[str, dict[str, dict[str, Any]]] = {}
    for concurrency in levels:
        runs: dict[tuple[str, str], list[dict[str, Any]]] = {turn: [] for turn in TURNS}
        for index in range(rounds):
            for scenario, side in TURNS:
                logger.info(
                    "concurrency %d, round %d/%d: %s on %s",
                    concurrency,
                    index + 1,
                    rounds,
                    scenario,
                    side,
                )
                if wrk is not None and side != BARE:
                    target = http_target(urls, task_ids, scenario, side)
                    run_once = partial(run_wrk, wrk, stack, target, concurrency, warmup, duration)
                else:
                    target = load_args(stack, urls, task_ids, scenario, side)
                    run_once = partial(run_load, stack, target, concurrency, warmup, duration)
                figures = with_server_cpu(stack, warmup + duration, run_once)
                logger.info(
                    "  %s: %.0f requests/s, %d errors, load generator CPU %.0f%%",
                    figures["generator"],
                    figures["rps"],
                    figures["errors"],
                    figures["client_cpu_percent"] or 0,
                )
                runs[scenario, side].append(figures)
                stack.check_alive()
        for (scenario, side), scenario_runs in runs.items():
            row = pool(scenario_runs)
            results.setdefault(scenario, {}).setdefault(side, {})[str(concurrency)] = row
    return results


def ratio(numerator: float, denominator: float) -> float | None:
    return numerator / denominator if denominator > 0 else None


def verdicts(results: dict[str, dict[str, dict[str, Any]]], levels: list[int]) -> dict[str, Any]:
    """Per concurrency level: the ratios the targets are about, and whether each is met."""
    out: dict[str, Any] = {}
    for level in (str(c) for c in levels):
        get = {side: results[TASKS_GET][side][level] for side in (OURS, REFERENCE)}
        send = {side: results[MESSAGE_SEND][side][level] for side in (OURS, REFERENCE, BARE)}
        get_ratio = ratio(get[OURS]["rps"], get[REFERENCE]["rps"])
        open_ratio = ratio(results[TASKS_GET_OPEN][OURS][level]["rps"], get[REFERENCE]["rps"])
        tps_ratio = ratio(send[OURS]["rps"], send[BARE]["rps"])
        out[level] = {
            "tasks_get_rps_ours_over_reference": get_ratio,
            "tasks_get_open_rps_ours_over_reference": open_ratio,
            "tasks_get_target_met": get_ratio is not None
            and get_ratio >= TARGET_TASKS_GET_RATIO
            and open_ratio is not None
            and open_ratio >= TARGET_TASKS_GET_RATIO,
            # A blocking send through the whole stack against a bare Temporal workflow round trip.
            "message_send_ms_over_bare": {
                q: ratio(send[OURS][q], send[BARE][q]) for q in ("p50_ms", "p99_ms")
            },
            "message_send_target_met": all(
                send[OURS][q] <= send[BARE][q] for q in ("p50_ms", "p99_ms")
            ),
            "tasks_per_second_ours_over_bare": tps_ratio,
            "tasks_per_second_target_met": tps_ratio is not None
            and tps_ratio >= TARGET_TASKS_PER_SECOND_RATIO,
            "message_send_rps_ours_over_reference": ratio(
                send[OURS]["rps"], send[REFERENCE]["rps"]
            ),
        }
    return out


def _fmt(value: float | None, digits: int = 2) -> str:
    return "n/a" if value is None else f"{value:,.{digits}f}"


def _met(flag: bool) -> str:
    return "met" if flag else "NOT met"


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _header(cells: list[str]) -> list[str]:
    return [_row(cells), _row(["---:"] * len(cells))]


def render_markdown(figures: dict[str, Any]) -> str:
    results, checks = figures["results"], figures["verdicts"]
    machine = figures["machine"]
    load = "n/a" if machine["load_average_1m"] is None else f"{machine['load_average_1m']:.2f}"
    lines = [
        "# Gateway vs a2a-sdk 0.2.12 vs bare Temporal",
        "",
        f"{figures['rounds']} round(s) of {figures['duration_s']:g} s per scenario and concurrency "
        f"after {figures['warmup_s']:g} s warm-up, sides taking turns; one gateway process, one "
        "reference process, load from a separate process (which one: the last table).",
        f"Machine: {machine['cpu_count']} CPUs, Python {machine['python']}, "
        f"temporalio {machine['temporalio']}, load average {load} at the end",
        "",
        "## Targets (issue 18)",
        "",
        *_targets(checks),
        "",
        *target_demands(figures),
        "",
        f"## `tasks/get` (target: ours >= {TARGET_TASKS_GET_RATIO:g}x reference, for a completed "
        "and for an open task)",
        "",
        *_header(
            [
                "C",
                "ours req/s",
                "reference req/s",
                "ratio",
                "ours p50/p99 ms",
                "reference p50/p99 ms",
                "target",
                "ours, open task req/s",
                "ratio",
                "p50/p99 ms",
                "bare ASGI req/s",
                "p50/p99 ms",
            ]
        ),
    ]
    get = results[TASKS_GET]
    for level, check in checks.items():
        ours, ref = get[OURS][level], get[REFERENCE][level]
        open_task = results[TASKS_GET_OPEN][OURS][level]
        floor = get[FLOOR][level]
        lines.append(
            _row(
                [
                    level,
                    _fmt(ours["rps"], 0),
                    _fmt(ref["rps"], 0),
                    _fmt(check["tasks_get_rps_ours_over_reference"]),
                    f"{_fmt(ours['p50_ms'])} / {_fmt(ours['p99_ms'])}",
                    f"{_fmt(ref['p50_ms'])} / {_fmt(ref['p99_ms'])}",
                    _met(check["tasks_get_target_met"]),
                    _fmt(open_task["rps"], 0),
                    _fmt(ratio(open_task["rps"], ref["rps"])),
                    f"{_fmt(open_task['p50_ms'])} / {_fmt(open_task['p99_ms'])}",
                    _fmt(floor["rps"], 0),
                    f"{_fmt(floor['p50_ms'])} / {_fmt(floor['p99_ms'])}",
                ]
            )
        )
    lines += [
        "",
        "A completed task never changes, so a gateway serves it from memory after its first read; "
        "an open task (here one waiting for input) is kept in memory until Redis says it changed "
        "(client-side caching with CLIENT TRACKING). Bare ASGI: the floor under both servers, an "
        "ASGI app that only reads the request and sends the gateway's answer's bytes, under the "
        "same uvicorn (`bench.floor_server`).",
    ]
    send = results[MESSAGE_SEND]
    lines += [
        "",
        "## Blocking `message/send`, trivial agent: latency (target: ours <= bare Temporal, at p50 "
        "and at p99)",
        "",
        *_header(
            [
                "C",
                "reference p50",
                "p99",
                "ours p50",
                "p99",
                "bare Temporal p50",
                "p99",
                "ours / bare p50 / p99",
                "target",
            ]
        ),
    ]
    for level, check in checks.items():
        ours, ref, bare = send[OURS][level], send[REFERENCE][level], send[BARE][level]
        over = check["message_send_ms_over_bare"]
        lines.append(
            _row(
                [
                    level,
                    _fmt(ref["p50_ms"]),
                    _fmt(ref["p99_ms"]),
                    _fmt(ours["p50_ms"]),
                    _fmt(ours["p99_ms"]),
                    _fmt(bare["p50_ms"]),
                    _fmt(bare["p99_ms"]),
                    f"{_fmt(over['p50_ms'])} / {_fmt(over['p99_ms'])}",
                    _met(check["message_send_target_met"]),
                ]
            )
        )
    lines += [
        "",
        "## Tasks per second end to end (echo agent) vs bare Temporal workflows (target: ours >= "
        f"{TARGET_TASKS_PER_SECOND_RATIO:g}x bare)",
        "",
        *_header(
            [
                "C",
                "ours tasks/s",
                "bare workflows/s",
                "ours / bare",
                "reference tasks/s",
                "ours / reference",
                "target",
            ]
        ),
    ]
    for level, check in checks.items():
        lines.append(
            _row(
                [
                    level,
                    _fmt(send[OURS][level]["rps"], 1),
                    _fmt(send[BARE][level]["rps"], 1),
                    _fmt(check["tasks_per_second_ours_over_bare"]),
                    _fmt(send[REFERENCE][level]["rps"], 1),
                    _fmt(check["message_send_rps_ours_over_reference"]),
                    _met(check["tasks_per_second_target_met"]),
                ]
            )
        )
    lines += ["", *_server_cpu(results), "", *_generators(results), "", *_notes(results)]
    return "\n".join(lines) + "\n"


def _targets(checks: dict[str, Any]) -> list[str]:
    """One line per target and concurrency level: the measured ratio, and whether it is met."""
    lines = [_row(["target", "C", "measured", ""]), _row(["---", "---:", "---:", "---"])]
    for level, check in checks.items():
        over = check["message_send_ms_over_bare"]
        rows = [
            (
                f"tasks/s >= {TARGET_TASKS_PER_SECOND_RATIO:g}x bare Temporal",
                f"{_fmt(check['tasks_per_second_ours_over_bare'])}x",
                check["tasks_per_second_target_met"],
            ),
            (
                "blocking send p50 and p99 <= bare Temporal's",
                f"{_fmt(over['p50_ms'])}x / {_fmt(over['p99_ms'])}x",
                check["message_send_target_met"],
            ),
            (
                f"tasks/get >= {TARGET_TASKS_GET_RATIO:g}x reference, completed / open task",
                f"{_fmt(check['tasks_get_rps_ours_over_reference'])}x / "
                f"{_fmt(check['tasks_get_open_rps_ours_over_reference'])}x",
                check["tasks_get_target_met"],
            ),
        ]
        lines += [_row([what, level, value, _met(met)]) for what, value, met in rows]
    return lines


def target_demands(figures: dict[str, Any]) -> list[str]:
    """What the run's own figures say each latency and `tasks/get` target asks of the stack: the
    tasks/s and CPU per task a p50 of bare's needs when sends are served in turn, and the share of
    the floor's rate that the `tasks/get` target and each server reach."""
    results, cpus = figures["results"], figures["machine"]["usable_cpus"] or 1
    send, get = results[MESSAGE_SEND], results[TASKS_GET]
    lines = [
        "## What the targets ask of the stack",
        "",
        "A closed loop of C clients waits C / (tasks/s) per send on average (Little's law). With "
        "sends served in turn a send waits about that mean, so a p50 of bare's needs C / (bare's p50) "
        f"tasks/s: at most {cpus} CPUs x p50 / C of CPU per task for the whole stack, Temporal "
        "included. A p50 far below the mean comes from sends served out of turn, some quickly "
        "and others after long waits (the p99).",
        "",
        *_header(
            [
                "C",
                "ours mean / p50 ms",
                "bare mean / p50 ms",
                "tasks/s for bare's p50 in turn",
                "CPU per task that allows, ms",
                "ours CPU per task, all / Temporal, ms",
            ]
        ),
    ]
    for level, ours in send[OURS].items():
        bare, clients = send[BARE][level], int(level)
        cpu = ours["server_cpu_ms"]
        lines.append(
            _row(
                [
                    level,
                    f"{_fmt(_mean_ms(clients, ours['rps']))} / {_fmt(ours['p50_ms'])}",
                    f"{_fmt(_mean_ms(clients, bare['rps']))} / {_fmt(bare['p50_ms'])}",
                    _fmt(ratio(clients * 1000, bare["p50_ms"]), 1),
                    _fmt(ratio(cpus * bare["p50_ms"], clients)),
                    f"{_fmt(sum(cpu.values()))} / {_fmt(cpu.get(TEMPORAL_DEV_SERVER))}",
                ]
            )
        )
    lines += [
        "",
        f"`tasks/get`: {TARGET_TASKS_GET_RATIO:g}x the reference's rate as a share of the floor's "
        "(the bare ASGI app under the same uvicorn), and the share each server reaches.",
        "",
        *_header(["C", "target share", "ours", "ours, open task", "reference"]),
    ]
    for level, floor in get[FLOOR].items():
        share = partial(_share, floor["rps"])
        reference = get[REFERENCE][level]["rps"]
        lines.append(
            _row(
                [
                    level,
                    share(TARGET_TASKS_GET_RATIO * reference),
                    share(get[OURS][level]["rps"]),
                    share(results[TASKS_GET_OPEN][OURS][level]["rps"]),
                    share(reference),
                ]
            )
        )
    return lines


def _mean_ms(clients: int, rps: float) -> float | None:
    return ratio(clients * 1000, rps)


def _share(floor: float, rps: float) -> str:
    part = ratio(rps, floor)
    return "n/a" if part is None else f"{part:.0%}"


def _server_cpu(results: dict[str, dict[str, dict[str, Any]]]) -> list[str]:
    """Where each side's CPU goes: ms per request of each process of the stack (the load generator
    not included), 0 rounded away."""
    names: list[str] = []
    for sides in results.values():
        for levels in sides.values():
            for row in levels.values():
                names += [name for name in row["server_cpu_ms"] if name not in names]
    lines = [
        "## CPU per request, by process (ms)",
        "",
        "Each process's CPU over a run, warm-up included, over the requests of that time at the "
        "measured rate. The load generator is not counted.",
        "",
        *_header(["scenario", "side", "C", *names, "total"]),
    ]
    for scenario, sides in results.items():
        for side, levels in sides.items():
            for level, row in levels.items():
                cpu = row["server_cpu_ms"]
                values = [cpu.get(name) for name in names]
                total = sum(value for value in values if value is not None)
                lines.append(
                    _row(
                        [
                            scenario,
                            side,
                            level,
                            *(
                                "" if not value or value < 0.005 else f"{value:.2f}"
                                for value in values
                            ),
                            f"{total:.2f}",
                        ]
                    )
                )
    return lines


def _generators(results: dict[str, dict[str, dict[str, Any]]]) -> list[str]:
    """Which load generator produced each row, and how much of a CPU it used at most."""
    lines = [
        "## Load generators",
        "",
        "`wrk`: `wrk -t1 -c C --latency -s bench/jsonrpc.lua` (percentiles are wrk's; over "
        "several rounds, their mean weighted by requests). `bench.load`: Python, httpx or a "
        "Temporal client, C coroutines.",
        "",
        *_header(["scenario", "side", "C", "generator", "generator CPU %"]),
    ]
    for scenario, sides in results.items():
        for side, levels in sides.items():
            for level, row in levels.items():
                cpu = row["client_cpu_percent"]
                lines.append(
                    _row(
                        [
                            scenario,
                            side,
                            level,
                            f"`{row['generator']}`",
                            "n/a" if cpu is None else f"{cpu:.0f}",
                        ]
                    )
                )
    return lines


def _notes(results: dict[str, dict[str, dict[str, Any]]]) -> list[str]:
    notes = []
    for scenario, sides in results.items():
        for side, levels in sides.items():
            for level, row in levels.items():
                if row["errors"]:
                    notes.append(
                        f"- {scenario} on {side} at C={level}: {row['errors']} errors "
                        f"(first: {row['first_error']})"
                    )
                cpu = row["client_cpu_percent"]
                if cpu is not None and cpu >= 90:
                    notes.append(
                        f"- {scenario} on {side} at C={level}: the load generator used {cpu:.0f}% "
                        "of a CPU; the figure may be the client's limit, not the server's."
                    )
    return notes or ["No request failed; no load generator reached 90% of a CPU."]


def write_charts(figures: dict[str, Any], directory: Path) -> list[Path]:
    """PNG charts, or none when matplotlib is not installed (`pip install -e '.[bench]'`)."""
    try:
        # Imported by name: matplotlib is an optional extra, absent where mypy runs.
        matplotlib: Any = importlib.import_module("matplotlib")
    except ImportError:
        return []
    matplotlib.use("Agg")
    pyplot: Any = importlib.import_module("matplotlib.pyplot")
    results = figures["results"]
    levels = list(figures["verdicts"])
    throughput = directory / "compare-throughput.png"
    fig, axes = pyplot.subplots(1, 2, figsize=(11, 4))
    for axis, scenario, sides in (
        (axes[0], TASKS_GET, (OURS, REFERENCE, FLOOR)),
        (axes[1], MESSAGE_SEND, (OURS, REFERENCE, BARE)),
    ):
        series = {side: [results[scenario][side][c]["rps"] for c in levels] for side in sides}
        if scenario == TASKS_GET:
            series["ours (open task)"] = [results[TASKS_GET_OPEN][OURS][c]["rps"] for c in levels]
        _bars(axis, levels, series)
        axis.set_title(
            f"{scenario} throughput"
            if scenario == TASKS_GET
            else "message/send tasks/s (bare: workflows/s)"
        )
        axis.set_xlabel("concurrency")
        axis.set_ylabel("requests/s")
        if scenario == MESSAGE_SEND:
            # The in-memory reference runs a hundred times more: on a linear scale ours and bare's
            # bars would not show.
            axis.set_yscale("log")
    fig.tight_layout()
    fig.savefig(throughput, dpi=100)
    pyplot.close(fig)
    latency = directory / "compare-latency.png"
    fig, axes = pyplot.subplots(1, 2, figsize=(11, 4))
    for axis, key in ((axes[0], "p50_ms"), (axes[1], "p99_ms")):
        sides = (OURS, REFERENCE, BARE)
        _bars(
            axis,
            levels,
            {side: [results[MESSAGE_SEND][side][c][key] for c in levels] for side in sides},
        )
        axis.set_title(f"message/send {key.removesuffix('_ms')} latency")
        axis.set_xlabel("concurrency")
        axis.set_ylabel("ms")
    fig.tight_layout()
    fig.savefig(latency, dpi=100)
    pyplot.close(fig)
    return [throughput, latency]


def _bars(axis: Any, levels: list[str], series: dict[str, list[float]]) -> None:
    width = 0.8 / len(series)
    for index, (side, values) in enumerate(series.items()):
        axis.bar([x + index * width for x in range(len(levels))], values, width, label=side)
    axis.set_xticks([x + width * (len(series) - 1) / 2 for x in range(len(levels))], levels)
    axis.legend()


def start_reference(stack: Stack) -> str:
    port = free_port(HOST)
    server = stack.start(
        "reference server",
        [sys.executable, "-m", "bench.reference_server", "--host", HOST, "--port", str(port)],
        {},
    )
    server.wait_for_port(HOST, port)
    return f"http://{HOST}:{port}/"


async def gateway_answer(url: str, task_id: str) -> bytes:
    """The gateway's answer to the benchmark's `tasks/get` of `task_id`, as it sends it."""
    body = {"jsonrpc": "2.0", "id": 1, "method": "tasks/get", "params": {"id": task_id}}
    async with httpx.AsyncClient(timeout=60.0) as http:
        response = await http.post(url, json=body)
    if response.status_code != 200 or "result" not in response.json():
        raise BenchError(f"tasks/get to {url} did not answer the task: {response.text[:2000]}")
    return response.content


def start_floor(stack: Stack, answer: bytes) -> str:
    path = stack.logs / "floor-answer.json"
    path.write_bytes(answer)
    port = free_port(HOST)
    args = [sys.executable, "-m", "bench.floor_server", "--host", HOST, "--port", str(port)]
    server = stack.start("floor server", [*args, "--answer", str(path)], {})
    server.wait_for_port(HOST, port)
    return f"http://{HOST}:{port}/"


def run(levels: list[int], rounds: int, warmup: float, duration: float) -> int:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    logs = RESULTS_DIR / "logs"
    logs.mkdir(exist_ok=True)
    started: list[ManagedProcess] = []
    with stopping(started):
        with tempfile.TemporaryDirectory(prefix="bench-redis-") as data_dir:
            stack = start_stack(started, logs, Path(data_dir))
            urls = {OURS: stack.gateway_url + "/", REFERENCE: start_reference(stack)}
            task_ids = asyncio.run(prepare(stack, urls))
            urls[FLOOR] = start_floor(
                stack, asyncio.run(gateway_answer(urls[OURS], task_ids[OURS]))
            )
            results = measure(stack, urls, task_ids, levels, rounds, warmup, duration)
        figures = {
            "benchmark": "compare",
            "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
            "concurrency": levels,
            "rounds": rounds,
            "warmup_s": warmup,
            "duration_s": duration,
            "machine": machine_info(),
            "temporal": "reused " + stack.temporal_address
            if stack.temporal_reused
            else "dev server",
            "results": results,
            "verdicts": verdicts(results, levels),
            "targets": {
                "tasks_get_rps_ours_over_reference": TARGET_TASKS_GET_RATIO,
                "message_send": "ours - reference <= bare Temporal, at p50 and p99",
                "tasks_per_second_ours_over_bare": TARGET_TASKS_PER_SECOND_RATIO,
            },
        }
        (RESULTS_DIR / "compare.json").write_text(json.dumps(figures, indent=2) + "\n")
        markdown = render_markdown(figures)
        charts = write_charts(figures, RESULTS_DIR)
        if charts:
            markdown += "\n" + "\n".join(f"![{path.stem}]({path.name})" for path in charts) + "\n"
        else:
            markdown += (
                "\nCharts skipped: matplotlib is not installed (`pip install -e '.[bench]'`).\n"
            )
        (RESULTS_DIR / "compare.md").write_text(markdown)
        print(markdown, flush=True)
        print(
            f"Figures: {RESULTS_DIR.relative_to(ROOT)}/compare.*   Logs: {logs.relative_to(ROOT)}/",
            flush=True,
        )
        return 0


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.compare", description=__doc__)
    parser.add_argument("--duration", type=float, default=10.0, help="measured seconds per run")
    parser.add_argument(
        "--warmup", type=float, default=2.0, help="unmeasured seconds per run first"
    )
    parser.add_argument("--concurrency", default="1,8,32", help="comma-separated levels")
    parser.add_argument("--rounds", type=int, default=2, help="runs per scenario, side and level")
    parser.add_argument(
        "--quick", action="store_true", help="one round of 3 s after 1 s warm-up (a smoke run)"
    )
    args = parser.parse_args(argv)
    try:
        levels = [int(level) for level in args.concurrency.split(",")]
    except ValueError:
        parser.error("--concurrency takes comma-separated integers, e.g. 1,8,32")
    if args.quick:
        args.duration, args.warmup, args.rounds = 3.0, 1.0, 1
    if min(levels) < 1 or args.duration <= 0 or args.warmup < 0 or args.rounds < 1:
        parser.error(
            "levels and --rounds must be 1 or more, --duration above 0, --warmup 0 or more"
        )
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    exit_with(lambda: run(levels, args.rounds, args.warmup, args.duration))


if __name__ == "__main__":
    main()
