from microblog import db
from microblog.api import bp
from microblog.api.auth import token_auth_required
from microblog.models import User


@bp.route("/users/<int:id>", methods=["GET"])
@token_auth_required
def get_user(id):
    return db.get_or_404(User, id).to_dict()
