"""How long `import polygrad` takes in a fresh interpreter (median of 7), against `import numpy`."""

import statistics
import subprocess
import sys


def measure(stmt, n=7):
    code = f"import time; t=time.perf_counter(); {stmt}; print(time.perf_counter()-t)"
    return statistics.median(
        float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             check=True).stdout) for _ in range(n))


if __name__ == "__main__":
    numpy_s = measure("import numpy")
    pg_s = measure("import polygrad")
    print(f"import numpy:    {numpy_s * 1e3:.1f} ms")
    print(f"import polygrad: {pg_s * 1e3:.1f} ms (includes numpy-free core; target < 150 ms)")
