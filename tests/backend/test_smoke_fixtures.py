import requests

from tests.fixtures.backend import LiveServer


def test_readyz_ok(client):
    response = client.get("/api/health/readyz")
    assert response.status_code == 200, response.json
    assert response.json["checks"]["migrations"]["pending"] == []


def test_live_server_serves(app):
    server = LiveServer(app).start()
    try:
        assert requests.get(f"{server.url}/api/health/healthz", timeout=2).status_code == 200
    finally:
        server.stop()
