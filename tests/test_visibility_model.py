"""Proof, not examples: a model-based test of who may see what, against a real node on SQLite and on PostgreSQL.

Hypothesis drives random sequences of staff actions (tasks, milestones and their completion, feedback requests,
notes with their text, versions and sharing, comments, files on tasks, comments and requests, requests merged into
tasks, moves, deletions) in a fresh project per example. After every step, a customer member, a viewer member and a
customer of another client read everything they can: every GET route of the OpenAPI document, with the id of every
item the model knows (internal, shared and deleted ones) and every query parameter worth varying (search, counts,
CSV, exports, versions, feedback, unread counts), their `/ws` streams, and `/yjs` note sockets. The oracle
(tests/visibility_model.py) says what they may see: a shared item whose parents are all shared, in a project of
theirs. Any hidden item's marker or id in any answer fails, and so does a refusal for a hidden id that differs by a
byte from the refusal for a missing one.

README: run it with `pytest tests/test_visibility_model.py` (marked slow; CI=true derandomizes it). A failure prints
the steps in the corpus's format: add them to tests/visibility_corpus.py, where `test_corpus` replays every known
failing sequence on both databases, so what was once found stays fixed.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from tests.conftest import copy_workspace, postgres_database
from tests.nodes import cluster
from tests.visibility_corpus import CORPUS, OPEN
from tests.visibility_model import Env, Loop, Scenario, get_routes
from tests.visibility_oracle import Leak
from tests.workspace import Workspace, write_seed_blobs

pytestmark = [pytest.mark.slow]

CI = os.environ.get("CI") == "true"
# Examples per database; PostgreSQL's take about twice as long, so it runs half as many unless told (the corpus
# replays the same sequences on both).
EXAMPLES = {"sqlite": 6, "postgresql": 3}
MODEL_SETTINGS = settings(
    max_examples=EXAMPLES["sqlite"],
    stateful_step_count=10,
    deadline=None,
    derandomize=CI,
    database=None if CI else settings.default.database,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    print_blob=True,
)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def env(
    request: pytest.FixtureRequest,
    workspace_template: tuple[Path, Workspace],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Env]:
    """One real node per database for the whole module, on a copy of the seeded workspace."""
    folder = tmp_path_factory.mktemp(f"model-{request.param}")
    if request.param == "sqlite":
        copy_workspace(workspace_template[0], folder)
        yield from _node(folder, f"sqlite:///{folder / 'tandem.db'}", workspace_template[1])
        return
    template, ws = request.getfixturevalue("pg_template")
    write_seed_blobs(folder / "files")
    with postgres_database(template) as url:
        yield from _node(folder, url, ws)


def _node(folder: Path, url: str, ws: Workspace) -> Iterator[Env]:
    # The readers send thousands of requests a minute: the REST limits are off here (tests/test_ratelimit.py).
    limits = {
        "TANDEM_API_REQUESTS_PER_MINUTE_PER_IP": "0",
        "TANDEM_API_REQUESTS_PER_MINUTE_PER_USER": "0",
        "TANDEM_API_WRITES_PER_MINUTE_PER_USER": "0",
    }
    with cluster(folder, url, None, count=1, extra_env=limits) as nodes:
        node = nodes[0]
        document = httpx.get(node.http + "/api/openapi.json", timeout=10).json()
        loop = Loop()
        try:
            yield Env(node.http, node.ws, ws, loop, get_routes(document), document=document)
        finally:
            loop.close()


def machine_for(env: Env) -> type[RuleBasedStateMachine]:
    """The state machine bound to ``env``: each example gets a fresh project; rules are staff actions."""

    index = st.integers(min_value=0, max_value=7)
    shared = st.booleans()

    class VisibilityMachine(RuleBasedStateMachine):
        scenario: Scenario

        @initialize()
        def start(self) -> None:
            self.scenario = Scenario(env, env.document)

        def teardown(self) -> None:
            if hasattr(self, "scenario"):
                self.scenario.close()

        def do(self, name: str, **args: Any) -> None:
            try:
                self.scenario.step(name, **args)
            except AssertionError as exc:
                exc.add_note("As a corpus entry (tests/visibility_corpus.py):\n" + repr(self.scenario.steps))
                raise

        def has(self, kind: str) -> bool:
            return bool(self.scenario.world.of(kind))

        @rule(shared=shared, milestone=st.none() | index)
        def create_task(self, shared: bool, milestone: int | None) -> None:
            self.do("create_task", shared=shared, milestone=milestone if self.has("milestone") else None)

        @precondition(lambda self: self.has("task"))
        @rule(task=index, shared=shared)
        def set_task_visibility(self, task: int, shared: bool) -> None:
            self.do("set_task_visibility", task=task, shared=shared)

        @precondition(lambda self: self.has("task"))
        @rule(task=index, status=index)
        def move_task(self, task: int, status: int) -> None:
            self.do("move_task", task=task, status=status)

        @precondition(lambda self: self.has("task"))
        @rule(task=index)
        def delete_task(self, task: int) -> None:
            self.do("delete_task", task=task)

        @rule(shared=shared)
        def create_milestone(self, shared: bool) -> None:
            self.do("create_milestone", shared=shared)

        @precondition(lambda self: self.has("milestone"))
        @rule(milestone=index, shared=shared)
        def set_milestone_visibility(self, milestone: int, shared: bool) -> None:
            self.do("set_milestone_visibility", milestone=milestone, shared=shared)

        @precondition(lambda self: self.has("milestone"))
        @rule(milestone=index)
        def complete_milestone(self, milestone: int) -> None:
            self.do("complete_milestone", milestone=milestone)

        @rule(milestone=st.none() | index)
        def ask_feedback(self, milestone: int | None) -> None:
            self.do("ask_feedback", milestone=milestone if self.has("milestone") else None)

        @rule(shared=shared, task=st.none() | index)
        def create_note(self, shared: bool, task: int | None) -> None:
            self.do("create_note", shared=shared, task=task if self.has("task") else None)

        @precondition(lambda self: self.has("note"))
        @rule(note=index, shared=shared)
        def set_note_visibility(self, note: int, shared: bool) -> None:
            self.do("set_note_visibility", note=note, shared=shared)

        @precondition(lambda self: self.has("note"))
        @rule(note=index)
        def write_note(self, note: int) -> None:
            self.do("write_note", note=note)

        @precondition(lambda self: self.has("note"))
        @rule(note=index)
        def delete_note(self, note: int) -> None:
            self.do("delete_note", note=note)

        @precondition(lambda self: self.has("note"))
        @rule(note=index)
        def save_version(self, note: int) -> None:
            self.do("save_version", note=note)

        @precondition(lambda self: self.has("task"))
        @rule(task=index, shared=shared)
        def comment(self, task: int, shared: bool) -> None:
            self.do("comment", task=task, shared=shared)

        @precondition(lambda self: self.has("comment"))
        @rule(comment=index)
        def delete_comment(self, comment: int) -> None:
            self.do("delete_comment", comment=comment)

        @rule(on=st.sampled_from(["project", "task", "comment", "request"]), index=index, shared=st.none() | shared)
        def upload_file(self, on: str, index: int, shared: bool | None) -> None:
            self.do("upload_file", on=on if on == "project" or self.has(on) else "project", index=index, shared=shared)

        @rule()
        def create_request(self) -> None:
            self.do("create_request")

        @precondition(lambda self: self.has("request") and self.has("task"))
        @rule(request=index, task=index)
        def merge_request(self, request: int, task: int) -> None:
            self.do("merge_request", request=request, task=task)

        @invariant()
        def nothing_more(self) -> None:
            # The check runs after every step (Scenario.step); this makes the initial state checked too.
            if hasattr(self, "scenario") and not self.scenario.steps:
                self.scenario.check()

    return VisibilityMachine


def test_customers_see_nothing_more_than_the_oracle_shows(env: Env, request: pytest.FixtureRequest) -> None:
    database = request.node.callspec.params["env"]
    examples = int(os.environ.get("TANDEM_MODEL_EXAMPLES", EXAMPLES[database]))
    run_state_machine_as_test(machine_for(env), settings=settings(MODEL_SETTINGS, max_examples=examples))


@pytest.mark.parametrize(
    "name",
    [
        pytest.param(name, marks=pytest.mark.xfail(raises=Leak, strict=True, reason=OPEN[name]))
        if name in OPEN
        else name
        for name in sorted(CORPUS)
    ],
)
def test_corpus(env: Env, name: str) -> None:
    """Step sequences that once found a leak, replayed exactly."""
    scenario = Scenario(env, env.document)
    try:
        scenario.check()
        for step, args in CORPUS[name]:
            scenario.step(step, **args)
    finally:
        scenario.close()
