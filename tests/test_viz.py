"""polygrad.viz.make_dot: DOT text for YT-1's chain, SVG and PNG files with or without Graphviz."""

import math
import re
import shutil
import xml.etree.ElementTree as ET

import pytest

import polygrad
from polygrad.viz import make_dot

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def yt1():
    a = polygrad.linspace(0., 2. * math.pi, steps=25, requires_grad=True)
    out = (2 * polygrad.sin(a) + 1).sum()
    return a, out


def labels(graph):
    return [label for label, _ in graph.nodes.values()]


def test_dot_of_the_yt1_chain(backend):
    a, out = yt1()
    g = make_dot(out, params={"a": a})
    src = g.source
    assert src.startswith("digraph {") and src.rstrip().endswith("}")
    for name in ("SumBackward0", "AddBackward0", "MulBackward0", "SinBackward0"):
        assert f'label="{name}"' in src
    assert 'label="a\\n(25)"' in src              # the leaf: its name and shape
    # a chain: output <- Sum <- Add <- Mul <- Sin <- a, one edge each
    assert len(re.findall(r"->", src)) == 5
    assert src.count("{") == src.count("}")


def test_edges_follow_next_functions(backend):
    a, out = yt1()
    g = make_dot(out)
    by_label = {label: nid for nid, (label, _) in g.nodes.items()}
    assert (by_label["SinBackward0"], by_label["MulBackward0"]) in g.edges
    assert (by_label["(25)"], by_label["SinBackward0"]) in g.edges     # unnamed leaf: shape


def test_shared_inputs_appear_once_and_saved_values_on_request(backend):
    w = polygrad.randn(3, 2, requires_grad=True)
    x = polygrad.ones(4, 3)
    loss = ((x @ w) * (x @ w)).sum()
    g = make_dot(loss, params={"w": w})
    assert labels(g).count("w\n(3, 2)") == 1
    assert labels(g).count("MmBackward0") == 2
    saved = make_dot(loss, params={"w": w}, show_saved=True)
    kinds = [kind for _, kind in saved.nodes.values()]
    assert kinds.count("saved") > 0 and "style=dashed" in saved.source
    assert "saved" not in [kind for _, kind in g.nodes.values()]


def test_several_outputs_and_a_bare_leaf():
    a = polygrad.ones(2, requires_grad=True)
    g = make_dot((a.sin(), a.cos()), params={"a": a})
    assert {"SinBackward0", "CosBackward0"} <= set(labels(g))
    assert labels(g).count("a\n(2)") == 1
    leaf = make_dot(a, params={"a": a})
    assert [kind for _, kind in leaf.nodes.values()] == ["leaf"]


BAD = [
    (lambda: make_dot([1.0, 2.0]), TypeError, "polygrad Tensors"),
    (lambda: make_dot(polygrad.ones(2), params=[("a", 1)]), TypeError, "dict"),
    (lambda: make_dot(polygrad.ones(2)).render("x.pdf"), ValueError, "'svg' or 'png'"),
]


@pytest.mark.parametrize("call,exc,message", BAD)
def test_bad_input_says_what_to_do(call, exc, message, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(exc, match=message):
        call()


def check_svg(path):
    text = open(path).read()
    root = ET.fromstring(text.split("?>", 1)[-1] if text.startswith("<?xml") else text)
    assert root.tag.endswith("svg")
    return text


def check_png(path):
    data = open(path, "rb").read()
    assert data[:8] == PNG_MAGIC
    import matplotlib.image
    img = matplotlib.image.imread(path)
    assert img.ndim == 3 and img.shape[0] > 50 and img.shape[1] > 50


@pytest.mark.parametrize("graphviz", ["matplotlib", "dot"])
def test_render_svg_and_png(graphviz, tmp_path, monkeypatch):
    if graphviz == "matplotlib":
        monkeypatch.setenv("PATH", "")            # no `dot` on the PATH: matplotlib draws
    elif shutil.which("dot") is None:
        pytest.skip("Graphviz's dot is not installed")
    a, out = yt1()
    g = make_dot(out, params={"a": a})
    svg = g.render(tmp_path / "graph.svg")
    assert svg.endswith("graph.svg")
    text = check_svg(svg)
    assert "SinBackward0" in text or graphviz == "matplotlib"   # matplotlib draws glyph paths
    png = g.render(tmp_path / "graph", format="png")
    assert png == str(tmp_path / "graph.png")
    check_png(png)
    assert g._repr_svg_().lstrip().startswith("<")


def test_the_tinymodel_loss_graph_renders(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", "")
    model = polygrad.nn.Sequential(polygrad.nn.Linear(8, 4), polygrad.nn.ReLU(),
                                   polygrad.nn.Linear(4, 2))
    loss = (model(polygrad.randn(3, 8)) - polygrad.randn(3, 2)).pow(2).sum()
    g = make_dot(loss, params=dict(model.named_parameters()))
    assert {"0.weight\n(4, 8)", "2.bias\n(2)"} <= set(labels(g))
    check_png(g.render(tmp_path / "loss.png"))


def test_show_saved_draws_only_what_backward_keeps(backend):
    w = polygrad.randn(3, requires_grad=True)
    g = make_dot(polygrad.exp(w).sum(), params={"w": w}, show_saved=True)
    saved = [label for label, kind in g.nodes.values() if kind == "saved"]
    assert saved == ["result\n(3)"]               # exp keeps its output, not its input
