"""``python -m hodei_stream.bench`` (``hodei bench``): how fast lines reach the screen.

Scenarios, one module each, all measured beside the baselines in one run:

    latency.py   a job writes stamped lines at a steady rate; each client under a pty and into a pipe
    burst.py     a million lines as fast as they come: lines/s and a once-and-in-order check
    startup.py   from starting a client to its first line on screen
    fanout.py    many followers on one job: all lines to all, latency, the server's peak memory
    batching.py  the worker's LogBatcher as the original had it, as the seed set it, and ours
    load.py      many jobs at once as fast as seq writes, with followers: lines/s, peak memory
                 (also standalone: python -m hodei_stream.bench.load)

    measure.py   what the numbers are: parsing stamped lines, loss/order, percentiles (pure)
    capture.py   running a client under a pseudo-terminal or into a pipe, timing what it prints
    clients.py   the clients compared: stream-logs and the baselines
    followers.py many followers in one process (fan-out, load), so the server is what is measured
    tools.py     the baselines' set-up (--setup): grpcurl, jq, the native C++ client
    servers.py   the servers run against: embedded servers per setting, the native stand-in
    report.py    the table and the JSON
"""
