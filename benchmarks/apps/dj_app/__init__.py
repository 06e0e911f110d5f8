"""The benchmark app on Django: the same endpoints, Redis-backed sessions and cache.

A project and its one app in a single package. Configured from
``DATABASE_URL``, ``REDIS_URL`` and ``SECRET_KEY`` in the environment.
Serve it with ``gunicorn dj_app.wsgi:application``.
"""
