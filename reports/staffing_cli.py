"""``tongdai staffing``: Erlang C agents for one interval, as a table or ``--json``.

Example (the reference vector of ../shared/docs/domain.md)::

    tongdai staffing --calls 100 --interval 1800 --aht 180 --target 0.8 --answer-within 20 \
        --shrinkage 0.3 --json

Bad values are refused by argparse with a message naming the option (exit 2).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Callable
from typing import Any

from rich.console import Console
from rich.table import Table

from reports.staffing import erlang_c


def _number(check: Callable[[float], bool], meaning: str) -> Callable[[str], float]:
    """An argparse ``type`` accepting a finite number for which ``check`` holds."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not math.isfinite(value) or not check(value):
            raise argparse.ArgumentTypeError(f"{text!r} is not {meaning}")
        return value

    return parse


_non_negative = _number(lambda v: v >= 0, "a number >= 0")
_positive = _number(lambda v: v > 0, "a number > 0")
_fraction = _number(lambda v: 0 < v < 1, "a fraction strictly between 0 and 1 (e.g. 0.8)")
_occupancy = _number(lambda v: 0 < v <= 1, "a fraction in (0, 1] (e.g. 0.85)")
_shrinkage = _number(lambda v: 0 <= v < 1, "a fraction in [0, 1) (e.g. 0.3)")


def register(sub: Any) -> None:
    """Add ``staffing`` to the ``tongdai`` command."""
    parser: argparse.ArgumentParser = sub.add_parser(
        "staffing",
        help="Erlang C: agents needed for a service-level target",
        description="Agents needed so that --target of the calls are answered within "
        "--answer-within seconds (Erlang C, M/M/N).",
    )
    parser.add_argument(
        "--calls", type=_non_negative, required=True, help="calls offered in the interval"
    )
    parser.add_argument(
        "--interval", type=_positive, default=1800.0, help="interval length in seconds (1800)"
    )
    parser.add_argument(
        "--aht", type=_positive, required=True, help="average handle time in seconds"
    )
    parser.add_argument("--target", type=_fraction, default=0.8, help="service-level target (0.8)")
    parser.add_argument(
        "--answer-within",
        type=_non_negative,
        default=20.0,
        help="service-level threshold in seconds (20)",
    )
    parser.add_argument(
        "--max-occupancy", type=_occupancy, default=None, help="occupancy cap, e.g. 0.85"
    )
    parser.add_argument(
        "--shrinkage",
        type=_shrinkage,
        default=0.0,
        help="share of paid time not on the phones (breaks, training), e.g. 0.3",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(func=cmd_staffing)


def cmd_staffing(args: argparse.Namespace) -> int:
    try:
        result = erlang_c(
            args.calls,
            args.interval,
            args.aht,
            args.target,
            args.answer_within,
            max_occupancy=args.max_occupancy,
            shrinkage=args.shrinkage,
        )
    except ValueError as exc:
        print(f"tongdai staffing: error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(result.as_dict()))
        return 0
    table = Table(
        show_header=False,
        title=f"Erlang C: {args.calls:g} calls in {args.interval:g} s, AHT {args.aht:g} s, "
        f"target {args.target:.0%} within {args.answer_within:g} s",
    )
    table.add_row("agents on the phones", str(result.agents))
    table.add_row(
        f"positions with {args.shrinkage:.0%} shrinkage", str(result.agents_with_shrinkage)
    )
    table.add_row("traffic (Erlangs)", f"{result.traffic_erlangs:.2f}")
    table.add_row("probability of waiting", f"{result.wait_probability:.4f}")
    table.add_row("service level", f"{result.service_level:.4f}")
    table.add_row("average speed of answer", f"{result.asa_seconds:.2f} s")
    table.add_row("occupancy", f"{result.occupancy:.3f}")
    Console().print(table)
    return 0
