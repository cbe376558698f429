"""Every ``--help`` text is true and can be acted on by someone who installed driftline.

A pip-installed driftline has its packages (``streams/``, ``detectors/``) and their
package data, nothing else of the source repository: a help text may only point at
a repository file (``deploy/…``, ``docs/…``) while saying that it lives in the source
repository. Found on 22847b1: ``replay --help`` said label joining "is not implemented
yet" two lines before describing --labels as joined; the top-level help sent readers
to ``deploy/driftline.yaml`` and ``docs/events.md``.
"""

from __future__ import annotations

import argparse
import fnmatch
import re
import tomllib
from collections.abc import Iterator
from pathlib import Path

from detectors.errors import ConfigurationError
from streams.errors import SettingsError
from streams.settings import load_settings
from streams.ui.cli import build_parser

ROOT = Path(__file__).resolve().parents[3]
PACKAGES = {"streams", "detectors"}
PATH_LIKE = re.compile(r"(?<![\w/.$-])((?:[A-Za-z_][\w.-]*/)+[\w.*-]*)")
ENV_VAR = re.compile(r"\bDRIFTLINE_[A-Z_]+(?:/[A-Z_]+)*")


def every_parser(parser: argparse.ArgumentParser,
                 path: tuple[str, ...] = ()) -> Iterator[tuple[str, argparse.ArgumentParser]]:
    yield " ".join(("driftline", *path)), parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                yield from every_parser(child, (*path, name))


def help_texts() -> dict[str, str]:
    texts = {name: parser.format_help() for name, parser in every_parser(build_parser())}
    assert {"driftline", "driftline replay", "driftline reference build",
            "driftline bench quality"} <= set(texts)
    return texts


def sentences(text: str) -> list[str]:
    return re.split(r"(?<=[.;])\s+", " ".join(text.split()))


def shipped(relative: str) -> bool:
    """Whether a path inside a package ships in the wheel (Python file or package data)."""
    package_data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"][
        "package-data"]
    target = ROOT / relative.rstrip("/")
    files = [f for f in target.rglob("*") if f.is_file()] if target.is_dir() else [target]
    if not target.exists() or not files:
        return False
    for file in files:
        owner = file.parent
        while not (owner / "__init__.py").is_file():
            owner = owner.parent
        package = ".".join(owner.relative_to(ROOT).parts)
        inside = file.relative_to(owner).as_posix()
        if file.suffix != ".py" and not any(fnmatch.fnmatch(inside, pattern)
                                            for pattern in package_data.get(package, [])):
            return False
    return True


def test_no_help_text_says_a_feature_is_missing() -> None:
    for name, text in help_texts().items():
        lowered = " ".join(text.lower().split())
        for phrase in ("not implemented", "not yet implemented", "todo", "coming soon"):
            assert phrase not in lowered, f"`{name} --help` says {phrase!r}:\n{text}"


def test_help_points_only_at_files_a_pip_install_has() -> None:
    repository_only = {entry.name for entry in ROOT.iterdir()} - PACKAGES
    checked = 0
    for name, text in help_texts().items():
        for sentence in sentences(text):
            for match in PATH_LIKE.findall(sentence):
                reference = match.rstrip(".,;:")
                first = reference.split("/")[0]
                if first in PACKAGES:
                    checked += 1
                    assert shipped(reference), f"`{name} --help` names {reference}, which " \
                        "does not ship in the package"
                elif first in repository_only:
                    checked += 1
                    assert "source repository" in sentence, (
                        f"`{name} --help` names {reference} without saying it is in the "
                        f"source repository: {sentence!r}")
    # The top-level help names the shipped JSON Schemas and the repository's YAML reference.
    assert checked >= 2


def test_every_environment_variable_a_help_text_names_is_read() -> None:
    defaults = load_settings(environ={})
    named: set[str] = set()
    for text in help_texts().values():
        for match in ENV_VAR.findall(text):
            first, *alternatives = match.split("/")
            stem = first.rsplit("_", 1)[0]
            named |= {first, *(f"{stem}_{alternative}" for alternative in alternatives)}
    assert {"DRIFTLINE_CONFIG", "DRIFTLINE_BOOTSTRAP_SERVERS", "DRIFTLINE_WEB_PORT"} <= named
    for variable in sorted(named - {"DRIFTLINE_CONFIG"}):
        changed = False
        for value in ("7", "1234", "true", "other.example:1", "0.5", "json"):
            try:
                changed = load_settings(environ={variable: value}) != defaults
            except (SettingsError, ConfigurationError):
                continue
            if changed:
                break
        assert changed, f"{variable} is named in a --help text but changes no setting"
