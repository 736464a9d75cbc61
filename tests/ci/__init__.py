"""CI output: our commands as GitHub Actions and GitLab CI read them, and the reports."""
