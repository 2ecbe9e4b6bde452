"""Novels ingested through the real pipeline (API -> RQ worker -> Scrapy -> PostgreSQL),
exported by GET /novels/{id}/export.epub: every book passes epubcheck and reads back
with its chapters, volumes and notes."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from ebooklib import epub
from fastapi.testclient import TestClient

from tests.fixture_site import ao3, scribblehub
from tests.fixture_site.server import FixtureSite
from tests.utils import services
from tests.utils.jobs import submit, wait_job

EPUBCHECK = shutil.which("epubcheck")
JAVA = shutil.which("java")
pytestmark = pytest.mark.skipif(
    EPUBCHECK is None or JAVA is None, reason="epubcheck is not installed (Debian: epubcheck)"
)


@pytest.fixture
def api_exporting(
    pg_db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[TestClient]:
    monkeypatch.setenv("EXPORT_CACHE_DIR", str(tmp_path / "exports"))
    services.clear_settings_caches()
    from main import create_app

    with TestClient(create_app()) as client:
        yield client
    monkeypatch.undo()
    services.clear_settings_caches()


def _epubcheck(path: Path) -> str:
    checked = subprocess.run(
        [str(JAVA), "-jar", os.path.realpath(str(EPUBCHECK)), str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    report = checked.stdout + checked.stderr
    assert checked.returncode == 0, report
    return report


@pytest.mark.slow
def test_every_site_s_novels_export_as_valid_books(
    api_exporting: TestClient,
    fixture_sites: dict[str, FixtureSite],
    start_worker: Any,
    tmp_path: Path,
) -> None:
    worker = start_worker()
    royal, hub, archive = (fixture_sites[s] for s in ("royalroad", "scribblehub", "ao3"))
    normal = scribblehub.fiction(scribblehub.NORMAL)
    assert normal is not None
    urls = {
        "volumes": royal.url("/fiction/1001"),
        "locked": royal.url("/fiction/1006"),
        "hostile": royal.url("/fiction/2108"),
        "scribblehub": hub.url(normal.path()),
        "ao3": archive.url(f"/works/{ao3.NORMAL}"),
    }
    for name, url in urls.items():
        job = wait_job(api_exporting, submit(api_exporting, url), timeout=120)
        assert job["status"] == "done", (name, job, worker.log())
        novel = api_exporting.get(f"/novels/{job['novel_id']}").json()
        response = api_exporting.get(f"/novels/{novel['id']}/export.epub")
        assert response.status_code == 200, (name, response.text)
        path = tmp_path / f"{name}.epub"
        path.write_bytes(response.content)
        assert "ERROR" not in _epubcheck(path), name
        book = epub.read_epub(str(path))
        chapters = api_exporting.get(f"/novels/{novel['id']}/chapters").json()["items"]
        titles = [t for t in _flat_titles(book.toc)[1:] if t not in _volumes(book.toc)]
        assert titles == [c["title"] or f"Chapter {c['position']}" for c in chapters], name
        if name == "volumes":
            assert len(_volumes(book.toc)) == len(novel["volumes"]) > 1
        if name == "ao3":
            notes = [i for i in book.get_items_of_type(9) if b"author-note" in i.get_content()]
            assert notes, "AO3 notes are in the book, styled apart"


def _flat_titles(toc: list[Any]) -> list[str]:
    titles: list[str] = []
    for entry in toc:
        if isinstance(entry, tuple):
            titles.append(entry[0].title)
            titles.extend(_flat_titles(entry[1]))
        else:
            titles.append(entry.title)
    return titles


def _volumes(toc: list[Any]) -> list[str]:
    return [entry[0].title for entry in toc if isinstance(entry, tuple)]
