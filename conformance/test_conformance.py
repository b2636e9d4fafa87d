"""The one parametrized test that ``pytest --pyargs polygrad_conformance`` collects.

Each parameter is a check of the engine (``runner``), with its stable id:
``test_conformance[QS-1/grad-torch-cpu-float32]``; with ``--polygrad-fuzz=SECONDS``,
instead, one differential-fuzzing test per backend: ``test_fuzz[numpy]``. Options come
from the pytest plugin (``--polygrad-backend`` and friends); this file only connects the two.
"""

from polygrad_conformance.pytest_plugin import activate


def pytest_generate_tests(metafunc):
    if "polygrad_check" in metafunc.fixturenames:
        activate(metafunc.config).generate(metafunc)
    if "polygrad_fuzz_backend" in metafunc.fixturenames:
        activate(metafunc.config).generate_fuzz(metafunc)


def test_conformance(polygrad_check, request):
    activate(request.config).run(polygrad_check, request.node)


def test_fuzz(polygrad_fuzz_backend, request):
    activate(request.config).run_fuzz(polygrad_fuzz_backend, request.node)
