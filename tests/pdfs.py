"""Small PDFs made for tests and benchmarks (no recorded file has these properties)."""
from __future__ import annotations


def two_column_pdf(left: list[str], right: list[str], interleaved: bool = True, pages: int = 1) -> bytes:
    """`pages` pages of two columns of Helvetica lines (left at x=50, right at x=320, 14 pt apart
    from the top). Interleaved: the content stream draws the left and the right line of each row
    in turn, as some producers do, so stream order is not reading order."""
    rows = [(50, 740 - 14 * i, t) for i, t in enumerate(left)], [(320, 740 - 14 * i, t) for i, t in enumerate(right)]
    order = [r for pair in zip(*rows) for r in pair] if interleaved else rows[0] + rows[1]
    stream = "\n".join(f"BT /F1 10 Tf {x} {y} Td ({text}) Tj ET" for x, y, text in order)
    kids = " ".join(f"{4 + 2 * p} 0 R" for p in range(pages))
    objs = ["<< /Type /Catalog /Pages 2 0 R >>", f"<< /Type /Pages /Kids [{kids}] /Count {pages} >>",
            "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"]
    for p in range(pages):
        objs.append(f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents {5 + 2 * p} 0 R "
                    "/Resources << /Font << /F1 3 0 R >> >> >>")
        objs.append(f"<< /Length {len(stream)} >>\nstream\n{stream}\nendstream")
    out, offsets = b"%PDF-1.4\n", []
    for i, obj in enumerate(objs, 1):
        offsets.append(len(out))
        out += f"{i} 0 obj\n{obj}\nendobj\n".encode("latin-1")
    xref = len(out)
    out += f"xref\n0 {len(objs) + 1}\n0000000000 65535 f \n".encode()
    out += "".join(f"{o:010d} 00000 n \n" for o in offsets).encode()
    out += f"trailer\n<< /Size {len(objs) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return out
