"""`--version` and `--help` of both commands: the version installed, every option's default, and the
environment variables each command reads."""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys

import pytest

import workers.cli
from gateway.cli import build_parser

VERSION = importlib.metadata.version("a2a-temporal-gateway")


def output_of(run: object, argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit) as exited:
        run(argv)  # type: ignore[operator]
    assert exited.value.code == 0
    return capsys.readouterr().out


def test_version_of_both_commands(capsys: pytest.CaptureFixture[str]) -> None:
    assert output_of(build_parser().parse_args, ["--version"], capsys) == f"a2a-gateway {VERSION}\n"
    assert output_of(workers.cli.main, ["--version"], capsys) == f"a2a-worker {VERSION}\n"


@pytest.mark.parametrize(
    "argv",
    [["serve", "--help"], ["dev", "--help"]],
)
def test_gateway_help_names_what_it_reads(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    text = output_of(build_parser().parse_args, argv, capsys)
    for name in ("TEMPORAL_ADDRESS", "REDIS_URL", "A2A_CONFIG", "A2A_GATEWAY_*"):
        assert name in text, name


def test_dev_help_gives_every_default(capsys: pytest.CaptureFixture[str]) -> None:
    text = " ".join(output_of(build_parser().parse_args, ["dev", "--help"], capsys).split())
    for default in (
        "binds (default 127.0.0.1)",
        "port (default 8000)",
        "gRPC port (default 7233)",
        "Web UI's port (default 8233)",
        "Redis's port (default 6390)",
        "default 9464)",
        "(default .a2a)",
    ):
        assert default in text, default


def test_worker_help_names_what_it_reads(capsys: pytest.CaptureFixture[str]) -> None:
    text = output_of(workers.cli.main, ["--help"], capsys)
    for name in (
        "TEMPORAL_ADDRESS",
        "TEMPORAL_API_KEY",
        "REDIS_URL",
        "A2A_REDIS_CLUSTER",
        "A2A_CONFIG",
        "ANTHROPIC_API_KEY",
        "A2A_WORKER_*",
    ):
        assert name in text, name


def test_temporal_passes_every_argument_to_the_bundled_temporal_cli() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "gateway", "temporal", "--version"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout.startswith("temporal version ")
