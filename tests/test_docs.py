"""The commands the README and the walkthrough show run as written."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]


def test_every_benchmark_command_runs_with_the_venvs_python():
    """`cd benchmarks && python run.py calibration` used the system Python, which has no
    bayes_wake; every documented run.py command names the venv's Python."""
    bare = []
    for path in DOCS:
        for line in path.read_text().splitlines():
            for found in re.finditer(r"(\S+) (?:benchmarks/)?run\.py \w+", line):
                if found.group(1) in ("python", "python3"):
                    bare.append(f"{path.name}: {found.group(0)}")
    assert not bare, bare


def test_the_walkthroughs_seed_loop_prints_one_line_per_outcome(shared_data, tmp_path):
    """The loop grepped stdout, but the console text is on stderr: it printed ~234 lines
    and exited 1. Run as written (one seed) from a folder holding the venv and the data."""
    text = (REPO / "docs" / "walkthrough_sauter.md").read_text()
    loop = re.search(r"```bash\n(D=\.\./shared/data\nfor seed in .*?\ndone)\n```", text,
                     re.S).group(1)
    acled = shared_data / "acled_mali_2017_2020" / "2017-01-01-2020-12-31-Mali.csv"
    if not acled.is_file():
        pytest.skip(f"no ACLED data at {acled}")
    work = tmp_path / "repo"
    (work / ".venv" / "bin").mkdir(parents=True)
    (work / ".venv" / "bin" / "bayes-wake").write_text(
        f"#!/bin/sh\nPYTHONPATH={REPO} exec {_python()} -m bayes_wake.cli \"$@\"\n")
    (work / ".venv" / "bin" / "bayes-wake").chmod(0o755)
    (tmp_path / "shared").symlink_to(shared_data.parent)
    one_seed = loop.replace("$(seq 0 19)", "0")
    done = subprocess.run(["bash", "-c", one_seed], cwd=work, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.splitlines()
    assert len(lines) == 3 and all(re.search(r"\d+ of 30 windows with p <= 0\.05 \(OLS\)$",
                                             line) for line in lines), lines


def _python() -> str:
    import sys

    return sys.executable
