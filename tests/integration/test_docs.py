"""/docs and /redoc need no internet: every asset they reference is served by the app
itself, with a JS or CSS content type, nosniff and a cache header; their policy allows this
origin's assets only, and no CDN."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient

from api.csp import read_assets, script_hash

PAGES = ("/docs", "/redoc")
ASSET_TYPES = ("text/javascript", "application/javascript", "text/css", "image/png")


def _directive(csp: str, name: str) -> list[str]:
    for directive in csp.split(";"):
        words = directive.split()
        if words and words[0] == name:
            return words[1:]
    raise AssertionError(f"no {name} in {csp}")


@pytest.mark.parametrize("path", PAGES)
def test_docs_pages_reference_only_assets_the_app_serves(api: TestClient, path: str) -> None:
    page = api.get(path)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    urls = read_assets(page.text).urls
    assert any(url.endswith(".js") for url in urls), urls
    for url in urls:
        parts = urlsplit(url)
        assert not parts.scheme and not parts.netloc and url.startswith("/"), url
        asset = api.get(url)
        assert asset.status_code == 200, url
        assert asset.headers["content-type"].split(";")[0] in ASSET_TYPES, (url, asset.headers)
        assert asset.headers["X-Content-Type-Options"] == "nosniff", url
        assert "max-age=" in asset.headers["Cache-Control"], url
        assert len(asset.content) > 1000, url  # the real file, not an error page


def test_swagger_ui_gets_its_script_and_stylesheet(api: TestClient) -> None:
    urls = read_assets(api.get("/docs").text).urls
    names = {url.rsplit("/", 1)[-1] for url in urls}
    assert {"swagger-ui-bundle.js", "swagger-ui.css", "favicon.png"} <= names
    assert "redoc.standalone.js" in {
        u.rsplit("/", 1)[-1] for u in read_assets(api.get("/redoc").text).urls
    }


@pytest.mark.parametrize("path", PAGES)
def test_docs_policy_allows_this_origin_and_the_inline_scripts_only(
    api: TestClient, path: str
) -> None:
    page = api.get(path)
    csp = page.headers["Content-Security-Policy"]
    assert "http" not in csp and "cdn" not in csp, csp  # no CDN, no host at all
    assert _directive(csp, "default-src") == ["'none'"]
    assert _directive(csp, "connect-src") == ["'self'"]  # it fetches /openapi.json
    inline = read_assets(page.text).inline_hashes
    assert _directive(csp, "script-src") == ["'self'", *sorted(inline)]
    for kind in ("style-src", "img-src", "font-src"):
        assert _directive(csp, kind)[0] == "'self'", (kind, csp)


def test_swagger_ui_start_script_is_allowed_by_its_hash(api: TestClient) -> None:
    swagger = api.get("/docs")
    start = swagger.text.index("<script>", swagger.text.index("swagger-ui-bundle")) + 8
    script = swagger.text[start : swagger.text.index("</script>", start)]
    csp = swagger.headers["Content-Security-Policy"]
    assert script_hash(script) in _directive(csp, "script-src")


def test_docs_pages_and_assets_are_not_operations(api: TestClient) -> None:
    paths = api.get("/openapi.json").json()["paths"]
    assert not [path for path in paths if path.startswith(("/docs", "/redoc"))], paths
