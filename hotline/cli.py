"""The ``tongdai`` command: one entry point, one subcommand module per domain.

Each domain exposes ``register(subparsers)`` in its own ``cli.py``; each subcommand sets
``func(args) -> int`` on its parser. Errors the project raises on purpose print one clear line
and exit 2; nothing else is caught here.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from tongdai.errors import TongdaiError
from tongdai.logs import setup_logging


def build_parser() -> argparse.ArgumentParser:
    import hotline.serve as serve_cli
    from accounts import cli as accounts_cli
    from acd import cli as acd_cli
    from bench import cli as bench_cli
    from dossiers import cli as dossiers_cli
    from dossiers import procedures_cli
    from hotline import doctor as doctor_cli
    from hotline import purge as purge_cli
    from ivr import cli as ivr_cli
    from lab import cli as lab_cli
    from postal import cli as postal_cli
    from reports import cli as reports_cli
    from reports import staffing_cli, synth_cli
    from tickets import cli as tickets_cli

    parser = argparse.ArgumentParser(
        prog="tongdai", description="1022 hotline engine: IVR, tickets, Asterisk lab"
    )
    parser.add_argument("--config", help="settings file (default: $TONGDAI_CONFIG or tongdai.toml)")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)
    for module in (
        serve_cli,
        doctor_cli,
        lab_cli,
        ivr_cli,
        tickets_cli,
        dossiers_cli,
        postal_cli,
        procedures_cli,
        acd_cli,
        reports_cli,
        staffing_cli,
        synth_cli,
        bench_cli,
        accounts_cli,
        purge_cli,
    ):
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    setup_logging(args.verbose)
    try:
        rc: int = args.func(args)
    except TongdaiError as exc:
        print(f"tongdai: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return rc


if __name__ == "__main__":
    sys.exit(main())
