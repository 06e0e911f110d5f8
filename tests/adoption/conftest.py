"""The adopting apps are projects of their own, each with its own test suite.

``tests/test_adoption_apps.py`` runs each suite in a subprocess, from a copy
of the app; this suite never collects them.
"""

collect_ignore_glob = ["*"]
