"""The ``tandem`` command: serve, worker, mail-in, migrate, create-admin, demo, audit verify."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import logging
import os
import re
import signal
import sys

from sqlmodel import select

from server import migrate
from server.accounts.passwords import password_weakness
from server.db import Database
from server.live import uvicorn_socket
from server.models import Organization, OrgRole, User
from server.security import hash_password
from server.settings import ConfigurationError, Settings, load_settings


def _serve(settings: Settings, args: argparse.Namespace) -> int:
    import uvicorn

    if args.workers > 1 and not settings.redis_url:
        # Each worker is its own process with its own in-memory hub: events made through one would never reach
        # sockets held by another.
        print("several workers need TANDEM_REDIS_URL (the in-memory broker cannot span processes)", file=sys.stderr)
        return 2
    if settings.auto_migrate:
        migrate.upgrade(settings.database_url)
    # The app factory reads its settings from the environment in each worker: the flags become that environment,
    # so the base URL (links in mail, the WebSocket origin allowed) follows the address actually served.
    if args.host:
        os.environ["TANDEM_HOST"] = args.host
    if args.port is not None:
        os.environ["PORT"] = str(args.port)
    uvicorn.run(
        "server.main:create",
        factory=True,
        host=args.host or settings.host,
        port=args.port if args.port is not None else settings.port,
        workers=args.workers,
        # No per-message compression: it costs CPU on every frame of every fan-out, and events are small JSON.
        # The protocol server/live/uvicorn_socket.py writes prebuilt frames to, by name rather than uvicorn's "auto".
        ws=uvicorn_socket.WS_PROTOCOL if uvicorn_socket.fast_path_available()[0] else "auto",
        ws_per_message_deflate=False,
        ws_max_size=1024 * 1024,
        proxy_headers=True,
        log_level="info",
        log_config=None,  # server.main.create installs Tandem's redacting handler
    )
    return 0


async def _run_worker(settings: Settings) -> None:
    from server.webhooks import WebhookWorker

    db = Database(settings.database_url)
    worker = WebhookWorker(settings, db)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stopping.set)
    worker.start()
    logging.getLogger(__name__).info("webhook worker running; SIGTERM stops it")
    try:
        await stopping.wait()
    finally:
        await worker.stop()
        await db.close()


def _worker(settings: Settings, args: argparse.Namespace) -> int:
    from server.observability import configure_logging

    configure_logging(settings)
    if settings.auto_migrate:
        migrate.upgrade(settings.database_url)
    asyncio.run(_run_worker(settings))
    return 0


async def _run_mail_in(settings: Settings) -> None:
    from server.mail.server import mail_in

    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stopping.set)
    async with mail_in(settings, settings.mail_in.host, settings.mail_in.port):
        await stopping.wait()


def _mail_in(settings: Settings, args: argparse.Namespace) -> int:
    from server.observability import configure_logging

    if not settings.mail_in.domain:
        print("tandem mail-in needs TANDEM_MAIL_DOMAIN (the domain of the reply addresses)", file=sys.stderr)
        return 2
    configure_logging(settings)
    if settings.auto_migrate:
        migrate.upgrade(settings.database_url)
    asyncio.run(_run_mail_in(settings))
    return 0


def _migrate(settings: Settings, args: argparse.Namespace) -> int:
    migrate.upgrade(settings.database_url, args.revision)
    print(f"database at {migrate.current_revision(settings.database_url)}")
    return 0


async def _create_admin(settings: Settings, email: str, name: str, password: str, org_name: str) -> str:
    db = Database(settings.database_url)
    try:
        async with db.session() as session:
            if (await session.exec(select(User).where(User.email == email))).first() is not None:
                return f"{email} exists already"
            org = (await session.exec(select(Organization).where(Organization.name == org_name))).first()
            if org is None:
                slug = re.sub(r"[^a-z0-9]+", "-", org_name.lower()).strip("-")[:60] or "org"
                org = Organization(name=org_name, slug=slug)
                session.add(org)
                await session.flush()
            assert org.id is not None
            session.add(
                User(
                    organization_id=org.id,
                    email=email,
                    name=name,
                    role=OrgRole.OWNER,
                    password_hash=hash_password(password),
                )
            )
            await session.commit()
            return f"created owner {email} of {org.name}"
    finally:
        await db.close()


def _create_admin_cmd(settings: Settings, args: argparse.Namespace) -> int:
    migrate.upgrade(settings.database_url)
    password = os.environ.get("TANDEM_ADMIN_PASSWORD") or getpass.getpass("Password: ")
    weakness = password_weakness(password, email=args.email)
    if weakness is not None:
        print(f"weak password ({weakness.reason}): {weakness.message}", file=sys.stderr)
        return 2
    print(asyncio.run(_create_admin(settings, args.email.strip().lower(), args.name, password, args.organization)))
    return 0


def _demo(settings: Settings, args: argparse.Namespace) -> int:
    from server.demo import DEMO_LOGINS, DEMO_PASSWORD, seed_demo

    if settings.production:
        print("refusing to seed demo accounts with a published password in production", file=sys.stderr)
        return 2

    migrate.upgrade(settings.database_url)

    async def run() -> bool:
        db = Database(settings.database_url)
        try:
            return await seed_demo(db)
        finally:
            await db.close()

    created = asyncio.run(run())
    print("Demo workspace " + ("created." if created else "already present."))
    print(f"Sign in at {settings.base_url} with password {DEMO_PASSWORD!r} as:")
    for login in DEMO_LOGINS:
        print(f"  {login.email:<26} {login.note}")
    return 0


def _audit(settings: Settings, args: argparse.Namespace) -> int:
    from sqlalchemy import create_engine

    from server.audit.chain import verify
    from server.db import sync_url

    engine = create_engine(sync_url(settings.database_url))
    try:
        with engine.connect() as conn:
            verdict = verify(conn)
    finally:
        engine.dispose()
    if verdict.ok:
        print(f"audit chain intact: {verdict.rows} rows")
        return 0
    where = f"row {verdict.bad_id}" if verdict.bad_id is not None else "the chain"
    print(f"audit chain broken at {where}: {verdict.problem} ({verdict.rows} rows before it verified)", file=sys.stderr)
    return 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tandem", description="Tandem: a live workspace shared with customers.")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the server (uvicorn)")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.add_argument("--workers", type=int, default=1, help="several need TANDEM_REDIS_URL")
    commands.add_parser(
        "worker", help="deliver webhooks (run web processes with TANDEM_WEBHOOK_WORKER=off then); stops on SIGTERM"
    )
    commands.add_parser("mail-in", help="receive replies by email (SMTP on TANDEM_MAIL_IN_HOST:PORT); stops on SIGTERM")
    mig = commands.add_parser("migrate", help="bring the database schema up to date")
    mig.add_argument("revision", nargs="?", default="head")
    admin = commands.add_parser(
        "create-admin", help="create an organization owner (password from TANDEM_ADMIN_PASSWORD or a prompt)"
    )
    admin.add_argument("--email", required=True)
    admin.add_argument("--name", required=True)
    admin.add_argument("--organization", required=True)
    commands.add_parser("demo", help="seed the demo workspace (idempotent) and print its logins")
    audit = commands.add_parser("audit", help="audit log tools")
    audit.add_argument("action", choices=["verify"], help="verify: walk the hash chain; exit 1 at the first bad row")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        settings = load_settings()
    except ConfigurationError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    handlers = {
        "serve": _serve,
        "worker": _worker,
        "mail-in": _mail_in,
        "migrate": _migrate,
        "create-admin": _create_admin_cmd,
        "demo": _demo,
        "audit": _audit,
    }
    return handlers[args.command](settings, args)


if __name__ == "__main__":
    sys.exit(main())
