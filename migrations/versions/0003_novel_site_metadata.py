"""novel metadata other sites state

Tags by kind, language, audience rating, planned chapters, the site's update date and
work-level notes: what Scribble Hub and Archive of Our Own pages say beyond Royal Road's.

Revision ID: 0003
Revises: 0002
"""
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

import models.base

revision: str = "0003"
down_revision: Union[str, Sequence[str], None] = "0002"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

COLUMNS = ("notes_html", "site_updated_at", "chapters_planned", "content_rating", "language")


def upgrade() -> None:
    with op.batch_alter_table("novels", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("tag_groups", sa.JSON(), server_default=sa.text("'{}'"), nullable=False)
        )
        batch_op.add_column(sa.Column("language", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("content_rating", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("chapters_planned", sa.Integer(), nullable=True))
        batch_op.add_column(
            sa.Column("site_updated_at", models.base.UTCDateTime(), nullable=True)
        )
        batch_op.add_column(sa.Column("notes_html", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("novels", schema=None) as batch_op:
        for name in (*COLUMNS, "tag_groups"):
            batch_op.drop_column(name)
