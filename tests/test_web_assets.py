"""The pages load nothing from elsewhere: every script, stylesheet, image and map outline comes from this server,
is vendored in the package, and runs under a content security policy without inline script or eval."""

from __future__ import annotations

import re
from collections.abc import Iterator
from importlib import resources

import pytest

from test_web_api import Api, open_api

HTML = {"Accept": "text/html"}
PAGES = ("/login", "/", "/map", "/orgs", "/orgs/R1H", "/submissions", "/alerts", "/quality", "/plans")
STATIC = resources.files("mutual.web").joinpath("static")


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    tmp = tmp_path_factory.mktemp("assets")
    yield from open_api(tmp / "ws", tmp)


def references(html: str) -> list[str]:
    return re.findall(r'(?:src|href)="([^"#]+)"', html)


@pytest.mark.parametrize("path", PAGES)
def test_every_page_refers_only_to_this_server_and_every_asset_is_served(api: Api, path: str) -> None:
    page = api.get(path, who=None if path == "/login" else "nat", headers=HTML)
    assert page.status_code == 200, page.text
    for ref in references(page.text):
        assert not re.match(r"^(https?:)?//", ref), f"{path} refers to another site: {ref}"
        if ref.startswith("/static/"):
            got = api.get(ref, who=None)
            assert got.status_code == 200, f"{path} needs {ref}, which is not served"


@pytest.mark.parametrize("path", PAGES)
def test_pages_have_no_inline_script_or_style(api: Api, path: str) -> None:
    html = api.get(path, who=None if path == "/login" else "nat", headers=HTML).text
    for tag in re.findall(r"<script\b[^>]*>", html):
        assert "src=" in tag or 'type="application/json"' in tag, f"inline script on {path}: {tag}"
    assert not re.search(r"\sstyle=", html), f"an inline style on {path}"
    assert not re.search(r"\son[a-z]+=", html), f"an inline event handler on {path}"


def test_the_content_security_policy_allows_no_inline_script_and_no_eval(api: Api) -> None:
    csp = api.get("/login", who=None).headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert "frame-ancestors 'none'" in csp


def test_static_files_have_their_content_types(api: Api) -> None:
    for path, kind in (("/static/mutual.js", "javascript"), ("/static/mutual.css", "text/css"),
                       ("/static/vendor/vega/vega.min.js", "javascript"),
                       ("/static/vendor/nhsuk-frontend/nhsuk-frontend.min.css", "text/css"),
                       ("/static/geo/stp-2017.geojson", "json")):
        got = api.get(path, who=None)
        assert got.status_code == 200 and kind in got.headers["content-type"], path
        assert got.headers["x-content-type-options"] == "nosniff"


def test_vendored_stylesheets_load_no_fonts_or_images_from_elsewhere() -> None:
    for css in STATIC.joinpath("vendor").joinpath("nhsuk-frontend").iterdir():
        if css.name.endswith(".css"):
            text = css.read_text()
            assert not re.search(r"url\((['\"]?)(https?:)?//", text), f"{css.name} loads from another site"
            for image in re.findall(r"url\((assets/[^)]+)\)", text):
                assert STATIC.joinpath("vendor", "nhsuk-frontend", *image.split("/")).is_file(), image


def test_vendored_packages_carry_their_licences_and_the_map_its_attribution() -> None:
    vendor = STATIC.joinpath("vendor")
    for package in ("nhsuk-frontend", "vega", "vega-lite", "vega-embed", "vega-interpreter"):
        assert vendor.joinpath(package, "LICENSE").is_file(), package
    listed = vendor.joinpath("VENDORED.md").read_text()
    assert all(p in listed for p in ("nhsuk-frontend", "vega-embed", "axe-core"))
    assert "Open Government Licence" in STATIC.joinpath("geo", "LICENCE.md").read_text()
    assert "Crown copyright" in STATIC.joinpath("geo", "stp-2017.geojson").read_text()[:2000]


def test_the_packaged_boundaries_are_the_44_stps_of_2017() -> None:
    import json

    geo = json.loads(STATIC.joinpath("geo", "stp-2017.geojson").read_text())
    codes = [f["properties"]["code"] for f in geo["features"]]
    assert len(codes) == 44 and len(set(codes)) == 44 and all(c.startswith("E54") for c in codes)
