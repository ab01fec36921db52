"""Small XLSX workbooks for tests, written with the standard library (an XLSX is a zip of XML parts), since
openpyxl is not installed."""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass
from xml.sax.saxutils import escape, quoteattr

from mutual.ingest.sitrep_xlsx import column_letter


@dataclass(frozen=True)
class Serial:
    """A number styled as a date (what Excel stores for a date cell)."""
    n: float


@dataclass(frozen=True)
class Err:
    """An Excel error cell such as #DIV/0!."""
    text: str


@dataclass(frozen=True)
class Formula:
    expr: str
    cached: float


def _cell(ref: str, v: object) -> str:
    if v is None:
        return ""
    if isinstance(v, Serial):
        return f'<c r="{ref}" s="1"><v>{v.n}</v></c>'
    if isinstance(v, Err):
        return f'<c r="{ref}" t="e"><v>{escape(v.text)}</v></c>'
    if isinstance(v, Formula):
        return f'<c r="{ref}"><f>{escape(v.expr)}</f><v>{v.cached}</v></c>'
    if isinstance(v, int | float):
        return f'<c r="{ref}"><v>{v}</v></c>'
    return f'<c r="{ref}" t="inlineStr"><is><t xml:space="preserve">{escape(str(v))}</t></is></c>'


def xlsx_bytes(sheets: dict[str, list[list[object]]], merged: str | None = None) -> bytes:
    """A minimal valid XLSX: workbook, relationships, a style for dates, one worksheet per entry."""
    names = list(sheets)
    ns = 'xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"'
    rel_ns = 'xmlns="http://schemas.openxmlformats.org/package/2006/relationships"'
    doc = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("[Content_Types].xml", (
            '<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
            '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
            '<Default Extension="xml" ContentType="application/xml"/>'
            '<Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.'
            'spreadsheetml.sheet.main+xml"/></Types>'))
        z.writestr("_rels/.rels", f'<?xml version="1.0"?><Relationships {rel_ns}><Relationship Id="rId1" '
                   f'Type="{doc}/officeDocument" Target="xl/workbook.xml"/></Relationships>')
        z.writestr("xl/workbook.xml", f'<?xml version="1.0"?><workbook {ns} xmlns:r="{doc}"><sheets>' + "".join(
            f'<sheet name={quoteattr(n)} sheetId="{i + 1}" r:id="rId{i + 1}"/>' for i, n in enumerate(names))
            + "</sheets></workbook>")
        z.writestr("xl/_rels/workbook.xml.rels", f'<?xml version="1.0"?><Relationships {rel_ns}>' + "".join(
            f'<Relationship Id="rId{i + 1}" Type="{doc}/worksheet" Target="worksheets/sheet{i + 1}.xml"/>'
            for i in range(len(names))) + f'<Relationship Id="rId{len(names) + 1}" Type="{doc}/styles" '
            'Target="styles.xml"/></Relationships>')
        z.writestr("xl/styles.xml", f'<?xml version="1.0"?><styleSheet {ns}><fonts count="1"><font/></fonts>'
                   '<fills count="1"><fill/></fills><borders count="1"><border/></borders><cellStyleXfs count="1">'
                   '<xf/></cellStyleXfs><cellXfs count="2"><xf numFmtId="0"/><xf numFmtId="14" '
                   'applyNumberFormat="1"/></cellXfs></styleSheet>')
        for i, rows in enumerate(sheets.values()):
            body = "".join(f'<row r="{r + 1}">' + "".join(_cell(f"{column_letter(c)}{r + 1}", v)
                                                         for c, v in enumerate(row)) + "</row>"
                           for r, row in enumerate(rows))
            merge = f'<mergeCells count="1"><mergeCell ref="{merged}"/></mergeCells>' if merged else ""
            z.writestr(f"xl/worksheets/sheet{i + 1}.xml",
                       f'<?xml version="1.0"?><worksheet {ns}><sheetData>{body}</sheetData>{merge}</worksheet>')
    return buf.getvalue()
