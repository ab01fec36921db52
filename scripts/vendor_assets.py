"""Vendor the web's front-end packages from npm into the Python package, so nothing loads from the internet.

    uv run python scripts/vendor_assets.py

Runs ``npm ci`` in ``web-assets/`` (exact versions from its lock file), then copies only what the pages use into
``src/mutual/web/static/vendor/<package>/`` with each package's licence, and axe-core (used by the browser tests
only) into ``tests/browser/vendor/``. The NHS.UK stylesheet is rewritten on the way: its Frutiger web fonts are
served from assets.nhs.uk (licensed, not in the npm package), so those ``@font-face`` rules are dropped and the
stylesheet falls back to Arial as NHS.UK's font stack specifies; its image URLs are made relative to the copy.
vega-interpreter is published as an ES module only: esbuild bundles it as a script, so charts run under a
content security policy without ``unsafe-eval``. The copied files are committed; run this only to upgrade.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ASSETS = ROOT / "web-assets"
MODULES = ASSETS / "node_modules"
VENDOR = ROOT / "src" / "mutual" / "web" / "static" / "vendor"
TEST_VENDOR = ROOT / "tests" / "browser" / "vendor"

# package -> (files to copy, relative to the package, -> name in the vendor folder)
FILES: dict[str, dict[str, str]] = {
    "nhsuk-frontend": {"dist/nhsuk/nhsuk-frontend.min.js": "nhsuk-frontend.min.js"},
    "vega": {"build/vega.min.js": "vega.min.js"},
    "vega-lite": {"build/vega-lite.min.js": "vega-lite.min.js"},
    "vega-embed": {"build/vega-embed.min.js": "vega-embed.min.js"},
}
NHSUK_IMAGES = ("favicon.ico", "favicon.svg", "nhsuk-icon-180.png")
LICENCE_NAMES = ("LICENSE", "LICENSE.md", "LICENCE", "LICENCE.md", "LICENSE.txt")
REMOTE_FONT_FACE = re.compile(r"@font-face\{[^}]*https?://[^}]*\}")


def npm(*args: str) -> None:
    subprocess.run(["npm", *args], cwd=ASSETS, check=True)


def version(package: str) -> str:
    return str(json.loads((MODULES / package / "package.json").read_text())["version"])


def copy_licence(package: str, dest: Path) -> str:
    licence = str(json.loads((MODULES / package / "package.json").read_text()).get("license", ""))
    for name in LICENCE_NAMES:
        if (MODULES / package / name).exists():
            shutil.copyfile(MODULES / package / name, dest / "LICENSE")
            return licence or "see LICENSE"
    # nhsuk-frontend states its licence in its README only
    readme = (MODULES / package / "README.md").read_text()
    section = re.search(r"^## Licen[cs]e\n(.*?)(?=^## |\Z)", readme, re.M | re.S)
    if not (licence and section):
        raise SystemExit(f"{package} states no licence")
    (dest / "LICENSE").write_text(f"{package}: {licence}\n\n{section.group(1).strip()}\n")
    return licence


def nhsuk_css(dest: Path) -> None:
    css = (MODULES / "nhsuk-frontend" / "dist" / "nhsuk" / "nhsuk-frontend.min.css").read_text()
    css = REMOTE_FONT_FACE.sub("", css).replace("url(/assets/", "url(assets/")
    if re.search(r"url\((['\"]?)(https?:)?//", css):
        raise SystemExit("nhsuk-frontend.min.css still refers to another site")
    (dest / "nhsuk-frontend.min.css").write_text(css)
    images = dest / "assets" / "images"
    images.mkdir(parents=True)
    referenced = set(re.findall(r"url\(assets/images/([^)]+)\)", css)) | set(NHSUK_IMAGES)
    for name in sorted(referenced):
        shutil.copyfile(MODULES / "nhsuk-frontend" / "dist" / "nhsuk" / "assets" / "images" / name, images / name)


def main() -> None:
    npm("ci", "--no-audit", "--no-fund")
    if VENDOR.exists():
        shutil.rmtree(VENDOR)
    rows = []
    for package, files in FILES.items():
        dest = VENDOR / package
        dest.mkdir(parents=True)
        for src, name in files.items():
            shutil.copyfile(MODULES / package / src, dest / name)
        if package == "nhsuk-frontend":
            nhsuk_css(dest)
        licence = copy_licence(package, dest)
        rows.append((package, version(package), licence, sorted(p.relative_to(dest).as_posix()
                                                                 for p in dest.rglob("*") if p.is_file())))
    dest = VENDOR / "vega-interpreter"
    dest.mkdir()
    subprocess.run(["npx", "esbuild", "interpreter-entry.mjs", "--bundle", "--minify", "--format=iife",
                    f"--outfile={dest / 'vega-interpreter.min.js'}"], cwd=ASSETS, check=True)
    rows.append(("vega-interpreter", version("vega-interpreter"), copy_licence("vega-interpreter", dest),
                 ["vega-interpreter.min.js (bundled by esbuild)", "LICENSE"]))
    TEST_VENDOR.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(MODULES / "axe-core" / "axe.min.js", TEST_VENDOR / "axe.min.js")
    shutil.copyfile(MODULES / "axe-core" / "LICENSE", TEST_VENDOR / "LICENSE-axe-core")
    lines = ["# Vendored front-end packages", "",
             "Copied from the npm registry by `scripts/vendor_assets.py` (versions pinned in `web-assets/`). "
             "Nothing is loaded from elsewhere at run time.", "",
             "| package | version | licence | files |", "|---|---|---|---|"]
    lines += [f"| {p} | {v} | {lic} | {', '.join(files)} |" for p, v, lic, files in rows]
    lines += ["", f"axe-core {version('axe-core')} (MPL-2.0) is copied to `tests/browser/vendor/` for the "
              "accessibility checks of the browser tests; it is not shipped."]
    (VENDOR / "VENDORED.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
