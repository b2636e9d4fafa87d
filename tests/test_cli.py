"""``python -m polygrad``, run as users run it: real subprocesses, real pipes.

``--version``; ``plugins --json [PATH|-]``; a reader that closes the pipe early (``| head``)
ends the command quietly; a ``POLYGRAD_BACKEND`` that names no usable backend stops the
command before any work, naming the variable, with a did-you-mean.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

import polygrad


def _env(**extra):
    env = {k: v for k, v in os.environ.items() if k != "POLYGRAD_BACKEND"}
    env.setdefault("POLYGRAD_LOAD_PLUGINS", "numpy,torch,cupy")
    env.update(extra)
    return env


def polygrad_cli(*args, cwd=None, **env):
    return subprocess.run([sys.executable, "-m", "polygrad", *args], capture_output=True,
                          text=True, env=_env(**env), cwd=cwd, timeout=600)


def test_version():
    proc = polygrad_cli("--version")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == f"polygrad {polygrad.__version__}\n"


def test_plugins_json_to_stdout_and_to_a_file(tmp_path):
    plain = polygrad_cli("plugins", "--json")
    dash = polygrad_cli("plugins", "--json", "-")
    assert plain.returncode == dash.returncode == 0, dash.stderr
    rows = json.loads(dash.stdout)
    assert rows == json.loads(plain.stdout)
    assert any(r["name"] == "numpy" and r["status"] == "loaded" for r in rows)
    target = tmp_path / "plugins.json"
    to_file = polygrad_cli("plugins", "--json", str(target))
    assert to_file.returncode == 0 and to_file.stdout == ""
    assert json.loads(target.read_text()) == rows
    assert not (tmp_path / "-").exists()


@pytest.mark.parametrize("args", [("plugins", "--json"), ("plugins",), ("--help",),
                                  ("demo", "--backend", "numpy")])
def test_a_closed_pipe_ends_quietly(args):
    """The reader is gone before the first byte (as ``| head -0``): no traceback, and the
    exit status of a process that SIGPIPE stopped."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        proc = subprocess.run([sys.executable, "-m", "polygrad", *args], stdout=write_end,
                              stderr=subprocess.PIPE, text=True, env=_env(), timeout=600)
    finally:
        os.close(write_end)
    assert "Traceback" not in proc.stderr and "BrokenPipeError" not in proc.stderr, proc.stderr
    assert proc.stderr == ""
    # argparse's own help printer swallows a broken pipe and exits 0
    assert proc.returncode == (0 if args == ("--help",) else 141)


@pytest.mark.skipif(shutil.which("bash") is None or shutil.which("head") is None,
                    reason="needs bash and head")
def test_plugins_json_piped_into_head():
    cmd = f"set -o pipefail; '{sys.executable}' -m polygrad plugins --json | head -1"
    proc = subprocess.run(["bash", "-c", cmd], capture_output=True, text=True, env=_env(),
                          timeout=600)
    assert proc.stdout == "[\n"
    assert proc.stderr == "", proc.stderr
    assert proc.returncode in (0, 141)    # 141 when head closed the pipe before the end


@pytest.mark.parametrize("command", [("demo",), ("conformance", "--backend", "numpy")])
def test_a_misspelt_polygrad_backend_stops_before_any_work(command):
    proc = polygrad_cli(*command, POLYGRAD_BACKEND="nmupy")
    assert proc.returncode == 2
    assert proc.stdout == ""                              # nothing ran
    assert "Traceback" not in proc.stderr
    assert "POLYGRAD_BACKEND='nmupy'" in proc.stderr
    assert "Did you mean 'numpy'?" in proc.stderr
    assert "python -m polygrad plugins" in proc.stderr


def test_a_disabled_backend_is_named_as_disabled():
    proc = polygrad_cli("demo", POLYGRAD_BACKEND="torch", POLYGRAD_LOAD_PLUGINS="numpy")
    assert proc.returncode == 2 and proc.stdout == ""
    assert "POLYGRAD_BACKEND='torch'" in proc.stderr and "disabled" in proc.stderr
    assert "names no installed backend" not in proc.stderr


def test_a_name_far_from_every_backend_gets_no_guess():
    proc = polygrad_cli("demo", POLYGRAD_BACKEND="zzzzzz")
    assert proc.returncode == 2
    assert "names no installed backend" in proc.stderr and "Did you mean" not in proc.stderr


def test_plugins_still_lists_with_a_bad_polygrad_backend():
    """The listing is where one looks the right name up: it warns and lists."""
    proc = polygrad_cli("plugins", POLYGRAD_BACKEND="nmupy")
    assert proc.returncode == 0
    assert "warning" in proc.stderr and "POLYGRAD_BACKEND='nmupy'" in proc.stderr
    assert proc.stdout.splitlines()[0].split()[:2] == ["name", "distribution"]


def test_a_good_or_empty_polygrad_backend_runs():
    for value in ("numpy", ""):
        proc = polygrad_cli("demo", "--backend", "numpy", POLYGRAD_BACKEND=value)
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.startswith("   numpy: a.grad == 2cos(a)") and "ok" in proc.stdout


# -- conformance: a report to stdout with "-" -------------------------------------------------

CONFORMANCE_SMALL = ("conformance", "--backend", "numpy", "--case", "YT-1", "--dtype", "float64")


@pytest.mark.parametrize("option, starts", [("--json", "{"), ("--markdown", "# polygrad "),
                                            ("--html", "<!DOCTYPE html>")])
def test_conformance_report_to_stdout_and_nothing_else(option, starts, tmp_path):
    proc = polygrad_cli(*CONFORMANCE_SMALL, option, "-", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(starts), proc.stdout[:300]
    assert list(tmp_path.iterdir()) == []                 # no file named "-"
    # the summary went to stderr, the matrix nowhere: stdout is the report alone
    assert "<Report ok; numpy:" in proc.stderr
    if option == "--json":
        data = json.loads(proc.stdout)
        assert {r["case"] for r in data["results"]} == {"YT-1"} and data["ok"]
    elif option == "--markdown":
        assert proc.stdout.count("# polygrad conformance report") == 1
    else:
        assert proc.stdout.rstrip().endswith("</html>")


def test_conformance_report_to_stdout_with_the_others_in_files(tmp_path):
    proc = polygrad_cli(*CONFORMANCE_SMALL, "--json", "-", "--markdown", str(tmp_path / "r.md"),
                        "--html", str(tmp_path / "r.html"))
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert (tmp_path / "r.md").read_text().startswith("# polygrad conformance report")
    assert data["results"] and (tmp_path / "r.html").exists()


@pytest.mark.parametrize("args, message", [
    (("--json", "-", "--html", "-"), "--json and --html both ask for stdout"),
    (("--readme", "-"), "--readme edits a file in place"),
])
def test_conformance_stdout_misuse_is_a_usage_error(args, message, tmp_path):
    proc = polygrad_cli(*CONFORMANCE_SMALL, *args, cwd=tmp_path)
    assert proc.returncode == 2 and proc.stdout == ""
    assert message in proc.stderr and "Traceback" not in proc.stderr
    assert list(tmp_path.iterdir()) == []


def test_conformance_json_to_stdout_survives_a_closed_pipe():
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        proc = subprocess.run([sys.executable, "-m", "polygrad", *CONFORMANCE_SMALL,
                               "--json", "-"], stdout=write_end, stderr=subprocess.PIPE,
                              text=True, env=_env(), timeout=600)
    finally:
        os.close(write_end)
    assert "Traceback" not in proc.stderr and proc.returncode == 141, proc.stderr
