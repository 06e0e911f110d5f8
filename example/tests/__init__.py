"""The reference app's tests (run them with ``pytest example/tests``; see conftest.py)."""
