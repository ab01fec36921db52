"""The REST and FHIR API against its own OpenAPI document: schemathesis generates requests for every operation,
valid and invalid, signed in with a token; no answer is a server error, and every answer matches the schema the
API declares for it.

Each operation's strategy is run with Hypothesis directly (schemathesis' pytest plugin does not run on pytest 9).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error, response_schema_conformance

from mutual.web.app import create_app
from test_web_api import Api, open_api

CHECKS = [not_a_server_error, response_schema_conformance]


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    tmp = tmp_path_factory.mktemp("schema")
    yield from open_api(tmp / "ws", tmp)


@pytest.fixture
def operations(api: Api) -> list[Any]:
    """The operations of a fresh app over the module's workspace (schemathesis ends the app's lifespan)."""
    schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(mutual=api.mutual))
    found = [result.ok() for result in schema.get_all_operations()]
    assert len(found) >= 25, "every API and FHIR operation is in the document"
    return found


def fuzz(operation: Any, token: str, examples: int) -> None:
    @given(case=operation.as_strategy())
    @settings(max_examples=examples, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True,
              database=None)
    def run(case: Any) -> None:
        case.call_and_validate(headers={"Authorization": f"Bearer {token}"}, checks=CHECKS)

    try:
        run()
    except Exception as exc:
        raise AssertionError(f"{operation.method.upper()} {operation.path}: {exc}") from exc


@pytest.mark.parametrize(("user", "examples"), [("nat", 12), ("trust", 5), ("plan", 5)])
def test_no_request_makes_a_server_error_or_an_answer_outside_the_schema(api: Api, operations: list[Any],
                                                                         user: str, examples: int) -> None:
    failures = []
    for operation in operations:
        try:
            fuzz(operation, api.tokens[user], examples)
        except AssertionError as exc:
            failures.append(str(exc)[:1500])
    assert not failures, "\n\n".join(failures)
