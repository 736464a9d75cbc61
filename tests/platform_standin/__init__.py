"""A stand-in for the Hodei Jobs Platform's server (release v0.69.1), for the tests: it runs
queued jobs for real, each on a "worker elsewhere" that shares no file with the client, and it
answers with the platform's faults, modelled on how its server is built.

- ``jobs``: JobExecutionService (states, names, exit codes, ListJobs' reset, CancelJob);
- ``logs``: LogStreamService and the per-job lines behind it (1,000 kept, dropped at the
  job's end, the subscription that hangs, sequences as the platform numbers them);
- ``worker``: the worker (mount namespace, batching, dropped batches);
- ``grpclib_reach``: grpc-core's ping policy and the CANCEL reset, grpclib's internals;
- ``channel``: the bounded channels these are built from;
- ``fixture``: the pytest fixtures ``platform``, ``start_platform`` and ``gate``.

Its defaults are the platform's; three options make it gentler, for tests of a client's other
defences: ``--channel-capacity`` (room for a late subscription), ``--true-sequences``, and
``--clock-resolution-ms`` (a coarse worker clock).

By hand, as root::

    python -m tests.platform_standin --ready-file /tmp/ready --hide ~/.local/state/hodei-stream --hide .
    HODEI_GRPC_URL=$(cat /tmp/ready) stream-logs …
"""
