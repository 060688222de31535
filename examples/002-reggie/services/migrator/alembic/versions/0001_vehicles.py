"""vehicles table

Revision ID: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None


def upgrade():
    op.create_table(
        "vehicles",
        sa.Column("registration", sa.String(8), primary_key=True),
        sa.Column("valuation", sa.Numeric(10, 2)),
    )


def downgrade():
    op.drop_table("vehicles")
