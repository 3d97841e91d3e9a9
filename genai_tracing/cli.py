"""The ``genai-tracing`` command (also ``python -m genai_tracing``): reports, charts and prices.

    genai-tracing report --by user --since yesterday --until today
    genai-tracing report --by day,model --since 7d --format csv > cost.csv
    genai-tracing chart --by day --stack model --since 30d --out cost.png
    genai-tracing latency --since 7d --out latency.png
    genai-tracing price gpt-4o-mini
    genai-tracing reprice --since 30d --prices prices.toml [--apply]
    genai-tracing prices [update]

Exit codes, for scripts: 0 success; 1 nothing to report (no trace matched, or no price is known
for the model); 2 a usage or configuration error (unknown option, experiment or store, unreadable
time, since not before until, bad price file).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from typing import Any, Callable, Sequence, TextIO

from ._errors import ConfigurationError
from ._money import plain as _plain

EXIT_OK = 0
EXIT_NO_DATA = 1
EXIT_USAGE = 2


class _NoData(Exception):
    """Nothing matched: exit code 1, with a message saying what was searched."""


def _report(args: argparse.Namespace, out: TextIO) -> int:
    from ._reports import COLUMNS, cost_report, describe_source, format_money, iter_rows

    frame = cost_report(args.by, since=args.since, until=args.until,
                        experiment=args.experiment, filter=args.filter,
                        tracking_uri=args.tracking_uri)
    if frame.empty:
        raise _NoData(f"no traces in {describe_source(frame)}")
    if args.format == "csv":
        frame.to_csv(out, index=False)
    elif args.format == "json":
        json.dump(list(iter_rows(frame)), out, indent=2)
        out.write("\n")
    else:
        shown = frame.copy()
        shown["total_cost"] = [format_money(v) for v in frame["total_cost"]]
        for column in ("p50_latency_ms", "p95_latency_ms"):
            shown[column] = ["-" if math.isnan(v) else f"{v:,.0f}" for v in frame[column]]
        out.write(f"Cost by {', '.join(frame.columns[:-len(COLUMNS)])} - "
                  f"{describe_source(frame)}\n\n")
        out.write(shown.fillna("-").to_string(index=False))
        total = frame["total_cost"].sum(min_count=1)
        traces = frame.attrs.get("traces", 0)
        out.write(f"\n\ntotal {format_money(float(total))} over {traces} "
                  f"request{'' if traces == 1 else 's'}\n")
        out.write(unpriced_footer(frame))
    return EXIT_OK


def unpriced_footer(frame: Any) -> str:
    """The line under a report table that says what its totals leave out ('' when nothing)."""
    calls, traces = frame.attrs.get("unpriced_calls", 0), frame.attrs.get("unpriced_traces", 0)
    if not calls:
        return ""
    them = "it" if calls == 1 else "them"
    return (f"{calls} call{'' if calls == 1 else 's'} unpriced in {traces} "
            f"trace{'' if traces == 1 else 's'}: the totals leave {them} out. Add the prices to "
            "your price file (genai-tracing price MODEL shows what applies; genai-tracing prices "
            "lists the catalogs), then run genai-tracing reprice.\n")


def _reprice(args: argparse.Namespace, out: TextIO) -> int:
    from ._money import format_money
    from ._reprice import reprice

    result = reprice(since=args.since, until=args.until, models=args.model,
                     only_unpriced=not args.all, dry_run=not args.apply, prices=args.prices,
                     experiment=args.experiment, filter=args.filter,
                     tracking_uri=args.tracking_uri)
    if not result.traces_read:
        names = ", ".join(repr(n) for n in result.experiments)
        raise _NoData(f"no traces in experiment {names} for that window")
    if args.format == "json":
        json.dump({"applied": result.applied, "traces_read": result.traces_read,
                   "traces_changed": result.traces_changed,
                   "difference": _plain(result.difference),
                   "still_unpriced_calls": result.still_unpriced,
                   "calls": [{"trace_id": c.trace_id, "span_id": c.span_id, "model": c.model,
                              "old_cost": None if c.old_cost is None else _plain(c.old_cost),
                              "new_cost": _plain(c.new_cost), "source": c.source}
                             for c in result.calls]}, out, indent=2)
        out.write("\n")
        return EXIT_OK
    if result.calls:
        width = max(len(c.trace_id) for c in result.calls)
        model_width = max(5, *(len(str(c.model)) for c in result.calls))
        out.write(f"{'trace':{width}}  {'model':{model_width}}  {'old':>10}  {'new':>10}  "
                  "source\n")
        for c in result.calls:
            out.write(f"{c.trace_id:{width}}  {str(c.model):{model_width}}  "
                      f"{format_money(c.old_cost):>10}  {format_money(c.new_cost):>10}  "
                      f"{c.source}\n")
        out.write("\n")
    calls, traces = len(result.calls), result.traces_changed
    what = (f"{calls} call{'' if calls == 1 else 's'} in {traces} trace"
            f"{'' if traces == 1 else 's'}")
    difference = format_money(result.difference, signed=True)
    if not calls:
        out.write(f"nothing to change in {result.traces_read} traces with the prices in force")
    elif result.applied:
        out.write(f"repriced {what}: total {difference}, recorded in the traces' tags "
                  "(genai_tracing.repriced.*)")
    else:
        out.write(f"dry run: {what} would change, total {difference}. Run again with --apply "
                  "to record it")
    if result.still_unpriced:
        left = result.still_unpriced
        out.write(f"; {left} call{' still has' if left == 1 else 's still have'} no price")
    out.write("\n")
    return EXIT_OK


def _prices(args: argparse.Namespace, out: TextIO) -> int:
    from . import _catalogs
    from ._pricing import load_price_table

    if args.action == "update":
        catalog = _catalogs.update(args.url)
        out.write(f"fetched {catalog.models:,} entries of LiteLLM's price map into "
                  f"{catalog.where}; later runs price from it ahead of the bundled map\n")
        return EXIT_OK
    limit = _catalogs.max_age_days()
    out.write("Prices are looked up in this order:\n")
    table, label, source = load_price_table(args.prices)
    if label is not None:
        models = len(table.by_name) + len(table.patterns)
        out.write(f"  your price file    {label} ({source}), {models} entries\n")
    else:
        out.write("  your price file    none (--prices or GENAI_TRACING_PRICES)\n")
    for catalog in _catalogs.catalogs():
        age = catalog.age_days()
        when = "" if catalog.as_of is None else (
            f", {catalog.as_of_kind} {catalog.as_of:%Y-%m-%d %H:%M} UTC ({age:.0f} days ago"
            f"{'; older than ' + format(limit, 'g') + ' days' if age > limit else ''})")
        count = "" if catalog.models is None else f", {catalog.models:,} entries"
        out.write(f"  {catalog.name:18} {catalog.where}{count}{when}\n")
    out.write(f"Run `{_catalogs.UPDATE_COMMAND}` to fetch LiteLLM's current map (the only "
              f"command that uses the network; {_catalogs.ENV_PRICES_URL} sets the URL, "
              f"{_catalogs.ENV_CACHE_DIR} the folder). A map older than {limit:g} days "
              f"({_catalogs.ENV_MAX_AGE}) gets a warning.\n")
    return EXIT_OK


def _chart(args: argparse.Namespace, out: TextIO) -> int:
    from ._reports import describe_source

    figure, frame = render_chart(args)
    if frame.empty:
        raise _NoData(f"no traces in {describe_source(frame)}; no chart written")
    figure.savefig(args.out, dpi=110, bbox_inches="tight")
    from ._reports import COLUMNS

    stack = frame.columns[1] if len(frame.columns) > len(COLUMNS) + 1 else None
    out.write(f"wrote {args.out}: cost by {args.by}{f' stacked by {stack}' if stack else ''}, "
              f"{describe_source(frame)}\n")
    return EXIT_OK


def render_chart(args: argparse.Namespace) -> tuple[Any, Any]:
    """The figure ``chart`` writes and the report it shows, for ``chart``'s parsed arguments."""
    from ._reports import chart_with_report

    stack = None if args.stack in (None, "none") else args.stack
    return chart_with_report(args.by, stack=stack, since=args.since, until=args.until,
                             experiment=args.experiment, filter=args.filter,
                             tracking_uri=args.tracking_uri, title=args.title)


def _latency(args: argparse.Namespace, out: TextIO) -> int:
    from ._reports import describe_source, draw_latency_chart, latency_report

    buckets: Any = args.buckets
    if args.edges:
        try:
            buckets = [float(e) for e in args.edges.split(",")]
        except ValueError:
            raise ConfigurationError("--edges", args.edges, "is not a list of numbers",
                                     "write it as e.g. --edges 100,1000,5000") from None
    frame = latency_report(since=args.since, until=args.until, experiment=args.experiment,
                           filter=args.filter, tracking_uri=args.tracking_uri,
                           measure=args.measure, buckets=buckets)
    if frame.empty:
        raise _NoData(f"no traces with a latency and a prompt length in {describe_source(frame)}")
    r = frame.attrs["correlation"]
    if args.format == "json":
        from ._reports import iter_rows

        json.dump({"correlation": None if math.isnan(r) else r, "measure": args.measure,
                   "requests": frame.attrs["requests"], "buckets": list(iter_rows(frame))},
                  out, indent=2)
        out.write("\n")
    elif args.format == "csv":
        frame.to_csv(out, index=False)
    else:
        out.write(f"Latency by {args.measure} - {describe_source(frame)}\n\n")
        out.write(frame.to_string(index=False, float_format=lambda v: f"{v:,.1f}"))
        out.write(f"\n\nPearson r = {r:.3f} over {frame.attrs['requests']} requests"
                  f" ({_strength(r)})\n")
    if args.out:
        draw_latency_chart(frame).savefig(args.out, dpi=110, bbox_inches="tight")
        if args.format == "table":
            out.write(f"wrote {args.out}\n")
    return EXIT_OK


def _strength(r: float) -> str:
    if math.isnan(r):
        return "undefined: too few requests, or no variation"
    size = abs(r)
    word = "strong" if size >= 0.7 else "moderate" if size >= 0.4 else "weak" if size >= 0.1 \
        else "no"
    sign = "" if word == "no" else " positive" if r > 0 else " negative"
    return f"{word}{sign} correlation"


def _price(args: argparse.Namespace, out: TextIO) -> int:
    from ._estimate import estimate_cost

    estimate = estimate_cost(args.model, input_tokens=args.input_tokens,
                             output_tokens=args.output_tokens, provider=args.provider,
                             prices=args.prices)
    if estimate.price is None and estimate.total_cost is None:
        raise _NoData(f"{args.model!r} has no price ({estimate.unpriced_reason}). "
                      "Add it to a price file and pass it with --prices (or "
                      "GENAI_TRACING_PRICES):\n"
                      f"  [models.{json.dumps(args.model)}]\n"
                      "  input_per_million = ...\n  output_per_million = ...")
    price = dict(estimate.price or {})
    if args.format == "json":
        json.dump({"model": args.model, "provider": args.provider, "source": estimate.source,
                   "price": price, "example": {
                       "input_tokens": args.input_tokens, "output_tokens": args.output_tokens,
                       "total_cost": None if estimate.total_cost is None
                       else _plain(estimate.total_cost)}}, out, indent=2)
        out.write("\n")
        return EXIT_OK
    source = estimate.source or "?"
    where = {"user": f"your price file {price.get('origin', '')}".rstrip(),
             "litellm": f"LiteLLM's price map fetched into {price['origin']}"
             if price.get("origin") else "LiteLLM's bundled price map",
             "genai-prices": "the genai-prices package",
             "genai_tracing": "genai_tracing's built-in per-image prices",
             "provider": "the cost the provider reports"}.get(source, source)
    out.write(f"{args.model}: priced from {where}, entry {price.get('key', args.model)!r}\n")
    for rate, value in (price.get("per_million") or {}).items():
        unit = "per image" if rate == "per_image" else "per million tokens"
        out.write(f"  {rate.replace('_', ' '):14} ${_plain(value)} {unit}\n")
    for tier in price.get("tiers", []):
        rates = ", ".join(f"{k} ${_plain(v)}" for k, v in tier.items()
                          if k != "above_input_tokens")
        out.write(f"  above {tier['above_input_tokens']:,} input tokens: {rates}\n")
    for per, unit in (("per_call", "per call"), ("per_request", "per request that uses it")):
        for tool, value in (price.get(per) or {}).items():
            out.write(f"  {tool.replace('_', ' '):14} ${_plain(value)} {unit}\n")
    for tier, described in (price.get("service_tiers") or {}).items():
        rates = ", ".join(f"{k.replace('_', ' ')} ${_plain(v)}"
                          for k, v in (described.get("per_million") or {}).items())
        out.write(f"  service tier {tier}: {rates} per million tokens\n")
    if price.get("valid_from"):
        out.write(f"  valid from {price['valid_from']}\n")
    if estimate.fallbacks:
        out.write(f"  fallbacks: {', '.join(estimate.fallbacks)}\n")
    if estimate.total_cost is None:
        out.write(f"  {args.input_tokens:,} input + {args.output_tokens:,} output tokens: no "
                  f"cost ({estimate.unpriced_reason})\n")
    else:
        out.write(f"  {args.input_tokens:,} input + {args.output_tokens:,} output tokens cost "
                  f"${_plain(estimate.total_cost)}\n")
    return EXIT_OK


# ---------------------------------------------------------------------------------------------
# Arguments


def _add_source_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--since", help="start of the window, inclusive: 24h, 7d, today, "
                        "yesterday, 2026-11-01 (UTC)")
    parser.add_argument("--until", help="end of the window, exclusive (same forms)")
    parser.add_argument("--experiment", action="append",
                        help="experiment name or id; repeat for several (default: the one "
                        "enable_tracing() would use)")
    parser.add_argument("--filter", help="extra MLflow trace search clause, e.g. "
                        "\"tags.feature = 'search'\"")
    parser.add_argument("--tracking-uri", help="MLflow store (default: MLFLOW_TRACKING_URI, "
                        "else MLflow's default)")


def _by_list(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


def build_parser() -> argparse.ArgumentParser:
    """The argument parser; each subcommand sets ``run``."""
    parser = argparse.ArgumentParser(
        prog="genai-tracing", description="Cost reports, charts and prices for generative-AI "
        "calls traced into MLflow by genai_tracing.",
        epilog="Exit codes: 0 success, 1 nothing to report, 2 usage or configuration error.")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    report = commands.add_parser("report", help="cost, tokens and latency per group",
                                 description="One row per group: requests, LLM calls, tokens, "
                                 "total cost, unpriced calls, p50/p95 latency.")
    report.add_argument("--by", type=_by_list, default=["user"],
                        help="user, session, model, provider, day, hour, tag:<name>; several "
                        "separated by commas (default: user)")
    _add_source_options(report)
    report.add_argument("--format", choices=("table", "csv", "json"), default="table")
    report.set_defaults(run=_report, reads_store=True)

    chart = commands.add_parser("chart", help="stacked bar chart of cost, as PNG",
                                description="Bars of cost per --by group, stacked by --stack.")
    chart.add_argument("--by", default="day", help="the bars (default: day)")
    chart.add_argument("--stack", default="model",
                       help="the colours within each bar, or 'none' (default: model)")
    chart.add_argument("--out", required=True, help="file to write: .png, .svg or .pdf")
    chart.add_argument("--title", help="chart title (default: says what is shown)")
    _add_source_options(chart)
    chart.set_defaults(run=_chart, reads_store=True)

    latency = commands.add_parser("latency", help="latency by prompt length, with correlation",
                                  description="Are long prompts slower? Latency per prompt-"
                                  "length bucket and Pearson's r.")
    latency.add_argument("--measure", choices=("prompt_chars", "input_tokens"),
                         default="prompt_chars")
    latency.add_argument("--buckets", type=int, default=5,
                         help="number of equal-count buckets (default: 5)")
    latency.add_argument("--edges", help="bucket edges instead, e.g. 100,1000,5000")
    latency.add_argument("--out", help="also write a chart: .png, .svg or .pdf")
    _add_source_options(latency)
    latency.add_argument("--format", choices=("table", "csv", "json"), default="table")
    latency.set_defaults(run=_latency, reads_store=True)

    price = commands.add_parser("price", help="which price applies to a model, and from where",
                                description="The price a span of this model would be billed "
                                "at, by the same precedence as tracing.")
    price.add_argument("model")
    price.add_argument("--provider", help="openai, anthropic, gemini, ... (helps catalog lookup)")
    price.add_argument("--prices", help="your price file (default: GENAI_TRACING_PRICES)")
    price.add_argument("--input-tokens", type=int, default=1_000_000,
                       help="tokens for the example cost (default: 1,000,000)")
    price.add_argument("--output-tokens", type=int, default=1_000_000)
    price.add_argument("--format", choices=("table", "json"), default="table")
    price.set_defaults(run=_price)

    prices = commands.add_parser(
        "prices", help="the price catalogs in use, their versions and age; 'prices update' "
        "fetches LiteLLM's current map", description="Without an action: which catalogs price "
        "calls, in order, with versions and ages. 'update' fetches LiteLLM's current price map "
        "into a local cache that later runs use ahead of the bundled copy (the only command "
        "that uses the network).")
    prices.add_argument("action", nargs="?", choices=("update",))
    prices.add_argument("--url", help="where to fetch the map (default: GENAI_TRACING_PRICES_URL, "
                        "else LiteLLM's published map)")
    prices.add_argument("--prices", help="your price file (default: GENAI_TRACING_PRICES)")
    prices.set_defaults(run=_prices)

    reprice = commands.add_parser(
        "reprice", help="put the prices in force now on stored traces (a dry run without --apply)",
        description="Recompute calls' costs from their stored usage with the prices in force "
        "now (your price file, then the catalogs; valid_from applies at each call's time) and "
        "record them in the traces' tags. Without --apply, only lists what would change.")
    reprice.add_argument("--apply", action="store_true", help="record the new costs")
    reprice.add_argument("--all", action="store_true",
                         help="also reprice calls that have a price (default: unpriced only)")
    reprice.add_argument("--model", action="append",
                         help="only calls to this model; repeat for several")
    reprice.add_argument("--prices", help="your price file (default: GENAI_TRACING_PRICES)")
    _add_source_options(reprice)
    reprice.add_argument("--format", choices=("table", "json"), default="table")
    reprice.set_defaults(run=_reprice, reads_store=True)

    from . import _ui

    ui = commands.add_parser("ui", help="open the MLflow UI at the experiment's traces",
                             description="Serve the MLflow UI for a local store (or link to a "
                                         "remote one) and print the link to the experiment's "
                                         "traces for all time.")
    _ui.add_ui_arguments(ui)
    ui.set_defaults(run=lambda args, out: _ui.main_ui(args, out))

    # More subcommands register here: a parser whose set_defaults(run=...) names a function
    # (args, out) -> exit code; reads_store=True makes main() refuse a missing store.
    return parser


def main(argv: Sequence[str] | None = None, *, out: TextIO | None = None,
         err: TextIO | None = None) -> int:
    """Run the command line; returns the exit code (0 ok, 1 no data, 2 usage or configuration).

    Example::

        from genai_tracing.cli import main
        main(["report", "--by", "user", "--since", "yesterday", "--format", "csv"])
    """
    out = out or sys.stdout
    err = err or sys.stderr
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # argparse: --help is 0, a usage error 2
        return int(e.code or 0) if not isinstance(e.code, str) else EXIT_USAGE
    run: Callable[[argparse.Namespace, TextIO], int] = args.run
    levels = _quiet_logs()
    try:
        if getattr(args, "reads_store", False) and args.tracking_uri is not None:
            from ._config import require_store

            require_store(args.tracking_uri, "--tracking-uri")
        return run(args, out)
    except ConfigurationError as e:
        err.write(f"genai-tracing {args.command}: error: {e}\n")
        return EXIT_USAGE
    except _NoData as e:
        err.write(f"genai-tracing {args.command}: {e}\n")
        return EXIT_NO_DATA
    except Exception as e:
        from mlflow.exceptions import MlflowException

        if not isinstance(e, MlflowException):
            raise
        # An unreachable server, a store MLflow cannot open: configuration, not a bug of ours.
        err.write(f"genai-tracing {args.command}: error: MLflow: {e.message}\n")
        return EXIT_USAGE
    finally:
        for logger, level in levels:
            logger.setLevel(level)


def _quiet_logs() -> list[tuple[Any, int]]:
    """MLflow logs store migrations at INFO; a report keeps the terminal to its answer."""
    import logging

    previous = []
    for name in ("mlflow", "alembic"):
        logger = logging.getLogger(name)
        previous.append((logger, logger.level))
        if logger.getEffectiveLevel() < logging.WARNING:
            logger.setLevel(logging.WARNING)
    return previous
