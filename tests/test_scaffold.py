"""``python -m polygrad new-backend NAME`` writes a plugin package that installs and passes
the conformance kit as generated: installed (editable) into a fresh venv that sees this
test environment, then run through the CLI, the pytest plugin and its own test."""

import os
import subprocess
import sys
import sysconfig

import pytest

from polygrad.__main__ import main, scaffold_backend


def test_bad_and_taken_names_are_refused(tmp_path, capsys):
    assert main(["new-backend", "Bad-Name", "--dir", str(tmp_path / "a")]) == 2
    assert "lower case" in capsys.readouterr().err
    assert main(["new-backend", "numpy", "--dir", str(tmp_path / "b")]) == 2
    assert "taken" in capsys.readouterr().err
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "keep.txt").write_text("mine")
    assert main(["new-backend", "fresh", "--dir", str(tmp_path / "c")]) == 2
    assert "not empty" in capsys.readouterr().err
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_the_files_it_writes(tmp_path):
    root = scaffold_backend("my_np", str(tmp_path / "pkg"))
    names = sorted(os.path.relpath(os.path.join(d, f), root)
                   for d, _, fs in os.walk(root) for f in fs)
    assert names == ["README.md", "polygrad_my_np.py", "pyproject.toml",
                     os.path.join("tests", "test_conformance.py")]
    pyproject = (tmp_path / "pkg" / "pyproject.toml").read_text()
    assert 'name = "polygrad-my-np"' in pyproject
    assert 'dependencies = ["polygrad-xp"]' in pyproject
    assert '[project.entry-points.polygrad]\nmy_np = "polygrad_my_np"' in pyproject
    for rel in names:
        if rel.endswith(".py"):
            compile((tmp_path / "pkg" / rel).read_text(), rel, "exec")


@pytest.mark.slow
def test_the_generated_plugin_installs_and_conforms(tmp_path):
    name = "scaffolded"
    project = tmp_path / "polygrad-scaffolded"
    env = {k: v for k, v in os.environ.items() if not k.startswith("POLYGRAD_")}
    proc = subprocess.run([sys.executable, "-m", "polygrad", "new-backend", name],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert (project / f"polygrad_{name}.py").exists()

    venv = tmp_path / "venv"
    # pip itself comes from the system site-packages: no network, no ensurepip
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip",
                    str(venv)], check=True)
    python = str(venv / ("Scripts" if os.name == "nt" else "bin") / "python")
    # --system-site-packages reaches the base interpreter, not the environment running this
    # test (where polygrad, pip and setuptools are installed): chain it in.
    nested = subprocess.run([python, "-c",
                             "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                            check=True, capture_output=True, text=True).stdout.strip()
    with open(os.path.join(nested, "_polygrad_test_parent_env.pth"), "w") as f:
        f.write(f"import site; site.addsitedir({sysconfig.get_paths()['purelib']!r})\n")

    def sh(*argv, cwd=tmp_path):
        proc = subprocess.run([python, *argv], cwd=cwd, env=env, capture_output=True,
                              text=True, timeout=600)
        assert proc.returncode == 0, f"{argv} failed:\n{proc.stdout[-4000:]}\n{proc.stderr}"
        return proc.stdout

    sh("-m", "pip", "install", "--no-deps", "--no-build-isolation", "--quiet", "-e",
       str(project))
    assert f"{name} " in sh("-m", "polygrad", "plugins")
    # the whole kit through the CLI (about 20 s on numpy)
    sh("-m", "polygrad", "conformance", "--backend", name, "--quiet", "--json", "r.json")
    assert '"backend": "scaffolded"' in (tmp_path / "r.json").read_text()
    # the pytest plugin, a selection of it
    out = sh("-m", "pytest", "-p", "no:cacheprovider", "--pyargs", "polygrad_conformance",
             f"--polygrad-backend={name}", "-q", "-k", "QS-1 or op:sin")
    assert " passed" in out and "failed" not in out
    # the package's own test, as generated
    out = sh("-m", "pytest", "-p", "no:cacheprovider", "-q", "tests", cwd=project)
    assert "2 passed" in out
