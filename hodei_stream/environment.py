"""What a command takes from the process it runs in: the environment variables it reads."""

from __future__ import annotations

# Set by job_scripts/stream-logs: the launcher the user ran, for "watch it again" hints.
ENV_LAUNCHER = "HODEI_STREAM_LAUNCHER"
