"""The Swagger UI and ReDoc pages and their locally served assets."""

from __future__ import annotations

import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

from ponder_rest.docs import (
    ASSET_TYPES,
    DocsAssets,
    DocsAssetsMissingError,
    redoc_html,
    swagger_html,
)


class _Links(HTMLParser):
    """Every src/href of a page, and the inline scripts."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.tags: list[str] = []
        self.scripts: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self._in_script = tag == "script"
        self.urls.extend(v for k, v in attrs if k in ("src", "href", "spec-url") and v)

    def handle_endtag(self, tag: str) -> None:
        self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.scripts.append(data)


def parse(page: str) -> _Links:
    links = _Links()
    links.feed(page)
    return links


@pytest.fixture(scope="module")
def assets() -> DocsAssets:
    return DocsAssets.locate()


def test_locate_finds_the_fastapi_offline_static_directory(assets: DocsAssets) -> None:
    assert assets.directory.name == "static"
    assert assets.directory.parent.name == "fastapi_offline"
    assert {p.name for p in assets.directory.iterdir()} >= set(ASSET_TYPES)


def test_locate_does_not_import_fastapi() -> None:
    """The package only carries files: locating and reading them imports neither it nor
    FastAPI (checked in a fresh interpreter)."""
    code = (
        "import sys\n"
        "from ponder_rest.docs import DocsAssets\n"
        "assets = DocsAssets.locate()\n"
        "assert assets.asset('swagger-ui.css') is not None\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('fastapi', 'fastapi_offline', 'starlette')))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip() == "[]"


@pytest.mark.parametrize(
    ("name", "content_type", "starts"),
    [
        ("swagger-ui-bundle.js", "text/javascript; charset=utf-8", b""),
        ("swagger-ui.css", "text/css; charset=utf-8", b""),
        ("redoc.standalone.js", "text/javascript; charset=utf-8", b"/*!"),
        ("favicon.png", "image/png", b"\x89PNG\r\n\x1a\n"),
    ],
)
def test_assets_are_served_with_their_types(
    assets: DocsAssets, name: str, content_type: str, starts: bytes
) -> None:
    found = assets.asset(name)
    assert found is not None
    data, kind = found
    assert kind == content_type
    assert data == (assets.directory / name).read_bytes()
    assert data.startswith(starts)
    assert len(data) > 1000


def test_the_bundles_are_swagger_ui_5_and_redoc_2(assets: DocsAssets) -> None:
    """Both render OpenAPI 3.1, which the document uses."""
    swagger = assets.asset("swagger-ui-bundle.js")
    redoc = assets.asset("redoc.standalone.js")
    assert swagger is not None
    assert redoc is not None
    assert b"SwaggerUIBundle" in swagger[0]
    assert re.search(rb'"5\.\d+\.\d+"', swagger[0])
    assert re.search(rb'"2\.\d+\.\d+"', redoc[0])


def test_assets_are_read_once(tmp_path: Path) -> None:
    """After the first read, a changed or removed file does not change what is served."""
    for name in ASSET_TYPES:
        (tmp_path / name).write_bytes(f"first {name}".encode())
    assets = DocsAssets(tmp_path)
    first = assets.asset("swagger-ui.css")
    assert first == (b"first swagger-ui.css", "text/css; charset=utf-8")
    (tmp_path / "swagger-ui.css").unlink()
    again = assets.asset("swagger-ui.css")
    assert again is not None
    assert again[0] is first[0]


@pytest.mark.parametrize(
    "name",
    [
        "",
        "../__init__.py",
        "../core.py",
        "..%2f__init__.py",
        "static/swagger-ui.css",
        "./swagger-ui.css",
        "swagger-ui.css/",
        "/etc/passwd",
        "..",
        "SWAGGER-UI.CSS",
        "swagger-ui.css\x00.png",
        "redoc.standalone.js.LICENSE.txt",
    ],
)
def test_unknown_and_traversal_names_are_refused(assets: DocsAssets, name: str) -> None:
    assert assets.asset(name) is None


def test_traversal_never_reaches_the_file_system(tmp_path: Path) -> None:
    """Even with a secret next to the asset directory, only the four names are served."""
    static = tmp_path / "static"
    static.mkdir()
    for name in ASSET_TYPES:
        (static / name).write_bytes(b"asset")
    (tmp_path / "secret.txt").write_text("secret")
    assets = DocsAssets(static)
    assert assets.asset("../secret.txt") is None
    assert assets.asset("favicon.png") == (b"asset", "image/png")


def test_locate_reports_a_missing_package() -> None:
    missing = "not installed; install the PyPI package fastapi-offline"
    with pytest.raises(DocsAssetsMissingError, match=missing):
        DocsAssets.locate("ponder_no_such_package_for_docs")


def test_locate_reports_a_package_without_the_files() -> None:
    """A package that exists but lacks static/ names the missing files."""
    with pytest.raises(DocsAssetsMissingError, match=r"lacks swagger-ui-bundle\.js"):
        DocsAssets.locate("ponder_rest")


def test_swagger_page_uses_local_assets_only() -> None:
    page = swagger_html("/openapi.json", "/docs/assets", "Ponder API")
    links = parse(page)
    assert links.urls == [
        "/docs/assets/favicon.png",
        "/docs/assets/swagger-ui.css",
        "/docs/assets/swagger-ui-bundle.js",
    ]
    assert "<title>Ponder API</title>" in page
    (script,) = links.scripts
    assert 'url: "/openapi.json"' in script
    assert 'dom_id: "#swagger-ui"' in script
    assert "validatorUrl: null" in script  # no badge fetched from validator.swagger.io
    assert "http://" not in page
    assert "https://" not in page
    assert "cdn" not in page.lower()
    assert 'id="swagger-ui"' in page


def test_redoc_page_uses_local_assets_only() -> None:
    page = redoc_html("/openapi.json", "/docs/assets/", "Ponder API")
    links = parse(page)
    assert links.urls == [
        "/docs/assets/favicon.png",
        "/openapi.json",
        "/docs/assets/redoc.standalone.js",
    ]
    assert "redoc" in links.tags
    assert "<title>Ponder API</title>" in page
    assert "http://" not in page
    assert "https://" not in page
    assert "fonts.googleapis" not in page
    assert "cdn" not in page.lower()


def test_page_assets_are_all_servable(assets: DocsAssets) -> None:
    """Every asset URL the two pages use names an asset that is served."""
    prefix = "/docs/assets/"
    pages = [swagger_html("/openapi.json", "/docs/assets", "t"), redoc_html("/o", prefix, "t")]
    used = {url for page in pages for url in parse(page).urls if url.startswith(prefix)}
    assert used == {prefix + name for name in ASSET_TYPES}
    for url in used:
        assert assets.asset(url.removeprefix(prefix)) is not None


def test_pages_escape_what_they_embed() -> None:
    """A title or URL cannot break out of its element or script."""
    title = '</title><script>alert("t")</script>'
    url = '/openapi.json?x="</script><script>alert(1)</script>'
    for page in (swagger_html(url, "/a", title), redoc_html(url, "/a", title)):
        assert "<script>alert" not in page
        assert "&lt;/title&gt;&lt;script&gt;alert(&quot;t&quot;)" in page
    swagger = swagger_html(url, "/a", "t")
    (script,) = parse(swagger).scripts
    assert "</script>" not in script
    assert "\\u003c/script\\u003e" in script
