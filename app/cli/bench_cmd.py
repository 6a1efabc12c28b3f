"""``haven bench``: performance figures as a table, or one JSON object (``--json``)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from app.cli.common import CliError, Context
from app.runtime import NoModelSelected, quiet_terminal, selected_model_spec


def register(sub) -> None:
    p = sub.add_parser("bench", help="measure speed and memory on this machine",
                       description="Model figures, each against a baseline from the same run "
                       "(raw llama-cpp-python for decode speed). --store adds the journal, search "
                       "and export at 10,000 messages; --ui adds keystroke latency while a reply "
                       "streams.")
    p.add_argument("--model", type=Path, help="a GGUF file instead of the selected model")
    p.add_argument("--chat-format", help="chat format for --model if it has no template")
    p.add_argument("--turns", type=int, default=10, help="turns in the scripted conversation")
    p.add_argument("--threads", type=int, help="CPU threads (default: the setting)")
    p.add_argument("--ctx", type=int, default=2048, help="context window for the run (2048)")
    p.add_argument("--repack", choices=("auto", "on", "off"),
                   help="llama.cpp's repacked weight buffers (default: the setting)")
    p.add_argument("--store", action="store_true", help="also benchmark the journal and export")
    p.add_argument("--ui", action="store_true", help="also measure keystroke latency in the app")
    p.add_argument("--no-model", action="store_true", help="skip the model figures")
    p.add_argument("--shape", metavar="NAME",
                   help="run on a random-weight model with catalog model NAME's exact shape, "
                   "tokenizer and chat template (built and cached on first use; speed and "
                   "memory only, never quality); implies --session")
    p.add_argument("--vocab", type=Path, help="for --shape: a folder (or llama-cpp-python "
                   "sdist) holding llama.cpp's ggml-vocab-*.gguf files")
    p.add_argument("--session", action="store_true",
                   help="a scripted session through the companion with Haven's real prompts, "
                   "typed at 6 characters a second: send-to-first-token per message, the "
                   "thought-record draft and closing summary, tokens evaluated vs reused")
    p.add_argument("--no-prefill", action="store_true",
                   help="for --session: no prefill before Enter (the behaviour before it)")
    p.add_argument("--max-tokens", type=int, default=64,
                   help="for --session: reply length (64)")
    p.add_argument("--messages", type=int, default=12,
                   help="for --session: messages sent (12; the draft comes after half)")
    p.add_argument("--side-tokens", type=int,
                   help="for --session: cap the draft, summary and title at this many tokens")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_bench)


def cmd_bench(args: argparse.Namespace) -> int:
    from app import bench

    ctx = Context()
    quiet_terminal(ctx.paths)
    if args.turns < 2:
        raise CliError("--turns must be at least 2")
    if args.max_tokens < 16:
        raise CliError("--max-tokens must be at least 16")
    figures: dict = {}
    if args.shape:
        from app.llm import shapes

        try:
            shape = shapes.shape(args.shape)
            if not args.json:
                print(f"shape-alike of {shape.name} (built once, then cached)", flush=True)
            args.model = shapes.build(shape.name, ctx.paths.models_dir / "shapes", args.vocab)
        except (shapes.ShapeError, ImportError, OSError) as exc:
            raise CliError(f"cannot build the {args.shape} shape: {exc}") from exc
        args.session = True
    if not args.no_model or args.ui:
        try:
            spec = selected_model_spec(ctx.paths, ctx.settings, args.model, args.chat_format)
        except NoModelSelected as exc:
            raise CliError(str(exc)) from exc
        if not spec.path.is_file():
            raise CliError(f"no such model file: {spec.path}")
        from dataclasses import replace

        spec = replace(spec, n_ctx=args.ctx, threads=args.threads or ctx.settings.threads,
                       repack=args.repack or spec.repack)
        if args.session:
            if args.shape:
                figures["shape"] = args.shape
            figures.update(bench.run_session_bench(
                spec, prefill=not args.no_prefill, max_tokens=args.max_tokens,
                messages=max(2, min(args.messages, len(bench.SESSION_MESSAGES))),
                side_tokens=args.side_tokens, catalog_name=args.shape))
        elif not args.no_model:
            figures.update(bench.run_model_bench(spec, turns=args.turns))
        if args.ui:
            figures.update(bench.run_ui_bench(spec))
    if args.store:
        figures.update(bench.run_store_bench())
    if args.json:
        print(json.dumps(figures))
        return 0
    width = max(len(k) for k in figures) if figures else 0
    for key, value in figures.items():
        print(f"{key:<{width}}  {value}")
    return 0
