"""polygrad's conformance suite (installed as ``polygrad_conformance``)."""
