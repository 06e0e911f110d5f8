"""Hostile input and security probes against the stack running under gunicorn."""
