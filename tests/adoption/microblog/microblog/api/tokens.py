from flask import current_app

from microblog import db
from microblog.api import bp
from microblog.api.auth import basic_auth_required, current_api_user, token_auth_required


@bp.route("/tokens", methods=["POST"])
@basic_auth_required
def get_token():
    token = current_api_user().get_token(current_app.config["TOKEN_LIFETIME"])
    db.session.commit()
    return {"token": token}


@bp.route("/tokens", methods=["DELETE"])
@token_auth_required
def revoke_token():
    current_api_user().revoke_token()
    db.session.commit()
    return "", 204
