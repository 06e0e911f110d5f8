"""Conduit's admin (``/admin``): articles, comments and tags, with flaskstack's users and roles.

Who may use it is a matter of roles, given with ``flask stack role``::

    flask --app example:create_app stack role create editor \\
        -p admin.access -p article.view -p article.change -p comment.view -p comment.delete
    flask --app example:create_app stack role grant editor ada@example.com

Every change made here is in the admin's audit log (``audit.view``).
"""

from __future__ import annotations

import flaskstack.admin

from .models import Article, Comment, Tag

flaskstack.admin.register(
    Article,
    column_list=["title", "author", "created_at"],
    column_searchable_list=["title", "description", "body"],
    column_filters=["created_at", "tags"],
    column_default_sort=("created_at", True),
    form_columns=["title", "slug", "description", "body", "author", "tags"],
    category="Content",
)
flaskstack.admin.register(
    Comment,
    column_list=["article", "author", "body", "created_at"],
    column_searchable_list=["body"],
    column_default_sort=("created_at", True),
    can_create=False,
    category="Content",
)
flaskstack.admin.register(Tag, column_default_sort="name", category="Content")
