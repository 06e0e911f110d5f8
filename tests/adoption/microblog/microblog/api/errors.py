from werkzeug.exceptions import HTTPException
from werkzeug.http import HTTP_STATUS_CODES

from microblog.api import bp


def error_response(status_code, message=None):
    payload = {"error": HTTP_STATUS_CODES.get(status_code, "Unknown error")}
    if message:
        payload["message"] = message
    return payload, status_code


def bad_request(message):
    return error_response(400, message)


@bp.errorhandler(HTTPException)
def handle_exception(e):
    return error_response(e.code)


# Flask finds the app's handler for a status code before a blueprint's handler
# for an exception class: the codes the errors blueprint renders as pages are
# registered here by code too, so the API answers them in JSON.
bp.register_error_handler(404, handle_exception)
bp.register_error_handler(500, handle_exception)
