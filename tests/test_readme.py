"""The README's Python examples run as written and print what their comments say."""

import os
import re
import subprocess
import sys

import pytest

README = os.path.join(os.path.dirname(__file__), os.pardir, "README.md")


def _python_blocks():
    with open(README, encoding="utf-8") as f:
        text = f.read()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    # the plugin sketch ("# my_backend.py") names a made-up array library: not runnable
    return [b for b in blocks if b.startswith(("import", "from"))]


def _printed_expectations(block):
    """``print(x)  # tensor(25., ...)``: the value a print must show (``...`` is a wildcard).

    Comments that read as prose ("softmax(x) along axis 1") are explanations, not values.
    """
    out = []
    for line in block.splitlines():
        m = re.match(r"\s*print\(.*\)\s*#\s*(.+)$", line)
        if m and re.match(r"tensor\(|True|False|\(|-?\d", m.group(1)):
            out.append(m.group(1).strip())
    return out


BLOCKS = _python_blocks()


def test_readme_has_runnable_examples():
    assert len(BLOCKS) >= 3, "the README's short example, backend choice and SciPy examples"
    assert sum(len(_printed_expectations(b)) for b in BLOCKS) >= 3


@pytest.mark.parametrize("block", BLOCKS, ids=[b.splitlines()[0] + f"#{i}"
                                               for i, b in enumerate(BLOCKS)])
def test_readme_example_runs(block):
    pytest.importorskip("torch")
    if "scipy" in block:
        pytest.importorskip("scipy")
    env = {k: v for k, v in os.environ.items() if not k.startswith("POLYGRAD_")}
    proc = subprocess.run([sys.executable, "-c", block], capture_output=True, text=True,
                          env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    printed = proc.stdout.splitlines()
    for expected in _printed_expectations(block):
        pattern = ".*".join(re.escape(part) for part in expected.split("..."))
        assert any(re.fullmatch(pattern, line.strip()) for line in printed), \
            f"no printed line matches {expected!r}:\n{proc.stdout}"
