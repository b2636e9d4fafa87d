"""Layer 3, the graph: a Tensor's state (``tensor``), graph nodes and buffers (``node``),
running and recording primitives and the backward pass (``engine``), the checked entry
points of backward (``backward``), and constructors (``creation``).

It runs the rule table's rules and knows backends; it imports nothing from the layers
above (``polygrad.ops`` installs the Tensor's op methods, ``polygrad.autograd``, the
profiler and anomaly mode hook in through the engine's extension points).
"""
