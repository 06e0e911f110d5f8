"""Django's view of the benchmark tables.

``notes`` and ``feedback`` are the tables the Flask apps use (created and
seeded by the harness); API tokens get their own table, pointing at Django's
users, which the harness seeds with the same ids and emails.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone


class Note(models.Model):
    id = models.AutoField(primary_key=True)
    title = models.CharField(max_length=200)
    body = models.TextField()
    created_at = models.DateTimeField()

    class Meta:
        managed = False
        db_table = "notes"


class Feedback(models.Model):
    id = models.AutoField(primary_key=True)
    user_id = models.IntegerField()
    message = models.TextField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        managed = False
        db_table = "feedback"


class ApiToken(models.Model):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    name = models.CharField(max_length=100)
    token_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(default=timezone.now)
    revoked_at = models.DateTimeField(null=True)
