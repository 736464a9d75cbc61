"""Code generated from ``protos/hodei.proto`` at install time (see ``generate.py``).

The ``*_pb2*.py``, ``*_pb2.pyi`` and ``hodei_grpc.py`` files beside this one are written by
``install.sh`` and never edited or committed; ``tests/unit/test_generated.py`` fails when they
are stale.
"""
