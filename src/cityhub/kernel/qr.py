"""QR codes as inline SVG, for codes shown on a phone and scanned at a counter (citizen card, coupons)."""

from __future__ import annotations

import segno


def qr_svg(text: str) -> str:
    """An inline SVG QR code of ``text`` (error correction M: survives a scratched screen)."""
    return str(segno.make(text, error="m", micro=False).svg_inline(scale=4, border=2))
