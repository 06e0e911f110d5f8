"""account links and confirmed addresses: password reset, email confirmation and change

flaskstack keeps a SHA-256 of each link it mails (user_account_account_tokens) and
the addresses each user confirmed (user_account_confirmed_emails).

Revision ID: 2f908108fc71
Revises: a12ffcab1356
Create Date: 2026-12-06 23:14:43.556802

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "2f908108fc71"
down_revision = "a12ffcab1356"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "user_account_account_tokens",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("purpose", sa.String(length=32), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("(CURRENT_TIMESTAMP)"),
            nullable=False,
        ),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["user_account.id"],
            name=op.f("fk_user_account_account_tokens_user_id_user_account"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_user_account_account_tokens")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_user_account_account_tokens_token_hash")),
    )
    with op.batch_alter_table("user_account_account_tokens", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_user_account_account_tokens_user_id"), ["user_id"], unique=False
        )

    op.create_table(
        "user_account_confirmed_emails",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column(
            "confirmed_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("(CURRENT_TIMESTAMP)"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["user_account.id"],
            name=op.f("fk_user_account_confirmed_emails_user_id_user_account"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_user_account_confirmed_emails")),
        sa.UniqueConstraint(
            "user_id", "email", name=op.f("uq_user_account_confirmed_emails_user_id_email")
        ),
    )
    with op.batch_alter_table("user_account_confirmed_emails", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_user_account_confirmed_emails_user_id"), ["user_id"], unique=False
        )


def downgrade():
    with op.batch_alter_table("user_account_confirmed_emails", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_user_account_confirmed_emails_user_id"))

    op.drop_table("user_account_confirmed_emails")
    with op.batch_alter_table("user_account_account_tokens", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_user_account_account_tokens_user_id"))

    op.drop_table("user_account_account_tokens")
