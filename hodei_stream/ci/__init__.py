"""Output for CI systems (GitHub Actions, GitLab CI): which one runs us, the lines that open
and close groups and raise annotations there, and the reports they render (JUnit, the step
summary).  The command builders are pure; ``stream/write.py`` is still the only writer of
stream-logs, and the job scripts write through their own ``say``."""
