"""PyTorch's "The Fundamentals of Autograd" tutorial, run by polygrad.

The tutorial's code is unchanged but for ``import torch`` becoming ``import polygrad as
torch``, and its notebook display: the two plots (sin(a) and a.grad) are saved as PNG files,
the loss's autograd graph is drawn with ``polygrad.viz.make_dot`` (SVG), the cell that the
tutorial shows failing (``torch.sin_`` on a leaf) prints its error, and values a notebook cell
would display are printed. Run it on any backend:

    python examples/autograd_fundamentals.py --backend numpy --outdir out
    python examples/autograd_fundamentals.py --backend torch --seed 0

Source: pytorch/tutorials beginner_source/introyt/autogradyt_tutorial.py (seeds 000, 002).
"""

import polygrad as torch

import argparse
import os
import tempfile

try:
    import matplotlib
except ImportError:           # not a polygrad dependency: the tutorial's plots need it
    raise SystemExit("this example draws the tutorial's plots with matplotlib: "
                     "pip install matplotlib (or, from the checkout, pip install '.[examples]')") from None

matplotlib.use("Agg")      # files, not windows: this runs in terminals and CI

from polygrad.viz import make_dot  # noqa: E402


def _options():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--backend", default=None, help="polygrad backend (numpy, torch, ...)")
    p.add_argument("--seed", type=int, default=None, help="seed the random tensors")
    p.add_argument("--outdir", default=None,
                   help="where the plots and the graph go (default: a new temporary folder)")
    args = p.parse_args()
    if args.backend:
        torch.set_default_backend(args.backend)
    if args.seed is not None:
        torch.manual_seed(args.seed)
    outdir = args.outdir or tempfile.mkdtemp(prefix="polygrad-fundamentals-")
    os.makedirs(outdir, exist_ok=True)
    print(f"polygrad backend: {torch.get_default_backend()}; pictures in {outdir}")
    return outdir


OUTDIR = _options()

# -- the tutorial ------------------------------------------------------------------------------

# %matplotlib inline

import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker as ticker  # noqa: E402,F401
import math  # noqa: E402

a = torch.linspace(0., 2. * math.pi, steps=25, requires_grad=True)
print(a)

b = torch.sin(a)
plt.plot(a.detach(), b.detach())
plt.savefig(os.path.join(OUTDIR, "sin.png"))      # display: saved instead of shown
plt.close()

print(b)

c = 2 * b
print(c)
d = c + 1
print(d)

out = d.sum()
print(out)

print('d:')
print(d.grad_fn)
print(d.grad_fn.next_functions)
print(d.grad_fn.next_functions[0][0].next_functions)
print(d.grad_fn.next_functions[0][0].next_functions[0][0].next_functions)
print(d.grad_fn.next_functions[0][0].next_functions[0][0].next_functions[0][0].next_functions)
print('\nc:')
print(c.grad_fn)
print('\nb:')
print(b.grad_fn)
print('\na:')
print(a.grad_fn)

out.backward()
print(a.grad)
plt.plot(a.detach(), a.grad.detach())
plt.savefig(os.path.join(OUTDIR, "sin_grad.png"))     # display: saved instead of shown
plt.close()

BATCH_SIZE = 16
DIM_IN = 1000
HIDDEN_SIZE = 100
DIM_OUT = 10


class TinyModel(torch.nn.Module):

    def __init__(self):
        super(TinyModel, self).__init__()

        self.layer1 = torch.nn.Linear(DIM_IN, HIDDEN_SIZE)
        self.relu = torch.nn.ReLU()
        self.layer2 = torch.nn.Linear(HIDDEN_SIZE, DIM_OUT)

    def forward(self, x):
        x = self.layer1(x)
        x = self.relu(x)
        x = self.layer2(x)
        return x


some_input = torch.randn(BATCH_SIZE, DIM_IN, requires_grad=False)
ideal_output = torch.randn(BATCH_SIZE, DIM_OUT, requires_grad=False)

model = TinyModel()

print(model.layer2.weight[0][0:10])  # just a small slice
print(model.layer2.weight.grad)

optimizer = torch.optim.SGD(model.parameters(), lr=0.001)

prediction = model(some_input)

loss = (ideal_output - prediction).pow(2).sum()
print(loss)
# the loss's graph, as torchviz draws it (polygrad's addition to the tutorial)
make_dot(loss, params=dict(model.named_parameters())).render(os.path.join(OUTDIR, "loss.svg"))

loss.backward()
print(model.layer2.weight[0][0:10])
print(model.layer2.weight.grad[0][0:10])

optimizer.step()
print(model.layer2.weight[0][0:10])
print(model.layer2.weight.grad[0][0:10])

print(model.layer2.weight.grad[0][0:10])

for i in range(0, 5):
    prediction = model(some_input)
    loss = (ideal_output - prediction).pow(2).sum()
    loss.backward()

print(model.layer2.weight.grad[0][0:10])

optimizer.zero_grad(set_to_none=False)

print(model.layer2.weight.grad[0][0:10])

a = torch.ones(2, 3, requires_grad=True)
print(a)

b1 = 2 * a
print(b1)

a.requires_grad = False
b2 = 2 * a
print(b2)

a = torch.ones(2, 3, requires_grad=True) * 2
b = torch.ones(2, 3, requires_grad=True) * 3

c1 = a + b
print(c1)

with torch.no_grad():
    c2 = a + b

print(c2)

c3 = a * b
print(c3)


def add_tensors1(x, y):
    return x + y


@torch.no_grad()
def add_tensors2(x, y):
    return x + y


a = torch.ones(2, 3, requires_grad=True) * 2
b = torch.ones(2, 3, requires_grad=True) * 3

c1 = add_tensors1(a, b)
print(c1)

c2 = add_tensors2(a, b)
print(c2)

x = torch.rand(5, requires_grad=True)
y = x.detach()

print(x)
print(y)

# The tutorial notes that this cell throws a runtime error; the error is printed here.
try:
    a = torch.linspace(0., 2. * math.pi, steps=25, requires_grad=True)
    torch.sin_(a)
except RuntimeError as err:
    print(f"RuntimeError: {err}")

device = torch.device('cpu')
run_on_gpu = False
if torch.cuda.is_available():
    device = torch.device('cuda')
    run_on_gpu = True

x = torch.randn(2, 3, requires_grad=True)
y = torch.rand(2, 3, requires_grad=True)
z = torch.ones(2, 3, requires_grad=True)

with torch.autograd.profiler.profile(use_cuda=run_on_gpu) as prf:
    for _ in range(1000):
        z = (z / x) * y

print(prf.key_averages().table(sort_by='self_cpu_time_total'))

x = torch.randn(3, requires_grad=True)

y = x * 2
while y.data.norm() < 1000:
    y = y * 2

print(y)

v = torch.tensor([0.1, 1.0, 0.0001], dtype=torch.float)  # stand-in for gradients
y.backward(v)

print(x.grad)


def exp_adder(x, y):
    return 2 * x.exp() + 3 * y


inputs = (torch.rand(1), torch.rand(1))  # arguments for the function
print(inputs)
print(torch.autograd.functional.jacobian(exp_adder, inputs))      # display: printed

inputs = (torch.rand(3), torch.rand(3))  # arguments for the function
print(inputs)
print(torch.autograd.functional.jacobian(exp_adder, inputs))      # display: printed


def do_some_doubling(x):
    y = x * 2
    while y.data.norm() < 1000:
        y = y * 2
    return y


inputs = torch.randn(3)
my_gradients = torch.tensor([0.1, 1.0, 0.0001])
print(torch.autograd.functional.vjp(do_some_doubling, inputs, v=my_gradients))   # display
