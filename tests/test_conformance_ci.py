"""The whole conformance suite, run the way its users run it, as real subprocesses.

- the main job: ``python -m polygrad conformance`` on numpy and torch (the README's first
  command, here with the report written), every scenario id passing in float32 and float64;
- the exact command a third-party backend author puts in CI,
  ``pytest --pyargs polygrad_conformance --polygrad-backend=NAME``, on each installed
  backend: numpy, torch and the repository's two plugins (strict, dask).
"""

import importlib.util
import json
import os
import re
import subprocess
import sys
from importlib.metadata import entry_points

import pytest

from polygrad_conformance import SCENARIO_IDS
from polygrad_conformance.buffers import BUFFER_IDS

ENV = {k: v for k, v in os.environ.items() if not k.startswith("POLYGRAD_")}


def _installed(name):
    # the entry points themselves: conftest.py limits this process to the built-in plugins
    return name in {ep.name for ep in entry_points(group="polygrad")} and (
        name != "torch" or importlib.util.find_spec("torch") is not None)


def test_main_job_on_numpy_and_torch_passes_every_scenario(tmp_path):
    pytest.importorskip("torch")
    report = tmp_path / "report.json"
    proc = subprocess.run([sys.executable, "-m", "polygrad", "conformance", "--backend", "numpy",
                           "--backend", "torch", "--quiet", "--json", str(report)],
                          capture_output=True, text=True, env=ENV, timeout=900)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    data = json.loads(report.read_text())
    for backend in ("numpy", "torch"):
        counts = data["summary"][backend]["counts"]
        assert counts["fail"] == counts["error"] == 0 and counts["pass"] > 1000, counts
        for dtype in ("float32", "float64"):
            passed = {r["case"] for r in data["results"] if r["backend"] == backend
                      and r["dtype"] == dtype and r["outcome"] == "pass"}
            ids = {sid for sid, *_ in SCENARIO_IDS}
            assert len(ids) == 24 + len(BUFFER_IDS) and ids <= passed, sorted(ids - passed)


@pytest.mark.parametrize("backend", ["numpy", "torch", "strict", "dask"])
def test_third_party_ci_command(backend, tmp_path):
    if not _installed(backend):
        pytest.skip(f"backend {backend!r} is not installed here "
                    f"(pip install -e ./plugins/polygrad-{backend} for the plugins)")
    proc = subprocess.run([sys.executable, "-m", "pytest", "--pyargs", "polygrad_conformance",
                           f"--polygrad-backend={backend}", "-q", "-p", "no:cacheprovider"],
                          capture_output=True, text=True, env=ENV, timeout=900,
                          cwd=tmp_path)       # a third party's checkout, not this repository
    tail = proc.stdout[-3000:] + proc.stderr[-3000:]
    assert proc.returncode == 0, tail
    passed = int(re.search(r"(\d+) passed", proc.stdout).group(1))
    assert passed > 1000 and " failed" not in proc.stdout.splitlines()[-1], tail
