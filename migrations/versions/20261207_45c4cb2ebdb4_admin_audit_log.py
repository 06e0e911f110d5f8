"""admin audit log: who changed what in the admin, and when

flaskstack's admin (FLASKSTACK_ADMIN) writes each change made in it to a table
beside the user model, in the transaction of the change; the user model itself
is unchanged.

Revision ID: 45c4cb2ebdb4
Revises: ee732e9dbb06
Create Date: 2026-12-07 08:13:42.424817

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "45c4cb2ebdb4"
down_revision = "ee732e9dbb06"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "user_account_admin_audit_log",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("user_id", sa.String(length=64), nullable=True),
        sa.Column("user_email", sa.String(length=320), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("model", sa.String(length=255), nullable=False),
        sa.Column("table_name", sa.String(length=255), nullable=False),
        sa.Column("primary_key", sa.String(length=255), nullable=False),
        sa.Column("changes", sa.JSON(), nullable=False),
        sa.Column("request_id", sa.String(length=128), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_user_account_admin_audit_log")),
    )
    with op.batch_alter_table("user_account_admin_audit_log", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_user_account_admin_audit_log_at"), ["at"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_user_account_admin_audit_log_model"), ["model"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_user_account_admin_audit_log_primary_key"), ["primary_key"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_user_account_admin_audit_log_request_id"), ["request_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_user_account_admin_audit_log_user_id"), ["user_id"], unique=False
        )


def downgrade():
    with op.batch_alter_table("user_account_admin_audit_log", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_user_account_admin_audit_log_user_id"))
        batch_op.drop_index(batch_op.f("ix_user_account_admin_audit_log_request_id"))
        batch_op.drop_index(batch_op.f("ix_user_account_admin_audit_log_primary_key"))
        batch_op.drop_index(batch_op.f("ix_user_account_admin_audit_log_model"))
        batch_op.drop_index(batch_op.f("ix_user_account_admin_audit_log_at"))

    op.drop_table("user_account_admin_audit_log")
