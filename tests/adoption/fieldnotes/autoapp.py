"""Create an application instance."""

from fieldnotes.app import create_app

app = create_app()
