"""`python -m tests.fixture_site --port 8765`: serve the fixture site until stopped."""

from __future__ import annotations

import argparse
import contextlib
import signal
import threading

from tests.fixture_site.server import FixtureSite


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=8765)
    args = parser.parse_args()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with FixtureSite(args.port) as site:
        print(f"fixture site on {site.base_url} (try {site.url('/fiction/1003')})", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            stop.wait()


if __name__ == "__main__":
    main()
