"""``haven insights``: the person's patterns from their journal, as text or JSON."""

from __future__ import annotations

import argparse
import json
import shutil

from app.cli.common import CliError, Context, open_journal, parse_day_range


def register(sub) -> None:
    p = sub.add_parser(
        "insights", help="your patterns: mood by day, before and after sessions, thinking traps",
        description="Figures from your own journal: a mood chart (only days with a rating), "
        "mood before and after sessions, the thinking traps you spot most, belief in hot and "
        "balanced thoughts, feelings before and after a thought record, and steps planned and "
        "followed up. Each says how many entries it rests on; none is shown from fewer than "
        "three. Worked out on this computer; nothing is written.")
    p.add_argument("--since", help="first day to include, YYYY-MM-DD")
    p.add_argument("--until", help="last day to include, YYYY-MM-DD")
    p.add_argument("--width", type=int, help="width of the text and chart (default: the terminal's)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_insights)


def cmd_insights(args: argparse.Namespace) -> int:
    from app.insights import insights, render_text
    from app.insights.words import WordsError, words

    since, until = parse_day_range(args.since, args.until)
    if args.width is not None and not 40 <= args.width <= 1000:
        raise CliError("--width must be from 40 to 1000")
    try:
        words()  # Haven's own words, checked before the journal is opened
    except WordsError as exc:
        raise CliError(str(exc)) from exc
    ctx = Context()
    with open_journal(ctx, create=False) as journal:
        result = insights(journal, since, until)
    if args.json:
        print(json.dumps(result.model_dump(mode="json"), indent=2, ensure_ascii=False))
        return 0
    width = args.width or min(shutil.get_terminal_size((80, 24)).columns, 120)
    print(render_text(result, width), end="")
    return 0
