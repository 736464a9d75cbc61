"""The Python behind ``job_scripts/*.sh``: one ``JobScript`` per script, its payloads beside it."""
