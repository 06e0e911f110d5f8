"""user tokens and about me

Revision ID: 834b1a697901
Revises: 780739b227a7
Create Date: 2023-03-02 10:14:23.527901

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "834b1a697901"
down_revision = "780739b227a7"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("user", schema=None) as batch_op:
        batch_op.add_column(sa.Column("about_me", sa.String(length=140), nullable=True))
        batch_op.add_column(sa.Column("token", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("token_expiration", sa.DateTime(), nullable=True))
        batch_op.create_index(batch_op.f("ix_user_token"), ["token"], unique=True)


def downgrade():
    with op.batch_alter_table("user", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_user_token"))
        batch_op.drop_column("token_expiration")
        batch_op.drop_column("token")
        batch_op.drop_column("about_me")
