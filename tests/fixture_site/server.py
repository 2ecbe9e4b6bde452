"""A threaded HTTP server for the fixture site, on 127.0.0.1 (port 0 by default).

One instance serves one site's look-alike (`site`: "royalroad", "scribblehub", "ao3"):
Royal Road's routes are here; the others' are `route()` in tests/fixture_site/<site>.py.
The tests reach each through CRAWLER_SITE_ALIASES (127.0.0.1:<port>=<site>).

Royal Road fictions 1001-1003 and 5000-5999 behave; 1005-1007 are the field variants (see
`content.SPECIAL`); 2001-2010 misbehave (see `MISBEHAVIOUR`).
Tests can slow every page (`delay`) or make the next requests fail (`fail_next`), and read
back what it received and answered (`requests`). They can change a Royal Road fiction under
the crawler (`revise`: chapters added, removed, re-dated, edited, moved, a truncated table of
contents) and read back what is served now (`fiction`, `chapter`); `reset` undoes that.
Fictions 1010-1012 are big (10, 2,000, 10,000 chapters: `content.BIG`). Fictions 2101-2111
are hostile (`content.HOSTILE`): redirects and links to the internal service (`internal`,
host:port, set by the tests), to Redis (`redis`), to private and numeric addresses, a meta
refresh, chapter pages of `chapter_padding` bytes, hostile markup.
"""

from __future__ import annotations

import importlib
import importlib.util
import re
import socket
import struct
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from urllib.parse import parse_qs

from tests.fixture_site import content, pages
from tests.fixture_site.answer import Asked

FICTION = re.compile(r"^/fiction/(?P<id>\d+)(?:/(?P<slug>[^/]+))?/?$")
CHAPTER = re.compile(r"^/fiction/(?P<id>\d+)/[^/]+/chapter/(?P<cid>\d+)(?:/[^/]*)?$")
ROBOTS_TXT = "User-agent: *\nDisallow: /fiction/2010\nAllow: /\n"
MISBEHAVIOUR = {
    2001: "fiction page is a maintenance page (no fiction markup)",
    2002: "chapter 3 always answers 503",
    2003: "each chapter answers 429 with Retry-After: 1 the first time",
    2004: "fiction page: connection reset",
    2005: "chapter 2 truncated (Content-Length larger than the body)",
    2006: "fiction page of ~20 MB",
    2007: "redirect loop",
    2008: "fiction page answers after 5 s",
    2009: "chapter pages have no chapter body",
    2010: "robots.txt disallows it",
    2011: "fiction page redirects, absolute, to the real host (as sites do): to be rebased",
    2012: "fiction page redirects to another host (a link-local address): never followed",
}
REDIRECTING = (2101, 2104, 2105, 2106)  # hostile fiction pages that answer 302 (_elsewhere)
REAL_HOST = "https://www.royalroad.com"
OFF_SITE = "http://169.254.169.254/latest/meta-data/"
PRIVATE = "http://10.0.0.1/latest/meta-data/"  # 2104's redirect
DISCARD = "127.0.0.1:9"  # `internal` until a test starts its service: nothing listens
CHAPTER_PADDING = 200_000  # bytes of padding in each of 2107's chapter pages, by default


@dataclass
class _Failure:
    prefix: str
    remaining: int
    status: int
    retry_after: str | None


@dataclass
class Received:
    """One request: its path, when it arrived (time.monotonic()), the status answered.

    `status` is None while the answer is pending, or if none was sent (a reset connection).
    """

    path: str
    at: float
    status: int | None = None


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True
    # socketserver's default listen backlog is 5: a crawler opening 16+ connections at once
    # would see SYNs dropped and retried after 1 s, 3 s, ... Real servers accept them.
    request_queue_size = 1024

    def handle_error(self, request: object, client_address: object) -> None:
        """Clients that hang up mid-request (killed horses) are expected here."""


def served_sites() -> list[str]:
    """Every site with a look-alike here: Royal Road, and each tests/fixture_site/<site>.py."""
    from crawler import sites

    return [
        name
        for name in sites.ADAPTERS
        if name == "royalroad" or importlib.util.find_spec(f"{__package__}.{name}") is not None
    ]


class FixtureSite:
    def __init__(self, port: int = 0, *, site: str = "royalroad") -> None:
        self.site = site
        # another site's routes: its module's route(Asked) -> Answer | None
        self.routes = (
            None if site == "royalroad" else importlib.import_module(f"{__package__}.{site}")
        )
        self._server = _QuietServer(("127.0.0.1", port), _Handler)
        self._server.site = self  # type: ignore[attr-defined]
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._hits: Counter[str] = Counter()
        self._failures: list[_Failure] = []
        self._seen_429: set[str] = set()
        self._received: list[Received] = []
        self._revised: dict[int, content.FixtureFiction] = {}
        self.delay = 0.0
        self.internal = DISCARD  # host:port of "the internal service" hostile pages point at
        self.redis = "127.0.0.1:6379"  # host:port of the Redis 2110's listing links to
        self.chapter_padding = CHAPTER_PADDING

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        return f"http://{self.host}"

    def url(self, path: str) -> str:
        return self.base_url + path

    def start(self) -> FixtureSite:
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> FixtureSite:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def hits(self, path_prefix: str = "") -> int:
        with self._lock:
            return sum(n for path, n in self._hits.items() if path.startswith(path_prefix))

    def requests(self, path_prefix: str = "") -> list[Received]:
        """The requests for paths under this prefix, in the order they arrived (copies)."""
        with self._lock:
            return [replace(r) for r in self._received if r.path.startswith(path_prefix)]

    def fiction(self, fiction_id: int) -> content.FixtureFiction | None:
        """The Royal Road fiction as served now (revisions included), or None (404)."""
        with self._lock:
            revised = self._revised.get(fiction_id)
        return revised if revised is not None else content.fiction(fiction_id)

    def chapter(self, fiction_id: int, chapter_id: int) -> content.FixtureChapter | None:
        """The chapter as served now, or None (404: unknown, or removed by a revision)."""
        fiction = self.fiction(fiction_id)
        return None if fiction is None else fiction.chapter(chapter_id)

    def revise(
        self,
        fiction_id: int,
        *,
        add: int = 0,
        remove: Sequence[int] = (),
        redate: Sequence[int] = (),
        edit: Sequence[int] = (),
        move: Sequence[tuple[int, int]] = (),
        toc_limit: int | None = None,
        full_toc: bool = False,
    ) -> content.FixtureFiction:
        """Change what the site serves for this Royal Road fiction; return it as now served.

        Positions are 1-based, those of the fiction as served when this is called (for
        `move`: after this call's removals). In this order:
        - `redate`: these chapters are listed a day later than they were, with new text
          (an author's edit that the site shows by re-dating);
        - `edit`: these chapters get new text; their listing (title, date) is unchanged;
        - `remove`: these chapters leave the table of contents; their pages answer 404;
          the others are renumbered 1..n in the same reading order;
        - `move`: each (from, to) in turn takes the chapter at `from` and puts it at `to`;
        - `add`: this many new chapters at the end, with ids no chapter of the fiction had
          (content.added_chapter_id), dated a day apart after the latest one;
        - `toc_limit`: from now on the fiction page lists only the first n chapters
          (window.chapters and the table: a truncated page) while every chapter page still
          answers; None keeps the limit in force, `full_toc=True` lifts it.
        The "Pages" popover follows the words of the chapters served. Revisions accumulate
        until `reset()`. ValueError for a position out of range or given twice.
        """
        if self.site != "royalroad":
            raise NotImplementedError(f"revisions of the {self.site} look-alike")
        with self._lock:
            current = self._revised.get(fiction_id) or content.fiction(fiction_id)
            if current is None:
                raise KeyError(f"the site has no fiction {fiction_id}")
            revised = content.revise(
                current,
                add=add,
                remove=remove,
                redate=redate,
                edit=edit,
                move=move,
                toc_limit=toc_limit,
                full_toc=full_toc,
            )
            self._revised[fiction_id] = revised
        return revised

    def reset(self) -> None:
        """Back to normal service: no delay, no pending failures, counters and log empty,
        every fiction as built (no revision)."""
        with self._lock:
            self._revised.clear()
            self._hits.clear()
            self._received.clear()
            self._failures.clear()
            self._seen_429.clear()
        self.delay = 0.0
        self.chapter_padding = CHAPTER_PADDING
        if self.routes is not None and hasattr(self.routes, "reset"):
            self.routes.reset()  # a site module's own state (e.g. error pages still to serve)

    def fail_next(
        self, path_prefix: str, count: int, status: int = 503, retry_after: float | None = None
    ) -> None:
        after = None if retry_after is None else str(int(retry_after))
        with self._lock:
            self._failures.append(_Failure(path_prefix, count, status, after))

    def _record(self, path: str) -> tuple[_Failure | None, Received]:
        with self._lock:
            self._hits[path] += 1
            received = Received(path, time.monotonic())
            self._received.append(received)
            for failure in self._failures:
                if path.startswith(failure.prefix) and failure.remaining > 0:
                    failure.remaining -= 1
                    return failure, received
        return None, received

    def _answered(self, received: Received, status: int) -> None:
        with self._lock:
            if received.status is None:  # the first status line sent for this request
                received.status = status

    def _first_time(self, path: str) -> bool:
        with self._lock:
            fresh = path not in self._seen_429
            self._seen_429.add(path)
            return fresh


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes; with Nagle on, a keep-alive client waits for
    # a delayed ACK (~40 ms) per response. Real servers do not stall like that.
    disable_nagle_algorithm = True
    server: ThreadingHTTPServer
    received: Received | None = None  # the request being answered, in the site's log

    @property
    def site(self) -> FixtureSite:
        return self.server.site  # type: ignore[attr-defined,no-any-return]

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode("utf-8", "replace") if length else ""
        self._serve("POST", parse_qs(body, keep_blank_values=True))

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: no access log on stderr."""

    def send_response(self, code: int, message: str | None = None) -> None:
        if self.received is not None:  # every answer's status line goes through here
            self.site._answered(self.received, code)
        super().send_response(code, message)

    def do_GET(self) -> None:
        self._serve("GET", {})

    def _serve(self, method: str, form: dict[str, list[str]]) -> None:
        path, _, query = self.path.partition("?")
        failure, self.received = self.site._record(path)
        if self.site.delay:
            time.sleep(self.site.delay)
        if failure is not None:
            self._send(failure.status, pages.not_found_page(), retry_after=failure.retry_after)
        elif self.site.routes is not None:
            self._answer(path, method, parse_qs(query, keep_blank_values=True), form)
        elif method != "GET":
            self._send(405, pages.not_found_page())
        elif path == "/robots.txt":
            self._send(200, ROBOTS_TXT, content_type="text/plain")
        elif match := CHAPTER.match(path):
            self._chapter(int(match["id"]), int(match["cid"]), path)
        elif match := FICTION.match(path):
            self._fiction(int(match["id"]), match["slug"], path)
        else:
            self._send(404, pages.not_found_page())

    def _answer(
        self, path: str, method: str, query: dict[str, list[str]], form: dict[str, list[str]]
    ) -> None:
        answer = self.site.routes.route(Asked(method, path, query, form))  # type: ignore[union-attr]
        if answer is None and path == "/robots.txt":  # a site module without its own
            return self._send(200, "User-agent: *\nAllow: /\n", content_type="text/plain")
        if answer is None:
            return self._send(404, "<html><body><h1>Not Found</h1></body></html>")
        data = answer.body.encode("utf-8")
        self.send_response(answer.status)
        self.send_header("Content-Type", answer.content_type)
        self.send_header("Content-Length", str(len(data)))
        for name, value in answer.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _fiction(self, fiction_id: int, slug: str | None, path: str) -> None:
        fiction = self.site.fiction(fiction_id)
        if fiction is None:
            return self._send(404, pages.not_found_page())
        if fiction_id in REDIRECTING:
            return self._redirect(self._elsewhere(fiction_id), status=302)
        location = self._fiction_redirect(fiction, slug)
        if location is not None:
            return self._redirect(location)
        if fiction_id == 2001:
            return self._send(200, pages.maintenance_page())
        if fiction_id == 2004:
            return self._reset()
        if fiction_id == 2008:
            time.sleep(5)
        html = self._fiction_page(fiction)
        if fiction_id == 2006:
            html = html.replace("</body>", "<!--" + "x" * 20_000_000 + "--></body>")
        self._send(200, html)

    def _chapter(self, fiction_id: int, chapter_id: int, path: str) -> None:
        fiction = self.site.fiction(fiction_id)
        chapter = None if fiction is None else fiction.chapter(chapter_id)
        if fiction is None or chapter is None:
            return self._send(404, pages.not_found_page())
        if fiction_id == 2002 and chapter.position == 3:
            return self._send(503, "<h1>Service Unavailable</h1>")
        if fiction_id == 2003 and self.site._first_time(path):
            return self._send(429, "<h1>Too Many Requests</h1>", retry_after="1")
        if fiction_id == 2102 and chapter.position == 2:
            port = self.site.internal.rpartition(":")[2]
            return self._redirect(f"http://localhost:{port}/chapter", status=302)
        if chapter.locked:
            return self._send(200, pages.locked_chapter_page(fiction, chapter))
        html = pages.chapter_page(fiction, chapter, with_body=fiction_id != 2009)
        if fiction_id == 2005 and chapter.position == 2:
            return self._truncated(html)
        if fiction_id == 2107:
            html = html.replace("</body>", f"<!--{'x' * self.site.chapter_padding}--></body>")
        self._send(200, html)

    def _fiction_redirect(self, fiction: content.FixtureFiction, slug: str | None) -> str | None:
        """Where the fiction page redirects (301), if it does: to its slug, or misbehaving."""
        fiction_id = fiction.fiction_id
        if fiction_id == 2007:
            return f"/fiction/2007/{'b' if slug == 'a' else 'a'}"
        if fiction_id == 2011 and slug != fiction.slug:
            return f"{REAL_HOST}/fiction/{fiction_id}/{fiction.slug}"
        if fiction_id == 2012:
            return OFF_SITE
        return None if slug == fiction.slug else f"/fiction/{fiction_id}/{fiction.slug}"

    def _elsewhere(self, fiction_id: int) -> str:
        """Where a hostile fiction's page redirects (REDIRECTING)."""
        port = self.site.internal.rpartition(":")[2]
        return {
            2101: f"http://{self.site.internal}/admin",
            2104: PRIVATE,
            2105: f"http://2130706433:{port}/",  # 127.0.0.1 as one decimal number
            2106: f"http://[::ffff:127.0.0.1]:{port}/",
        }[fiction_id]

    def _fiction_page(self, fiction: content.FixtureFiction) -> str:
        """The fiction page, with a hostile fiction's meta refresh or off-site chapter link."""
        fiction_id = fiction.fiction_id
        if fiction_id == 2103:
            refresh = f'<meta http-equiv="refresh" content="0; url=http://{self.site.internal}/">'
            return pages.fiction_page(fiction, extra_head=refresh)
        link = {
            2109: f"http://{self.site.internal}/fiction/2109/x/chapter/1/x",
            2110: f"http://{self.site.redis}/fiction/2110/x/chapter/1/x",
            2111: "file:///etc/passwd",
        }.get(fiction_id)
        if link is None:
            return pages.fiction_page(fiction)
        chapter = fiction.chapters[content.HOSTILE_OFFSITE_CHAPTER - 1]
        return pages.fiction_page(fiction, links={chapter.chapter_id: link})

    def _send(
        self,
        status: int,
        body: str,
        *,
        content_type: str = "text/html; charset=utf-8",
        retry_after: str | None = None,
    ) -> None:
        data = body.encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        if retry_after is not None:
            self.send_header("Retry-After", retry_after)
        self.end_headers()
        self.wfile.write(data)

    def _redirect(self, location: str, *, status: int = 301) -> None:
        self.send_response(status)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _reset(self) -> None:
        # SO_LINGER 0: close() sends RST, the client sees "connection reset by peer"
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close_connection = True
        self.connection.close()

    def _truncated(self, html: str) -> None:
        data = html.encode("utf-8")
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(data) + 5000))
        self.end_headers()
        self.wfile.write(data[: len(data) // 2])
        self.wfile.flush()
        self.close_connection = True
        self.connection.shutdown(socket.SHUT_RDWR)
