"""The embedded Hodei-compatible server: the default when no ``HODEI_GRPC_URL`` is set.

The pipeline reads in the file names: ``supervisor`` (one small process per job: runs it
under pseudo-terminals, captures and numbers its lines) → ``supervisor_protocol`` (their socket protocol)
→ ``worker`` (starts supervisors, receives their lines and exit) → ``store`` (every line in
SQLite, recent ones in memory) → ``fanout`` (wakes subscribers, who pull from the store) →
``servicers`` (the thin gRPC layer) → ``app`` (``create_server``) → ``daemon``
(``hodei-server run|start|stop|status``).
"""
