"""JUnit XML reports (``--junit FILE``): one testsuite, one testcase per job or stage.

A testcase has its time in seconds; a failed one a ``<failure>`` with the error message
and the last lines of its log, one not followed to its end (Ctrl+C, a lost server) an
``<error>`` saying why, with the same lines, a skipped one ``<skipped>``.  Both CIs render this shape
(GitLab through ``artifacts:reports:junit``).  Text XML 1.0 cannot hold (most control
characters, lone surrogates) is written as ``\\xHH`` / ``\\uHHHH``; the file is replaced
atomically, so a reader never sees half a report.
"""

from __future__ import annotations

import os
import re
import tempfile
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

# What XML 1.0 forbids: every character outside Char ::= #x9 | #xA | #xD | [#x20-#xD7FF] |
# [#xE000-#xFFFD] | [#x10000-#x10FFFF].
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


class ReportCase(NamedTuple):
    """One job or stage as a testcase."""

    name: str
    classname: str
    time_s: float
    failure: str | None = None  # the error message of a job that did not complete
    log_tail: Sequence[str] = ()  # its last lines, in the failure's text
    skipped: str | None = None  # why a stage never ran
    error: str | None = None  # why the job was not followed to its end (it may go on)


def xml_safe(text: str) -> str:
    """``text`` with the characters XML 1.0 cannot hold written as escapes."""

    def escape(match: re.Match[str]) -> str:
        code = ord(match.group())
        return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"

    return _NOT_XML.sub(escape, text)


def junit_xml(suite: str, cases: Sequence[ReportCase]) -> bytes:
    """The report of ``cases`` as one testsuite named ``suite``."""
    failures = sum(1 for case in cases if case.failure is not None)
    skipped = sum(1 for case in cases if case.skipped is not None)
    errors = sum(1 for case in cases if case.error is not None)
    total_s = sum(case.time_s for case in cases)
    root = ET.Element("testsuites", name=xml_safe(suite), tests=str(len(cases)), failures=str(failures))
    element = ET.SubElement(
        root,
        "testsuite",
        name=xml_safe(suite),
        tests=str(len(cases)),
        failures=str(failures),
        errors=str(errors),
        skipped=str(skipped),
        time=f"{total_s:.3f}",
    )
    for case in cases:
        testcase = ET.SubElement(
            element, "testcase", name=xml_safe(case.name), classname=xml_safe(case.classname), time=f"{case.time_s:.3f}"
        )
        message = case.failure if case.failure is not None else case.error
        if message is not None:
            tag, kind = ("failure", "JobFailed") if case.failure is not None else ("error", "NotFollowed")
            problem = ET.SubElement(testcase, tag, message=xml_safe(message), type=kind)
            problem.text = xml_safe("\n".join([message, *case.log_tail]))
        elif case.skipped is not None:
            ET.SubElement(testcase, "skipped", message=xml_safe(case.skipped))
    ET.indent(root)
    document: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return document + b"\n"


def write_junit(path: str | Path, suite: str, cases: Sequence[ReportCase]) -> None:
    """Write the report to ``path`` atomically (a file beside it, then renamed over it)."""
    target = Path(path)
    data = junit_xml(suite, cases)
    descriptor, temporary = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent or ".")
    try:
        with os.fdopen(descriptor, "wb") as file:
            file.write(data)
        os.chmod(temporary, 0o644)
        os.replace(temporary, target)
    except BaseException:
        os.unlink(temporary)
        raise
