"""The API documentation pages: Swagger UI (`/docs`) and ReDoc (`/redoc`), with no CDN.

The JavaScript, CSS and icon come from the files the `fastapi-offline` package ships
(Swagger UI 5, ReDoc 2; both render OpenAPI 3.1). That package is only a carrier of those
files: it is located with `importlib.util.find_spec` and never imported (importing it would
import FastAPI).
"""

from __future__ import annotations

import html
import importlib.util
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from types import MappingProxyType


ASSETS_PACKAGE = "fastapi_offline"

# The files a page may ask for, and their content types. Nothing else is ever read.
ASSET_TYPES = MappingProxyType(
    {
        "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
        "swagger-ui.css": "text/css; charset=utf-8",
        "redoc.standalone.js": "text/javascript; charset=utf-8",
        "favicon.png": "image/png",
    }
)


class DocsAssetsMissingError(RuntimeError):
    """The Swagger UI / ReDoc files are not installed where they are expected."""


@dataclass(eq=False)
class DocsAssets:
    """The documentation assets in one directory; each file is read once, then cached."""

    directory: Path
    _read: Callable[[str], bytes] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._read = cache(lambda name: (self.directory / name).read_bytes())

    @classmethod
    def locate(cls, package: str = ASSETS_PACKAGE) -> DocsAssets:
        """The assets of the installed `fastapi-offline` (its `static/` directory).

        Raises DocsAssetsMissingError saying what is missing, and how to install it.
        """
        hint = (
            "install the PyPI package fastapi-offline, which carries the Swagger UI and ReDoc files"
        )
        try:
            spec = importlib.util.find_spec(package)
        except (ImportError, ValueError):
            spec = None
        locations = list(spec.submodule_search_locations or []) if spec is not None else []
        if not locations:
            raise DocsAssetsMissingError(f"the package {package!r} is not installed; {hint}")
        problems = []
        for location in locations:
            directory = Path(location) / "static"
            missing = [name for name in ASSET_TYPES if not (directory / name).is_file()]
            if not missing:
                return cls(directory)
            problems.append(f"{directory} lacks {', '.join(missing)}")
        raise DocsAssetsMissingError(f"{package!r}: {'; '.join(problems)}; {hint}")

    def asset(self, name: str) -> tuple[bytes, str] | None:
        """The bytes and content type of a known asset, or None for any other name (so a path
        such as `../x` never reaches the file system)."""
        content_type = ASSET_TYPES.get(name)
        if content_type is None:
            return None
        return self._read(name), content_type


def _js_string(value: str) -> str:
    """A JavaScript string literal that is safe inside a <script> element."""
    return json.dumps(value).replace("<", "\\u003c").replace(">", "\\u003e")


def _prefix(assets_prefix: str) -> str:
    return html.escape(assets_prefix.rstrip("/"), quote=True)


def swagger_html(openapi_url: str, assets_prefix: str, title: str) -> str:
    """The Swagger UI page for the document at `openapi_url`, loading its script, style and
    icon from `assets_prefix` (e.g. "/docs/assets"). The online validator is off, so the page
    makes no request outside this server."""
    prefix = _prefix(assets_prefix)
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)}</title>
<link rel="icon" type="image/png" href="{prefix}/favicon.png">
<link rel="stylesheet" type="text/css" href="{prefix}/swagger-ui.css">
</head>
<body>
<div id="swagger-ui"></div>
<script src="{prefix}/swagger-ui-bundle.js"></script>
<script>
window.ui = SwaggerUIBundle({{
  url: {_js_string(openapi_url)},
  dom_id: "#swagger-ui",
  layout: "BaseLayout",
  presets: [SwaggerUIBundle.presets.apis],
  deepLinking: true,
  showExtensions: true,
  showCommonExtensions: true,
  validatorUrl: null
}});
</script>
</body>
</html>
"""


def redoc_html(openapi_url: str, assets_prefix: str, title: str) -> str:
    """The ReDoc page for the document at `openapi_url`, loading its script and icon from
    `assets_prefix`. No web fonts are fetched: ReDoc falls back to the system fonts."""
    prefix = _prefix(assets_prefix)
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)}</title>
<link rel="icon" type="image/png" href="{prefix}/favicon.png">
<style>body {{ margin: 0; padding: 0; }}</style>
</head>
<body>
<noscript>ReDoc needs JavaScript to show the API documentation.</noscript>
<redoc spec-url="{html.escape(openapi_url, quote=True)}"></redoc>
<script src="{prefix}/redoc.standalone.js"></script>
</body>
</html>
"""
