"""User forms."""

from flask_wtf import FlaskForm
from wtforms import PasswordField, StringField, TextAreaField
from wtforms.validators import DataRequired, EqualTo, Length, Regexp

from .models import User


class RegisterForm(FlaskForm):
    """Register form."""

    username = StringField("Username", validators=[DataRequired(), Length(min=3, max=25)])
    email = StringField(
        "Email", validators=[DataRequired(), Regexp(r"^[^@\s]+@[^@\s]+$"), Length(min=6, max=40)]
    )
    password = PasswordField("Password", validators=[DataRequired(), Length(min=6, max=40)])
    confirm = PasswordField(
        "Verify password",
        [DataRequired(), EqualTo("password", message="Passwords must match")],
    )

    def validate(self, **kwargs):
        """Validate the form."""
        initial_validation = super().validate(**kwargs)
        if not initial_validation:
            return False
        user = User.query.filter_by(username=self.username.data).first()
        if user:
            self.username.errors.append("Username already registered")
            return False
        user = User.query.filter_by(email=self.email.data).first()
        if user:
            self.email.errors.append("Email already registered")
            return False
        return True


class NoteForm(FlaskForm):
    """Write a note."""

    body = TextAreaField("Note", validators=[DataRequired(), Length(max=2000)])
