"""Library documents for tests, written the way real tools write them: a PDF with a text layer
(one page per string, Helvetica, lines wrapped), Markdown and HTML built from sections."""

from __future__ import annotations

import textwrap
from collections.abc import Sequence


def _escape(line: str) -> str:
    return line.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def pdf_bytes(pages: Sequence[str], *, title: str = "") -> bytes:
    """A valid PDF 1.4 file whose page n shows `pages[n]` as text (wrapped at 90 columns)."""
    objects: list[bytes] = []
    kids = " ".join(f"{3 + 2 * n} 0 R" for n in range(len(pages)))
    objects.append(b"<< /Type /Catalog /Pages 2 0 R >>")
    objects.append(f"<< /Type /Pages /Kids [{kids}] /Count {len(pages)} >>".encode())
    font = 3 + 2 * len(pages)
    for number, text in enumerate(pages):
        lines = [
            wrapped
            for paragraph in text.split("\n")
            for wrapped in (textwrap.wrap(paragraph, 90) or [""])
        ]
        body = "BT /F1 10 Tf 12 TL 40 800 Td " + " ".join(f"({_escape(line)}) '" for line in lines)
        stream = (body + " ET").encode("latin-1")
        objects.append(
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 842] /Contents {4 + 2 * number} 0 R "
            f"/Resources << /Font << /F1 {font} 0 R >> >> >>".encode()
        )
        objects.append(b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream")
    objects.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    info = len(objects) + 1
    objects.append(f"<< /Title ({_escape(title)}) >>".encode())
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, obj in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + obj + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R /Info %d 0 R >>\n" % (len(objects) + 1, info)
    out += b"startxref\n%d\n%%%%EOF\n" % xref
    return bytes(out)


def markdown(title: str, sections: Sequence[tuple[str, str]]) -> str:
    """A Markdown handbook: `# title`, then `## heading` and its text for each section."""
    parts = [f"# {title}\n"]
    parts.extend(f"## {heading}\n\n{text}\n" for heading, text in sections)
    return "\n".join(parts)


def html_page(title: str, sections: Sequence[tuple[str, str]]) -> str:
    """An HTML page with navigation, a header, a footer and an aside around its main text."""
    body = "".join(
        f"<section><h2>{heading}</h2>"
        + "".join(f"<p>{para}</p>" for para in text.split("\n\n"))
        + "</section>"
        for heading, text in sections
    )
    return (
        f"<!doctype html><html><head><title>{title}</title><style>p {{color: red}}</style>"
        "<script>var tracking = 'menu';</script></head><body>"
        "<header><a href='/'>Home</a> <a href='/about'>About us</a></header>"
        "<nav><ul><li><a href='/a'>Products</a></li><li><a href='/b'>Pricing</a></li></ul></nav>"
        f"<main><h1>{title}</h1>{body}</main>"
        "<aside>Subscribe to our newsletter</aside>"
        "<footer>Copyright 2026 Example Corp. All rights reserved.</footer></body></html>"
    )
