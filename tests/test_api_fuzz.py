"""The REST API fuzzed from its own OpenAPI document (schemathesis) against a real node.

Every operation is called with generated valid and invalid input as an owner, a customer and a user of another
organization. Checks: no 5xx, status codes and content types as documented, bodies matching the response schemas,
405 answers with ``Allow``. Runs are derandomized so CI is reproducible; set ``TANDEM_FUZZ_EXAMPLES`` for a
deeper run (a 40-example run over 59 operations x 3 roles, about 7,000 requests, passed when this was written).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    positive_data_acceptance,
    response_schema_conformance,
    status_code_conformance,
)

import server.api.endpoints  # noqa: F401  (registers the routes)
from server.api import api
from server.api.openapi import openapi_document
from tests.nodes import Node, seeded_node
from tests.workspace import Workspace

EXAMPLES = int(os.environ.get("TANDEM_FUZZ_EXAMPLES", "8"))


@pytest.fixture(scope="module")
def fuzz_target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Node, Workspace]]:
    with seeded_node(tmp_path_factory.mktemp("fuzz")) as seeded:
        yield seeded


# The same document the app serves at /api/openapi.json (tests/test_openapi.py checks they agree with the routes).
schema = schemathesis.openapi.from_dict(openapi_document(api))


# The role's bearer token, set by the `credential` fixture before each test draws its cases.
_credential: dict[str, str] = {}


@schema.auth(refresh_interval=None)
class RoleToken:
    """Schemathesis' own way to authenticate: its ignored-auth check knows a credential set here as configured
    (a header passed to the call instead would ride along on its probes, and a 200 there would read as "no auth"),
    takes it off for its probes and expects 401, and drops the cookie credential it generated for the other scheme.
    The header is spelled "Authorization": the probes remove the scheme's header by that exact name."""

    def get(self, case: schemathesis.Case, context: object) -> str | None:
        return _credential.get("token")  # None while collecting

    def set(self, case: schemathesis.Case, data: str, context: object) -> None:
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {data}"}


@pytest.fixture
def credential(role: str, fuzz_target: tuple[Node, Workspace]) -> Iterator[None]:
    _credential["token"] = fuzz_target[1].token(role)
    yield
    _credential.clear()


# Refusals of schema-valid input for rules no JSON Schema can state: a one-time code that is not the current one,
# a report dimension or measure that the report's source does not have (the document lists every name a source
# has; which source has which is a rule across two fields), and an id (a ``*_id`` field) naming a row that does not
# exist or that the caller may not use. Every other 422 of schema-valid input is a rule the document should state,
# and fails.
RULES_OUTSIDE_THE_SCHEMA = {"code_wrong", "not_for_source"}


def _outside_the_schema(response: Any) -> bool:
    if response.status_code != 422:
        return False
    body = response.json()
    fields = [detail.get("field", "") for detail in body.get("details", [])]
    return body.get("reason") in RULES_OUTSIDE_THE_SCHEMA or (bool(fields) and all(f.endswith("_id") for f in fields))


@schemathesis.check
def schema_valid_input_is_accepted(ctx: Any, response: Any, case: schemathesis.Case) -> bool | None:
    """schemathesis' positive-data check, except for the refusals `RULES_OUTSIDE_THE_SCHEMA` names."""
    if _outside_the_schema(response):
        return None
    return positive_data_acceptance(ctx, response, case)


@pytest.mark.parametrize("role", ["owner", "customer", "stranger"])
@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@pytest.mark.usefixtures("credential")
def test_api_holds_its_contract(case: schemathesis.Case, role: str, fuzz_target: tuple[Node, Workspace]) -> None:
    node, _ = fuzz_target
    logged = len(node.log())
    case.call_and_validate(
        base_url=node.http,
        excluded_checks=[positive_data_acceptance],
        additional_checks=[schema_valid_input_is_accepted],
    )
    # Only what this case made the node log: one server error fails the case that caused it, not every later one.
    assert "Traceback" not in node.log()[logged:], "the node logged a server error"


# -- the document as the exact contract (schemathesis' conformance checks, valid and invalid input) ----------------

CONTRACT_EXAMPLES = int(os.environ.get("TANDEM_CONTRACT_EXAMPLES", "4"))
CONTRACT_CHECKS = [
    not_a_server_error,
    status_code_conformance,  # every status answered is declared
    content_type_conformance,  # and every content type (CSV, note text, downloads)
    response_schema_conformance,
    negative_data_rejection,  # a body or query the schema refuses is refused (4xx), not accepted
]
contract = schemathesis.openapi.from_dict(openapi_document(api))
contract.config.generation.update(modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE])


@pytest.mark.parametrize("role", ["customer", "staff"])
@contract.parametrize()
@settings(max_examples=CONTRACT_EXAMPLES, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
def test_every_answer_is_one_the_document_declares(
    case: schemathesis.Case, role: str, fuzz_target: tuple[Node, Workspace]
) -> None:
    """As a customer and as staff, against a real node: valid input answered as declared (status, content type,
    schema), invalid input refused with a 4xx. A bounded number of examples per operation (``TANDEM_CONTRACT_EXAMPLES``,
    default 4), so each role's run stays well under a minute."""
    node, ws = fuzz_target
    headers = {"authorization": f"Bearer {ws.token(role)}"}
    response = case.call(base_url=node.http, headers=headers)
    if _not_http(response):
        return
    case.validate_response(
        response, CONTRACT_CHECKS, headers=headers, transport_kwargs={"base_url": node.http, "headers": headers}
    )


# Invalid input may be invalid HTTP: schemathesis' negative cases sometimes carry headers no HTTP/1.1 parser accepts
# (a ``content-length`` of "Z?", a header name with a ";"). uvicorn answers those itself, 400 with this plain-text
# body, before any application sees the request, so the application's document has nothing to say about them.
UVICORN_UNPARSEABLE = "Invalid HTTP request received."


def _not_http(response: Any) -> bool:
    return response.status_code == 400 and response.text == UVICORN_UNPARSEABLE
