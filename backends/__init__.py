"""polygrad's built-in backends (installed as ``polygrad_backends``).

Each module is a plugin registered through the ``polygrad`` entry-point group,
exactly like a third-party plugin; none imports its array library at import time.
"""
