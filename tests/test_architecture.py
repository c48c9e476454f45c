"""The layout keeps its promises: every module is listed under its stage in
docs/ARCHITECTURE.md, no module imports a later stage, private names stay inside their
subpackage, and the wheel ships the model specs."""

from __future__ import annotations

import ast
import glob
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "bayes_wake"


def _stages() -> dict[str, int]:
    """Module dotted name -> stage number, from the table of docs/ARCHITECTURE.md."""
    out = {}
    for line in (REPO / "docs" / "ARCHITECTURE.md").read_text().splitlines():
        row = re.match(r"\| (\d+) \| `bayes_wake/([a-z_/]*)` \| ([a-z_, ]+) \|", line)
        if row:
            where = row[2].strip("/").replace("/", ".")
            for name in row[3].split(","):
                out[".".join(p for p in ("bayes_wake", where, name.strip()) if p)] = int(row[1])
    return out


def _modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        if path.name in ("__init__.py", "__main__.py"):
            continue
        out[".".join(path.relative_to(REPO).with_suffix("").parts)] = path
    return out


def _imports(path: Path):
    """(imported module, imported names) of every import in the file, lazy ones included."""
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith(
                "bayes_wake"):
            yield node.module, [a.name for a in node.names]
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("bayes_wake"):
                    yield alias.name, []


def _stage_of(module: str, stages: dict[str, int]) -> int | None:
    """The stage of a module, or of a subpackage (its lowest module's stage)."""
    if module in stages:
        return stages[module]
    inside = [s for m, s in stages.items() if m.startswith(module + ".")]
    return min(inside) if inside else None


def _subpackage(module: str) -> str:
    parts = module.split(".")
    return ".".join(parts[:-1]) if len(parts) > 2 else module


def test_every_module_is_listed_under_its_stage():
    stages, modules = _stages(), _modules()
    assert len(stages) > 20, "the stage table of docs/ARCHITECTURE.md was not found"
    assert sorted(set(modules) - set(stages)) == [], "modules missing from ARCHITECTURE.md"
    assert sorted(set(stages) - set(modules)) == [], "ARCHITECTURE.md lists missing modules"


def test_no_module_imports_a_later_stage_or_another_subpackages_private_names():
    stages, modules = _stages(), _modules()
    upward, private = [], []
    for name, path in modules.items():
        for target, names in _imports(path):
            if target == "bayes_wake" or target.startswith("bayes_wake.models"):
                continue
            stage = _stage_of(target, stages)
            if stage is None:  # from bayes_wake.x import module
                stage = min(_stage_of(f"{target}.{n}", stages) or 99 for n in names)
            if stage > stages[name]:
                upward.append(f"{name} (stage {stages[name]}) imports {target} ({stage})")
            hidden = [n for n in names if n.startswith("_")]
            if hidden and _subpackage(target) != _subpackage(name):
                private.append(f"{name} imports {hidden} from {target}")
    assert upward == []
    assert private == []


def test_the_wheel_ships_every_module_and_the_model_specs(tmp_path):
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", str(REPO),
                           "-w", str(tmp_path / "wheel")], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    wheel = glob.glob(str(tmp_path / "wheel" / "*.whl"))[0]
    names = set(zipfile.ZipFile(wheel).namelist())
    for path in PACKAGE.rglob("*.py"):
        assert path.relative_to(REPO).as_posix() in names
    specs = {p.name for p in (REPO / "models").glob("*.yaml")}
    assert {"adaptive_did.yaml", "smooth_did.yaml", "unpooled_did.yaml"} <= specs
    assert {f"bayes_wake/models/{s}" for s in specs} <= names
    zipfile.ZipFile(wheel).extractall(tmp_path / "site")
    code = ("from bayes_wake.bayes.spec import default_spec_path, load_spec; "
            "print(default_spec_path()); load_spec(default_spec_path())")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(tmp_path / "site")})
    assert run.returncode == 0, run.stderr
    assert Path(run.stdout.strip()).resolve().is_relative_to((tmp_path / "site").resolve())


@pytest.mark.parametrize("module", ["bayes_wake.cli", "bayes_wake.checks.sensitivity"])
def test_importing_a_stage_does_not_load_pymc(module):
    code = f"import sys, {module}; print('pymc' in sys.modules)"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "False"
