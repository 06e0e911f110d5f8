"""Alembic environment for a flaskstack app.

The app is already loaded by ``flask db``: the engine, its options and the
models' metadata all come from it, so there is one database URL (the app's)
and no second place to configure it.
"""

from logging.config import fileConfig

from alembic import context
from flask import current_app

config = context.config
if config.config_file_name is not None:
    # Keep the app's own loggers: fileConfig disables them by default.
    fileConfig(config.config_file_name, disable_existing_loggers=False)

migrate_ext = current_app.extensions["migrate"]
target_metadata = migrate_ext.db.metadata


def run_migrations_offline():
    """Emit SQL to stdout instead of running it (``flask db upgrade --sql``)."""
    url = migrate_ext.db.engine.url.render_as_string(hide_password=False)
    context.configure(
        url=url,
        target_metadata=target_metadata,
        literal_binds=True,
        **migrate_ext.configure_args,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online():
    """Run the migrations on a connection from the app's engine.

    ``configure_args`` come from flaskstack: compare_type, batch mode, and the
    hook that skips empty revisions and warns about dropped tables and columns.
    Under ``flask db``, SQLite's foreign keys are off on this connection, as
    Alembic's batch mode needs.
    """
    with migrate_ext.db.engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            **migrate_ext.configure_args,
        )
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
