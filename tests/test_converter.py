"""The contract converter: strict structuring, one-line errors with paths."""

from __future__ import annotations

import pytest

from hostsim.contract.converter import structure, unstructure
from hostsim.contract.errors import ConfigurationError, InvalidInput
from hostsim.contract.model import (
    AccountRef,
    CreateRequest,
    OperationResult,
    Step,
    StepStatus,
)


def test_a_valid_payload_round_trips() -> None:
    payload = {
        "email": "a@example.com",
        "first_name": "A",
        "last_name": None,
        "display_name": None,
        "attributes": {"department": "R"},
        "grants": ["group:devs"],
        "exclusive": False,
        "checked_absent": False,
    }
    request = structure(payload, CreateRequest)
    assert request.grants == ("group:devs",)
    assert unstructure(request) == payload


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({}, "required field missing @ $.email"),
        ({"email": 5}, "expected str @ $.email"),
        ({"email": "a@b.c", "grants": "group:devs"}, "@ $.grants"),
        ({"email": "a@b.c", "grants": ["group:devs", 3]}, "@ $.grants"),
        ({"email": "a@b.c", "attributes": {"k": 1}}, "@ $.attributes"),
        ({"email": "a@b.c", "first_nam": "A"}, "extra fields found (first_nam) @ $"),
    ],
)
def test_invalid_payloads_are_refused_with_their_path(
    payload: dict[str, object], message: str
) -> None:
    with pytest.raises(InvalidInput) as caught:
        structure(payload, CreateRequest, what="create request")
    assert message in str(caught.value)
    assert str(caught.value).startswith("invalid create request: ")


def test_the_error_class_is_the_callers_choice() -> None:
    with pytest.raises(ConfigurationError):
        structure({}, CreateRequest, error=ConfigurationError)


def test_results_unstructure_to_json_data() -> None:
    result = OperationResult(
        "grant", AccountRef("AIDA1", "a@b.c", "a@b.c"), (Step("grant", "group:x", StepStatus.DONE),)
    )
    assert result.changed is True
    assert unstructure(result) == {
        "operation": "grant",
        "account": {"id": "AIDA1", "name": "a@b.c", "email": "a@b.c"},
        "steps": [{"action": "grant", "target": "group:x", "status": "done", "detail": ""}],
    }
