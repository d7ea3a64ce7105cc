"""`storefront` command line: dev, create-user, dead-letters, rebuild-projection, events,
archive, loadtest."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
import sys

from app.config import load_settings
from app.loadtest.options import add_arguments, options_from
from app.operator import archive, dead_letters, rebuild
from app.services import build_services


async def _create_user(username: str, password: str, roles: set[str], email: str) -> int:
    services = build_services(load_settings())
    try:
        created = await services.users.create(username, password, roles, email, replace=True)
    finally:
        await services.close()
    print(f"user {username} {'created' if created else 'updated'} with roles {sorted(roles)}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="storefront")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("dev", help="start Redis, web and every worker (development)")
    user = sub.add_parser("create-user", help="create or update a user (production too)")
    user.add_argument("username")
    user.add_argument("--role", action="append", choices=["admin", "customer"], required=True)
    user.add_argument("--email", default="")
    dead_letters.add_arguments(
        sub.add_parser("dead-letters", help="list, retry or discard consumers' dead letters")
    )
    rebuild.add_arguments(
        sub.add_parser(
            "rebuild-projection",
            help="rebuild a read model from its streams into a shadow, compare, swap it in",
        )
    )
    archive.add_event_arguments(
        sub.add_parser("events", help="events of one partition or all, as JSON lines")
    )
    archive.add_archive_arguments(
        sub.add_parser("archive", help="verify the event archive, or show its status")
    )
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
    if args.command == "dead-letters":
        return asyncio.run(dead_letters.run(args))
    if args.command == "rebuild-projection":
        return asyncio.run(rebuild.run(args))
    if args.command == "events":
        return asyncio.run(archive.export_events(args))
    if args.command == "archive":
        return asyncio.run(archive.run_archive(args))
    password = os.environ.get("STOREFRONT_PASSWORD") or getpass.getpass("Password: ")
    return asyncio.run(_create_user(args.username, password, set(args.role), args.email))


if __name__ == "__main__":
    sys.exit(main())
