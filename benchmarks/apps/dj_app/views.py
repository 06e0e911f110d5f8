"""The benchmark endpoints, written as Django's documentation shows."""

from __future__ import annotations

import functools
import hashlib
import typing as t

import benchdata
from django import forms
from django.contrib.auth import get_user_model, login
from django.contrib.auth.decorators import login_required
from django.core.paginator import EmptyPage, Paginator
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.cache import cache_page

from .models import ApiToken, Feedback, Note

View = t.Callable[..., HttpResponse]


class FeedbackForm(forms.Form):
    message = forms.CharField(max_length=benchdata.MESSAGE_MAX_LENGTH, widget=forms.Textarea)


def token_required(view: View) -> View:
    """Authenticate the request by ``Authorization: Bearer <token>``, or answer 401."""

    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args: t.Any, **kwargs: t.Any) -> HttpResponse:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "bearer" and token:
            digest = hashlib.sha256(token.encode()).hexdigest()
            record = (
                ApiToken.objects.select_related("user")
                .filter(token_hash=digest, revoked_at__isnull=True, user__is_active=True)
                .first()
            )
            if record is not None:
                request.user = record.user
                return view(request, *args, **kwargs)
        return JsonResponse({"detail": "Authentication required."}, status=401)

    return wrapper


def page(request: HttpRequest) -> HttpResponse:
    context = {"title": benchdata.PAGE_TITLE, "items": benchdata.PAGE_ITEMS}
    return render(request, "dj_app/page.html", context)


@login_required
def me(request: HttpRequest) -> HttpResponse:
    return JsonResponse({"id": request.user.id, "email": request.user.email})


@cache_page(benchdata.CACHE_SECONDS)
def cached(request: HttpRequest) -> HttpResponse:
    latest = Note.objects.order_by("-id")[: benchdata.LATEST_NOTES]
    return render(request, "dj_app/notes.html", {"notes": latest})


@login_required
def feedback(request: HttpRequest) -> HttpResponse:
    form = FeedbackForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        Feedback.objects.create(user_id=request.user.id, message=form.cleaned_data["message"])
        response = HttpResponseRedirect("/me")
        response.status_code = 303
        return response
    return render(request, "dj_app/feedback.html", {"form": form})


@token_required
def api_note(request: HttpRequest, note_id: int) -> HttpResponse:
    note = get_object_or_404(Note, pk=note_id)
    return JsonResponse(
        {
            "id": note.id,
            "title": note.title,
            "body": note.body,
            "created_at": note.created_at.isoformat(),
        }
    )


def api_notes(request: HttpRequest) -> HttpResponse:
    try:
        per_page = int(request.GET.get("per_page", benchdata.DEFAULT_PER_PAGE))
    except ValueError:
        per_page = benchdata.DEFAULT_PER_PAGE
    per_page = min(max(per_page, 1), benchdata.MAX_PER_PAGE)
    paginator = Paginator(Note.objects.order_by("id").only("id", "title", "created_at"), per_page)
    try:
        page = paginator.page(request.GET.get("page", 1))
    except EmptyPage:
        return JsonResponse({"detail": "No such page."}, status=404)
    return JsonResponse(
        {
            "items": [
                {"id": note.id, "title": note.title, "created_at": note.created_at.isoformat()}
                for note in page
            ],
            "page": page.number,
            "per_page": per_page,
            "total": paginator.count,
            "pages": paginator.num_pages,
        }
    )


def bench_login(request: HttpRequest, user_id: int) -> HttpResponse:
    """Sign a seeded user in (the harness's way to get a session cookie)."""
    user = get_object_or_404(get_user_model(), pk=user_id)
    login(request, user, backend="django.contrib.auth.backends.ModelBackend")
    return JsonResponse({"user": user_id})
