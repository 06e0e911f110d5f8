"""widen users.first_name and users.last_name

SQLite cannot change a column's type in place: batch mode copies the table
into a new one.

Revision ID: d4e8b6a0f512
Revises: 9c2d1e7a4b33
Create Date: 2024-01-08 08:45:12.004531

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "d4e8b6a0f512"
down_revision = "9c2d1e7a4b33"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.alter_column(
            "last_name",
            existing_type=sa.String(length=30),
            type_=sa.String(length=64),
            existing_nullable=True,
        )
        batch_op.alter_column(
            "first_name",
            existing_type=sa.String(length=30),
            type_=sa.String(length=64),
            existing_nullable=True,
        )


def downgrade():
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.alter_column(
            "first_name",
            existing_type=sa.String(length=64),
            type_=sa.String(length=30),
            existing_nullable=True,
        )
        batch_op.alter_column(
            "last_name",
            existing_type=sa.String(length=64),
            type_=sa.String(length=30),
            existing_nullable=True,
        )
