"""The benchmark endpoints."""

from __future__ import annotations

from django.urls import path

from . import views

urlpatterns = [
    path("", views.page),
    path("me", views.me),
    path("cached", views.cached),
    path("feedback", views.feedback),
    path("api/notes/<int:note_id>", views.api_note),
    path("api/notes", views.api_notes),
    path("bench/login/<int:user_id>", views.bench_login),
]
