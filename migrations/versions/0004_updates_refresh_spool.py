"""updates, scheduled refresh, resumable crawls

Chapters an update no longer finds are marked removed instead of deleted; novels keep
when they were last checked, last changed and are due again; jobs say whether they
refetch everything, their priority and origin, and what they changed, and one may be
active per novel (not per URL: a novel reached at a mirror is the same novel); fetched
pages are spooled per job so a retry fetches only what it lacks.

Revision ID: 0004
Revises: 0003
"""

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

import models.base

revision: str = "0004"
down_revision: Union[str, Sequence[str], None] = "0003"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

_ACTIVE_SQL = "status IN ('queued', 'crawling', 'parsing', 'saving')"
ACTIVE = {"postgresql_where": sa.text(_ACTIVE_SQL), "sqlite_where": sa.text(_ACTIVE_SQL)}


def upgrade() -> None:
    with op.batch_alter_table("chapters", schema=None) as batch_op:
        batch_op.add_column(sa.Column("removed_at", models.base.UTCDateTime(), nullable=True))
    with op.batch_alter_table("novels", schema=None) as batch_op:
        batch_op.add_column(sa.Column("last_checked_at", models.base.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column("last_changed_at", models.base.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column("next_refresh_at", models.base.UTCDateTime(), nullable=True))
        batch_op.create_index("ix_novels_next_refresh_at", ["next_refresh_at"], unique=False)
    with op.batch_alter_table("ingestion_jobs", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("full", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
        batch_op.add_column(
            sa.Column("allow_removals", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
        batch_op.add_column(
            sa.Column("priority", sa.String(length=8), server_default="normal", nullable=False)
        )
        batch_op.add_column(
            sa.Column("origin", sa.String(length=16), server_default="user", nullable=False)
        )
        batch_op.add_column(sa.Column("changes", sa.JSON(), nullable=True))
        batch_op.drop_index("uq_ingestion_jobs_active_source_url", **ACTIVE)
        batch_op.create_index(
            "uq_ingestion_jobs_active_novel", ["site", "site_novel_id"], unique=True, **ACTIVE
        )
        batch_op.create_index(
            "ix_ingestion_jobs_site_novel_id", ["site", "site_novel_id", "id"], unique=False
        )
    op.create_table(
        "spooled_pages",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("job_id", sa.Integer(), nullable=False),
        sa.Column("fetch_key", sa.String(length=64), nullable=False),
        sa.Column("page", sa.LargeBinary(), nullable=False),
        sa.Column("records", sa.LargeBinary(), nullable=True),
        sa.Column("fetched_at", models.base.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["job_id"],
            ["ingestion_jobs.id"],
            name=op.f("fk_spooled_pages_job_id_ingestion_jobs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_spooled_pages")),
        sa.UniqueConstraint("job_id", "fetch_key", name="uq_spooled_pages_job_fetch"),
    )


def downgrade() -> None:
    op.drop_table("spooled_pages")
    with op.batch_alter_table("ingestion_jobs", schema=None) as batch_op:
        batch_op.drop_index("ix_ingestion_jobs_site_novel_id")
        batch_op.drop_index("uq_ingestion_jobs_active_novel", **ACTIVE)
        batch_op.create_index(
            "uq_ingestion_jobs_active_source_url", ["source_url"], unique=True, **ACTIVE
        )
        for name in ("changes", "origin", "priority", "allow_removals", "full"):
            batch_op.drop_column(name)
    with op.batch_alter_table("novels", schema=None) as batch_op:
        batch_op.drop_index("ix_novels_next_refresh_at")
        for name in ("next_refresh_at", "last_changed_at", "last_checked_at"):
            batch_op.drop_column(name)
    op.execute("DELETE FROM chapters WHERE removed_at IS NOT NULL")
    with op.batch_alter_table("chapters", schema=None) as batch_op:
        batch_op.drop_column("removed_at")
