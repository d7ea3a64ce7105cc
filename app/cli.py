"""`storefront` command line: `storefront dev`, `storefront create-user`."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
import sys

from app.config import load_settings
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
    args, rest = parser.parse_known_args(argv)
    if args.command == "dev":
        from app.dev import main as dev_main

        return dev_main(rest)
    password = os.environ.get("STOREFRONT_PASSWORD") or getpass.getpass("Password: ")
    return asyncio.run(_create_user(args.username, password, set(args.role), args.email))


if __name__ == "__main__":
    sys.exit(main())
