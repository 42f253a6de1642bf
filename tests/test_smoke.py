import pytest

from corsadmin.models import AllowedOrigin


@pytest.mark.django_db
def test_allowed_origin_is_echoed(client):
    AllowedOrigin.objects.create(origin="https://app.example.com")
    response = client.get("/demo/echo/", HTTP_ORIGIN="https://app.example.com")
    assert response["Access-Control-Allow-Origin"] == "https://app.example.com"
