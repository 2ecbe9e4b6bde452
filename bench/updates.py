"""Updates: re-ingest of a 2,000-chapter fiction with 5 new chapters, against its first ingest.

The first ingest of fiction 1011 (2,000 chapters; quick: 1003, 160) goes end to end (API ->
RQ -> worker -> Scrapy -> PostgreSQL -> DONE); then the fixture site adds 5 chapters
(`FixtureSite.revise(add=5)`) and the same URL is submitted again: an update. An update
fetches the fiction page again (the site states no validators, so there is no conditional
request to make: the table of contents is what tells what changed), compares its listing
with the stored chapters (changes.UpdatePlan: by the site's chapter id and listed date)
and fetches only the chapters the store lacks. Figures per ingest: the client's wall time
(POST -> DONE seen), the job's own (created_at -> finished_at), the requests the fixture
site received, chapters saved and the job's `changes`. Then PostgreSQL is checked: every
listed chapter stored once, the new ones with their text. Full runs do UPDATE_ROUNDS
updates (5 more chapters each) and report medians.
"""

from __future__ import annotations

import os
import statistics
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy import create_engine, text

from bench.check import check
from bench.e2e import Environment, job_seconds, submit_and_wait
from tests.fixture_site import content

FICTION, QUICK_FICTION = 1011, 1003  # 2,000 and 160 chapters
ADDED = 5
UPDATE_ROUNDS = 3
JOB_TIMEOUT_S = 600
TARGET_PERCENT = 10.0  # an update with 5 new chapters costs at most this much of a first ingest


@dataclass
class Ingest:
    client_s: float  # POST -> DONE seen by a client polling every 50 ms
    job_s: float  # the job's created_at -> finished_at
    requests: int  # what the fixture site received for it
    paths: list[str] = field(default_factory=list)
    chapters_saved: int = 0
    changes: dict[str, int] = field(default_factory=dict)


def ingest(env: Environment, fiction_id: int) -> Ingest:
    """One submission of the fiction's URL, until the job is DONE."""
    before = len(env.site.requests())
    job, client = submit_and_wait(env, fiction_id, timeout=JOB_TIMEOUT_S)
    if job["status"] != "done":
        raise RuntimeError(f"fiction {fiction_id}: job {job['status']}: {job['error_message']}")
    paths = [r.path for r in env.site.requests()[before:]]
    return Ingest(
        client_s=client,
        job_s=job_seconds(job),
        requests=len(paths),
        paths=paths,
        chapters_saved=job["progress"]["chapters_saved"],
        changes=job.get("changes") or {},
    )


def stored(fiction_id: int) -> dict[str, Any]:
    """What PostgreSQL holds of the fiction: its chapters, how many distinct ids, which
    have text."""
    engine = create_engine(os.environ["DATABASE_URL"])
    try:
        with engine.connect() as connection:
            row = connection.execute(
                text(
                    "SELECT count(*) AS rows, count(DISTINCT c.site_chapter_id) AS ids,"
                    " count(*) FILTER (WHERE c.removed_at IS NULL) AS current,"
                    " count(*) FILTER (WHERE c.content_html IS NOT NULL AND c.content_hash"
                    " IS NOT NULL AND c.word_count > 0) AS with_text,"
                    " count(DISTINCT n.id) AS novels"
                    " FROM chapters c JOIN novels n ON n.id = c.novel_id"
                    " WHERE n.site = 'royalroad' AND n.site_novel_id = :id"
                ),
                {"id": str(fiction_id)},
            ).one()
            ids = set(
                connection.execute(
                    text(
                        "SELECT c.site_chapter_id FROM chapters c JOIN novels n"
                        " ON n.id = c.novel_id WHERE n.site_novel_id = :id"
                        " AND c.content_html IS NOT NULL"
                    ),
                    {"id": str(fiction_id)},
                ).scalars()
            )
    finally:
        engine.dispose()
    return {**row._asdict(), "ids_with_text": ids}


def verify(env: Environment, fiction_id: int) -> str | None:
    """None if PostgreSQL holds the fiction as the site serves it now, else what differs."""
    served = env.site.fiction(fiction_id)
    assert served is not None
    held = stored(fiction_id)
    expected = len(served.chapters)
    served_ids = {str(c.chapter_id) for c in served.chapters}
    problems = [
        f"{name} {held[name]} (expected {want})"
        for name, want in (("rows", expected), ("ids", expected), ("current", expected))
        if held[name] != want
    ]
    if held["novels"] != 1:
        problems.append(f"{held['novels']} novel rows")
    if missing := served_ids - held["ids_with_text"]:
        problems.append(f"{len(missing)} served chapters without text, e.g. {sorted(missing)[:3]}")
    return "; ".join(problems) or None


def _line(name: str, figures: Ingest) -> None:
    print(
        f"updates: {name}: client {figures.client_s:.2f} s, job {figures.job_s:.2f} s,"
        f" {figures.requests} requests to the site, {figures.chapters_saved} chapters,"
        f" changes {figures.changes}"
    )


def run(env: Environment, *, quick: bool = False) -> dict[str, Any]:
    fiction_id = QUICK_FICTION if quick else FICTION
    fiction = content.fiction(fiction_id)
    assert fiction is not None
    env.reset()
    env.site.reset()
    first = ingest(env, fiction_id)
    _line(f"first ingest of {len(fiction.chapters):,} chapters", first)
    updates: list[Ingest] = []
    problems: list[str] = []
    for n in range(1 if quick else UPDATE_ROUNDS):
        env.site.revise(fiction_id, add=ADDED)
        update = ingest(env, fiction_id)
        updates.append(update)
        _line(f"update {n + 1} (+{ADDED} chapters)", update)
        if (problem := verify(env, fiction_id)) is not None:
            problems.append(f"after update {n + 1}: {problem}")
        if update.changes.get("new") != ADDED:
            problems.append(f"update {n + 1} reported {update.changes}, not {ADDED} new")
    served = env.site.fiction(fiction_id)
    env.site.reset()  # the fiction as built again, for whatever runs next
    if problems:  # a fast update that stored the wrong chapters is no figure
        raise RuntimeError("updates: not stored as served: " + "; ".join(problems))
    job = statistics.median(u.job_s for u in updates)
    client = statistics.median(u.client_s for u in updates)
    requests = statistics.median(u.requests for u in updates)
    ratio = 100 * job / first.job_s
    print(
        f"updates: re-ingest / first ingest {ratio:.1f}% by the job's timestamps"
        f" ({job:.2f} s / {first.job_s:.2f} s), {100 * client / first.client_s:.1f}% by the"
        f" client's clock; requests {requests:.0f} against {first.requests}:"
        f" {sorted(set(updates[-1].paths))[:3]} ..."
    )
    size = f"{len(fiction.chapters):,} chapters"
    bound = (
        f"the update still reads and parses the whole fiction page ({size} listed), loads"
        " every stored chapter's listing row to diff against it, and saves the novel row,"
        " the new chapters and the positions in one transaction; plus the fixed per-job"
        " cost (fork, claim, Scrapy start, status commits)"
    )
    return {
        "fiction_id": fiction_id,
        "chapters_first": len(fiction.chapters),
        "chapters_now": len(served.chapters) if served else None,
        "first": asdict(first) | {"paths": first.paths[:3]},
        "updates": [asdict(u) for u in updates],
        "update_job_median_s": job,
        "update_client_median_s": client,
        "update_requests_median": requests,
        "ratio_percent": ratio,
        "stored_as_served": not problems,
        "problems": problems,
        "checks": [
            check(
                "updates",
                f"re-ingest with {ADDED} new chapters / first ingest, {size}",
                ratio,
                "%",
                at_most=TARGET_PERCENT,
                bound=bound,
            ),
            check(
                "updates",
                "requests of the re-ingest",
                requests,
                "requests",
                at_most=2 + ADDED,  # the fiction page (its redirect and the page) + the new
                bound="the fiction page (a redirect to its slug, then the page: the site has no"
                " ETag or Last-Modified to ask with) and one page per new chapter",
            ),
        ],
    }
