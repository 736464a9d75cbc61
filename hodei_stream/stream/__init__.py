"""stream-logs: follow jobs' logs and show each line the moment it arrives.

The path a line takes, one module each:

    subscribe.py  SubscribeLogs (+ GetLogs to fill gaps or poll, reconnects) → LogLine records
    wire.py       the gRPC calls on a socket: the driver of http2.py
    http2.py      the HTTP/2 side of a call without I/O: bytes in, typed events out
    messages.py   the few Hodei messages in protobuf's wire format, without protobuf
    (records.py)  the one LogLine record, from the wire to the formatter
    format.py     LogLine → text: pure functions, table-tested
    write.py      the only place that writes, flushes, or meets a broken pipe
    cli.py        the command line that wires them together, and exit statuses
"""
