"""Setting up a phone: the URL of a key, and the QR code ODK Collect scans (its
"configure via QR code": zlib-compressed, base64-encoded JSON settings)."""
from __future__ import annotations

import base64
import json
import zlib


def key_url(base_url: str, key: str) -> str:
    """The server URL a phone is given: every OpenRosa path under it needs no password."""
    return base_url.rstrip("/") + "/openrosa/key/" + key


def collect_settings(url: str, name: str) -> str:
    """What the QR code holds: ODK Collect's settings for this server, no password."""
    settings = {"general": {"server_url": url, "form_update_mode": "match_exactly",
                            "autosend": "wifi_and_cellular", "constraint_behavior":
                            "on_swipe"},
                "admin": {"change_server": False}, "project": {"name": name}}
    return base64.b64encode(zlib.compress(json.dumps(settings, ensure_ascii=False)
                                          .encode("utf-8"))).decode("ascii")


def read_settings(payload: str) -> dict:
    return json.loads(zlib.decompress(base64.b64decode(payload)))


def qr_png(payload: str, path, scale: int = 6):
    import segno
    segno.make(payload, error="m").save(str(path), kind="png", scale=scale, border=4)


def qr_svg(payload: str) -> str:
    """An inline SVG of the QR code (no style attributes: the console's CSP holds)."""
    import segno
    return segno.make(payload, error="m").svg_inline(scale=4, border=4)
