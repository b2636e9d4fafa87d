"""The official Array API test suite (data-apis/array-api-tests) against polygrad.ops.

The suite is not on PyPI and is never copied into this repository: array-api-tests/run.sh
runs a checkout of it (ARRAY_API_TESTS_DIR) with the xfails file of each backend. Here the
xfails files are checked for what the page promises (every remaining failure under a line
giving its reason), and, where a checkout is given, the suite itself runs (marked slow: a
few minutes per backend) and must pass with those xfails.
"""

import os
import re
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HERE = os.path.join(ROOT, "array-api-tests")
BACKENDS = ["numpy", "torch", "strict"]
COMMIT = "55fcc60179efa2680ddd6cd926ddf17b83530e2b"


def _blocks(path):
    """The xfails file as (reason, [test ids]) blocks, in order."""
    blocks, reason = [], None
    for line in open(path).read().splitlines():
        if not line.strip():
            reason = None
        elif line.startswith("#"):
            if reason is None or not blocks or blocks[-1][1]:
                blocks.append((line[1:].strip(), []))
            reason = line
        else:
            assert blocks and reason is not None, f"{path}: {line!r} has no reason above it"
            blocks[-1][1].append(line)
    return [b for b in blocks if b[1]]


@pytest.mark.parametrize("backend", BACKENDS)
def test_every_xfail_has_a_reason_and_names_a_test(backend):
    blocks = _blocks(os.path.join(HERE, f"xfails-{backend}.txt"))
    ids = [i for _, items in blocks for i in items]
    assert ids and len(ids) == len(set(ids))
    for reason, items in blocks:
        assert len(reason) > 30, reason
        for i in items:
            assert re.fullmatch(r"array_api_tests/test_\w+\.py::test_\w+(\[.*\])?", i), i


def test_the_page_names_the_suites_commit_and_the_command():
    page = open(os.path.join(ROOT, "docs", "array-api.md")).read()
    script = open(os.path.join(HERE, "run.sh")).read()
    assert COMMIT in page and COMMIT in script and "array-api-tests/run.sh" in page
    assert os.access(os.path.join(HERE, "run.sh"), os.X_OK)


@pytest.mark.slow
@pytest.mark.skipif(not os.environ.get("ARRAY_API_TESTS_DIR"),
                    reason="set ARRAY_API_TESTS_DIR to a checkout of data-apis/array-api-tests "
                           f"at {COMMIT[:10]} (see docs/array-api.md)")
@pytest.mark.parametrize("backend", BACKENDS)
def test_the_official_suite_passes_with_the_xfails(backend):
    env = dict(os.environ, PATH=os.path.dirname(sys.executable) + os.pathsep
               + os.environ.get("PATH", ""))
    env.pop("POLYGRAD_LOAD_PLUGINS", None)       # the strict plugin comes by its entry point
    proc = subprocess.run(["bash", os.path.join(HERE, "run.sh"), backend], env=env,
                          capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
