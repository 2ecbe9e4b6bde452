"""GET /novels, /novels/{id}, /novels/{id}/chapters, /novels/{id}/chapters/{position},
/novels/{id}/export.epub; POST /novels/{id}/refresh."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Query, Response, status
from fastapi.responses import FileResponse

import export
import jobs
import novels
from api import openapi
from api.auth import READ
from api.deps import Limit, Offset, RowId, SessionDep, SettingsDep
from api.routes.ingest import accepted
from api.schemas import (
    ChapterPublic,
    ChapterSummary,
    IngestAccepted,
    NovelDetail,
    NovelPublic,
    Page,
    RefreshRequest,
)
from api.throttle import QUOTA

router = APIRouter(prefix="/novels", tags=["novels"])
ETAG_HEADER = {"description": "the version of the book", "schema": {"type": "string"}}


@router.get(
    "",
    response_model=Page[NovelPublic],
    dependencies=[READ],
    responses=openapi.errors(*openapi.READ_ERRORS),
)
def list_novels(session: SessionDep, limit: Limit = 50, offset: Offset = 0) -> Page[NovelPublic]:
    rows, total = novels.list_novels(session, limit=limit, offset=offset)
    items = [NovelPublic.model_validate(n) for n in rows]
    return Page(items=items, total=total, limit=limit, offset=offset)


@router.get(
    "/{novel_id}",
    response_model=NovelDetail,
    dependencies=[READ],
    responses=openapi.errors(*openapi.READ_ERRORS, 404),
)
def get_novel(novel_id: RowId, session: SessionDep) -> NovelDetail:
    novel = novels.get_novel(session, novel_id)
    base = NovelPublic.model_validate(novel).model_dump()
    return NovelDetail(
        **base,
        description=novel.description,
        warnings=novel.warnings,
        tag_groups=novel.tag_groups or {},
        language=novel.language,
        content_rating=novel.content_rating,
        chapters_planned=novel.chapters_planned,
        site_updated_at=novel.site_updated_at,
        notes_html=novel.notes_html,
        volumes=novel.volumes,
        chapter_count=novels.chapter_count(session, novel_id),
    )


@router.get(
    "/{novel_id}/chapters",
    response_model=Page[ChapterSummary],
    dependencies=[READ],
    responses=openapi.errors(*openapi.READ_ERRORS, 404),
)
def list_chapters(
    novel_id: RowId,
    session: SessionDep,
    limit: Limit = 200,
    offset: Offset = 0,
    include_removed: Annotated[
        bool, Query(description="also the chapters the site no longer lists")
    ] = False,
) -> Page[ChapterSummary]:
    rows, total = novels.list_chapters(
        session, novel_id, limit=limit, offset=offset, include_removed=include_removed
    )
    items = [ChapterSummary.model_validate(c) for c in rows]
    return Page(items=items, total=total, limit=limit, offset=offset)


@router.get(
    "/{novel_id}/chapters/{position}",
    response_model=ChapterPublic,
    dependencies=[READ],
    responses=openapi.errors(*openapi.READ_ERRORS, 404),
)
def get_chapter(novel_id: RowId, position: RowId, session: SessionDep) -> ChapterPublic:
    return ChapterPublic.model_validate(novels.get_chapter(session, novel_id, position))


@router.get(
    "/{novel_id}/export.epub",
    response_class=FileResponse,
    dependencies=[READ],
    responses={
        200: {
            "description": "the novel as an EPUB 3 book (an attachment)",
            "content": {export.MEDIA_TYPE: {"schema": {"type": "string", "format": "binary"}}},
            "headers": {"ETag": ETAG_HEADER},
        },
        304: {
            "description": "If-None-Match names the current book: it is not sent again",
            "headers": {"ETag": ETAG_HEADER},
        },
        **openapi.errors(*openapi.READ_ERRORS, 404),
    },
)
def export_epub(
    novel_id: RowId,
    session: SessionDep,
    settings: SettingsDep,
    if_none_match: Annotated[
        str | None, Header(description="the ETag of a book already downloaded")
    ] = None,
) -> Response:
    """The stored novel as an EPUB 3 book: its chapters in order (volumes as sections),
    author notes set apart, metadata and cover URL. Built on the first request and kept
    until the novel changes; the ETag names that version."""
    novel = novels.get_novel(session, novel_id)
    current = export.version(session, novel)
    headers = {"ETag": export.etag(current)}
    if export.names_version(if_none_match, current):
        return Response(status_code=status.HTTP_304_NOT_MODIFIED, headers=headers)
    book = export.cached_book(session, novel, current=current, settings=settings)
    return FileResponse(
        book.path, media_type=export.MEDIA_TYPE, filename=book.filename, headers=headers
    )


@router.post(
    "/{novel_id}/refresh",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=IngestAccepted,
    responses={
        200: {"model": IngestAccepted, "description": "an active job for this novel exists"},
        **openapi.errors(*openapi.WRITE_ERRORS, 404, 429),
    },
    dependencies=[QUOTA],
)
def refresh_novel(
    novel_id: RowId,
    session: SessionDep,
    settings: SettingsDep,
    response: Response,
    body: RefreshRequest | None = None,
) -> IngestAccepted:
    """Update a stored novel from its site: only what changed, or (`full`) every chapter."""
    asked = body if body is not None else RefreshRequest()
    submission = jobs.refresh(
        session,
        novel_id,
        settings=settings,
        full=asked.full,
        allow_removals=asked.allow_removals,
        priority=asked.priority,
    )
    return accepted(submission, response)
