"""The step summary (GitHub's ``GITHUB_STEP_SUMMARY``): a script's final summary as Markdown.

The same rows and table the script prints, as a heading, a two-column table of its
``label: value`` rows, and its own table (stages, timeline).  Cells are kept to one line
and their ``|`` escaped, so that a value cannot break the table.
"""

from __future__ import annotations

from collections.abc import Sequence

ENV_STEP_SUMMARY = "GITHUB_STEP_SUMMARY"


def cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|") or " "


def markdown_table(rows: Sequence[Sequence[str]]) -> list[str]:
    """A Markdown table: the first row is its header."""
    header, *body = rows
    lines = ["| " + " | ".join(cell(value) for value in header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(cell(value) for value in row) + " |" for row in body]


def markdown_summary(title: str, rows: Sequence[tuple[str, str]], table: Sequence[Sequence[str]] = ()) -> str:
    """A summary block as Markdown (ends with a blank line, so that blocks appended follow)."""
    lines = [f"### {cell(title)}", "", *markdown_table([("", ""), *rows])]
    if table:
        lines += ["", *markdown_table(table)]
    return "\n".join(lines) + "\n\n"


def append_step_summary(path: str, markdown: str) -> None:
    """Append to the step summary file (GitHub renders it on the run's page)."""
    with open(path, "a", encoding="utf-8") as file:
        file.write(markdown)
