from myapp.models import Note


def test_the_front_page_is_cached(client, db_session, make_user):
    db_session.add(Note(title="first", author=make_user()))
    db_session.commit()
    assert client.get("/").json == {"latest": ["first"]}

    db_session.add(Note(title="second", author=make_user()))
    db_session.commit()
    assert client.get("/").json == {"latest": ["first"]}  # for up to 60 seconds


def test_my_notes_need_a_login(client, login, make_user):
    assert client.get("/mine").status_code == 302  # to the sign-in page
    login(client, make_user(email="ann@example.com"))
    assert client.get("/mine").json == {"email": "ann@example.com", "notes": []}


def test_writing_a_note_with_an_api_token(api_client, client):
    response = api_client().post("/api/notes", json={"title": "hello"})
    assert response.status_code == 201
    assert response.json["title"] == "hello"
    assert client.get("/api/notes").json["total"] == 1
    assert client.get("/").json == {"latest": ["hello"]}


def test_invalid_notes_are_refused_field_by_field(api_client):
    response = api_client().post("/api/notes", json={"title": ""})
    assert response.status_code == 422
    assert response.headers["Content-Type"] == "application/problem+json"
    assert response.json["errors"] == {"title": ["Must not be empty."]}


def test_a_signed_in_browser_sends_the_csrf_token(client, login, make_user, csrf_token):
    login(client, make_user())
    assert client.post("/api/notes", json={"title": "hi"}).status_code == 400
    headers = {"X-CSRFToken": csrf_token(client)}
    assert client.post("/api/notes", json={"title": "hi"}, headers=headers).status_code == 201
