"""locked chapters, job warnings

Chapters the site lists but does not serve are stored locked, without text; a job keeps
the warnings of fields it could not read, and how many chapters were locked.

Revision ID: 0002
Revises: 0001
"""
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: Union[str, Sequence[str], None] = "0001"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    with op.batch_alter_table("chapters", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("locked", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
        batch_op.alter_column("content_html", existing_type=sa.Text(), nullable=True)
        batch_op.alter_column("word_count", existing_type=sa.Integer(), nullable=True)
        batch_op.alter_column("content_hash", existing_type=sa.String(length=64), nullable=True)
    with op.batch_alter_table("ingestion_jobs", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("chapters_locked", sa.Integer(), server_default="0", nullable=False)
        )
        batch_op.add_column(
            sa.Column("warnings", sa.JSON(), server_default=sa.text("'[]'"), nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("ingestion_jobs", schema=None) as batch_op:
        batch_op.drop_column("warnings")
        batch_op.drop_column("chapters_locked")
    op.execute("DELETE FROM chapters WHERE locked")
    with op.batch_alter_table("chapters", schema=None) as batch_op:
        batch_op.alter_column("content_hash", existing_type=sa.String(length=64), nullable=False)
        batch_op.alter_column("word_count", existing_type=sa.Integer(), nullable=False)
        batch_op.alter_column("content_html", existing_type=sa.Text(), nullable=False)
        batch_op.drop_column("locked")
