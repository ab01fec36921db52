"""Copy the STP boundaries the map draws into the package, smaller: codes, names and outlines only.

    uv run python scripts/build_boundaries.py [PATH]   (default: ../shared/data/ons-stp-boundaries-2017/...)

Coordinates are rounded to 4 decimal places (about 10 m, far below what a national map shows), which keeps the
file small enough to send with every map page. The output carries the ONS attribution the licence requires.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT.parent / "shared" / "data" / "ons-stp-boundaries-2017" / "stp-2017-ultra-generalised.geojson"
OUT = ROOT / "src" / "mutual" / "web" / "static" / "geo" / "stp-2017.geojson"
ATTRIBUTION = ("Source: Office for National Statistics, Sustainability and Transformation Partnerships (February 2017) "
               "Ultra Generalised Clipped Boundaries in England, licensed under the Open Government Licence v3.0. "
               "Contains OS data © Crown copyright and database right 2017.")


def rounded(coords: Any) -> Any:
    if isinstance(coords[0], (int, float)):
        return [round(coords[0], 4), round(coords[1], 4)]
    return [rounded(c) for c in coords]


def main() -> None:
    source = Path(sys.argv[1]) if len(sys.argv) > 1 else SOURCE
    data = json.loads(source.read_text())
    features = [{"type": "Feature",
                 "properties": {"code": f["properties"]["stp17cd"], "name": f["properties"]["stp17nm"]},
                 "geometry": {"type": f["geometry"]["type"], "coordinates": rounded(f["geometry"]["coordinates"])}}
                for f in data["features"]]
    features.sort(key=lambda f: f["properties"]["code"])
    OUT.write_text(json.dumps({"type": "FeatureCollection", "attribution": ATTRIBUTION, "features": features},
                              separators=(",", ":")) + "\n")
    print(f"{len(features)} STPs -> {OUT} ({OUT.stat().st_size / 1024:.0f} KiB)")


if __name__ == "__main__":
    main()
