"""The job store: every job and every log line, in memory for the live and in SQLite in the
state folder for good (``job_store.JobStore``; the modules beside it say how)."""

from hodei_stream.server.store.job_store import JobStore, StoreUnavailable
from hodei_stream.server.store.paging import PAGE_BYTES, PAGE_LINES
from hodei_stream.server.store.schema import DATABASE_NAME, SCHEMA
from hodei_stream.server.store.types import EncodedPage, JobRecord

__all__ = [
    "DATABASE_NAME",
    "PAGE_BYTES",
    "PAGE_LINES",
    "SCHEMA",
    "EncodedPage",
    "JobRecord",
    "JobStore",
    "StoreUnavailable",
]
