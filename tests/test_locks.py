"""Locked dependencies (docs/SECURITY.md section 6): every dependency pyproject.toml names, with its extras, is pinned
in requirements.lock to one version that fits its range, with hashes; `make install` installs only from the lock,
checking the hashes, and the web client installs with `npm ci` from its lock."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent


def locked() -> dict[str, tuple[str, int]]:
    """requirements.lock as {name: (version, number of hashes)}."""
    pins: dict[str, tuple[str, int]] = {}
    for entry in re.split(r"\n(?=[A-Za-z0-9])", (ROOT / "requirements.lock").read_text()):
        first = entry.split("\\", 1)[0].split(";", 1)[0].strip()
        if "==" not in first:
            continue
        name, version = first.split("==")
        pins[canonicalize_name(name)] = (version.strip(), entry.count("--hash=sha256:"))
    return pins


def test_the_lock_pins_every_named_dependency_with_hashes() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    named = [*project["dependencies"], *(d for extra in project["optional-dependencies"].values() for d in extra)]
    pins = locked()
    assert len(named) > 30 and len(pins) > len(named)
    for line in named:
        wanted = Requirement(line)
        name = canonicalize_name(wanted.name)
        assert name in pins, f"{wanted.name} is not in requirements.lock: run `make lock`"
        version, hashes = pins[name]
        assert wanted.specifier.contains(version, prereleases=True), f"{name}=={version} does not fit {line}"
        assert hashes >= 1, f"{name} has no hash in requirements.lock"
    assert "psycopg-binary" in pins  # an extra's own package (psycopg[binary]) is locked too
    assert all(hashes >= 1 for _, hashes in pins.values()), "every pin carries its hashes"


def test_make_installs_from_the_locks_only() -> None:
    makefile = (ROOT / "Makefile").read_text()
    install = re.findall(r"\$\(VENV\)/bin/pip install ([^\n]*)", makefile)
    assert "--quiet --require-hashes -r requirements.lock" in install
    # Tandem itself goes in without resolving anything again; nothing else goes into the environment unpinned
    # (pip-audit is `make audit`'s own tool, run by hand with the network; `make lock` uses a venv of its own).
    assert all("--require-hashes" in args or "--no-deps" in args or args.endswith("pip-audit") for args in install)
    assert "npm ci" in makefile and "npm install" not in makefile
    lock = json.loads((ROOT / "web" / "package-lock.json").read_text())
    package = json.loads((ROOT / "web" / "package.json").read_text())
    root = lock["packages"][""]
    for field in ("dependencies", "devDependencies"):
        assert root.get(field, {}) == package.get(field, {}), f"web/package-lock.json is stale ({field})"
    assert all(entry.get("integrity") for path, entry in lock["packages"].items() if path and not entry.get("link")), (
        "every npm package in the lock has its integrity hash"
    )
    assert (ROOT / ".ci" / "run").read_text().rstrip().endswith("make test")
