"""roles and two-factor sign-in: roles with permissions, TOTP secrets, recovery codes

flaskstack's roles (FLASKSTACK_ROLES) and two-factor sign-in (FLASKSTACK_TWO_FACTOR)
keep their rows in tables beside the user model; the user model itself is unchanged.

Revision ID: ee732e9dbb06
Revises: 2f908108fc71
Create Date: 2026-12-07 04:27:28.491986

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "ee732e9dbb06"
down_revision = "2f908108fc71"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "user_account_roles",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=80), nullable=False),
        sa.Column("description", sa.String(length=255), server_default="", nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("(CURRENT_TIMESTAMP)"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_user_account_roles")),
        sa.UniqueConstraint("name", name=op.f("uq_user_account_roles_name")),
    )
    op.create_table(
        "user_account_recovery_codes",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("(CURRENT_TIMESTAMP)"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["user_account.id"],
            name=op.f("fk_user_account_recovery_codes_user_id_user_account"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_user_account_recovery_codes")),
    )
    with op.batch_alter_table("user_account_recovery_codes", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_user_account_recovery_codes_user_id"), ["user_id"], unique=False
        )

    op.create_table(
        "user_account_role_permissions",
        sa.Column("role_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=80), nullable=False),
        sa.ForeignKeyConstraint(
            ["role_id"],
            ["user_account_roles.id"],
            name=op.f("fk_user_account_role_permissions_role_id_user_account_roles"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("role_id", "name", name=op.f("pk_user_account_role_permissions")),
    )
    op.create_table(
        "user_account_two_factor",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("secret", sa.String(length=64), nullable=False),
        sa.Column("confirmed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_step", sa.BigInteger(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("(CURRENT_TIMESTAMP)"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["user_account.id"],
            name=op.f("fk_user_account_two_factor_user_id_user_account"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_user_account_two_factor")),
        sa.UniqueConstraint("user_id", name=op.f("uq_user_account_two_factor_user_id")),
    )
    with op.batch_alter_table("user_account_two_factor", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_user_account_two_factor_user_id"), ["user_id"], unique=False
        )

    op.create_table(
        "user_account_user_roles",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("role_id", sa.Integer(), nullable=False),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column(
            "granted_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("(CURRENT_TIMESTAMP)"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["role_id"],
            ["user_account_roles.id"],
            name=op.f("fk_user_account_user_roles_role_id_user_account_roles"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["user_account.id"],
            name=op.f("fk_user_account_user_roles_user_id_user_account"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_user_account_user_roles")),
        sa.UniqueConstraint(
            "user_id", "role_id", name=op.f("uq_user_account_user_roles_user_id_role_id")
        ),
    )
    with op.batch_alter_table("user_account_user_roles", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_user_account_user_roles_role_id"), ["role_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_user_account_user_roles_user_id"), ["user_id"], unique=False
        )


def downgrade():
    with op.batch_alter_table("user_account_user_roles", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_user_account_user_roles_user_id"))
        batch_op.drop_index(batch_op.f("ix_user_account_user_roles_role_id"))

    op.drop_table("user_account_user_roles")
    with op.batch_alter_table("user_account_two_factor", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_user_account_two_factor_user_id"))

    op.drop_table("user_account_two_factor")
    op.drop_table("user_account_role_permissions")
    with op.batch_alter_table("user_account_recovery_codes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_user_account_recovery_codes_user_id"))

    op.drop_table("user_account_recovery_codes")
    op.drop_table("user_account_roles")
