"""Existing apps adopting flaskstack: projects of their own, run by ``test_adoption_apps.py``.

A package, so that this folder's ``conftest.py`` is ``adoption.conftest`` and not
a second top-level ``conftest`` module beside the suite's own.
"""
