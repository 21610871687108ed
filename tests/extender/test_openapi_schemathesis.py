"""schemathesis against the served OpenAPI document: generated requests (valid and invalid
ExtenderArgs, probes, metrics) must never produce a server error, and every response must match
its documented schema, status code and content type.

schemathesis' own pytest plugin does not run under pytest 9 here, so its Hypothesis strategies
are driven directly.
"""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from casa_sched.devcluster.payloads import plan_doc
from tests.extender.support import LiveServer


@pytest.mark.parametrize("mode", [schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE], ids=str)
def test_no_server_errors_and_responses_match_the_schema(live: LiveServer, mode: schemathesis.GenerationMode) -> None:
    live.harness.load_plan(plan_doc({"thumbnail": ["n1", "n2"], "resize": ["n3"]}))
    schema = schemathesis.openapi.from_url(f"{live.url}/openapi.json")
    calls: list[int] = []

    @given(case=schema.as_strategy(generation_mode=mode))
    @settings(max_examples=250, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    def run(case: Any) -> None:
        response = case.call_and_validate(base_url=live.url)
        assert response.status_code < 500
        calls.append(response.status_code)

    run()
    assert len(calls) >= 50
    if mode is schemathesis.GenerationMode.POSITIVE:
        assert 200 in calls
