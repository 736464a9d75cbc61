"""hodei-stream: follow a Hodei Jobs Platform job's log live, and an embedded server to run jobs on.

The streaming path reads top to bottom in ``hodei_stream.stream``: subscribe → records →
format → write.  The embedded server lives in ``hodei_stream.server``; the Python behind the
bash job scripts in ``hodei_stream.jobs``.
"""

__version__ = "0.1.0"
