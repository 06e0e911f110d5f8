"""Fault, scale-out and load tests against the stack running under gunicorn."""
