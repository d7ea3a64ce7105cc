"""`storefront` command line: dev, create-user, rebuild-projection, replay-dead-letters,
loadtest."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
import sys

from app.config import load_settings
from app.kernel.maintenance import ProjectionBusy, rebuild_projection, replay_dead_letters
from app.loadtest.options import add_arguments, options_from
from app.processes.fulfilment import Fulfilment
from app.projections.registry import ALL, build
from app.services import build_services


async def _create_user(username: str, password: str, roles: set[str], email: str) -> int:
    services = build_services(load_settings())
    try:
        created = await services.users.create(username, password, roles, email, replace=True)
    finally:
        await services.close()
    print(f"user {username} {'created' if created else 'updated'} with roles {sorted(roles)}")
    return 0


async def _rebuild(name: str) -> int:
    settings = load_settings()
    services = build_services(settings)
    try:
        (projection,) = build((name,), settings)
        deleted = await rebuild_projection(
            services.write, services.read, name, settings.partitions, projection.stream
        )
    except ProjectionBusy as exc:
        print(exc, file=sys.stderr)
        return 1
    finally:
        await services.close()
    print(f"{name}: {deleted} read-model keys removed; projectors will replay it from the start")
    return 0


async def _replay() -> int:
    settings = load_settings()
    services = build_services(settings)
    try:
        handler = Fulfilment(services.bus, services.gateway)
        count = await replay_dead_letters(services.write, handler, settings.partitions)
    finally:
        await services.close()
    print(f"{count} dead-lettered fulfilment events replayed")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="storefront")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("dev", help="start Redis, web and every worker (development)")
    user = sub.add_parser("create-user", help="create or update a user (production too)")
    user.add_argument("username")
    user.add_argument("--role", action="append", choices=["admin", "customer"], required=True)
    user.add_argument("--email", default="")
    rebuild = sub.add_parser("rebuild-projection", help="replay a read model from its streams")
    rebuild.add_argument("name", choices=ALL)
    sub.add_parser("replay-dead-letters", help="run order fulfilment again on its dead letters")
    loadtest = sub.add_parser(
        "loadtest", help="drive a running deployment with shoppers and catalog watchers"
    )
    add_arguments(loadtest)
    args, rest = parser.parse_known_args(argv)
    if args.command == "dev":
        from app.dev import main as dev_main

        return dev_main(rest)
    if args.command == "loadtest":
        if rest:
            parser.error(f"unrecognized arguments: {' '.join(rest)}")
        from app.loadtest.run import main as loadtest_main

        return loadtest_main(options_from(args))
    if args.command == "rebuild-projection":
        return asyncio.run(_rebuild(args.name))
    if args.command == "replay-dead-letters":
        return asyncio.run(_replay())
    password = os.environ.get("STOREFRONT_PASSWORD") or getpass.getpass("Password: ")
    return asyncio.run(_create_user(args.username, password, set(args.role), args.email))


if __name__ == "__main__":
    sys.exit(main())
