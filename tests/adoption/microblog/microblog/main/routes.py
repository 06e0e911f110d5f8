import sqlalchemy as sa
from flask import current_app, flash, redirect, render_template, url_for
from flask_login import current_user, login_required

from microblog import db
from microblog.main import bp
from microblog.main.forms import PostForm
from microblog.models import Post, User


@bp.route("/", methods=["GET", "POST"])
@bp.route("/index", methods=["GET", "POST"])
@login_required
def index():
    form = PostForm()
    if form.validate_on_submit():
        post = Post(body=form.post.data, author=current_user)
        db.session.add(post)
        db.session.commit()
        flash("Your post is now live!")
        return redirect(url_for("main.index"))
    posts = db.session.scalars(
        sa.select(Post)
        .order_by(Post.timestamp.desc(), Post.id.desc())
        .limit(current_app.config["POSTS_PER_PAGE"])
    ).all()
    return render_template("index.html", title="Home", form=form, posts=posts)


@bp.route("/user/<username>")
@login_required
def user(username):
    user = db.first_or_404(sa.select(User).where(User.username == username))
    posts = db.session.scalars(
        user.posts.select().order_by(Post.timestamp.desc(), Post.id.desc())
    ).all()
    return render_template("user.html", user=user, posts=posts)
