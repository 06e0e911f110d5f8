import os

basedir = os.path.abspath(os.path.dirname(__file__))

try:
    from dotenv import load_dotenv
except ImportError:  # python-dotenv is optional: without it, only the real environment counts
    pass
else:
    load_dotenv(os.path.join(basedir, ".env"))


def _database_url(name, default):
    url = os.environ.get(name) or default
    # Heroku-style URLs name the dialect "postgres"; SQLAlchemy wants "postgresql".
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    return url


class Config:
    SECRET_KEY = os.environ.get("SECRET_KEY") or "you-will-never-guess"
    SQLALCHEMY_DATABASE_URI = _database_url(
        "DATABASE_URL", "sqlite:///" + os.path.join(basedir, "app.db")
    )
    POSTS_PER_PAGE = 25
    TOKEN_LIFETIME = 3600
    PASSWORD_HASH_METHOD = "scrypt"


class TestConfig(Config):
    TESTING = True
    SQLALCHEMY_DATABASE_URI = _database_url("TEST_DATABASE_URL", "sqlite://")
    # Strong hashes are slow on purpose; the tests need them fast, not strong.
    PASSWORD_HASH_METHOD = "pbkdf2:sha256:1000"
