"""Schemathesis over every operation of the OpenAPI spec, in process: no input makes the server fail (5xx),
and every answer is one the spec declares, in status code, content type and body schema.

NAS_FUZZ_EXAMPLES sets the examples per operation: the suite runs a small count, `make fuzz` a large one
(it prints how many cases ran)."""

import os
from collections import Counter

import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from api.app import create_app
from api.server import bootstrap_admin
from nas.settings import Settings
from nas.store import repo

EXAMPLES = int(os.environ.get("NAS_FUZZ_EXAMPLES", "8"))
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


def fresh_admin_token(db) -> dict[str, str]:
    """A new token of the admin's for each case: a generated `DELETE /users/me/tokens/{id}` may revoke the
    token it was sent with, and must not lock the rest of the run out."""
    with db.session() as s:
        _, token = repo.create_token(s, user_id=repo.user_by_name(s, "admin").id, name="fuzz")
    return {"Authorization": f"Bearer {token}"}


def fuzz(operation, db, cases: Counter) -> None:
    """EXAMPLES generated requests to one operation, as valid as its spec allows and deliberately invalid,
    each answer checked against the spec."""
    modes = [GenerationMode.POSITIVE, GenerationMode.NEGATIVE]

    @given(case=st.one_of([operation.as_strategy(mode) for mode in modes]))
    @settings(max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    def answers_as_specified(case) -> None:
        response = case.call_and_validate(headers=fresh_admin_token(db), checks=CHECKS)
        cases[(operation.label, response.status_code)] += 1

    answers_as_specified()


def test_every_operation_answers_as_its_spec_says(tmp_path):
    settings_ = Settings(data_dir=tmp_path / "data", admin_token="nas_admin", max_body_bytes=200_000,
                         max_dataset_bytes=1_000_000)
    app = create_app(settings_, run_workers=False)
    bootstrap_admin(app.state.db, settings_)
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    cases: Counter = Counter()
    operations = [result.ok() for result in schema.get_all_operations()]
    for operation in operations:
        fuzz(operation, app.state.db, cases)
    print(f"schemathesis: {sum(cases.values())} cases over {len(operations)} operations, 0 failures")
    assert {label for label, _ in cases} == {op.label for op in operations}  # every operation was exercised
    past_auth = {label for label, status in cases if status != 401}  # negative cases may drop the token
    assert past_auth == {op.label for op in operations}  # every route itself ran, not only authentication
    app.state.db.dispose()
