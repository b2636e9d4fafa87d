"""Timing helpers shared by the benchmarks: warm up, repeat, take the median."""

import statistics
import time


def timeit(fn, repeat=7, warmup=2, number=1):
    """Median seconds per call of ``fn`` over ``repeat`` runs of ``number`` calls."""
    return timeit_interleaved({"fn": fn}, repeat, warmup, number)["fn"]


def timeit_interleaved(fns, repeat=7, warmup=2, number=1, clock=time.perf_counter):
    """Median seconds per call of each of ``fns`` (a dict), their runs taken in turn.

    Alternating A, B, A, B... exposes every contender to the same drift in machine load,
    so the ratios stay meaningful on a shared machine where back-to-back blocks would not.
    """
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    runs = {name: [] for name in fns}
    for _ in range(repeat):
        for name, fn in fns.items():
            t0 = clock()
            for _ in range(number):
                fn()
            runs[name].append((clock() - t0) / number)
    return {name: statistics.median(r) for name, r in runs.items()}


def table(rows, headers):
    """A Markdown table."""
    widths = [max(len(str(h)), *(len(str(r[i])) for r in rows)) for i, h in enumerate(headers)]
    line = lambda cells: "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths)) + " |"  # noqa: E731
    return "\n".join([line(headers), line(["-" * w for w in widths])] + [line(r) for r in rows])
