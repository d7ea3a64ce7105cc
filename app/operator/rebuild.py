"""`storefront rebuild-projection NAME`: a shadow rebuild with its progress in the terminal.

Builds the shadow in this process (the live projection keeps serving), shows the diff, and
swaps it in if told to (`--yes`, or a "y" at the prompt); otherwise the shadow stays, to be
swapped in or abandoned from the status page or with `--swap` / `--abandon`.
"""

from __future__ import annotations

import argparse
import os
import sys

from app.config import load_settings
from app.kernel.read_model_diff import Diff
from app.kernel.rebuild import RebuildBusy, RebuildError, ShadowRebuild
from app.kernel.rebuild_state import RebuildState
from app.operator.submit import operator
from app.projections.registry import REBUILDABLE, rebuildable
from app.services import build_services

BAR = 30


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", choices=REBUILDABLE)
    what = parser.add_mutually_exclusive_group()
    what.add_argument("--yes", action="store_true", help="swap the shadow in once it is built")
    what.add_argument("--swap", action="store_true", help="swap in the shadow built before")
    what.add_argument("--abandon", action="store_true", help="drop the shadow built before")
    parser.add_argument("--chunk", type=int, default=5000, help="entries per read")


def progress_line(state: RebuildState) -> str:
    filled = BAR * state.percent // 100
    eta = f"ETA {state.eta_seconds:.0f} s" if state.eta_seconds is not None else "ETA ?"
    return (
        f"[{'#' * filled}{'.' * (BAR - filled)}] {state.percent:3d}%  "
        f"{state.done:,}/{state.total:,} events  {state.rate:,.0f} events/s  {eta}  "
        f"position {state.position or '-'}"
    )


def show_diff(diff: Diff) -> str:
    lines = [f"shadow against live: {diff.summary}"]
    lines += [f"  {d.key}: {d.detail}" for d in diff.sample]
    return "\n".join(lines)


async def _show(state: RebuildState) -> None:
    end = "\r" if sys.stdout.isatty() else "\n"
    print(progress_line(state), end=end, flush=True)


def _confirm() -> bool:
    if not sys.stdin.isatty():
        return False
    return input("Swap the shadow in? [y/N] ").strip().lower() in ("y", "yes")


async def run(args: argparse.Namespace) -> int:
    settings = load_settings()
    services = build_services(settings)
    rebuild = ShadowRebuild(
        services.write,
        services.read,
        rebuildable(settings)[args.name](),
        settings.partitions,
        owner=f"cli-{os.getpid()}",
        by=operator().username or "",
        chunk=args.chunk,
        on_progress=_show,
        lease_ms=settings.lease_ms,
        archive=services.archive,
    )
    try:
        if args.abandon:
            await rebuild.acquire()
            await rebuild.abandon()
            print(f"{args.name}: the shadow is dropped")
            return 0
        if args.swap:
            await rebuild.resume()
        else:
            await rebuild.start()
            await rebuild.follow()
            print()
            if not args.yes:
                print(show_diff(await rebuild.cut(swap=False)))
                if not _confirm():
                    print(
                        f"{args.name}: the shadow stays; swap it in from the status page, or "
                        f"with `storefront rebuild-projection {args.name} --swap` (--abandon "
                        "to drop it)"
                    )
                    return 0
        diff = await rebuild.cut(swap=True)
        print(show_diff(diff))
        print(f"{args.name}: swapped in ({rebuild.state.done:,} events replayed)")
        if rebuild.state.failed:
            print(f"{rebuild.state.failed} entries failed and held their keys back:")
            print("\n".join(f"  {note}" for note in rebuild.state.failures))
        return 0
    except RebuildBusy as exc:
        print(exc, file=sys.stderr)
        return 1
    except RebuildError as exc:
        print(exc, file=sys.stderr)
        return 1
    finally:
        await rebuild.close()
        await services.close()
