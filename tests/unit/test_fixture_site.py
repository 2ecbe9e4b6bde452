"""The fixture site itself: revisions of a served fiction, and the big fictions.

Other tests compare stored rows against what the site serves; these check that what it
serves is what its data says, over HTTP, as the crawler reads it (the Royal Road adapter).
"""

from __future__ import annotations

import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import timedelta

import pytest

from crawler.items import NovelRecord
from crawler.sites.royalroad import ADAPTER
from tests.fixture_site import content, pages
from tests.fixture_site.content import FixtureChapter, FixtureFiction
from tests.fixture_site.server import FixtureSite


@pytest.fixture(scope="module")
def running() -> Iterator[FixtureSite]:
    with FixtureSite() as site:
        yield site


@pytest.fixture
def site(running: FixtureSite) -> FixtureSite:
    running.reset()
    return running


def _get(site: FixtureSite, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(site.url(path), timeout=30) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def _served(site: FixtureSite, fiction_id: int) -> NovelRecord:
    """The fiction page as the crawler reads it."""
    fiction = site.fiction(fiction_id)
    assert fiction is not None
    status, html = _get(site, f"/fiction/{fiction_id}/{fiction.slug}")
    assert status == 200
    return ADAPTER.parse_fiction(html, site.url(f"/fiction/{fiction_id}/{fiction.slug}"))


def _listing(novel: NovelRecord) -> list[tuple[str, int, object]]:
    return [(c.site_chapter_id, c.position, c.published_at) for c in novel.chapters]


def _expected(chapters: tuple[FixtureChapter, ...]) -> list[tuple[str, int, object]]:
    return [(str(c.chapter_id), c.position, c.published_at) for c in chapters]


def _text(site: FixtureSite, fiction: FixtureFiction, chapter: FixtureChapter) -> str:
    status, html = _get(site, pages.chapter_url(fiction, chapter))
    assert status == 200
    return html


# --- revisions ---------------------------------------------------------------------------


def test_unrevised_fiction_is_the_built_one(site: FixtureSite) -> None:
    assert site.fiction(1001) is content.fiction(1001)
    assert site.fiction(999_999) is None
    built = content.fiction(1001)
    assert built is not None and built.revision == 0 and built.removed == ()
    assert built.listed == built.chapters
    # the first fictions keep their chapter ids (other tests and saved rows know them)
    assert [c.chapter_id for c in built.chapters[:3]] == [1_101_919, 1_101_838, 1_101_757]
    assert _listing(_served(site, 1001)) == _expected(built.chapters)


def test_add_remove_redate_edit(site: FixtureSite) -> None:
    before = site.fiction(1001)
    assert before is not None
    revised = site.revise(1001, add=3, remove=[5], redate=[10], edit=[20])
    assert revised == site.fiction(1001) and revised.revision == 1
    assert content.fiction(1001) is before  # the built data is untouched

    # positions renumbered 1..n in the old reading order, the new chapters at the end
    old = [c.chapter_id for c in before.chapters]
    ids = [c.chapter_id for c in revised.chapters]
    assert ids[:47] == old[:4] + old[5:]
    assert [c.position for c in revised.chapters] == list(range(1, 51))
    new = revised.chapters[47:]
    assert len(set(ids)) == 50 and not {c.chapter_id for c in new} & set(old)
    assert [c.chapter_id for c in new] == [content.added_chapter_id(1001, n) for n in (1, 2, 3)]
    latest = max(c.published_at for c in before.chapters)
    assert latest < new[0].published_at < new[1].published_at < new[2].published_at
    assert revised.removed == (before.chapters[4],)

    # the fiction page lists exactly that
    novel = _served(site, 1001)
    assert _listing(novel) == _expected(revised.chapters)
    assert novel.word_count == revised.word_count == sum(c.words for c in revised.chapters)
    assert revised.word_count != before.word_count

    # the removed chapter answers 404; a new one answers
    assert _get(site, pages.chapter_url(before, before.chapters[4]))[0] == 404
    assert site.chapter(1001, before.chapters[4].chapter_id) is None
    assert all(p in _text(site, revised, new[0]) for p in new[0].paragraphs)

    # redated: a later date and other text; edited: other text, same listing
    redated, was = revised.chapters[9 - 1], before.chapters[10 - 1]
    assert redated.chapter_id == was.chapter_id
    assert redated.published_at == was.published_at + timedelta(days=1)
    edited, was_edited = revised.chapters[19 - 1], before.chapters[20 - 1]
    assert edited.chapter_id == was_edited.chapter_id
    assert (edited.title, edited.published_at) == (was_edited.title, was_edited.published_at)
    for now, then in ((redated, was), (edited, was_edited)):
        assert now.paragraphs != then.paragraphs
        html = _text(site, revised, now)
        assert all(p in html for p in now.paragraphs)
        assert not any(p in html for p in then.paragraphs)
        record = ADAPTER.parse_chapter(html, novel.chapters[now.position - 1])
        assert record.title == now.title


def test_revisions_accumulate_until_reset(site: FixtureSite) -> None:
    site.revise(1002, add=1)
    site.revise(1002, remove=[1])
    third = site.revise(1002, add=2, edit=[1])
    assert third.revision == 3
    assert [c.chapter_id for c in third.removed] == [content.fiction(1002).chapters[0].chapter_id]  # type: ignore[union-attr]
    assert [c.chapter_id for c in third.chapters[-3:]] == [
        content.added_chapter_id(1002, n) for n in (1, 2, 3)
    ]
    assert len(third.chapters) == 5 - 1 + 3
    assert _listing(_served(site, 1002)) == _expected(third.chapters)

    site.reset()
    assert site.fiction(1002) is content.fiction(1002)
    built = content.fiction(1002)
    assert built is not None
    assert _listing(_served(site, 1002)) == _expected(built.chapters)
    assert _get(site, pages.chapter_url(built, built.chapters[0]))[0] == 200
    assert _get(site, pages.chapter_url(third, third.chapters[-1]))[0] == 404


def test_move(site: FixtureSite) -> None:
    built = content.fiction(1002)
    assert built is not None
    moved = site.revise(1002, remove=[1], move=[(4, 1)])  # after the removal: 2 3 4 5
    assert [c.chapter_id for c in moved.chapters] == [
        built.chapters[n].chapter_id for n in (4, 1, 2, 3)
    ]
    assert _listing(_served(site, 1002)) == _expected(moved.chapters)


def test_toc_limit(site: FixtureSite) -> None:
    built = content.fiction(1003)
    assert built is not None
    truncated = site.revise(1003, toc_limit=80)
    assert len(truncated.chapters) == 160 and len(truncated.listed) == 80
    novel = _served(site, 1003)
    assert _listing(novel) == _expected(built.chapters[:80])
    _, html = _get(site, f"/fiction/1003/{built.slug}")
    assert html.count('class="chapter-row"') == 80
    # chapter pages past the limit still answer, with their text
    last = truncated.chapters[-1]
    assert all(p in _text(site, truncated, last) for p in last.paragraphs)
    # the limit stays through other revisions, until lifted
    assert len(site.revise(1003, add=1).listed) == 80
    whole = site.revise(1003, full_toc=True)
    assert whole.toc_limit is None and len(_served(site, 1003).chapters) == 161


def test_word_count_popover_keeps_its_wording(site: FixtureSite) -> None:
    one = site.revise(1007, add=1)  # printed without a thousands separator
    assert one.word_count is not None and one.word_count > 1000
    assert one.story_length == content.paperback_popover(one.word_count, comma=False)
    assert _served(site, 1007).word_count == one.word_count
    odd = site.revise(1005, add=1)  # no count on its page: nothing to follow
    assert odd.word_count is None and odd.story_length == content.fiction(1005).story_length  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "changes",
    [
        {"remove": [0]},
        {"remove": [6]},
        {"edit": [2, 2]},
        {"remove": [1], "edit": [1]},
        {"redate": [3], "edit": [3]},
        {"move": [(1, 5)]},  # 4 chapters after the removal
        {"add": -1},
        {"toc_limit": -1},
    ],
)
def test_bad_revisions_are_refused(site: FixtureSite, changes: dict[str, object]) -> None:
    remove = changes.pop("remove", [2] if "move" in changes else [])
    with pytest.raises(ValueError):
        site.revise(1002, remove=remove, **changes)  # type: ignore[arg-type]
    assert site.fiction(1002) is content.fiction(1002)


def test_unknown_fiction_cannot_be_revised(site: FixtureSite) -> None:
    with pytest.raises(KeyError):
        site.revise(999_999, add=1)


def test_concurrent_revisions_and_requests(site: FixtureSite) -> None:
    """Revisions from many threads while the site serves the fiction: none is lost."""
    failures: list[BaseException] = []
    stop = threading.Event()

    def reader() -> None:
        while not stop.is_set():
            try:
                _served(site, 1002)
            except BaseException as error:  # reported below
                failures.append(error)

    def writer() -> None:
        for _ in range(10):
            site.revise(1002, add=1)

    readers = [threading.Thread(target=reader) for _ in range(2)]
    writers = [threading.Thread(target=writer) for _ in range(8)]
    for thread in (*readers, *writers):
        thread.start()
    for thread in writers:
        thread.join()
    stop.set()
    for thread in readers:
        thread.join()
    assert failures == []
    final = site.fiction(1002)
    assert final is not None and final.revision == 80 and len(final.chapters) == 85
    assert len({c.chapter_id for c in final.chapters}) == 85
    assert _listing(_served(site, 1002)) == _expected(final.chapters)


# --- big fictions ------------------------------------------------------------------------


@pytest.mark.parametrize(("fiction_id", "count"), [(1010, 10), (1011, 2_000), (1012, 10_000)])
def test_big_fictions(fiction_id: int, count: int) -> None:
    started = time.perf_counter()
    fiction = content.fiction(fiction_id)
    assert fiction is not None
    assert time.perf_counter() - started < 10  # generous: it takes ~0.6 s for 10,000
    assert len(fiction.chapters) == count
    assert len({c.chapter_id for c in fiction.chapters}) == count
    assert [c.position for c in fiction.chapters] == list(range(1, count + 1))
    assert len({c.slug for c in fiction.chapters}) == count
    assert {c.volume_id for c in fiction.chapters} == {v[0] for v in fiction.volumes}
    for chapter in fiction.chapters[:: max(1, count // 20)]:
        assert len(chapter.paragraphs) == content.BIG_PARAGRAPHS
        assert all(p.count(".") >= 4 for p in chapter.paragraphs)
        assert chapter.words == len(" ".join(chapter.paragraphs).split()) > 200
        assert tuple(chapter.paragraphs) == tuple(chapter.paragraphs)  # the same each time
    assert fiction.word_count == sum(c.words for c in fiction.chapters)


def test_big_fiction_ids_are_apart_from_the_others() -> None:
    ids = [c.chapter_id for f in (1010, 1011, 1012) for c in content.fiction(f).chapters]  # type: ignore[union-attr]
    others = {c.chapter_id for f in (1001, 1002, 1003, 1006) for c in content.fiction(f).chapters}  # type: ignore[union-attr]
    assert len(set(ids)) == len(ids) and not set(ids) & others


def test_the_10000_chapter_fiction_over_http(site: FixtureSite) -> None:
    fiction = site.fiction(1012)
    assert fiction is not None
    status, html = _get(site, f"/fiction/1012/{fiction.slug}")
    assert status == 200
    assert html.count('class="chapter-row"') == 10_000
    novel = ADAPTER.parse_fiction(html, site.url(f"/fiction/1012/{fiction.slug}"))
    assert novel.parse_warnings == ()
    assert _listing(novel) == _expected(fiction.chapters)
    assert [r.volume for r in novel.chapters] == [c.volume_title for c in fiction.chapters]
    assert novel.word_count == fiction.word_count
    for ref, chapter in list(zip(novel.chapters, fiction.chapters, strict=True))[::2500]:
        record = ADAPTER.parse_chapter(_text(site, fiction, chapter), ref)
        assert record.content_html is not None
        assert all(p in record.content_html for p in chapter.paragraphs)
    # revisions work on it too
    revised = site.revise(1012, remove=[9_999], add=1, redate=[1])
    assert len(revised.chapters) == 10_000
    assert revised.chapters[-1].chapter_id == content.added_chapter_id(1012, 1)
    assert _get(site, pages.chapter_url(fiction, fiction.chapters[9_998]))[0] == 404
