"""Job payloads: self-contained scripts (bash, python3 standard library) run on a worker.

A package only so that they ship with hodei_stream and the wrappers can share their
constants; nothing here may import hodei_stream, because the worker does not have it.
"""
