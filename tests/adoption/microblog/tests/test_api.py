import base64

import sqlalchemy as sa
from microblog import db
from microblog.models import Post


def basic(username, password):
    credentials = base64.b64encode(f"{username}:{password}".encode()).decode()
    return {"Authorization": f"Basic {credentials}"}


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


def get_token(client):
    response = client.post("/api/tokens", headers=basic("susan", "cat"))
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()["token"]


def test_token_from_basic_credentials(client, susan):
    token = get_token(client)
    assert len(token) == 32
    response = client.get(f"/api/users/{susan.id}", headers=bearer(token))
    assert response.status_code == 200
    assert response.get_json() == {
        "id": susan.id,
        "username": "susan",
        "about_me": None,
        "post_count": 0,
    }


def test_wrong_basic_credentials_get_the_apps_json_401(client, susan):
    response = client.post("/api/tokens", headers=basic("susan", "dog"))
    assert response.status_code == 401
    assert response.get_json() == {"error": "Unauthorized"}
    assert response.headers["WWW-Authenticate"].startswith("Basic ")


def test_requests_without_a_token_get_the_apps_json_401(client, susan):
    response = client.get("/api/posts")
    assert response.status_code == 401
    assert response.get_json() == {"error": "Unauthorized"}
    assert response.headers["WWW-Authenticate"].startswith("Bearer ")


def test_create_and_list_posts_with_a_token(client, susan):
    token = get_token(client)
    response = client.post("/api/posts", json={"body": "from the API"}, headers=bearer(token))
    assert response.status_code == 201
    assert response.get_json()["author"] == "susan"
    assert response.headers["Location"] == f"/api/posts/{response.get_json()['id']}"
    assert db.session.scalars(sa.select(Post.body)).all() == ["from the API"]

    response = client.get("/api/posts", headers=bearer(token))
    assert [item["body"] for item in response.get_json()["items"]] == ["from the API"]


def test_bad_input_gets_the_apps_json_400(client, susan):
    response = client.post("/api/posts", json={"body": ""}, headers=bearer(get_token(client)))
    assert response.status_code == 400
    assert response.get_json() == {"error": "Bad Request", "message": "must include a body"}


def test_missing_resources_get_the_apps_json_404(client, susan):
    response = client.get("/api/users/9999", headers=bearer(get_token(client)))
    assert response.status_code == 404
    assert response.get_json() == {"error": "Not Found"}


def test_revoked_tokens_stop_working(client, susan):
    token = get_token(client)
    assert client.delete("/api/tokens", headers=bearer(token)).status_code == 204
    response = client.get("/api/posts", headers=bearer(token))
    assert response.status_code == 401
