"""longer password hashes and about me

Werkzeug's scrypt hashes do not fit in 128 characters. On SQLite, changing a
column's type rebuilds the table (batch mode "move and copy").

Revision ID: 2b017edaa91f
Revises: 834b1a697901
Create Date: 2023-11-20 09:31:40.662014

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "2b017edaa91f"
down_revision = "834b1a697901"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("user", schema=None) as batch_op:
        batch_op.alter_column(
            "password_hash",
            existing_type=sa.String(length=128),
            type_=sa.String(length=256),
            existing_nullable=True,
        )
        batch_op.alter_column(
            "about_me",
            existing_type=sa.String(length=140),
            type_=sa.String(length=280),
            existing_nullable=True,
        )


def downgrade():
    with op.batch_alter_table("user", schema=None) as batch_op:
        batch_op.alter_column(
            "about_me",
            existing_type=sa.String(length=280),
            type_=sa.String(length=140),
            existing_nullable=True,
        )
        batch_op.alter_column(
            "password_hash",
            existing_type=sa.String(length=256),
            type_=sa.String(length=128),
            existing_nullable=True,
        )
