"""lightnovel-crawler's Royal Road crawler, pointed at the local fixture site (rivals venv).

Usage: lncrawl_run.py BASE_URL FICTION_PATH OUT_DIR (writes novel.json there). Prints one
JSON line: chapters, chapters with text, workers, seconds.
Runs under the rivals venv, not the project's.
"""

from __future__ import annotations

import json
import sys
import time

started = time.perf_counter()
import scraper  # noqa: E402
from sources.en.r.royalroad import RoyalRoadCrawler  # noqa: E402


def _unpaced(self: object, origin: str, signal: object = None) -> float:
    """lncrawl's pacing (a gamma-distributed gap per origin, mean 3 s, floor 0.35 s, and a
    warm-up visit to the home page) set to none: every tool here runs without delays."""
    return 0.0


scraper.pacing.Pacer.wait = _unpaced  # type: ignore[method-assign]

imported = time.perf_counter() - started


def main() -> None:
    base, path, out = sys.argv[1], sys.argv[2], sys.argv[3]

    class LocalRoyalRoad(RoyalRoadCrawler):
        base_url = [base]

        def get_soup(self, *args, **kwargs):  # type: ignore[no-untyped-def]
            """The chapter page as its crawler expects it: the body inside a `.chapter`.

            Its selector is `.chapter .chapter-content`; the fixture site, built from saved
            fragments holding only the body div, does not wrap it so. One class added to
            the parsed page, not to the fixture.
            """
            soup = super().get_soup(*args, **kwargs)
            body = soup.select_one(".chapter-content").tag
            if body is not None and not soup.select_one(".chapter .chapter-content"):
                body.parent["class"] = [*body.parent.get("class", []), "chapter"]
            return soup

    begun = time.perf_counter()
    crawler = LocalRoyalRoad()
    crawler.novel_url = base.rstrip("/") + path
    crawler.read_novel_info()
    chapters = list(crawler.chapters)
    futures = [crawler.submit_task(crawler.download_chapter_body, c) for c in chapters]
    bodies = [f.result() for f in futures]
    seconds = time.perf_counter() - begun
    with open(f"{out}/novel.json", "w", encoding="utf-8") as handle:
        json.dump({"title": crawler.novel_title, "bodies": bodies}, handle)
    texted = sum(1 for b in bodies if b and len(b) > 200)
    print(
        json.dumps(
            {
                "chapters": len(chapters),
                "with_text": texted,
                "workers": crawler.workers,
                "seconds": seconds,
                "import_s": imported,
            }
        )
    )
    crawler.close()


main()
