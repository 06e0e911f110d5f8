"""user_account_logins: signed-in devices (logins and remember-me cookies per device)

flaskstack tracks each sign-in as a login of its device; sessions and
remember-me cookies need theirs to exist (revoking one signs the device out).

Revision ID: a12ffcab1356
Revises: 41893aa28149
Create Date: 2026-12-06 23:06:54.634364

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "a12ffcab1356"
down_revision = "41893aa28149"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "user_account_logins",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=32), nullable=False),
        sa.Column("remember_hash", sa.String(length=64), nullable=True),
        sa.Column("remember_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("(CURRENT_TIMESTAMP)"),
            nullable=False,
        ),
        sa.Column(
            "last_used_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("(CURRENT_TIMESTAMP)"),
            nullable=False,
        ),
        sa.Column("user_agent", sa.String(length=255), nullable=True),
        sa.Column("address", sa.String(length=64), nullable=True),
        sa.Column("session_token_hash", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["user_account.id"],
            name=op.f("fk_user_account_logins_user_id_user_account"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_user_account_logins")),
        sa.UniqueConstraint("key", name=op.f("uq_user_account_logins_key")),
    )
    with op.batch_alter_table("user_account_logins", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_user_account_logins_user_id"), ["user_id"], unique=False
        )


def downgrade():
    with op.batch_alter_table("user_account_logins", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_user_account_logins_user_id"))

    op.drop_table("user_account_logins")
