"""Settings module for test app."""

import os

ENV = "development"
TESTING = True
SQLALCHEMY_DATABASE_URI = os.environ.get("TEST_DATABASE_URL", "sqlite://")
SECRET_KEY = "not-so-secret-in-tests"
PASSWORD_HASH_METHOD = "pbkdf2:sha256:1000"  # Cheap hashes: tests need them fast, not strong
DEBUG_TB_ENABLED = False
CACHE_TYPE = "flask_caching.backends.SimpleCache"
SQLALCHEMY_TRACK_MODIFICATIONS = False
