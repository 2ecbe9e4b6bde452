"""FanFicFare's Royal Road adapter, its real host mapped onto the local fixture site.

Usage: fanficfare_run.py HOST:PORT FICTION_ID OUT_DIR. Runs FanFicFare's own command line
(in-process) with a requests transport adapter mounted on the session its fetcher builds:
every https://www.royalroad.com request goes to http://HOST:PORT instead. Prints one JSON
line: chapters in the EPUB, chapters with text, seconds. Runs under the rivals venv.
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
import zipfile

started = time.perf_counter()
from bs4 import BeautifulSoup  # noqa: E402
from fanficfare import cli  # noqa: E402
from fanficfare.fetchers import fetcher_requests  # noqa: E402
from requests.adapters import HTTPAdapter  # noqa: E402

imported = time.perf_counter() - started
REAL = "https://www.royalroad.com"


def mount_local(local: str) -> None:
    """Mount, on each session FanFicFare's fetcher makes, an adapter that rewrites the host."""

    class ToLocal(HTTPAdapter):
        def send(self, request, **kwargs):  # type: ignore[no-untyped-def]
            if request.url.startswith(REAL):
                request.url = f"http://{local}" + request.url[len(REAL) :]
            return super().send(request, **kwargs)

    do_mounts = fetcher_requests.RequestsFetcher.do_mounts

    def mounted(self, session):  # type: ignore[no-untyped-def]
        do_mounts(self, session)
        session.mount("https://", ToLocal(max_retries=self.retries))

    fetcher_requests.RequestsFetcher.do_mounts = mounted


def author_card() -> None:
    """Give the fiction page the sidebar author card FanFicFare's legacy parser reads.

    The real page has one (`.mt-card-social`, the author's links, last one the profile);
    the fixture site, built from saved pages whose sidebar was cut out, has none. Added
    to the parsed page here, once per fiction page: the fixture is not bent toward a tool.
    """
    from fanficfare.adapters.adapter_royalroadcom import RoyalRoadAdapter

    make_soup = RoyalRoadAdapter.make_soup

    def with_card(self, data):  # type: ignore[no-untyped-def]
        soup = make_soup(self, data)
        profile = soup.select_one('.fic-header a[href^="/profile/"]')
        if profile is not None and soup.find(None, {"class": "mt-card-social"}) is None:
            card = soup.new_tag("div", attrs={"class": "mt-card-social"})
            card.append(soup.new_tag("a", href=profile["href"]))
            soup.body.append(card)
        return soup

    RoyalRoadAdapter.make_soup = with_card


def count(epub: str) -> tuple[int, int]:
    """(chapter files in the EPUB, those with more than 200 characters of text)."""
    with zipfile.ZipFile(epub) as book:
        names = [n for n in book.namelist() if re.search(r"file\d+\.x?html$", n)]
        texts = [BeautifulSoup(book.read(n), "html.parser").get_text() for n in names]
    return len(names), sum(1 for t in texts if len(t.strip()) > 200)


def main() -> None:
    local, fiction, out = sys.argv[1], sys.argv[2], sys.argv[3]
    mount_local(local)
    author_card()
    os.chdir(out)
    begun = time.perf_counter()
    cli.main(
        [
            "--non-interactive",
            "-f",
            "epub",
            "-o",
            "slow_down_sleep_time=0",
            "-o",
            "output_filename=story.epub",
            f"{REAL}/fiction/{fiction}",
        ]
    )
    seconds = time.perf_counter() - begun
    chapters, texted = count(os.path.join(out, "story.epub"))
    print(
        json.dumps(
            {
                "chapters": chapters,
                "with_text": texted,
                "seconds": seconds,
                "import_s": imported,
                "concurrency": 1,
            }
        )
    )


main()
