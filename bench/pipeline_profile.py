"""`python -m bench.pipeline_profile ORDERS`: where one pipeline run of ORDERS spends its time.

cProfile across every thread the run starts, on the same in-process system as the scale bench
(`bench.observed_system`).
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import threading
from pathlib import Path
from typing import Any

from bench.observed_system import bench_system, unique_prefix


def profile_run(template_path: Path, orders: int) -> pstats.Stats:
    """cProfile of one run of `orders`, across every thread it starts (moto's interpreter, its
    server's request threads, the handlers). Times are summed over threads, waits included."""
    profiles: list[cProfile.Profile] = []
    lock = threading.Lock()

    def profile_this_thread(*_: Any) -> None:
        profile = cProfile.Profile()
        with lock:
            profiles.append(profile)
        profile.enable()  # replaces this hook for the rest of the thread

    with bench_system(template_path) as bench:
        bench.ingest(orders, unique_prefix("profile"))
        threading.setprofile(profile_this_thread)
        try:
            run = bench.run()
        finally:
            threading.setprofile(None)
    print(f"{run.processed} orders in {run.seconds:.1f} s (profiled)")
    stats = pstats.Stats()
    for profile in profiles:
        profile.create_stats()
        stats.add(profile)
    return stats


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.pipeline_profile")
    parser.add_argument("orders", type=int, help="orders pending for the profiled run")
    parser.add_argument("--template", type=Path, default=Path("cdk.out/Entrix.template.json"))
    parser.add_argument("--callers-of", help="also show the callers of this function")
    args = parser.parse_args(argv)
    stats = profile_run(args.template, args.orders)
    if args.callers_of:
        stats.sort_stats("cumulative").print_callers(rf"\({args.callers_of}\)")
    stats.sort_stats("tottime").print_stats(20)
    return 0


if __name__ == "__main__":
    sys.exit(main())
