"""The profiler (YT-12) and polygrad.cuda: rows, counts, table, Chrome trace, hooks restored."""

import gc
import json
import os
import subprocess
import sys
import textwrap

import pytest

import polygrad
from polygrad.graph import engine

pytestmark = pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")
from polygrad.autograd.profiler import GC_ROW, profile, record_function  # noqa: E402

TORCH_COLUMNS = ["Name", "Self CPU %", "Self CPU", "CPU total %", "CPU total", "CPU time avg",
                 "# of Calls"]


def rows(prf, **kw):
    """{key: count} of the averaged rows, without garbage-collector pauses."""
    return {e.key: e.count for e in prf.key_averages(**kw) if e.key != GC_ROW}


def yt12(n=1000, **kw):
    # z = (z / x) * y over- or underflows after a few hundred steps: as in the tutorial
    x = polygrad.randn(2, 3, requires_grad=True)
    y = polygrad.rand(2, 3, requires_grad=True)
    z = polygrad.ones(2, 3, requires_grad=True)
    with profile(**kw) as prf:
        for _ in range(n):
            z = (z / x) * y
    return prf


def hooks():
    return tuple(engine.get_extension(n) for n in ("observer", "kernel_clock", "node_observer"))


def test_yt12_one_row_per_op_kind_with_1000_calls(backend):
    prf = yt12()
    assert rows(prf) == {"divide": 1000, "multiply": 1000}
    table = prf.key_averages().table(sort_by="self_cpu_time_total")
    for name in ("divide", "multiply"):
        line = next(ln for ln in table.splitlines() if ln.startswith(name))
        assert "1000" in line.split()
    assert "Self CPU time total:" in table
    assert hooks() == (None, None, None)


def test_backward_rows_are_named_after_the_nodes(backend):
    x = polygrad.randn(3, requires_grad=True)
    with profile() as prf:
        y = polygrad.sin(x / 2) * x
        y.sum().backward()
    got = rows(prf)
    for name in ("divide", "sin", "multiply", "sum", "DivBackward0", "SinBackward0",
                 "MulBackward0", "SumBackward0"):
        assert got.get(name) == 1, (name, got)
    kinds = {e.name: e.kind for e in prf.function_events}
    assert kinds["DivBackward0"] == "backward" and kinds["divide"] == "cpu_op"


def test_create_graph_backward_nests_its_ops_under_the_node(backend):
    x = polygrad.tensor([1.0, 2.0], requires_grad=True)
    with profile() as prf:
        (g,) = polygrad.autograd.grad((x * x).sum(), x, create_graph=True)
    node = next(e for e in prf.function_events if e.name == "MulBackward0")
    assert {c.name for c in node.children} >= {"multiply"}
    assert node.cpu_time_total >= sum(c.cpu_time_total for c in node.children)
    assert node.self_cpu_time_total <= node.cpu_time_total


RECORD_CASES = [
    # (how the label is applied, expected {row: count})
    ("context", {"outer": 1, "inner": 2, "add": 2, "multiply": 1}),
    ("decorator", {"outer": 1, "inner": 2, "add": 2, "multiply": 1}),
]


@pytest.mark.parametrize("how,expected", RECORD_CASES)
def test_record_function_rows_nest(backend, how, expected):
    x = polygrad.ones(3)
    inner = record_function("inner")

    def step():
        return x + 1

    if how == "decorator":
        step = inner(step)
    with profile() as prf:
        with record_function("outer"):
            y = x * 2
            for _ in range(2):
                if how == "context":
                    with inner:
                        step()
                else:
                    step()
    assert rows(prf) == expected
    outer = next(e for e in prf.function_events if e.name == "outer")
    assert [c.name for c in outer.children if c.name != GC_ROW] == ["multiply", "inner",
                                                                     "inner"]
    assert outer.self_cpu_time_total < outer.cpu_time_total
    assert y.shape == (3,)


def test_record_function_outside_a_profile_does_nothing():
    with record_function("alone"):
        y = polygrad.ones(2) + 1
    assert hooks() == (None, None, None) and y.shape == (2,)
    with pytest.raises(TypeError, match="string label"):
        record_function(3)


def test_group_by_input_shape(backend):
    with profile(record_shapes=True) as prf:
        polygrad.ones(2, 3) * polygrad.ones(2, 3)
        polygrad.ones(4) * polygrad.ones(4)
        polygrad.ones(4) * 2.0
    grouped = [e for e in prf.key_averages(group_by_input_shape=True) if e.key == "multiply"]
    assert {str(e.input_shapes) for e in grouped} == {"[[2, 3], [2, 3]]", "[[4], []]",
                                                      "[[4], [4]]"}
    assert rows(prf) == {"multiply": 3}
    table = prf.key_averages(group_by_input_shape=True).table()
    assert "Input Shapes" in table.splitlines()[1] and "[[2, 3], [2, 3]]" in table


def test_group_by_input_shape_without_shapes_warns():
    with profile() as prf:
        polygrad.ones(2) + 1
    with pytest.warns(UserWarning, match="record_shapes=True"):
        prf.key_averages(group_by_input_shape=True)


def test_table_columns_sort_and_row_limit(backend):
    x = polygrad.ones(3)
    with profile() as prf:
        for _ in range(5):
            x + 1
        for _ in range(3):
            x * 2
        polygrad.sin(x)
    table = prf.key_averages().table(sort_by="count")
    lines = table.splitlines()
    header = lines[1]
    positions = [header.index(c) for c in TORCH_COLUMNS + ["Kernel %"]]
    assert positions == sorted(positions)            # torch's order, then polygrad's column
    assert "CUDA" not in header
    names = [ln.split()[0] for ln in lines[3:] if ln and not ln.startswith("-")]
    names = [n for n in names if n in ("add", "multiply", "sin")]
    assert names == ["add", "multiply", "sin"]
    limited = prf.key_averages().table(sort_by="count", row_limit=1).splitlines()
    assert sum(1 for ln in limited[3:] if ln and not ln.startswith(("-", "Self", "Backend"))) == 1
    with pytest.raises(ValueError, match="self_cpu_time_total"):
        prf.key_averages().table(sort_by="wall_time")


def test_kernel_column_splits_backend_time_from_polygrad(backend):
    prf = yt12(200)
    for e in prf.key_averages():
        if e.key in ("divide", "multiply"):
            # the kernel call lies inside the op's interval, whatever the machine's load; it
            # is not compared with self CPU time, from which a garbage-collector pause that
            # fell inside the kernel is subtracted (its own row)
            assert e.kernel_time_total is not None and 0 < e.kernel_time_total <= e.cpu_time_total
        elif e.key != GC_ROW:
            assert e.kernel_time_total is None, e.key      # only forward ops call a kernel
    table = prf.key_averages().table()
    assert "Kernel %" in table.splitlines()[1]
    assert "Backend kernel time total:" in table


def test_totals_agree(backend):
    prf = yt12(50)
    averages = prf.key_averages()
    assert averages.self_cpu_time_total == pytest.approx(prf.self_cpu_time_total)
    total = prf.total_average()
    assert total.key == "Total" and total.count == len(prf.function_events)
    assert total.self_cpu_time_total == pytest.approx(prf.self_cpu_time_total)
    assert prf.self_cpu_time_total > 0


def test_chrome_trace_is_json_with_complete_events(backend, tmp_path):
    x = polygrad.ones(2, 3, requires_grad=True)
    with profile(record_shapes=True) as prf:
        with record_function("step"):
            for _ in range(4):
                y = (x / 2) * x
        y.sum().backward()
    path = tmp_path / "trace.json"
    prf.export_chrome_trace(str(path))
    trace = json.loads(path.read_text())
    events = [e for e in trace["traceEvents"] if e["ph"] == "X"]
    assert all({"name", "ts", "dur", "pid", "tid", "args"} <= e.keys() for e in events)
    names = [e["name"] for e in events]
    assert names.count("divide") == 4 and names.count("multiply") == 4
    assert "step" in names and "DivBackward0" in names
    div = next(e for e in events if e["name"] == "divide")
    assert div["args"]["Input Shapes"] == [[2, 3], []] and div["args"]["kernel_us"] >= 0
    step = next(e for e in events if e["name"] == "step")
    for e in events:
        if e["name"] in ("divide", "multiply"):       # nested inside the labelled block
            assert step["ts"] <= e["ts"] and e["ts"] + e["dur"] <= step["ts"] + step["dur"] + 1e-3


def test_hooks_restored_after_an_exception():
    with pytest.raises(ZeroDivisionError):
        with profile():
            polygrad.ones(2) + 1
            1 / 0  # noqa: B018  (raises inside the profile)
    assert hooks() == (None, None, None)


def test_nested_profiles_both_record_and_restore():
    x = polygrad.ones(2)
    with profile() as outer:
        x + 1
        with profile() as inner:
            x * 2
            with record_function("both"):
                x - 1
        assert engine.get_extension("observer") is not None
    assert hooks() == (None, None, None)
    assert rows(inner) == {"multiply": 1, "both": 1, "subtract": 1}
    assert rows(outer) == {"add": 1, "multiply": 1, "both": 1, "subtract": 1}


def test_an_existing_observer_is_kept_and_called():
    seen = []

    def mine(run, prim, args, opts):
        seen.append(prim.name)
        return run(prim, args, opts)

    engine.set_extension("observer", mine)
    try:
        with profile() as prf:
            polygrad.ones(2) * 3
        assert engine.get_extension("observer") is mine
    finally:
        engine.set_extension("observer", None)
    assert seen == ["multiply"] and rows(prf) == {"multiply": 1}


def test_disabled_profile_records_nothing_and_touches_no_hook():
    with profile(enabled=False) as prf:
        assert hooks() == (None, None, None)
        polygrad.ones(2) + 1
    assert len(prf.key_averages()) == 0


def test_results_need_the_block_closed_and_a_profile_opens_once():
    with profile() as prf:
        polygrad.ones(2) + 1
        with pytest.raises(RuntimeError, match="still open"):
            prf.key_averages()
    with pytest.raises(RuntimeError, match="already open"):
        with prf:
            pass


def test_garbage_collection_is_its_own_row():
    with profile() as prf:
        polygrad.ones(2) + 1
        gc.collect()
    assert GC_ROW in {e.key for e in prf.key_averages()}
    assert gc.callbacks.count(prf._gc_hook) == 0


def test_with_stack_records_the_call_site():
    with profile(with_stack=True) as prf:
        polygrad.ones(2) + 1
    ev = next(e for e in prf.function_events if e.name == "add")
    assert any("test_profiler.py" in frame for frame in ev.stack)
    grouped = prf.key_averages(group_by_stack_n=1)
    assert any(e.stack and "test_profiler.py" in e.stack[0] for e in grouped)


def test_polygrad_profiler_alias_and_torch_profiler_spelling():
    from polygrad.profiler import ProfilerActivity
    from polygrad.profiler import profile as profile2
    assert polygrad.profiler is polygrad.autograd.profiler and profile2 is profile
    with polygrad.profiler.profile(activities=[ProfilerActivity.CPU]) as prf:
        with polygrad.profiler.record_function("model_inference"):
            polygrad.ones(2) * 2
    assert rows(prf) == {"model_inference": 1, "multiply": 1} and not prf.use_cuda
    assert profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]).use_cuda
    assert str(prf) == prf.key_averages().table()


# -- use_cuda and polygrad.cuda ----------------------------------------------------------------

def _torch_cuda():
    torch = pytest.importorskip("torch")
    return torch.cuda.is_available(), torch.cuda.device_count()


def test_cuda_answers_match_torch():
    available, count = _torch_cuda()
    assert polygrad.cuda.is_available() is available
    assert polygrad.cuda.device_count() == count


def test_cuda_calls_without_a_gpu_raise_a_clear_error():
    if polygrad.cuda.is_available():
        pytest.skip("a CUDA device is present")
    for fn in (polygrad.cuda.synchronize, polygrad.cuda.current_device):
        with pytest.raises(RuntimeError, match="is_available"):
            fn()


def test_use_cuda_without_a_gpu_warns():
    if polygrad.cuda.is_available():
        pytest.skip("a CUDA device is present")
    with pytest.warns(UserWarning, match="no backend here has a CUDA device"):
        with profile(use_cuda=True):
            polygrad.ones(2) + 1
    assert hooks() == (None, None, None)


def test_use_cuda_device_columns_on_a_gpu():
    if not polygrad.cuda.is_available():
        pytest.skip("needs a CUDA device")
    x = polygrad.randn(256, 256, device="cuda", requires_grad=True)
    with profile(use_cuda=True) as prf:
        for _ in range(10):
            y = (x / 2) * x
        y.sum().backward()
    header = prf.key_averages().table().splitlines()[1]
    for col in ("Self CUDA", "Self CUDA %", "CUDA total", "CUDA time avg"):
        assert col in header
    div = next(e for e in prf.key_averages() if e.key == "divide")
    assert div.count == 10 and div.self_cuda_time_total > 0
    polygrad.cuda.synchronize()


def test_cpu_device_constructors_run_the_yt12_cell(backend):
    device = polygrad.device("cpu")
    x = polygrad.randn(2, 3, requires_grad=True, device=device)
    z = polygrad.ones(2, 3, device=device)
    assert x.device == device and z.device == "cpu" and x.backend == backend


def _fresh(code, plugins):
    env = dict(os.environ, POLYGRAD_LOAD_PLUGINS=plugins)
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=env,
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


CUDA_CHECK = """
    import json, sys
    import polygrad
    ok = polygrad.cuda.is_available()
    print(json.dumps({"ok": ok, "heavy": [m for m in ("cupy", "torch") if m in sys.modules]}))
"""


def test_cuda_check_imports_no_gpu_library():
    # with only numpy's plugin nothing heavy loads at all
    assert _fresh(CUDA_CHECK, "numpy") == {"ok": False, "heavy": []}
    # with torch's, torch answers (it lists its devices), and cupy stays out
    state = _fresh(CUDA_CHECK, "numpy,torch,cupy")
    assert "cupy" not in state["heavy"]
