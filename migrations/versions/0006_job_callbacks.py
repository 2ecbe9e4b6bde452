"""job callbacks

A job may carry a callback_url that is POSTed the job's outcome once it ends
(callback.py); the row keeps where that delivery stands: pending, delivered or failed,
how many deliveries were tried, the last failure's reason, and when it was delivered.
Rows without a callback_url have callback_status null. A partial index finds the
pending deliveries (the reconciler's pass) among every job ever run.

Revision ID: 0006
Revises: 0005
"""

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

import models.base

revision: str = "0006"
down_revision: Union[str, Sequence[str], None] = "0005"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

_PENDING_SQL = "callback_status = 'pending'"
PENDING = {"postgresql_where": sa.text(_PENDING_SQL), "sqlite_where": sa.text(_PENDING_SQL)}


def upgrade() -> None:
    with op.batch_alter_table("ingestion_jobs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("callback_url", sa.String(length=2048), nullable=True))
        batch_op.add_column(sa.Column("callback_status", sa.String(length=16), nullable=True))
        batch_op.add_column(
            sa.Column("callback_attempts", sa.Integer(), server_default="0", nullable=False)
        )
        batch_op.add_column(sa.Column("callback_error", sa.Text(), nullable=True))
        batch_op.add_column(
            sa.Column("callback_delivered_at", models.base.UTCDateTime(), nullable=True)
        )
        batch_op.create_index("ix_ingestion_jobs_callback_pending", ["id"], unique=False, **PENDING)


def downgrade() -> None:
    with op.batch_alter_table("ingestion_jobs", schema=None) as batch_op:
        batch_op.drop_index("ix_ingestion_jobs_callback_pending", **PENDING)
        for name in (
            "callback_delivered_at",
            "callback_error",
            "callback_attempts",
            "callback_status",
            "callback_url",
        ):
            batch_op.drop_column(name)
