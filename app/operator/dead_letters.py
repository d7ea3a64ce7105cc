"""`storefront dead-letters list|retry|discard`: the console's dead-letter actions in a terminal."""

from __future__ import annotations

import argparse
import sys

from app.config import load_settings
from app.consumers import watched_consumers
from app.kernel.clock import iso
from app.kernel.dead_letters import LetterFilter
from app.operator.submit import Refused, describe, submit_and_wait
from app.queries.dead_letters import DeadLetterView, dead_letters
from app.services import build_services


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", required=True)
    listing = actions.add_parser("list", help="every consumer's dead letters (payloads masked)")
    listing.add_argument("--consumer", help="only this consumer's")
    retry = actions.add_parser("retry", help="apply a letter (and those waiting behind it) again")
    retry.add_argument("letter_id", nargs="?")
    retry.add_argument("--all", action="store_true", help="every letter of the consumer")
    retry.add_argument("--consumer", required=True)
    discard = actions.add_parser("discard", help="drop a letter (journaled); those behind go on")
    discard.add_argument("letter_id", nargs="?")
    discard.add_argument("--consumer", required=True)
    discard.add_argument("--reason", required=True)
    for parser_ in (listing, retry, discard):
        parser_.add_argument("--type", default="", help="only letters of this entry type")
        parser_.add_argument("--error", default="", help="only letters whose error contains this")


def show(letters: list[DeadLetterView]) -> str:
    if not letters:
        return "No dead letters."
    lines = []
    for d in letters:
        why = f"waiting behind {d.behind}" if d.behind else d.error
        lines.append(
            f"{d.consumer}  {d.letter_id}  {d.key or '-'}  {d.type}  attempts={d.attempts}  "
            f"{iso(d.at)}\n    {why}\n    {d.payload}"
        )
    return "\n".join(lines)


async def run(args: argparse.Namespace) -> int:
    services = build_services(load_settings())
    try:
        consumers = watched_consumers()
        names = [c.name for c in consumers]
        if args.consumer is not None and args.consumer not in names:
            print(f"no consumer {args.consumer}; there are: {', '.join(names)}", file=sys.stderr)
            return 2
        if args.action == "list":
            wanted = [c for c in consumers if args.consumer in (None, c.name)]
            letters, _counts = await dead_letters(services.write, wanted, shown=1000)
            chosen = LetterFilter(args.type, args.error)
            print(show([d for d in letters if chosen.shows(d.type, d.error)]))
            return 0
        filtered = bool(args.type or args.error)
        if args.letter_id and (filtered or getattr(args, "all", False)):
            print("give a LETTER_ID, or --all / --type / --error (not both)", file=sys.stderr)
            return 2
        if not args.letter_id and not filtered and not getattr(args, "all", False):
            print("give a LETTER_ID, --all, --type or --error", file=sys.stderr)
            return 2
        document: dict[str, str] = {"consumer": args.consumer}
        if args.action == "retry" and args.all:
            document["type"] = "RetryAllDeadLetters"
        elif args.action == "retry" and filtered:
            document.update(type="RetryDeadLetters", entry_type=args.type, error=args.error)
        elif args.action == "retry":
            document.update(type="RetryDeadLetter", letter_id=args.letter_id)
        elif filtered:
            document.update(
                type="DiscardDeadLetters",
                reason=args.reason,
                entry_type=args.type,
                error=args.error,
            )
        else:
            document.update(type="DiscardDeadLetter", letter_id=args.letter_id)
            document["reason"] = args.reason
        try:
            status = await submit_and_wait(services, document)
        except Refused as refused:
            errors = "".join(f"\n  {e.path}: {e.message}" for e in refused.problem.errors or [])
            print(f"refused: {refused.problem.detail}{errors}", file=sys.stderr)
            return 2
        print(describe(status))
        return 0 if status.status == "succeeded" else 1
    finally:
        await services.close()
