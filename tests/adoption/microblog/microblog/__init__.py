from config import Config
from flask import Flask
from flask_login import LoginManager
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy

db = SQLAlchemy()
migrate = Migrate()
login = LoginManager()
login.login_view = "auth.login"
login.login_message = "Please log in to access this page."


def create_app(config_class=Config):
    app = Flask(__name__)
    app.config.from_object(config_class)

    db.init_app(app)
    migrate.init_app(app, db)
    login.init_app(app)

    from microblog.errors import bp as errors_bp

    app.register_blueprint(errors_bp)

    from microblog.auth import bp as auth_bp

    app.register_blueprint(auth_bp, url_prefix="/auth")

    from microblog.main import bp as main_bp

    app.register_blueprint(main_bp)

    from microblog.api import bp as api_bp

    app.register_blueprint(api_bp, url_prefix="/api")

    return app


from microblog import models  # noqa: E402, F401
