"""Code generated from ``protos/hodei.proto`` at build time (see ``build_backend.py``).

The ``*_pb2*.py``, ``*_pb2.pyi`` and ``hodei_grpc.py`` files beside this one are written by
the build backend (``generate.py``) into every wheel, and into the source tree for an
editable install (``install.sh``); never edited or committed.  ``tests/unit/test_generated.py``
fails when they are stale.
"""
