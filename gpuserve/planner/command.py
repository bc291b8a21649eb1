"""The ``gpuserve plan`` command: its options and what it prints."""

from __future__ import annotations

import argparse
import json

from ..errors import ConfigError

_INPUT_HELP = "sample inputs for --measure, as key=value (a string) or key:=JSON, e.g. text=hello times:=3"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the options of ``gpuserve plan`` to ``parser``."""
    parser.add_argument(
        "endpoint",
        nargs="?",
        metavar="MODULE_OR_FILE:CLASS",
        help="e.g. examples/tiny.py:Echo; not needed with --prices",
    )
    parser.add_argument("inputs", nargs="*", metavar="KEY=VALUE", help=_INPUT_HELP)
    parser.add_argument(
        "--prices", action="store_true", help="print the price and power table with its sources and exit"
    )
    parser.add_argument(
        "--price-file", metavar="FILE", help="JSON file whose offers and power entries replace the shipped ones"
    )

    traffic = parser.add_argument_group("traffic")
    traffic.add_argument("--requests-per-day", type=float, metavar="N", help="average requests per day (default: 1000)")
    traffic.add_argument(
        "--shape",
        choices=["flat", "business", "evening"],
        help="daily shape: flat, business (80%% from 09:00 to 18:00) or evening (60%% from 18:00 to 23:00)",
    )
    traffic.add_argument(
        "--timestamps",
        metavar="FILE",
        help="replay request times from FILE, one ISO-8601 time or epoch second per line "
        "(instead of --requests-per-day, --shape and --days)",
    )
    traffic.add_argument("--days", type=int, metavar="N", help="days of generated traffic (default: 30)")
    traffic.add_argument("--seed", type=int, default=0, metavar="N", help="seed of the generated arrivals (default: 0)")

    timing = parser.add_argument_group("timing")
    timing.add_argument("--work-seconds", type=float, metavar="SECONDS", help="GPU seconds per request")
    timing.add_argument(
        "--setup-seconds",
        type=float,
        metavar="SECONDS",
        help="seconds setup takes on a cold start (default: 0)",
    )
    timing.add_argument(
        "--measure",
        action="store_true",
        help="run setup and predict here with the KEY=VALUE inputs and use those times "
        "(this machine's hardware; instead of --work-seconds and --setup-seconds)",
    )

    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a setting as in deploy, e.g. --set idle_timeout:=300 --set gpu=L4 --set max_instances:=3",
    )
    parser.add_argument(
        "--provider",
        action="append",
        metavar="NAME",
        help="simulate only this provider (modal, cloudrun or sagemaker); repeat for several",
    )
    parser.add_argument(
        "--grid-intensity",
        type=float,
        default=400.0,
        metavar="G",
        help="grams of CO2e per kWh for emissions (default: 400)",
    )
    parser.add_argument(
        "--max-p95-wait",
        type=float,
        metavar="SECONDS",
        help="recommend only providers with a p95 added wait of at most this many seconds",
    )

    parser.add_argument("--json", action="store_true", help="print the plan as JSON")
    parser.add_argument(
        "--chart",
        metavar="FILE",
        help="also draw monthly cost against requests per day to FILE.png, .svg or .pdf (needs matplotlib)",
    )


def run(args: argparse.Namespace) -> int:
    """Run ``gpuserve plan`` with parsed ``args``."""
    from ..cli import parse_inputs
    from . import report
    from .prices import load_prices

    table = load_prices(args.price_file)
    if args.prices:
        print(report.format_prices(table))
        return 0
    if args.endpoint is None:
        raise ConfigError(
            "gpuserve plan needs an endpoint, for example: gpuserve plan examples/tiny.py:Echo --work-seconds 0.2"
        )

    from ..loader import load_endpoint
    from .api import plan
    from .traffic import Traffic

    _check_conflicts(args)
    if args.chart:
        from .chart import check_chart_path

        check_chart_path(args.chart)
    endpoint = load_endpoint(args.endpoint)
    overrides = parse_inputs(None, args.set) if args.set else {}
    work, setup, source = args.work_seconds, args.setup_seconds or 0.0, "given"
    if args.measure:
        from .measure import measure_endpoint

        timing = measure_endpoint(endpoint, parse_inputs(None, args.inputs), **overrides)
        work, setup, source = timing.work_seconds, timing.setup_seconds, timing.source
    elif args.inputs:
        raise ConfigError("Sample inputs are only used with --measure; add --measure or remove them.")
    elif work is None:
        raise ConfigError("Give --work-seconds (GPU seconds per request) or --measure with sample inputs.")
    traffic = Traffic(
        requests_per_day=1000.0 if args.requests_per_day is None else args.requests_per_day,
        shape=args.shape or "flat",
        timestamps_file=args.timestamps,
        days=30 if args.days is None else args.days,
        seed=args.seed,
    )
    options = {
        "work_seconds": work,
        "setup_seconds": setup,
        "timing_source": source,
        "providers": args.provider,
        "prices": table,
        "grid_intensity": args.grid_intensity,
        "max_p95_wait": args.max_p95_wait,
        **overrides,
    }
    result = plan(endpoint, traffic, **options)
    print(json.dumps(result.to_dict(), indent=2) if args.json else report.format_plan(result))
    if args.chart:
        from .chart import cost_curve, write_chart

        curves = cost_curve(endpoint, traffic, **options)
        path = write_chart(curves, args.chart, f"{result.endpoint} on {result.gpu}, {traffic.shape} traffic")
        if not args.json:
            print(f"Chart written to {path}")
    return 0


def _check_conflicts(args: argparse.Namespace) -> None:
    """Reject options that the chosen traffic or timing source would ignore."""
    if args.timestamps is not None:
        # --shape stays valid with --chart, because the chart generates traffic of that shape.
        options = {"--requests-per-day": "requests_per_day", "--days": "days"}
        if not args.chart:
            options["--shape"] = "shape"
        ignored = _given(args, options)
        if ignored:
            raise ConfigError(
                f"--timestamps cannot be combined with {ignored}, because the file's times are the traffic. "
                f"Remove {ignored} to replay the file, or remove --timestamps to generate traffic."
            )
    if args.measure:
        ignored = _given(args, {"--work-seconds": "work_seconds", "--setup-seconds": "setup_seconds"})
        if ignored:
            raise ConfigError(
                f"--measure cannot be combined with {ignored}, because it measures those times on this machine. "
                f"Remove {ignored} to measure, or remove --measure to use the given times."
            )


def _given(args: argparse.Namespace, options: dict[str, str]) -> str:
    """Return the options among ``options`` that the command line sets, joined with "and"."""
    return " and ".join(option for option, name in options.items() if getattr(args, name) is not None)
