"""PyTorch's older "Autograd: automatic differentiation" blitz tutorial, run by polygrad.

The tutorial's code is unchanged but for ``import torch`` becoming ``import polygrad as
torch``; ``Variable`` is the legacy wrapper (today a tensor with requires_grad). It prints
what the tutorial prints (``x.grad`` is a matrix of 4.5):

    python examples/autograd_blitz.py --backend numpy
    python examples/autograd_blitz.py --backend torch

Source: pytorch/tutorials beginner_source/blitz/autograd_tutorial.py, 2017 (seed 003).
"""

import argparse

import polygrad as torch
from polygrad.autograd import Variable


def _options():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--backend", default=None, help="polygrad backend (numpy, torch, ...)")
    p.add_argument("--seed", type=int, default=None, help="seed the random tensors")
    args = p.parse_args()
    if args.backend:
        torch.set_default_backend(args.backend)
    if args.seed is not None:
        torch.manual_seed(args.seed)
    print(f"polygrad backend: {torch.get_default_backend()}")


_options()

# -- the tutorial ------------------------------------------------------------------------------

x = Variable(torch.ones(2, 2), requires_grad=True)
print(x)

y = x + 2
print(y)

print(y.grad_fn)

z = y * y * 3
out = z.mean()

print(z, out)

out.backward()

print(x.grad)

x = torch.randn(3)
x = Variable(x, requires_grad=True)

y = x * 2
while y.data.norm() < 1000:
    y = y * 2

print(y)

gradients = torch.FloatTensor([0.1, 1.0, 0.0001])
y.backward(gradients)

print(x.grad)
