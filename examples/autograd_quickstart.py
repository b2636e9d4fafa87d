"""PyTorch's "Automatic Differentiation with torch.autograd" tutorial, run by polygrad.

The tutorial's code is unchanged but for its first line, ``import torch`` becoming
``import polygrad as torch``; it prints what the tutorial prints. Pick the backend:

    python examples/autograd_quickstart.py --backend numpy      # the default
    python examples/autograd_quickstart.py --backend torch --seed 0

Source: pytorch/tutorials beginner_source/basics/autogradqs_tutorial.py (seeds 001 and 004).
"""

import argparse

import polygrad as torch


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

x = torch.ones(5)  # input tensor
y = torch.zeros(3)  # expected output
w = torch.randn(5, 3, requires_grad=True)
b = torch.randn(3, requires_grad=True)
z = torch.matmul(x, w)+b
loss = torch.nn.functional.binary_cross_entropy_with_logits(z, y)

print(f"Gradient function for z = {z.grad_fn}")
print(f"Gradient function for loss = {loss.grad_fn}")

loss.backward()
print(w.grad)
print(b.grad)

z = torch.matmul(x, w)+b
print(z.requires_grad)

with torch.no_grad():
    z = torch.matmul(x, w)+b
print(z.requires_grad)

z = torch.matmul(x, w)+b
z_det = z.detach()
print(z_det.requires_grad)

inp = torch.eye(4, 5, requires_grad=True)
out = (inp+1).pow(2).t()
out.backward(torch.ones_like(out), retain_graph=True)
print(f"First call\n{inp.grad}")
out.backward(torch.ones_like(out), retain_graph=True)
print(f"\nSecond call\n{inp.grad}")
inp.grad.zero_()
out.backward(torch.ones_like(out), retain_graph=True)
print(f"\nCall after zeroing gradients\n{inp.grad}")

# -- the rendered page's variant (seed 004): a square eye(5), no transpose ---------------------

inp = torch.eye(5, requires_grad=True)
out = (inp+1).pow(2)
out.backward(torch.ones_like(inp), retain_graph=True)
print(f"First call\n{inp.grad}")
out.backward(torch.ones_like(inp), retain_graph=True)
print(f"\nSecond call\n{inp.grad}")
inp.grad.zero_()
out.backward(torch.ones_like(inp), retain_graph=True)
print(f"\nCall after zeroing gradients\n{inp.grad}")
