"""The one parametrized test that ``pytest --pyargs polygrad_conformance`` collects.

Each parameter is a check of the engine (``runner``), with its stable id:
``test_conformance[QS-1/grad-torch-cpu-float32]``. Options come from the pytest plugin
(``--polygrad-backend`` and friends); this file only connects the two.
"""

from polygrad_conformance.pytest_plugin import activate


def pytest_generate_tests(metafunc):
    if "polygrad_check" in metafunc.fixturenames:
        activate(metafunc.config).generate(metafunc)


def test_conformance(polygrad_check, request):
    activate(request.config).run(polygrad_check, request.node)
