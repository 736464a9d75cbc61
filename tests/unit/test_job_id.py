"""The one job-id rule (``api.canonical_job_id``): the server's ``parse_job_id`` and the
command lines' ``check_job_id`` accept the same spellings and give the same canonical form."""

from __future__ import annotations

import uuid

import pytest
from grpclib import GRPCError, Status
from hypothesis import given
from hypothesis import strategies as st

from hodei_stream.api import canonical_job_id, check_job_id
from hodei_stream.exit_codes import ClientError, ExitStatus
from hodei_stream.server.validation import parse_job_id

JOB_ID = "550e8400-e29b-41d4-a716-446655440000"

SPELLINGS = [
    (JOB_ID, JOB_ID),
    (JOB_ID.upper(), JOB_ID),
    ("550E8400-e29b-41D4-a716-446655440000", JOB_ID),
    (f"{{{JOB_ID}}}", None),
    (f"urn:uuid:{JOB_ID}", None),
    (JOB_ID.replace("-", ""), None),
    ("550e8400e29b-41d4-a716-446655440000-", None),
    (f" {JOB_ID}", None),
    (f"{JOB_ID}\n", None),
    ("g50e8400-e29b-41d4-a716-446655440000", None),
    ("not-a-uuid", None),
    ("", None),
    ("x" * 1_000_000, None),
]


def server_answer(text: str) -> str | None:
    try:
        return parse_job_id(text)
    except GRPCError as error:
        refusal = (error.status, (error.message or "").endswith("is not a job id (expected a UUID)"))
    assert refusal == (Status.INVALID_ARGUMENT, True)
    return None


def client_answer(text: str) -> str | None:
    try:
        return check_job_id(text)
    except ClientError as error:
        refusal = (error.status, str(error).endswith("is not a job id (expected a UUID)"))
    assert refusal == (ExitStatus.USAGE, True)
    return None


@pytest.mark.parametrize(("text", "canonical"), SPELLINGS)
def test_server_and_clients_read_a_job_id_alike(text: str, canonical: str | None) -> None:
    assert canonical_job_id(text) == canonical
    assert server_answer(text) == canonical
    assert client_answer(text) == canonical


@given(st.uuids(), st.lists(st.booleans(), min_size=36, max_size=36))
def test_any_case_of_a_uuid_is_its_canonical_form(job_id: uuid.UUID, upper: list[bool]) -> None:
    text = "".join(c.upper() if up else c for c, up in zip(str(job_id), upper, strict=True))
    assert canonical_job_id(text) == server_answer(text) == client_answer(text) == str(job_id)


@given(st.text(alphabet="0123456789abcdefABCDEF-{}:urnid xg", max_size=48))
def test_server_and_clients_agree_on_any_text(text: str) -> None:
    canonical = canonical_job_id(text)
    assert server_answer(text) == client_answer(text) == canonical
    if canonical is not None:
        assert len(text) == 36 and canonical == str(uuid.UUID(text))
