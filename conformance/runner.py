"""The engine of the suite: turns cases x backends x devices x dtypes into checks and runs them.

``Session(backends, devices, dtypes).checks()`` lists ``Check`` objects with stable ids
(``QS-1/grad-torch-cpu-float32``, ``op:sin/vjp-numpy-cpu-float64``); ``execute(check)``
runs one and returns its report record. The CLI, the pytest plugin and ``run()`` are
thin front ends over these two. Runs are memoised per session, so the reference and
the torch oracle are computed once however many checks read them.

Check kinds, per scenario: ``tutorial`` (the tutorial's own claims), ``grad`` (against
the float64 numpy reference on the same inputs), ``torch`` (against real torch running
the same code), ``cross`` (against every other requested backend). Per primitive:
``value``, ``vjp``, ``grad2`` (create_graph), ``jvp`` (dot-product test against the
VJP), ``fd`` (float64 central differences), ``torch`` and ``cross``; nondifferentiable
primitives get ``value``, ``torch`` and ``cross``. Backend declarations add
``unsupported``, ``fused:<name>`` and the ``plugin:import`` laziness check. With
``compiled=True`` (``--compiled``) each scenario and each primitive also gets a ``compiled``
check: run through ``polygrad.compile`` (traced, then replayed) against the same code run
eagerly on the same backend, values and gradients.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import importlib.util
import time
import warnings
import zlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.metadata import entry_points

import numpy as np

from .checks import FD, CheckFailed, NullRecorder, Recorder, to_host, tolerance
from .op_table import OP_CASES
from .scenarios import NOT_COMPILED, SCENARIO_IDS, SCENARIOS, Ctx

__all__ = ["Check", "Session", "execute", "FAILING", "BASE_SEED"]

BASE_SEED = 20240601
DTYPES = ("float32", "float64")
FAILING = ("fail", "error", "xpass", "xpass-unsupported")
SCENARIO_CHECKS = ("tutorial", "grad", "torch", "cross")
OP_CHECKS = ("value", "vjp", "grad2", "jvp", "fd", "torch", "cross")
ND_CHECKS = ("value", "torch", "cross")


def case_seed(case_id):
    """The fixed seed of a case's inputs: the same on every backend and every run."""
    return (BASE_SEED + zlib.crc32(case_id.encode())) % 2**32


@dataclass
class Check:
    """One runnable check; ``id`` is stable and ``-k`` friendly."""

    id: str
    case: str
    kind: str                  # scenario | op | fused | plugin
    check: str
    backend: str
    device: str
    dtype: str
    fn: Callable | None = None
    skip: str | None = None
    known: object = None       # the matching polygrad.KnownFailure
    tol: dict = field(default_factory=dict)
    seed: str = ""             # the tutorial seed file a scenario comes from
    expect_unsupported: bool = False


def _has_torch():
    return importlib.util.find_spec("torch") is not None


class Session:
    """The backends, devices and dtypes asked for, and the memo of runs shared by checks.

    >>> s = Session(["numpy"], dtypes=["float64"])
    >>> s.checks()[0].id
    'QS-1/tutorial-numpy-cpu-float64'
    """

    def __init__(self, backends=None, devices=None, dtypes=None, cases=None, compiled=False):
        import polygrad
        from polygrad.plugins import backend_names, get_backend
        _load_tables()
        # default: every backend whose array library is installed (a GPU backend without a
        # GPU stays in, its checks skipping with the reason); see ``not_installed``
        registered = backend_names(usable=False)
        installed = [n for n in registered if get_backend(n).installed()]
        names = list(backends) if backends else installed
        self.requested = bool(backends)         # named by the user: each must run a check
        self.not_installed = [] if backends else [n for n in registered if n not in installed]
        self.backends = [get_backend(n) for n in dict.fromkeys(names)]   # unknown: clear error
        self.devices = list(devices) if devices else None
        self.dtypes = list(dtypes) if dtypes else list(DTYPES)
        for d in self.dtypes:
            if d not in DTYPES:
                raise ValueError(f"unknown dtype {d!r}; the suite runs {', '.join(DTYPES)}")
        self.cases = set(cases) if cases else None
        # also a ``compiled`` check per scenario and op: traced and replayed by
        # polygrad.compile, against the same code run eagerly (opt-in: it doubles the run time)
        self.compiled = bool(compiled)
        self.polygrad = polygrad
        self.memo = {}
        self.has_torch = _has_torch()

    # -- which checks ---------------------------------------------------------------------
    def targets(self, backend):
        """(device, dtype, skip reason or None) for one backend."""
        reason = backend.unavailable_reason()
        devices = self.devices
        if reason is None:
            available = tuple(backend.devices())
            if not available:
                reason = f"backend {backend.name!r} declares no device usable here"
            devices = devices or list(available) or ["cpu"]
        else:
            available = ()
            devices = devices or ["cpu"]
        out = []
        for dev in devices:
            for dt in self.dtypes:
                why = reason
                if why is None and dev not in available:
                    why = (f"no CUDA device visible (backend {backend.name!r} devices: "
                           f"{list(available)})" if dev.startswith("cuda") else
                           f"backend {backend.name!r} has no device {dev!r} (it has "
                           f"{list(available)})")
                if why is None and dt not in backend.dtypes:
                    why = f"backend {backend.name!r} declares no {dt}"
                out.append((dev, dt, why))
        return out

    def _want(self, case_id):
        return self.cases is None or case_id in self.cases

    def checks(self):
        from polygrad.primitives import PRIMITIVES
        out = []
        for sid, _title, seed in SCENARIO_IDS:
            if not self._want(sid):
                continue
            for b in self.backends:
                for dev, dt, skip in self.targets(b):
                    for kind in SCENARIO_CHECKS + ("compiled",) * self.compiled:
                        out.append(self._scenario_check(sid, seed, kind, b, dev, dt, skip))
        for name, prim in list(PRIMITIVES.items()):
            if not self._want(f"op:{name}"):
                continue
            for b in self.backends:
                for dev, dt, skip in self.targets(b):
                    out.extend(self._op_checks(name, prim, b, dev, dt, skip))
        for b in self.backends:
            for name in sorted(b.fused):
                if not self._want(f"fused:{name}"):
                    continue
                for dev, dt, skip in self.targets(b):
                    for kind in ("value", "vjp"):
                        out.append(self._fused_check(name, kind, b, dev, dt, skip))
            if self._want("plugin:import"):
                out.append(self._import_check(b))
        for c in out:
            c.known = _known(c)
        return out

    def _check(self, case, kind, check, b, dev, dt, skip, fn, **kw):
        return Check(id=f"{case}/{check}-{b.name}-{dev}-{dt}", case=case, kind=kind,
                     check=check, backend=b.name, device=dev, dtype=dt, fn=fn, skip=skip,
                     tol=tolerance(check if check != "tutorial" else "tutorial", dt), **kw)

    def _scenario_check(self, sid, seed, kind, b, dev, dt, skip):
        fn = {"tutorial": lambda: self.scenario_run(sid, b, dev, dt, dt)[1],
              "grad": lambda: self._scenario_vs_reference(sid, b, dev, dt),
              "torch": lambda: self._scenario_vs_torch(sid, b, dev, dt),
              "cross": lambda: self._scenario_cross(sid, b, dev, dt),
              "compiled": lambda: self._scenario_compiled(sid, b, dev, dt)}[kind]
        if skip is None and kind == "compiled" and sid in NOT_COMPILED:
            skip = f"not compiled: {NOT_COMPILED[sid]}"
        if skip is None and kind == "torch" and not self.has_torch:
            skip = "torch is not installed: no torch.autograd oracle"
        if skip is None and kind == "cross" and not self._others(b, dt):
            skip = "no other requested backend runs this dtype"
        return self._check(sid, "scenario", kind, b, dev, dt, skip, fn, seed=seed)

    def _op_checks(self, name, prim, b, dev, dt, skip):
        case = f"op:{name}"
        if name in b.unsupported:
            return [self._check(case, "op", "unsupported", b, dev, dt, skip,
                                lambda: self._op_unsupported(name, b, dev, dt),
                                expect_unsupported=True)]
        out = []
        kinds = OP_CHECKS if prim.differentiable else ND_CHECKS
        opcase = OP_CASES.get(name)
        if opcase is None:      # one check that says so, not one per kind
            return [self._check(case, "op", "case", b, dev, dt, skip, _bind(_case, name))]
        for kind in kinds:
            why = skip
            if why is None and dt == "float32" and not opcase.float32:
                why = "the op takes integer or boolean inputs only: checked under float64"
            elif why is None and kind == "fd" and dt != "float64":
                why = "finite differences run in float64 only (eps=1e-6 is below float32 " \
                      "resolution)"
            elif why is None and kind == "fd" and not opcase.fd:
                why = f"no finite-difference check: {opcase.why_not_fd}"
            elif why is None and kind == "torch" and not self.has_torch:
                why = "torch is not installed: no torch.autograd oracle"
            elif why is None and kind == "cross" and not self._others(b, dt):
                why = "no other requested backend runs this dtype"
            elif why is None and kind == "jvp" and prim.jvp is None:
                why = "the primitive has no JVP rule"
            fn = getattr(self, f"_op_{kind}")
            out.append(self._check(case, "op", kind, b, dev, dt, why,
                                   _bind(fn, name, b, dev, dt)))
        if self.compiled:
            why = skip
            if why is None and dt == "float32" and not opcase.float32:
                why = "the op takes integer or boolean inputs only: checked under float64"
            out.append(self._check(case, "op", "compiled", b, dev, dt, why,
                                   _bind(self._op_compiled, name, b, dev, dt)))
        return out

    def _fused_check(self, name, kind, b, dev, dt, skip):
        return self._check(f"fused:{name}", "fused", kind, b, dev, dt, skip,
                           lambda: self._fused(name, kind, b, dev, dt))

    def _import_check(self, b):
        skip = None
        if not b.installed():
            skip = f"{b.module!r} is not installed: no import of it to measure"
        return Check(id=f"plugin:import/lazy-{b.name}-any-any", case="plugin:import",
                     kind="plugin", check="lazy", backend=b.name, device="any", dtype="any",
                     fn=lambda: self._plugin_import(b), skip=skip)

    # -- did the run test anything ----------------------------------------------------------
    def untested(self, records, checks=None):
        """Why this run tested less than it was asked to, one line each; [] when it did.

        A ``case`` that matches no check, a requested backend whose checks all skipped (not
        installed, unavailable, no such device), or a run in which nothing ran at all.
        Backends picked by default may skip whole (a GPU backend without a GPU), as long as
        another one ran. ``records`` are ``execute``'s results.
        """
        checks = self.checks() if checks is None else checks
        problems = []
        if self.cases:
            listed = {c.case for c in checks}
            problems += [f"case {c!r} matches nothing (case ids look like QS-1, op:sin, "
                         f"fused:softmax, plugin:import)" for c in sorted(self.cases - listed)]
        ran_any = False
        for b in self.backends:
            mine = [r for r in records if r["backend"] == b.name]
            # the laziness check runs whatever the device: it alone does not test a backend,
            # unless it is all that was selected
            tests = [r for r in mine if r["kind"] != "plugin"] or mine
            if any(r["outcome"] != "skip" for r in tests):
                ran_any = True
                continue
            if not self.requested:
                continue
            if not tests:
                problems.append(f"backend {b.name!r} ran no check: none was selected")
                continue
            reasons = Counter(r["reason"] for r in tests)
            why = "; ".join(f"{n} x {reason}" for reason, n in reasons.most_common(3))
            problems.append(f"backend {b.name!r} ran no check: all {len(tests)} skipped ({why})")
        if not ran_any and not problems:
            problems.append("no check ran" + (f" on {', '.join(b.name for b in self.backends)}"
                                              if self.backends else ": no backend"))
        return problems

    def _others(self, b, dt):
        return [o for o in self.backends if o is not b and o.unavailable_reason() is None
                and dt in o.dtypes and o.devices()]

    # -- scenario runs ----------------------------------------------------------------------
    def _memo(self, key, compute):
        if key not in self.memo:
            try:
                self.memo[key] = (True, compute())
            except Exception as exc:  # noqa: BLE001 - re-raised for every check that reads it
                self.memo[key] = (False, exc)
        ok, value = self.memo[key]
        if not ok:
            raise value
        return value

    def scenario_run(self, sid, b, dev, dt, in_dtype, compiled=False):
        """(values, recorder) of scenario ``sid`` run on backend ``b``; ``compiled``: with
        the functions it passes to ``ctx.compile`` compiled."""
        return self._memo(("scn", sid, b.name, id(b), dev, dt, in_dtype, compiled),
                          lambda: self._run_scenario(sid, b, dev, dt, in_dtype, compiled))

    def _run_scenario(self, sid, b, dev, dt, in_dtype, compiled=False):
        pg = self.polygrad
        rec = Recorder(**tolerance("tutorial", dt))

        def make(host, requires_grad):
            return pg.from_numpy(host, backend=b, device=dev, requires_grad=requires_grad)

        ctx = Ctx(pg, dt, dev, in_dtype, case_seed(sid), make, rec, compiled=compiled)
        with pg.use_backend(b), warnings.catch_warnings():
            if compiled:        # fallbacks are counted below, by the compiled functions
                warnings.simplefilter("ignore", pg.compiler.CompileWarning)
            values = SCENARIOS[sid](pg, ctx)
        if compiled:
            rec.note = _compiled_note(ctx.compiled_fns, rec)
        return {k: to_host(v) for k, v in values.items()}, rec

    def _reference(self, sid, dt):
        from polygrad.plugins import get_backend
        return self.scenario_run(sid, get_backend("numpy"), "cpu", "float64", dt)[0]

    def _torch_scenario(self, sid, in_dtype):
        def compute():
            import torch
            ctx = Ctx(torch, "float64", "cpu", in_dtype, case_seed(sid),
                      lambda h, rg: torch.from_numpy(h.copy()).requires_grad_(rg),
                      NullRecorder(), oracle=True)
            return {k: to_host(v) for k, v in SCENARIOS[sid](torch, ctx).items()}
        return self._memo(("torch-scn", sid, in_dtype), compute)

    def _compare_values(self, got, ref, tol, what):
        rec = Recorder(**tol)
        missing = sorted(set(ref) ^ set(got))
        if missing:
            rec.fail(f"{what} returned different tensors: {missing}")
        for k in ref:
            if k in got:
                rec.close(k, got[k], ref[k])
        return rec

    def _scenario_vs_reference(self, sid, b, dev, dt):
        got = self.scenario_run(sid, b, dev, dt, dt)[0]
        return self._compare_values(got, self._reference(sid, dt), tolerance("grad", dt),
                                    "the float64 numpy reference")

    def _scenario_vs_torch(self, sid, b, dev, dt):
        got = self.scenario_run(sid, b, dev, dt, dt)[0]
        return self._compare_values(got, self._torch_scenario(sid, dt), tolerance("torch", dt),
                                    "torch")

    def _scenario_compiled(self, sid, b, dev, dt):
        """The scenario with its computation compiled (``ctx.compile``: traced, then
        replayed) against the same scenario run eagerly on the same backend, every tensor it
        returns; its own claims must hold too, and each compiled function must replay, or
        fall back to eager where the scenario says why."""
        got, claims = self.scenario_run(sid, b, dev, dt, dt, compiled=True)
        rec = self._compare_values(got, self.scenario_run(sid, b, dev, dt, dt)[0],
                                   tolerance("compiled", dt), "the eager run")
        rec.failures += [f"compiled run: {f}" for f in claims.failures]
        rec.note = claims.note
        return rec

    def _scenario_cross(self, sid, b, dev, dt):
        got = self.scenario_run(sid, b, dev, dt, dt)[0]
        rec = Recorder(**tolerance("cross", dt))
        for o in self._others(b, dt):
            other = self.scenario_run(sid, o, _first_device(o), dt, dt)[0]
            part = self._compare_values(got, other, tolerance("cross", dt), o.name)
            for m in part.metrics:
                m["tensor"] = f"{o.name}: {m['tensor']}"
            rec.metrics += part.metrics
            rec.failures += [f"vs {o.name}: {f}" for f in part.failures]
        return rec

    # -- op runs -------------------------------------------------------------------------------
    def _host_inputs(self, name, in_dtype):
        case = _case(name)
        host = case.args(np.random.default_rng(case_seed(f"op:{name}")))
        return [h.astype(in_dtype).astype(np.float64) if _is_float(h) else h for h in host]

    def _wrt(self, name, host):
        from polygrad.primitives import PRIMITIVES
        case = _case(name)
        if case.grad is not None:
            return list(case.grad)
        nondiff = PRIMITIVES[name].nondiff_args
        return [i for i, h in enumerate(host) if _is_float(h) and i not in nondiff]

    def op_run(self, name, b, dev, dt, in_dtype=None):
        """Value, VJP and second order of primitive ``name`` on ``b`` (host arrays)."""
        in_dtype = in_dtype or dt
        return self._memo(("op", name, b.name, id(b), dev, dt, in_dtype),
                          lambda: self._evaluate(name, b, dev, dt,
                                                 self._host_inputs(name, in_dtype), in_dtype))

    def _evaluate(self, name, b, dev, dt, host, in_dtype, tangents=None, compiled=False):
        from polygrad.primitives import PRIMITIVES
        pg = self.polygrad
        case = _case(name)
        prim = PRIMITIVES[name]
        wrt = self._wrt(name, host) if prim.differentiable else []
        xs = []
        for i, h in enumerate(host):
            if isinstance(h, np.ndarray):
                h = h.astype(dt) if _is_float(h) else h
                h = pg.from_numpy(h, backend=b, device=dev, requires_grad=i in wrt)
            xs.append(h)
        if tangents is not None:
            return self._forward_mode(case, b, dev, dt, xs, wrt, tangents)
        with pg.use_backend(b):
            if compiled:        # the first call traces, the second replays
                fn = pg.compile(lambda *args: case.run(pg.ops, *args))
                with warnings.catch_warnings():     # an op that falls back is still checked
                    warnings.simplefilter("ignore", pg.compiler.CompileWarning)
                    fn(*xs)
                    out = fn(*xs)
            else:
                out = case.run(pg.ops, *xs)
        res = {"value": to_host(out)}
        if not prim.differentiable:
            return res
        u = _direction(f"op:{name}/u", np.shape(res["value"]), in_dtype)
        u_arr = u.astype(dt) if res["value"].dtype.kind != "c" else u.astype(res["value"].dtype)
        grads = pg.autograd.grad(out, [xs[i] for i in wrt],
                                 grad_outputs=pg.from_numpy(u_arr, backend=b, device=dev),
                                 create_graph=case.second_order, allow_unused=True)
        res["vjp"] = [_grad_or_zero(g, host[i]) for g, i in zip(grads, wrt)]
        res["grad_backends"] = sorted({g.backend for g in grads if g is not None})
        res["u"] = u
        if case.second_order and not compiled:
            ws = [_direction(f"op:{name}/w{i}", host[i].shape, in_dtype) for i in wrt]
            s = None
            for g, w in zip(grads, ws):
                if g is not None and g.requires_grad:
                    term = (g * pg.from_numpy(w.astype(dt), backend=b, device=dev)).sum()
                    s = term if s is None else s + term
            if s is None:           # the first derivative is constant: grad2 is zero
                res["grad2"] = [np.zeros(host[i].shape) for i in wrt]
            else:
                g2 = pg.autograd.grad(s, [xs[i] for i in wrt], allow_unused=True)
                res["grad2"] = [_grad_or_zero(g, host[i]) for g, i in zip(g2, wrt)]
            res["w"] = ws
        return res

    def _forward_mode(self, case, b, dev, dt, xs, wrt, tangents):
        """(value, tangent) of the case in forward mode, both on the host."""
        import polygrad.autograd.forward_ad as fwAD
        pg = self.polygrad
        xs = list(xs)
        # torch's rule, kept by polygrad: one level at a time, so a level the caller opened
        # makes this raise, rather than mix its tangents with ours
        with fwAD.dual_level():
            for i, t in zip(wrt, tangents):
                xs[i] = fwAD.make_dual(xs[i], pg.from_numpy(t.astype(dt), backend=b, device=dev))
            with pg.use_backend(b):
                out = case.run(pg.ops, *xs)
            tangent = fwAD.unpack_dual(out).tangent
            return to_host(out), None if tangent is None else to_host(tangent)

    def _ref_op(self, name, dt):
        from polygrad.plugins import get_backend
        return self.op_run(name, get_backend("numpy"), "cpu", "float64", dt)

    def _close_runs(self, rec, got, ref, keys=("value", "vjp", "grad2"), prefix=""):
        for k in keys:
            if k in ref and k in got:
                rec.close(prefix + k, got[k], ref[k])
            elif k in ref or k in got:
                rec.fail(f"{prefix}{k}: present on one side only")
        return rec

    def _op_value(self, name, b, dev, dt):
        got = self.op_run(name, b, dev, dt)
        return self._close_runs(Recorder(**tolerance("value", dt)), got, self._ref_op(name, dt),
                                keys=("value",))

    def _op_vjp(self, name, b, dev, dt):
        got = self.op_run(name, b, dev, dt)
        rec = self._close_runs(Recorder(**tolerance("vjp", dt)), got, self._ref_op(name, dt),
                               keys=("vjp",))
        rec.true(set(got["grad_backends"]) <= {b.name},
                 f"gradients are on backend(s) {got['grad_backends']}, not on the inputs' "
                 f"backend {b.name!r}")
        return rec

    def _op_compiled(self, name, b, dev, dt):
        """The op traced and replayed by ``polygrad.compile``, value and VJP, against the
        same op run eagerly on the same backend."""
        got = self._evaluate(name, b, dev, dt, self._host_inputs(name, dt), dt, compiled=True)
        return self._close_runs(Recorder(**tolerance("value", dt)), got,
                                self.op_run(name, b, dev, dt), keys=("value", "vjp"))

    def _op_grad2(self, name, b, dev, dt):
        """Second order through create_graph against the reference's."""
        got = self.op_run(name, b, dev, dt)
        if "grad2" not in got:
            raise _Skip(f"the case of {name!r} sets second_order=False")
        return self._close_runs(Recorder(**tolerance("grad2", dt)), got, self._ref_op(name, dt),
                                keys=("grad2",))

    def _op_jvp(self, name, b, dev, dt):
        """The dot-product test: <J t, u> == <t, J^T u> on the backend itself."""
        rec = Recorder(**tolerance("jvp", dt))
        run = self.op_run(name, b, dev, dt)
        host = [h.astype(dt).astype(np.float64) if _is_float(h) else h
                for h in self._host_inputs(name, dt)]
        wrt = self._wrt(name, host)
        ts = [_sym(_case(name), _direction(f"op:{name}/t{i}", host[i].shape, dt)) for i in wrt]
        _, jt = self._evaluate(name, b, dev, dt, host, dt, tangents=ts)
        if jt is None:
            rec.fail("forward mode produced no tangent (the JVP rule returned None)")
            return rec
        lhs = np.sum(np.real(jt) * run["u"])      # real cotangent: Re<J t, u>
        rhs = sum(np.sum(t * v.astype(np.float64)) for t, v in zip(ts, run["vjp"]))
        rec.close("<J t, u> vs <t, J^T u>", np.float64(lhs), np.float64(rhs))
        return rec

    def _op_fd(self, name, b, dev, dt):
        """Central differences in float64 along one random direction, first and second order."""
        case = _case(name)
        rec = Recorder(atol=FD["atol"], rtol=FD["rtol"])
        run = self.op_run(name, b, dev, dt)
        host = self._host_inputs(name, dt)
        wrt = self._wrt(name, host)
        eps = FD["eps"]
        ds = {i: _sym(case, _direction(f"op:{name}/d{i}", host[i].shape, dt)) for i in wrt}

        def shifted(sign):
            return [h + sign * eps * ds[i] if i in ds else h for i, h in enumerate(host)]

        with self.polygrad.no_grad():
            plus = self._evaluate_value(name, b, dev, dt, shifted(1))
            minus = self._evaluate_value(name, b, dev, dt, shifted(-1))
        numeric = np.sum((plus - minus) / (2 * eps) * run["u"])
        analytic = sum(np.sum(g * ds[i]) for g, i in zip(run["vjp"], wrt))
        rec.close("<u, J d>: vjp vs central differences", np.float64(analytic),
                  np.float64(numeric))
        if case.second_order and "grad2" in run:
            gp = self._evaluate(name, b, dev, dt, shifted(1), dt)["vjp"]
            gm = self._evaluate(name, b, dev, dt, shifted(-1), dt)["vjp"]
            numeric2 = sum(np.sum((p - m) / (2 * eps) * w)
                           for p, m, w in zip(gp, gm, run["w"]))
            analytic2 = sum(np.sum(g * ds[i]) for g, i in zip(run["grad2"], wrt))
            rec.close("<w, H d>: create_graph vs central differences of the vjp",
                      np.float64(analytic2), np.float64(numeric2))
        return rec

    def _evaluate_value(self, name, b, dev, dt, host):
        pg = self.polygrad
        xs = [pg.from_numpy(h.astype(dt) if _is_float(h) else h, backend=b, device=dev)
              if isinstance(h, np.ndarray) else h for h in host]
        with pg.use_backend(b):
            return np.real(to_host(_case(name).run(pg.ops, *xs))).astype(np.float64)

    def _op_torch(self, name, b, dev, dt):
        got = self.op_run(name, b, dev, dt)
        ref = self._memo(("torch-op", name, dt), lambda: self._torch_op(name, dt))
        return self._close_runs(Recorder(**tolerance("torch", dt)), got, ref)

    def _torch_op(self, name, in_dtype):
        import array_api_compat.torch as xp
        import torch
        case = _case(name)
        host = self._host_inputs(name, in_dtype)
        from polygrad.primitives import PRIMITIVES
        prim = PRIMITIVES[name]
        wrt = self._wrt(name, host) if prim.differentiable else []
        xs = [torch.from_numpy(h.copy()).requires_grad_(i in wrt) if isinstance(h, np.ndarray)
              else h for i, h in enumerate(host)]
        out = case.torch(xp, *xs) if case.torch is not None else case.run(xp, *xs)
        res = {"value": to_host(out)}
        if not prim.differentiable:
            return res
        u = _direction(f"op:{name}/u", tuple(out.shape), in_dtype)
        grads = torch.autograd.grad(out, [xs[i] for i in wrt], torch.from_numpy(u).to(out.dtype),
                                    create_graph=case.second_order, allow_unused=True)
        res["vjp"] = [_grad_or_zero(g, host[i]) for g, i in zip(grads, wrt)]
        if case.second_order:
            ws = [_direction(f"op:{name}/w{i}", host[i].shape, in_dtype) for i in wrt]
            terms = [(g * torch.from_numpy(w)).sum() for g, w in zip(grads, ws)
                     if g is not None and g.requires_grad]
            if terms:
                g2 = torch.autograd.grad(sum(terms), [xs[i] for i in wrt], allow_unused=True)
                res["grad2"] = [_grad_or_zero(g, host[i]) for g, i in zip(g2, wrt)]
            else:
                res["grad2"] = [np.zeros(host[i].shape) for i in wrt]
        return res

    def _op_cross(self, name, b, dev, dt):
        got = self.op_run(name, b, dev, dt)
        rec = Recorder(**tolerance("cross", dt))
        for o in self._others(b, dt):
            if name in o.unsupported:
                continue
            self._close_runs(rec, got, self.op_run(name, o, _first_device(o), dt),
                             prefix=f"{o.name}: ")
        return rec

    def _op_unsupported(self, name, b, dev, dt):
        """A declared-unsupported op must raise UnsupportedOperation naming the backend and
        the op."""
        from polygrad import UnsupportedOperation
        host = self._host_inputs(name, dt)
        try:
            self._evaluate(name, b, dev, dt, host, dt)
        except UnsupportedOperation as exc:
            msg = str(exc)
            if b.name not in msg or name not in msg:
                raise CheckFailed(f"UnsupportedOperation does not name backend {b.name!r} and "
                                  f"op {name!r}: {msg}") from exc
            return self._lifted(name, b, dev, dt, host)
        raise _StaleDeclaration(
            f"stale declaration: backend {b.name!r} declares {name!r} unsupported "
            f"({b.unsupported[name]}), but it ran; remove it from Backend.unsupported")

    def _lifted(self, name, b, dev, dt, host):
        """Try the op with the declaration lifted: if it now runs right, the declaration is stale."""
        lifted = dataclasses.replace(b, unsupported={k: v for k, v in b.unsupported.items()
                                                     if k != name})
        rec = Recorder(**tolerance("value", dt))
        try:
            with self.polygrad.no_grad():
                got = self._evaluate_value(name, lifted, dev, dt, host)
            probe = Recorder(**tolerance("value", dt))
            probe.close("value", got, self._ref_op(name, dt)["value"])
        except Exception:  # noqa: BLE001 - failing without the declaration is what we expect
            return rec
        if probe.ok:
            raise _StaleDeclaration(
                f"stale declaration: backend {b.name!r} declares {name!r} unsupported "
                f"({b.unsupported[name]}), but without the declaration it runs and matches the "
                f"reference; remove it from Backend.unsupported")
        return rec

    def _fused(self, name, kind, b, dev, dt):
        """The backend's fused kernel against the decomposed primitives, on the same inputs."""
        decomposed = dataclasses.replace(b, fused={})
        got = self.op_run(name, b, dev, dt)
        ref = self.op_run(name, decomposed, dev, dt)
        return self._close_runs(Recorder(**tolerance(kind, dt)), got, ref, keys=(kind,))

    def _plugin_import(self, b):
        """Importing a backend's plugin must not import its array library: polygrad's own
        check (``polygrad.plugins.check_import_is_light``), run on the plugin's entry point."""
        from polygrad.plugins import check_import_is_light, describe
        plugin = next((row["plugin"] for row in describe()
                       if row["name"] == b.name and "unsupported" in row), None)
        if plugin is None or not entry_points(group="polygrad", name=plugin):
            raise _Skip(f"backend {b.name!r} was registered in-process, not from an entry point "
                        f"in the 'polygrad' group")
        rec = Recorder(0.0, 0.0)
        problem = check_import_is_light(plugin)
        if problem is not None:
            rec.fail(problem)
        return rec


def _compiled_note(compiled_fns, rec):
    """Check how a compiled scenario run went (every function replayed, or fell back where
    the scenario declared it would) into ``rec``; return a one-line summary for the report."""
    if not compiled_fns:
        rec.fail("the scenario compiles nothing: pass its computation through ctx.compile, "
                 "or declare why it cannot be (scenario(..., not_compiled=...))")
    hits = calls = 0
    fallbacks = []
    for fn, declared in compiled_fns:
        st = fn.stats
        hits, calls = hits + st.hits, calls + st.calls
        name = getattr(fn, "__qualname__", repr(fn))
        if declared is None and st.fallbacks:
            rec.fail(f"{name} ran eagerly ({st.fallbacks} of {st.calls} calls): "
                     f"{'; '.join(st.reasons) or 'no reason given'}")
        elif declared is None and not st.hits:
            rec.fail(f"{name} never replayed ({st.calls} calls, {st.misses} traces): a "
                     f"compiled check that only traces runs the eager code")
        elif declared is not None and not st.fallbacks:
            rec.fail(f"stale declaration: {name} was declared to fall back ({declared}) but "
                     f"replayed; remove falls_back=")
        elif declared is not None:
            fallbacks.append(declared)
    note = f"{len(compiled_fns)} compiled functions, {hits} of {calls} calls replayed"
    if fallbacks:
        note += "; eager fallback (declared): " + "; ".join(dict.fromkeys(fallbacks))
    return note


class _Skip(Exception):
    """Raised by a check that finds, when it runs, that it cannot apply here."""


class _StaleDeclaration(Exception):
    pass


def _bind(fn, *args):
    return lambda: fn(*args)


def _case(name):
    case = OP_CASES.get(name)
    if case is None:
        raise LookupError(f"primitive {name!r} has no conformance case; add one with "
                          f"polygrad_conformance.register_case(OpCase({name!r}, ...))")
    return case


def _is_float(h):
    return isinstance(h, np.ndarray) and h.dtype.kind == "f"


def _direction(key, shape, in_dtype):
    rng = np.random.default_rng(case_seed(key))
    return rng.standard_normal(shape).astype(in_dtype).astype(np.float64)


def _sym(case, d):
    """Directions stay in the op's domain: symmetric for eigh and cholesky."""
    return (d + np.swapaxes(d, -1, -2)) / 2 if case.symmetric else d


def _grad_or_zero(g, like):
    return np.zeros(np.shape(like)) if g is None else np.real(to_host(g)).astype(np.float64)


def _first_device(b):
    devs = tuple(b.devices())
    return "cpu" if "cpu" in devs else devs[0]


def _known(check):
    from polygrad.plugins import get_backend
    try:
        b = get_backend(check.backend)
    except Exception:  # noqa: BLE001
        return None
    for kf in b.known_failures:
        if fnmatch.fnmatchcase(check.id, kf.match):
            return kf
    return None


def _load_tables():
    """Every primitive the installation defines, so each gets its checks: ``import polygrad``
    registers the whole built-in table; plugins' rows come with plugin discovery."""
    import polygrad  # noqa: F401


def execute(check):
    """Run one check; return its report record (outcome, errors, tol_ratio, worst element)."""
    t0 = time.perf_counter()
    rec, outcome, reason = None, "pass", ""
    if check.skip:
        outcome, reason = "skip", check.skip
    else:
        try:
            rec = check.fn()
            rec.finish()
            if check.expect_unsupported:
                outcome = "unsupported"
        except _Skip as exc:
            outcome, reason = "skip", str(exc)
        except _StaleDeclaration as exc:
            outcome, reason = "xpass-unsupported", str(exc)
        except CheckFailed as exc:
            outcome, reason = "fail", str(exc)
        except Exception as exc:  # noqa: BLE001 - any exception is this check's finding
            outcome, reason = "error", f"{type(exc).__name__}: {exc}"
        if check.known is not None and outcome in ("pass", "fail", "error"):
            if outcome == "pass":
                outcome = "xpass"
                reason = (f"known failure {check.known.match!r} now passes (strict xfail); "
                          f"remove it from Backend.known_failures: {check.known.reason}")
            else:
                reason = f"known failure: {check.known.reason} ({reason})"
                outcome = "xfail"
    worst = rec.worst() if rec is not None else None
    note = getattr(rec, "note", "")
    record = {
        "id": check.id, "case": check.case, "kind": check.kind, "check": check.check,
        "backend": check.backend, "device": check.device, "dtype": check.dtype,
        "outcome": outcome, "reason": reason[:2000],
        "max_abs_err": _num(worst, "max_abs_err"), "max_rel_err": _num(worst, "max_rel_err"),
        "tol_ratio": _num(worst, "tol_ratio"),
        "worst": None if worst is None else dict(worst["worst"], tensor=worst["tensor"]),
        "atol": check.tol.get("atol"), "rtol": check.tol.get("rtol"),
        "duration_s": round(time.perf_counter() - t0, 6),
    }
    if note:
        record["note"] = note
    if check.seed:
        record["tutorial_seed"] = check.seed
    if check.known is not None:
        record["link"] = check.known.link
    return record


def _num(m, key):
    if m is None:
        return None
    v = m[key]
    return v if np.isfinite(v) else None if np.isnan(v) else 1e308
