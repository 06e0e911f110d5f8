"""User views."""

from flask import Blueprint, flash, redirect, render_template, url_for
from flask_login import current_user, login_required

from fieldnotes.utils import flash_errors

from .forms import NoteForm
from .models import Note

blueprint = Blueprint("user", __name__, url_prefix="/users", static_folder="../static")


@blueprint.route("/")
@login_required
def members():
    """List members."""
    return render_template("users/members.html")


@blueprint.route("/notes", methods=["GET", "POST"])
@login_required
def notes():
    """Write a note and list the user's notes."""
    form = NoteForm()
    if form.validate_on_submit():
        Note.create(body=form.body.data, author=current_user)
        flash("Note saved.", "success")
        return redirect(url_for("user.notes"))
    flash_errors(form)
    notes = Note.query.filter_by(user_id=current_user.id).order_by(Note.id.desc()).all()
    return render_template("users/notes.html", form=form, notes=notes)
