"""Type checkers see polygrad: ``py.typed``, and stubs generated from the op registry
(``scripts/stubgen.py``) for Tensor's methods and the top-level names, which polygrad
installs at import time. A sample user program type-checks with 0 errors under pyright and
mypy, and the committed stubs are what the generator writes today (a new row or method
cannot be forgotten)."""

import ast
import json
import os
import shutil
import subprocess
import sys

import pytest

import polygrad

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV = {k: v for k, v in os.environ.items() if not k.startswith("POLYGRAD_")}

SAMPLE = '''\
import math

import polygrad as torch
from polygrad import Tensor, nn, optim

a = torch.linspace(0.0, 2.0 * math.pi, steps=25, requires_grad=True)
b = torch.sin(a)
c: Tensor = (2 * b + 1).sum()
d: Tensor = a.sin() * 2 - a.cos() / 3 + a ** 2
e: Tensor = d.sum(dim=0) + d.mean() + torch.exp(d).sum(0, keepdim=True)
c.backward()
g = a.grad
if g is not None:
    h: Tensor = g.abs().max()
    print(float(h.item()))
x = torch.randn(3, 4, dtype=torch.float32)
y: Tensor = x.reshape(4, 3).T @ x.t()
shape: tuple[int, ...] = y.shape
n: int = y.ndim
ok: bool = torch.allclose(y, y)
x.requires_grad = True
with torch.no_grad():
    z = x.exp().log_softmax(dim=1)
model = nn.Linear(4, 2)
opt = optim.SGD(model.parameters(), lr=0.1)
loss = model(x).pow(2).mean()
loss.backward()
opt.step()
print(z, shape, n, ok, e)
'''

REVEAL = '''\
import polygrad as torch
x = torch.randn(3)
reveal_type(x.sin())
reveal_type(x * 2)
reveal_type(torch.sin(x))
reveal_type(x.sum(dim=0))
reveal_type(x.grad)
x.no_such_method()
'''


def test_py_typed_is_there_and_shipped():
    assert os.path.isfile(os.path.join(ROOT, "polygrad", "py.typed"))
    with open(os.path.join(ROOT, "pyproject.toml")) as f:
        text = f.read()
    assert '"py.typed"' in text and '"*.pyi"' in text


def test_the_committed_stubs_are_what_the_generator_writes():
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "stubgen.py"),
                           "--check"], env=ENV, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr + "\n(run: python scripts/stubgen.py)"


def _stub_methods():
    with open(os.path.join(ROOT, "polygrad", "graph", "tensor.pyi")) as f:
        tree = ast.parse(f.read())
    cls = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "Tensor")
    return {n.name: n for n in cls.body if isinstance(n, ast.FunctionDef)}


def test_every_tensor_member_is_in_the_stub():
    stub = _stub_methods()
    missing = [n for n in dir(polygrad.Tensor) if n.isidentifier() and not n.startswith("_")
               and n not in stub]
    assert not missing, f"members missing from the stub: {missing}"


@pytest.mark.filterwarnings("ignore::RuntimeWarning")   # arcsin(1.3) and the like: nan is fine
def test_the_stub_says_tensor_only_where_a_tensor_comes_back():
    """Every no-argument method the stub says returns a Tensor does, on a float tensor."""
    checked = 0
    for name, node in _stub_methods().items():
        args = node.args
        required = len(args.args) - 1 - len(args.defaults)
        if (ast.unparse(node.returns) != "Tensor" or required or args.kwonlyargs
                or any(isinstance(d, ast.Name) and d.id == "property" for d in
                       node.decorator_list) or name.endswith("_") or name.startswith("__")):
            continue
        x = polygrad.rand(3, 2, dtype=polygrad.float64) + 0.5
        try:
            out = getattr(x, name)()
        except Exception:       # a method that needs arguments after all, or other dtypes
            continue
        assert isinstance(out, polygrad.Tensor), (name, type(out))
        checked += 1
    assert checked > 60


def _sample_dir(tmp_path):
    (tmp_path / "sample.py").write_text(SAMPLE)
    (tmp_path / "reveal.py").write_text(REVEAL)
    # the checkout, as an installed package would be seen (editable installs hide it)
    (tmp_path / "pyrightconfig.json").write_text(json.dumps(
        {"extraPaths": [ROOT], "typeCheckingMode": "standard"}))
    return tmp_path


def _tool(name):
    exe = os.path.join(os.path.dirname(sys.executable), name)
    return exe if os.path.exists(exe) else shutil.which(name)


def test_pyright_sees_tensor_methods(tmp_path):
    pyright = _tool("pyright")
    if pyright is None:
        pytest.skip("pyright is not installed (pip install pyright)")
    d = _sample_dir(tmp_path)
    proc = subprocess.run([pyright, "sample.py"], cwd=d, env=ENV, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0 and "0 errors" in proc.stdout, proc.stdout + proc.stderr
    out = subprocess.run([pyright, "reveal.py"], cwd=d, env=ENV, capture_output=True,
                         text=True, timeout=300).stdout
    for expr in ("x.sin()", "x * 2", "torch.sin(x)", "x.sum(dim=0)"):
        assert f'Type of "{expr}" is "Tensor"' in out, out
    assert 'Type of "x.grad" is "Tensor | None"' in out, out
    assert '"no_such_method" for class "Tensor"' in out and "1 error" in out, out


@pytest.mark.slow      # about a minute: mypy reads numpy's stubs too, without a cache
def test_mypy_sees_tensor_methods(tmp_path):
    pytest.importorskip("mypy", reason="mypy is not installed (pip install mypy)")
    d = _sample_dir(tmp_path)
    # errors inside polygrad's own (unannotated) modules are not the user's: silent, as
    # mypy treats an installed package
    argv = [sys.executable, "-m", "mypy", "--follow-imports=silent", "--cache-dir",
            str(tmp_path / "cache"), "sample.py", "reveal.py"]
    proc = subprocess.run(argv, cwd=d, env=dict(ENV, MYPYPATH=ROOT), capture_output=True,
                          text=True, timeout=600)
    out = proc.stdout
    errors = [line for line in out.splitlines() if ": error:" in line]
    # the one error is reveal.py's deliberate one: sample.py has none
    assert len(errors) == 1 and errors[0].startswith("reveal.py:8:"), out + proc.stderr
    assert '"Tensor" has no attribute "no_such_method"' in errors[0]
    assert out.count('Revealed type is "polygrad.graph.tensor.Tensor"') == 4, out
    assert 'Revealed type is "polygrad.graph.tensor.Tensor | None"' in out, out
