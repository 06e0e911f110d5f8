"""posts table

Revision ID: 780739b227a7
Revises: e517276bb1c2
Create Date: 2023-01-10 18:42:57.115362

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "780739b227a7"
down_revision = "e517276bb1c2"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "post",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("body", sa.String(length=140), nullable=False),
        sa.Column("timestamp", sa.DateTime(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["user.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("post", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_post_timestamp"), ["timestamp"], unique=False)
        batch_op.create_index(batch_op.f("ix_post_user_id"), ["user_id"], unique=False)


def downgrade():
    with op.batch_alter_table("post", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_post_user_id"))
        batch_op.drop_index(batch_op.f("ix_post_timestamp"))

    op.drop_table("post")
