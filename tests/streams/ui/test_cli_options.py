"""Global options work before and after the command; ``driftline --version``."""

from __future__ import annotations

import argparse
import subprocess
import sys
from collections.abc import Iterator
from importlib.metadata import version
from pathlib import Path

import pytest

from streams.ui.cli import build_parser, main


def leaf_parsers(parser: argparse.ArgumentParser,
                 path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...],
                                                             argparse.ArgumentParser]]:
    """Every runnable command's parser, with the words that reach it."""
    groups = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not groups:
        yield path, parser
    for group in groups:
        for name, child in group.choices.items():
            yield from leaf_parsers(child, (*path, name))


def test_config_after_the_command_is_read(tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    # The command, `driftline worker --config FILE`, failed in argparse with
    # "unrecognized arguments: --config". A replay shows the file was read: its smaller
    # reference and windows close windows the defaults (5,000 + 2,000 events) would not.
    assert main(["simulate", "--scenario", "stationary", "--events", "3000",
                 "--out", str(tmp_path)]) == 0
    config = tmp_path / "small.yaml"
    config.write_text("monitor:\n  reference_size: 1000\n  window_size: 500\n")
    args = ["replay", "--predictions", str(tmp_path / "predictions.jsonl"),
            "--out", str(tmp_path / "alerts.jsonl"), "--quiet"]
    capsys.readouterr()
    assert main(args) == 0
    assert " 0 windows" in capsys.readouterr().err
    assert main([*args, "--config", str(config), "--log-level", "WARNING"]) == 0
    assert " 4 windows" in capsys.readouterr().err


def test_an_option_not_repeated_after_the_command_keeps_its_value_from_before() -> None:
    parser = build_parser()
    assert parser.parse_args(["--config", "a.yaml", "worker"]).config == Path("a.yaml")
    assert parser.parse_args(["worker", "--config", "b.yaml"]).config == Path("b.yaml")
    args = parser.parse_args(["--config", "a.yaml", "worker", "--log-level", "DEBUG"])
    assert (args.config, args.log_level) == (Path("a.yaml"), "DEBUG")
    args = parser.parse_args(["--log-level", "ERROR", "status"])
    assert (args.config, args.log_level) == (None, "ERROR")
    args = parser.parse_args(["bench", "quality", "--config", "c.yaml", "--part", "concept"])
    assert args.config == Path("c.yaml")
    args = parser.parse_args(["reference", "build", "t.csv", "--model", "m", "--out", "r.json",
                              "--config", "d.yaml"])
    assert args.config == Path("d.yaml")


def test_every_command_lists_the_global_options_in_its_help() -> None:
    leaves = dict(leaf_parsers(build_parser()))
    assert ("worker",) in leaves and ("bench", "throughput") in leaves
    assert ("reference", "build") in leaves
    for path, parser in leaves.items():
        text = parser.format_help()
        assert "--config CONFIG" in text and "--log-level" in text, path


def test_version_is_the_installed_package_version() -> None:
    done = subprocess.run([sys.executable, "-m", "streams.ui.cli", "--version"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"driftline {version('driftline')}\n"


def test_simulate_needs_only_a_scenario_and_an_output_directory(tmp_path: Path) -> None:
    # `driftline simulate --scenario mean_shift` was refused for want of --events.
    args = build_parser().parse_args(["simulate", "--scenario", "mean_shift",
                                      "--out", str(tmp_path)])
    assert args.events == 100_000
    with pytest.raises(SystemExit):
        build_parser().parse_args(["simulate", "--scenario", "mean_shift", "--events", "0",
                                   "--out", str(tmp_path)])
