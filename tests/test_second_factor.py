"""Second factors through the API: authenticator codes with a clock that steps (the server's injected clock, no
sleeps), a stolen password alone failing, recovery codes working once each, and an organization's rule sending a
person without a factor through enrolment before anything else."""

from __future__ import annotations

from typing import Any

import pyotp
import pytest
from starlette.testclient import TestClient

from server.accounts.second_factor import accepted_step, recovery_hash, seal, unseal
from tests.workspace import PASSWORD, Workspace

T0 = 1_800_000_000.0  # a fixed instant, on a 30-second step boundary


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(client: TestClient) -> Clock:
    tick = Clock(T0)
    client.app.state.services.auth.clock = tick  # type: ignore[attr-defined]
    return tick


def login(client: TestClient, email: str, password: str = PASSWORD) -> dict[str, Any]:
    client.cookies.clear()
    answer = client.post("/api/auth/login", json={"email": email, "password": password})
    assert answer.status_code == 200, answer.text
    return answer.json()  # type: ignore[no-any-return]


def auth(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def enrol_totp(client: TestClient, token: str, clock: Clock) -> tuple[str, list[str]]:
    """Turn authenticator codes on for the session's person; returns the secret and the recovery codes."""
    setup = client.post("/api/me/totp", headers=auth(token))
    assert setup.status_code == 200, setup.text
    secret = setup.json()["secret"]
    assert setup.json()["uri"].startswith("otpauth://totp/Tandem:")
    wrong = client.post("/api/me/totp/confirm", json={"code": "000000"}, headers=auth(token))
    assert wrong.status_code == 422 and wrong.json()["reason"] == "code_wrong"
    code = pyotp.TOTP(secret).at(clock.now)
    done = client.post("/api/me/totp/confirm", json={"code": code}, headers=auth(token))
    assert done.status_code == 200, done.text
    codes = done.json()["codes"]
    assert len(codes) == 10 and len(set(codes)) == 10
    return secret, codes


def test_sealed_values_expire_and_cannot_be_forged() -> None:
    sealed = seal("k" * 32, "sign-in", {"uid": 7}, T0, minutes=5)
    assert unseal("k" * 32, "sign-in", sealed, T0 + 299) == {"uid": 7, "exp": int(T0) + 300}
    assert unseal("k" * 32, "sign-in", sealed, T0 + 301) is None
    assert unseal("k" * 32, "webauthn-register", sealed, T0) is None  # another purpose
    assert unseal("x" * 32, "sign-in", sealed, T0) is None  # another key
    # Text no seal makes (the fuzzer sent these) is refused, never an error.
    assert unseal("k" * 32, "sign-in", sealed + "é", T0) is None
    assert unseal("k" * 32, "sign-in", "ü.ö", T0) is None
    assert accepted_step(pyotp.random_base32(), "١٢٣٤٥٦", T0, 0) is None  # Arabic-Indic digits are digits too
    assert recovery_hash("ABCDE-fghjk") == recovery_hash("abcde fghjk")


def test_a_stolen_password_alone_fails_and_codes_step_with_the_clock(
    client: TestClient, workspace: Workspace, clock: Clock
) -> None:
    email = workspace.emails["spare_staff"]
    first = login(client, email)
    assert first["token"] and first["second_factor"] is None
    secret, _ = enrol_totp(client, first["token"], clock)
    totp = pyotp.TOTP(secret)

    # The password alone: no session, no cookie, only a ticket for the second step.
    stolen = login(client, email)
    assert stolen["token"] is None and stolen["user"] is None
    assert stolen["second_factor"]["methods"] == ["totp", "recovery"]
    assert "tandem_session" not in client.cookies
    assert client.get("/api/me").status_code == 401
    ticket = stolen["second_factor"]["ticket"]
    refused = client.post("/api/auth/second-factor", json={"ticket": ticket, "code": "123456"})
    assert refused.status_code == 401 and refused.json()["error"] == "second_factor_invalid"

    # The code that confirmed the app is spent; the next step's works, once (an overheard code is spent).
    assert (
        client.post("/api/auth/second-factor", json={"ticket": ticket, "code": totp.at(clock.now)}).status_code == 401
    )
    clock.now += 30
    code = totp.at(clock.now)
    passed = client.post("/api/auth/second-factor", json={"ticket": ticket, "code": code})
    assert passed.status_code == 200, passed.text
    assert passed.json()["user"]["email"] == email
    assert client.get("/api/me", headers=auth(passed.json()["token"])).status_code == 200
    again = client.post("/api/auth/second-factor", json={"ticket": ticket, "code": code})
    assert again.status_code == 401

    # Two steps later the old code is dead and the new one works; one step of drift either way is allowed.
    clock.now += 60
    ticket = login(client, email)["second_factor"]["ticket"]
    stale = client.post("/api/auth/second-factor", json={"ticket": ticket, "code": totp.at(clock.now - 60)})
    assert stale.status_code == 401
    late = client.post("/api/auth/second-factor", json={"ticket": ticket, "code": totp.at(clock.now - 30)})
    assert late.status_code == 200, late.text

    # A ticket lives five minutes.
    ticket = login(client, email)["second_factor"]["ticket"]
    clock.now += 301
    expired = client.post("/api/auth/second-factor", json={"ticket": ticket, "code": totp.at(clock.now)})
    assert expired.status_code == 401 and expired.json()["error"] == "sign_in_expired"


def test_recovery_codes_work_once_each(client: TestClient, workspace: Workspace, clock: Clock) -> None:
    email = workspace.emails["spare_customer"]
    token = login(client, email)["token"]
    _, codes = enrol_totp(client, token, clock)
    clock.now += 30
    for code in codes[:2]:
        ticket = login(client, email)["second_factor"]["ticket"]
        used = client.post("/api/auth/second-factor", json={"ticket": ticket, "recovery_code": code.upper()})
        assert used.status_code == 200, used.text
        ticket = login(client, email)["second_factor"]["ticket"]
        reused = client.post("/api/auth/second-factor", json={"ticket": ticket, "recovery_code": code})
        assert reused.status_code == 401
    mine = client.get("/api/me/second-factor", headers=auth(used.json()["token"])).json()
    assert mine["totp"] is True and mine["recovery_codes_left"] == 8
    # New codes replace the old: an unused old one stops working.
    fresh = client.post("/api/me/recovery-codes", headers=auth(used.json()["token"])).json()["codes"]
    ticket = login(client, email)["second_factor"]["ticket"]
    assert client.post("/api/auth/second-factor", json={"ticket": ticket, "recovery_code": codes[5]}).status_code == 401
    assert client.post("/api/auth/second-factor", json={"ticket": ticket, "recovery_code": fresh[0]}).status_code == 200


def test_an_organization_requiring_a_factor_sends_staff_through_enrolment(
    client: TestClient, workspace: Workspace, clock: Clock
) -> None:
    owner = auth(workspace.token("owner"))
    assert client.patch(
        "/api/organization/security", json={"require_second_factor_staff": True}, headers=owner
    ).json() == {
        "require_second_factor_staff": True,
        "require_second_factor_customers": False,
    }
    # A customer is not asked; staff are.
    assert login(client, workspace.emails["customer"])["enrolment_required"] is False
    answer = login(client, workspace.emails["staff"])
    assert answer["enrolment_required"] is True
    token = answer["token"]
    session = client.get("/api/auth/session", headers=auth(token)).json()
    assert session["enrolment_required"] is True
    # Until a factor exists, the session reaches nothing but enrolment.
    blocked = client.get("/api/projects", headers=auth(token))
    assert blocked.status_code == 403 and blocked.json()["error"] == "enrolment_required"
    assert client.get("/api/me/second-factor", headers=auth(token)).json()["required"] is True
    enrol_totp(client, token, clock)
    assert client.get("/api/projects", headers=auth(token)).status_code == 200
    assert client.get("/api/auth/session", headers=auth(token)).json()["enrolment_required"] is False
    # The last factor cannot be removed while the organization requires one.
    refused = client.delete("/api/me/totp", headers=auth(token))
    assert refused.status_code == 409 and refused.json()["error"] == "second_factor_required"
    # Staff other than the owner may not change the rule.
    staff = client.patch("/api/organization/security", json={"require_second_factor_staff": False}, headers=auth(token))
    assert staff.status_code == 403


def test_second_factor_events_are_audited(client: TestClient, workspace: Workspace, clock: Clock) -> None:
    email = workspace.emails["spare_staff"]
    secret, _ = enrol_totp(client, login(client, email)["token"], clock)
    ticket = login(client, email)["second_factor"]["ticket"]
    client.post("/api/auth/second-factor", json={"ticket": ticket, "code": "999999"})
    client.post("/api/auth/second-factor", json={"ticket": ticket, "code": pyotp.TOTP(secret).at(clock.now + 30)})
    owner = auth(workspace.token("owner"))
    actions = {
        event["action"]
        for prefix in ("auth.", "second_factor.")
        for event in client.get(f"/api/audit?action={prefix}", headers=owner).json()["items"]
    }
    assert {"second_factor.totp_added", "auth.second_factor_failed", "auth.second_factor"} <= actions


def test_an_organization_requiring_a_factor_for_customers_sends_customers_through_enrolment(
    client: TestClient, workspace: Workspace, clock: Clock
) -> None:
    owner = auth(workspace.token("owner"))
    rule = client.patch("/api/organization/security", json={"require_second_factor_customers": True}, headers=owner)
    assert rule.json() == {"require_second_factor_staff": False, "require_second_factor_customers": True}
    # Staff are not asked now; customers (and viewers, who are customers too) are.
    assert login(client, workspace.emails["staff"])["enrolment_required"] is False
    assert login(client, workspace.emails["viewer"])["enrolment_required"] is True
    answer = login(client, workspace.emails["customer"])
    assert answer["enrolment_required"] is True
    token = answer["token"]
    for path in ("/api/projects", "/api/me/waiting", f"/api/tasks/{workspace.ids['px_shared_task']}"):
        blocked = client.get(path, headers=auth(token))
        assert blocked.status_code == 403 and blocked.json()["error"] == "enrolment_required", path
    assert client.get("/api/me/second-factor", headers=auth(token)).json()["required"] is True
    enrol_totp(client, token, clock)
    assert client.get("/api/projects", headers=auth(token)).status_code == 200
    refused = client.delete("/api/me/totp", headers=auth(token))
    assert refused.status_code == 409 and refused.json()["error"] == "second_factor_required"
    # The next sign-in asks for the factor just set up.
    again = login(client, workspace.emails["customer"])
    assert again["token"] is None and again["second_factor"]["methods"] == ["totp", "recovery"]
