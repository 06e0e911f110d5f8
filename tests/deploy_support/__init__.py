"""Helpers for the deployment tests: the Dockerfile and compose file read without Docker,
their commands run as local processes, and a browser-like HTTP client.

Used by ``tests/test_deploy.py`` (this repository's files) and
``tests/test_scaffold.py`` (a generated project's).
"""
