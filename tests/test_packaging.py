"""Package hygiene (issue 15, item 6): licence, changelog, typing marker, one version
source, classifiers, and a runnable numpydoc example on every public function and class."""

from __future__ import annotations

import inspect
import re
import tomllib
from pathlib import Path

import pytest

import pophealth as ph

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "src" / "pophealth"
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]


def test_licence_file_matches_the_declared_licence():
    text = (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert text.startswith("MIT License\n")
    assert "Permission is hereby granted, free of charge" in text
    assert PROJECT["license"] == {"text": "MIT"}
    assert "License :: OSI Approved :: MIT License" in PROJECT["classifiers"]


def test_changelog_has_a_section_for_the_current_version():
    text = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    assert f"## [{PROJECT['version']}]" in text
    assert "## [Unreleased]" in text


def test_package_is_marked_typed():
    assert (PKG / "py.typed").is_file()
    assert "Typing :: Typed" in PROJECT["classifiers"]


def test_classifiers_name_the_supported_python():
    minimum = re.fullmatch(r">=(\d+\.\d+)", PROJECT["requires-python"]).group(1)
    assert f"Programming Language :: Python :: {minimum}" in PROJECT["classifiers"]


def test_the_version_has_one_source():
    """No module writes a version literal (the ``0+unknown`` fallback of an uninstalled
    tree is not a version); the only one is pyproject's ``version``."""
    literal = re.compile(r"""__version__\s*(:\s*str\s*)?=\s*["'](\d+\.\d+[^"']*)["']""")
    found = [(p.relative_to(PKG).as_posix(), m.group(2)) for p in PKG.rglob("*.py")
             for m in literal.finditer(p.read_text(encoding="utf-8"))]
    assert found == []
    assert PROJECT["version"] not in (PKG / "_version.py").read_text(encoding="utf-8")


PUBLIC = [n for n in ph.__all__
          if inspect.isfunction(getattr(ph, n)) or inspect.isclass(getattr(ph, n))]


def test_the_public_surface_is_large_enough_to_check():
    assert len(PUBLIC) >= 70


@pytest.mark.parametrize("name", PUBLIC)
def test_every_public_function_and_class_has_a_runnable_example(name):
    doc = inspect.getdoc(getattr(ph, name)) or ""
    assert "\nExamples\n--------\n" in doc, name
    section = doc.split("\nExamples\n--------\n", 1)[1]
    assert ">>> " in section, name
