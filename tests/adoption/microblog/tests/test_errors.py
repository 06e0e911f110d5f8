def test_unknown_pages_get_the_apps_404_page(client):
    response = client.get("/no/such/page")
    assert response.status_code == 404
    assert "File Not Found" in response.get_data(as_text=True)
