"""Fingerprint every output of a fixed set of bayes-wake commands, to show that a refactor
changes nothing a user sees.

    .venv/bin/python scripts/output_fingerprint.py CHECKOUT OUTDIR [--fast] [--only=a,b]
    .venv/bin/python scripts/output_fingerprint.py --compare A/manifest.json B/manifest.json

The first form runs the commands of :data:`FAST` (no MCMC: R's example with four standard-error
choices, ``demo --mwa-only``, ``sauter --mwa-only`` on the real ACLED data, ``sensitivity``)
and, without ``--fast``, :data:`SLOW` (fits, the full demo, recovery, sauter with fits) from
CHECKOUT's source tree, each into OUTDIR/<case>, and writes OUTDIR/manifest.json: per case the
exit status and a hash per file. The hash ignores what changes run to run by design
(timestamps, versions, paths, task timings and workers) and compares floats to 8 significant
digits (BLAS summation order moves the 15th). Known noise: ``sauter`` with fits gives R-hat
values that differ run to run by about 1e-4 (and the files that show them). The second form
lists the files whose hashes differ. Needs ../shared/data beside the repository; run MCMC
cases alone (``flock /tmp/bayes_wake_mcmc.lock``).
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

#: The real data beside the repository (../shared/data).
D = str(Path(__file__).resolve().parents[1].parent / "shared" / "data")
#: The data options of R's example call (README).
MWA = ["--data", f"{D}/mwa_example/mwa_data.csv", "--t-window", "2", "10", "2",
       "--spat-window", "2", "10", "2",
       "--treatment", "type=treatment", "--control", "type=control", "--dependent",
       "type=dependent", "--match", "match1,match2", "--weighted", "--tcm"]
SAUTER = ["--acled", f"{D}/acled_mali_2017_2020/2017-01-01-2020-12-31-Mali.csv",
          "--boundaries", f"{D}/ocha_cod_ab_mali_2015/mli_adm1.geojson",
          "--bases", f"{D}/geopko_minusma/minusma_bases_sauter2022_from_geopko.csv"]
#: Cases that run no MCMC (seconds each).
FAST = {
    "mwa_default": ["mwa", *MWA],
    "mwa_hc1_spill": ["mwa", *MWA, "--vcov", "HC1", "--spillover"],
    "mwa_cr2near_exact": ["mwa", *MWA, "--vcov", "CR2:near=5,60", "--convention", "exact",
                          "--formula", "diff"],
    "mwa_conley": ["mwa", *MWA, "--vcov", "conley:25"],
    "demo_mwa": ["demo", "--mwa-only", "--seed", "3"],
    "sauter_mwa": ["sauter", *SAUTER, "--mwa-only", "--no-event-map"],
    "sensitivity": ["sensitivity", *MWA, "--permutations", "40", "--date-shifts", "10",
                    "--bayes-checks", "none", "--seed", "2", "--workers", "1"],
}
#: Cases with Bayesian fits (run them alone: flock /tmp/bayes_wake_mcmc.lock).
SLOW = {
    "fit_smooth": ["fit", *MWA, "--vcov", "HC1", "--draws", "200", "--tune", "300",
                   "--chains", "2", "--seed", "5", "--allow-unconverged"],
    "fit_nb": ["fit", *MWA, "--spec", "nb_did", "--draws", "150", "--tune", "200",
               "--chains", "2", "--seed", "5", "--allow-unconverged"],
    "demo": ["demo", "--seed", "1", "--allow-unconverged"],
    "recovery": ["recovery", *MWA, "--scenario", "form=additive,size=0.5,name=half",
                 "--replicates", "2", "--methods", "ols,smooth_did", "--draws", "150",
                 "--tune", "200", "--chains", "2", "--seed", "4", "--scheduler", "inline"],
    "sauter_fit": ["sauter", *SAUTER, "--no-event-map", "--draws", "150", "--tune", "200",
                   "--chains", "2", "--allow-unconverged", "--t-window", "10", "30", "20",
                   "--spat-window", "3", "9", "6"],
}
#: Keys of JSON records that change run to run by design (whole key names). Key order is
#: not compared (JSON objects are unordered; ``sort_keys``).
VOLATILE = re.compile(r"^(created_utc|versions|seconds|wall_seconds|compile_seconds|"
                      r"sample_seconds|worker)$")
#: Files that record where and how long the work ran, nothing else.
VOLATILE_FILES = (".bayes-wake-output", "task_layout.csv")
_FLOAT = re.compile(r"-?\d+\.\d+(?:[eE][-+]?\d+)?|-?\d+[eE][-+]?\d+")
_PATH = re.compile(r"/[^\s\"'<]*/")


def _clean(obj):
    """A JSON record without its volatile keys, paths made neutral."""
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items() if not VOLATILE.search(k)}
    if isinstance(obj, list):
        return [_clean(v) for v in obj]
    if isinstance(obj, str):
        return _PATH.sub("<path>/", obj)
    return obj


def _round_text(text: str) -> str:
    """Every float in a text to 8 significant digits."""
    return _FLOAT.sub(lambda m: f"{float(m.group()):.8g}", text)


def _significant(values: np.ndarray) -> np.ndarray:
    """Floats rounded to 8 significant digits."""
    values = np.asarray(values, dtype=float)
    with np.errstate(all="ignore"):
        scale = 10.0 ** np.floor(np.log10(np.abs(np.where(values == 0, 1, values))))
        return np.where(np.isfinite(values), np.round(values / scale, 7) * scale, values)


def _sha(text: str | bytes) -> str:
    return hashlib.sha1(text.encode() if isinstance(text, str) else text).hexdigest()


def _netcdf_fingerprint(path: Path) -> str:
    """Variables (floats to 8 digits) and attributes (JSON ones cleaned) of a netCDF file."""
    import xarray as xr

    parts = []
    with xr.open_dataset(path) as ds:
        for name in sorted(ds.variables):
            values = ds[name].values
            data = (_significant(values).tobytes() if values.dtype.kind == "f"
                    else str(values.tolist()).encode() if values.dtype.kind == "O"
                    else values.tobytes())
            parts.append(name.encode() + str(ds[name].dims).encode() + data)
        attrs = {k: _json_or_text(v) for k, v in ds.attrs.items()}
    parts.append(json.dumps(_clean(attrs), sort_keys=True, default=str).encode())
    return _sha(b"".join(parts))


def _json_or_text(value):
    if isinstance(value, str) and value.startswith("{"):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


def _html_fingerprint(path: Path) -> str:
    """The report's text without timestamps, embedded images, paths and timings."""
    text = path.read_text(errors="replace")
    text = re.sub(r"\d{4}-\d\d-\d\d[ T]\d\d:\d\d(:\d\d)?(\.\d+)?(Z|[+-]\d\d:?\d\d| UTC)?",
                  "<ts>", text)
    text = re.sub(r"data:image/[a-z+]+;base64,[A-Za-z0-9+/=]+", "<img>", text)
    text = _PATH.sub("<path>/", text)
    text = re.sub(r"wall time [^<]*", "", text)
    text = re.sub(r'<table><thead><tr><th class="text">kind</th>.*?</table>', "", text,
                  flags=re.S)
    return _sha(_round_text(text))


def fingerprint(path: Path) -> str:
    """The hash of what a user sees in one output file."""
    if path.name in VOLATILE_FILES or path.suffix == ".log":
        return "volatile"
    if path.suffix == ".json":
        return _sha(json.dumps(_clean(json.loads(path.read_text())), sort_keys=True))
    if path.suffix == ".nc":
        return _netcdf_fingerprint(path)
    if path.suffix == ".html":
        return _html_fingerprint(path)
    if path.suffix in (".csv", ".txt"):
        return _sha(_round_text(path.read_text(errors="replace")))
    return _sha(path.read_bytes())


def run(checkout: Path, out: Path, cases: dict) -> dict:
    """Run each case's command from ``checkout``'s source tree into ``out/<case>``."""
    manifest = {}
    exe = Path(sys.executable).parent / "bayes-wake"
    env = dict(os.environ, PYTHONPATH=str(checkout.resolve()))
    for name, args in cases.items():
        target, started = out / name, time.time()
        done = subprocess.run([str(exe), *args, "--out", str(target), "--overwrite"], env=env,
                              capture_output=True, text=True, cwd=checkout)
        (out / f"{name}.stdout").write_text(done.stdout + "\n--stderr--\n" + done.stderr)
        files = sorted(f for f in target.rglob("*") if f.is_file()) if target.exists() else []
        manifest[name] = {"rc": done.returncode,
                          "files": {str(f.relative_to(target)): fingerprint(f) for f in files},
                          "secs": round(time.time() - started, 1)}
        print(name, done.returncode, len(files), manifest[name]["secs"], flush=True)
    return manifest


def compare(first: dict, second: dict) -> int:
    """Print every file whose hash differs between two manifests; the number of them."""
    differences = 0
    for case in sorted(set(first) & set(second)):
        a, b = first[case], second[case]
        if a["rc"] != b["rc"]:
            print(case, "exit status", a["rc"], b["rc"])
            differences += 1
        for name in sorted(set(a["files"]) | set(b["files"])):
            if a["files"].get(name) != b["files"].get(name):
                where = ("only in A" if name not in b["files"] else "only in B"
                         if name not in a["files"] else "DIFFERS")
                print(case, name, where + (" (png: check by eye)" if name.endswith(".png")
                                           else ""))
                differences += 1
    print("differences:", differences)
    return differences


def main(argv: list[str]) -> int:
    if argv[0] == "--compare":
        first, second = (json.loads(Path(x).read_text()) for x in argv[1:3])
        return int(bool(compare(first, second)))
    checkout, out = Path(argv[0]), Path(argv[1])
    out.mkdir(parents=True, exist_ok=True)
    cases = dict(FAST) if "--fast" in argv else {**FAST, **SLOW}
    only = [a.split("=", 1)[1].split(",") for a in argv if a.startswith("--only=")]
    if only:
        cases = {k: v for k, v in cases.items() if k in only[0]}
    path = out / "manifest.json"
    manifest = json.loads(path.read_text()) if path.exists() else {}
    manifest.update(run(checkout, out, cases))
    path.write_text(json.dumps(manifest, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
