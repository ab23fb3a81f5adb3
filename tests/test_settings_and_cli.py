"""Configuration from the environment, and the `tandem` command."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from server.settings import ConfigurationError, load_settings

ROOT = Path(__file__).resolve().parent.parent


def test_defaults_embed_everything(tmp_path: Path) -> None:
    settings = load_settings({"TANDEM_DATA_DIR": str(tmp_path)})
    assert settings.database_url == f"sqlite:///{tmp_path / 'tandem.db'}"
    assert settings.redis_url is None and settings.smtp is None
    assert len(settings.secret_key) >= 32
    # The generated development key is kept, so sessions survive a restart.
    assert load_settings({"TANDEM_DATA_DIR": str(tmp_path)}).secret_key == settings.secret_key
    assert (tmp_path / "secret_key").stat().st_mode & 0o777 == 0o600


def test_production_requires_a_secret_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="TANDEM_SECRET_KEY"):
        load_settings({"TANDEM_ENV": "production", "TANDEM_DATA_DIR": str(tmp_path)})
    with pytest.raises(ConfigurationError, match="32"):
        load_settings({"TANDEM_ENV": "production", "TANDEM_SECRET_KEY": "short"})
    settings = load_settings(
        {"TANDEM_ENV": "production", "TANDEM_SECRET_KEY": "p" * 40, "TANDEM_BASE_URL": "https://tandem.example.com/"}
    )
    assert settings.production and settings.secure_cookies and not settings.auto_migrate
    assert settings.base_url == "https://tandem.example.com"


def test_environment_is_read_once_into_settings() -> None:
    settings = load_settings(
        {
            "TANDEM_SECRET_KEY": "k" * 40,
            "TANDEM_DATABASE_URL": "postgresql://u@db/tandem",
            "TANDEM_REDIS_URL": "redis://cache:6379/0",
            "PORT": "9001",
            "TANDEM_SMTP_HOST": "smtp.example.com",
            "TANDEM_SMTP_PORT": "2525",
            "TANDEM_ALLOWED_ORIGINS": "https://a.example, https://b.example/",
        }
    )
    assert settings.port == 9001 and settings.redis_url == "redis://cache:6379/0"
    assert settings.smtp is not None and settings.smtp.port == 2525
    assert settings.allowed_origins == ("https://a.example", "https://b.example")
    with pytest.raises(ConfigurationError):
        load_settings({"TANDEM_SECRET_KEY": "k" * 40, "PORT": "eighty"})


def tandem(*args: str, env: dict[str, str], stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "server.cli", *args],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
        input=stdin,
    )


def test_cli_migrate_create_admin_and_sign_in(tmp_path: Path) -> None:
    env = {"TANDEM_DATA_DIR": str(tmp_path), "TANDEM_ADMIN_PASSWORD": "a sturdy passphrase"}
    migrated = tandem("migrate", env=env)
    assert migrated.returncode == 0 and "database at 0" in migrated.stdout
    created = tandem(
        "create-admin", "--email", "Boss@Example.com", "--name", "Boss", "--organization", "Acme Agency", env=env
    )
    assert created.returncode == 0, created.stderr
    assert "created owner boss@example.com of Acme Agency" in created.stdout
    assert (
        "exists already"
        in tandem(
            "create-admin", "--email", "boss@example.com", "--name", "B", "--organization", "Acme Agency", env=env
        ).stdout
    )
    weak = tandem(
        "create-admin",
        "--email",
        "x@example.com",
        "--name",
        "X",
        "--organization",
        "Acme Agency",
        env={**env, "TANDEM_ADMIN_PASSWORD": "short"},
    )
    assert weak.returncode == 2
    # The admin can sign in on a served node.
    from tests.nodes import Node

    node = Node(env={"TANDEM_DATA_DIR": str(tmp_path)}, log_path=tmp_path / "node.log").start()
    try:
        response = httpx.post(
            node.http + "/api/auth/login",
            json={"email": "boss@example.com", "password": "a sturdy passphrase"},
            timeout=10,
        )
        assert response.status_code == 200 and response.json()["user"]["role"] == "owner"
    finally:
        node.kill()


def test_cli_reports_bad_configuration(tmp_path: Path) -> None:
    result = tandem(
        "migrate", env={"TANDEM_ENV": "production", "TANDEM_DATA_DIR": str(tmp_path), "TANDEM_SECRET_KEY": ""}
    )
    assert result.returncode == 2 and "TANDEM_SECRET_KEY" in result.stderr


def test_demo_refuses_production(tmp_path: Path) -> None:
    result = tandem(
        "demo", env={"TANDEM_ENV": "production", "TANDEM_SECRET_KEY": "p" * 40, "TANDEM_DATA_DIR": str(tmp_path)}
    )
    assert result.returncode == 2 and "production" in result.stderr


def test_the_uvicorn_factory_freezes_what_start_up_left_alive(tmp_path: Path) -> None:
    """`server.main.create` hides the imported modules from the garbage collector (a full collection walks
    everything tracked and stalls the event loop), so a collection then only walks what the process made since; and
    it considers full collections a hundred times less often than CPython does (`GC_THRESHOLDS`): 100,000 long-lived
    objects made as a storm's sockets make them (a burst of new objects that stay) cause no full collection."""
    script = (
        "import gc, time\n"
        "from server.main import create\n"
        "create()\n"
        "started = time.perf_counter(); gc.collect()\n"
        "print(gc.get_freeze_count(), len(gc.get_objects()), time.perf_counter() - started)\n"
        "full = []\n"
        "gc.callbacks.append(lambda phase, info: phase == 'stop' and info['generation'] == 2 and full.append(1))\n"
        "kept = [[{'socket': i}] for i in range(100_000)]\n"
        "print(len(full))\n"
    )
    env = {**os.environ, "TANDEM_DATA_DIR": str(tmp_path), "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", script], env=env, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    frozen, tracked, _, full_collections = out.stdout.split()
    assert int(frozen) > 50_000 and int(tracked) < int(frozen) // 10, out.stdout
    assert int(full_collections) == 0, out.stdout  # CPython's own thresholds: several


def test_the_base_url_follows_the_served_address_unless_set() -> None:
    assert load_settings({"TANDEM_SECRET_KEY": "k" * 40, "PORT": "9002"}).base_url == "http://127.0.0.1:9002"
    # A wildcard address is not a place a browser can go: links point at this machine's loopback.
    wildcard = load_settings({"TANDEM_SECRET_KEY": "k" * 40, "TANDEM_HOST": "0.0.0.0", "TANDEM_PORT": "9003"})
    assert wildcard.base_url == "http://127.0.0.1:9003"
    assert load_settings({"TANDEM_SECRET_KEY": "k" * 40, "TANDEM_HOST": "::1"}).base_url == "http://[::1]:8000"
    explicit = load_settings({"TANDEM_SECRET_KEY": "k" * 40, "PORT": "9004", "TANDEM_BASE_URL": "https://t.example"})
    assert explicit.base_url == "https://t.example"
