"""`python -m tests.fixture_site --port 8765 [--site royalroad|scribblehub|ao3]`: serve one
site's look-alike until stopped (alias it: CRAWLER_SITE_ALIASES=127.0.0.1:8765=<site>)."""

from __future__ import annotations

import argparse
import contextlib
import signal
import threading

from tests.fixture_site.server import FixtureSite, served_sites


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--site", default="royalroad", choices=served_sites())
    args = parser.parse_args()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with FixtureSite(args.port, site=args.site) as site:
        print(f"{args.site} look-alike on {site.base_url}", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            stop.wait()


if __name__ == "__main__":
    main()
