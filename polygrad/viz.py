"""``polygrad.viz``: draw a tensor's backward graph, as torchviz's ``make_dot`` does.

``make_dot(loss)`` walks ``grad_fn.next_functions`` from the loss down to the leaves and
returns a ``Graph``: ``.source`` is DOT text; ``.render(path)`` writes SVG or PNG with the
Graphviz ``dot`` program when it is installed, and otherwise lays the DAG out in layers and
draws it with matplotlib, so pictures work everywhere. Function nodes are labelled with their
grad_fn names (``MulBackward0``); leaves with their name from ``params`` and their shape.
This module only reads the graph; it never runs ops.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile

from .graph.node import AccumulateGrad, Unsaved
from .graph.tensor import Tensor

__all__ = ["make_dot", "Graph"]

_COLORS = {"leaf": "lightblue", "output": "darkolivegreen1", "saved": "orange", "op": "lightgrey"}


class Graph:
    """Nodes ``{id: (label, kind)}`` and edges ``[(src, dst)]`` with DOT text and rendering."""

    def __init__(self, nodes, edges):
        self.nodes, self.edges = nodes, edges

    @property
    def source(self):
        """The graph in Graphviz's DOT language."""
        lines = ["digraph {", '\tgraph [size="12,12"]',
                 "\tnode [align=left fontname=monospace fontsize=10 height=0.2 ranksep=0.1 "
                 "shape=box style=filled]"]
        for nid, (label, kind) in self.nodes.items():
            text = label.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
            lines.append(f'\t{nid} [label="{text}" fillcolor={_COLORS[kind]}]')
        for src, dst in self.edges:
            style = " [style=dashed]" if self.nodes[src][1] == "saved" else ""
            lines.append(f"\t{src} -> {dst}{style}")
        lines.append("}")
        return "\n".join(lines) + "\n"

    def render(self, path, format=None):
        """Write the picture to ``path`` (SVG or PNG, from ``format`` or the suffix); returns it.

        >>> import polygrad, tempfile, os
        >>> a = polygrad.ones(2, requires_grad=True)
        >>> g = make_dot((a.sin() * 2).sum(), params={"a": a})
        >>> g.render(os.path.join(tempfile.mkdtemp(), "graph.svg")).endswith(".svg")
        True
        """
        path = os.fspath(path)
        root, ext = os.path.splitext(path)
        if format is None:
            format = ext[1:].lower() or "svg"
        if format not in ("svg", "png"):
            raise ValueError(f"render(format={format!r}): use 'svg' or 'png'")
        if ext.lower() != "." + format:
            path = f"{path}.{format}"
        dot = shutil.which("dot")
        if dot is not None:
            subprocess.run([dot, f"-T{format}", "-o", path], input=self.source.encode(),
                           check=True, capture_output=True)
        else:
            self._draw(path, format)
        return path

    def _repr_svg_(self):
        with tempfile.TemporaryDirectory() as d:
            with open(self.render(os.path.join(d, "graph.svg"))) as f:
                return f.read()

    def _layers(self):
        """Each node's layer: the longest path from a root (the output at the top)."""
        children = {n: [] for n in self.nodes}
        indeg = {n: 0 for n in self.nodes}
        for src, dst in self.edges:
            children[dst].append(src)          # drawn top-down: consumers above inputs
            indeg[src] += 1
        layer = {n: 0 for n in self.nodes}
        ready = [n for n in self.nodes if indeg[n] == 0]
        while ready:
            n = ready.pop()
            for c in children[n]:
                layer[c] = max(layer[c], layer[n] + 1)
                indeg[c] -= 1
                if indeg[c] == 0:
                    ready.append(c)
        return layer

    def _draw(self, path, format):
        # matplotlib's object API with the Agg canvas: no pyplot state, no display needed
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
        layer = self._layers()
        rows = {}
        for n in self.nodes:
            rows.setdefault(layer[n], []).append(n)
        width = max(len(r) for r in rows.values()) if rows else 1
        depth = max(rows) + 1 if rows else 1
        pos = {}
        for lv, names in rows.items():
            for i, n in enumerate(names):
                pos[n] = ((i + 0.5) * width / len(names), depth - lv - 0.5)
        fig = Figure(figsize=(max(3.0, 2.4 * width), max(2.0, 1.0 * depth)))
        FigureCanvasAgg(fig)
        ax = fig.add_axes((0, 0, 1, 1))
        ax.set_xlim(0, width)
        ax.set_ylim(0, depth)
        ax.axis("off")
        for src, dst in self.edges:
            ax.annotate("", xy=pos[dst], xytext=pos[src],
                        arrowprops=dict(arrowstyle="->", color="black", shrinkA=12, shrinkB=12,
                                        linestyle="--" if self.nodes[src][1] == "saved"
                                        else "-"))
        colors = {"leaf": "lightblue", "output": "#caff70", "saved": "orange",
                  "op": "lightgrey"}
        for n, (label, kind) in self.nodes.items():
            ax.text(*pos[n], label, ha="center", va="center", family="monospace", fontsize=8,
                    bbox=dict(boxstyle="square,pad=0.4", facecolor=colors[kind],
                              edgecolor="black"))
        fig.savefig(path, format=format)


def make_dot(var, params=None, show_saved=False):
    """The backward graph of ``var`` (a Tensor, or a tuple of them) as a ``Graph``.

    ``params`` maps names to leaf tensors (``dict(model.named_parameters())``) so leaves are
    labelled by name; ``show_saved`` adds the values each node saved for backward.

    >>> import polygrad
    >>> a = polygrad.ones(3, requires_grad=True)
    >>> "SinBackward0" in make_dot(a.sin().sum(), params={"a": a}).source
    True
    """
    outputs = var if isinstance(var, (tuple, list)) else (var,)
    for v in outputs:
        if not isinstance(v, Tensor):
            raise TypeError(f"make_dot expects polygrad Tensors, got {type(v).__name__}")
    if params is not None and not isinstance(params, dict):
        raise TypeError("make_dot(params=...) takes a dict of name -> tensor, e.g. "
                        "dict(model.named_parameters())")
    names = {id(t): name for name, t in (params or {}).items()}
    nodes, edges, seen = {}, [], set()

    def shape(x):
        return "(" + ", ".join(str(s) for s in x.shape) + ")"

    def add(fn):
        todo = [fn]
        while todo:
            fn = todo.pop()
            if id(fn) in seen:
                continue
            seen.add(id(fn))
            fid = f"n{id(fn)}"
            if type(fn) is AccumulateGrad:
                leaf = fn.variable
                name = names.get(id(leaf), "") if leaf is not None else ""
                label = (name + "\n" if name else "") + (shape(leaf) if leaf is not None else "")
                nodes[fid] = (label, "leaf")
            else:
                nodes[fid] = (fn.name(), "op")
                if show_saved and fn.saved:
                    xs, out = fn.saved
                    for i, x in enumerate((*xs, out)):
                        if hasattr(x, "shape") and type(x) is not Unsaved:
                            sid = f"s{id(fn)}_{i}"
                            tag = ("self", "other")[i] if i < 2 else f"input{i}"
                            if i == len(xs):
                                tag = "result"
                            nodes[sid] = (f"{tag}\n{shape(x)}", "saved")
                            edges.append((sid, fid))
            for parent, _ in fn.next_functions:
                if parent is not None:
                    edges.append((f"n{id(parent)}", fid))
                    todo.append(parent)

    for v in outputs:
        vid = f"t{id(v)}"
        nodes[vid] = (names.get(id(v), "") + ("\n" if id(v) in names else "") + shape(v),
                      "output")
        if v.grad_fn is not None:
            add(v.grad_fn)
            edges.append((f"n{id(v.grad_fn)}", vid))
        elif v.requires_grad:
            nodes[vid] = (nodes[vid][0], "leaf")
    return Graph(nodes, edges)
