"""The library's models: authors and their books (``book.author_id`` references ``author``)."""

from __future__ import annotations

import os

from . import db

VERSION = os.environ.get("LIBRARY_VERSION", "1")


class Author(db.Model):  # type: ignore[name-defined,misc]
    __tablename__ = "author"

    id = db.Column(db.Integer, primary_key=True)
    name = db.Column(db.String(50 if VERSION == "1" else 100), nullable=False, unique=True)


class Book(db.Model):  # type: ignore[name-defined,misc]
    __tablename__ = "book"

    id = db.Column(db.Integer, primary_key=True)
    title = db.Column(db.String(100), nullable=False)
    author_id = db.Column(db.Integer, db.ForeignKey("author.id"), nullable=False)
