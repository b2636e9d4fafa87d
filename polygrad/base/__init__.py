"""Layer 0, the basics: dtype names, device names, error types and grad mode.

Nothing here imports an array library or any other part of polygrad; every other layer
may import from here. (Layers, bottom up: base, plugins, primitives, graph, ops, then
autograd/nn/optim/profiler/viz, then the CLI. Imports only point down.)
"""
