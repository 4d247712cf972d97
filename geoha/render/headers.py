"""Security headers shared by the web tier (Caddy) and the frontend LB (HAProxy)."""

from __future__ import annotations

SECURITY_HEADERS = {
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "strict-origin-when-cross-origin",
}

PAGE_CSP = (
    "default-src 'self'; base-uri 'none'; frame-ancestors 'none'; "
    "form-action 'self'; object-src 'none'"
)
"""The React build runs under this: no inline scripts or styles, no other origins."""

API_CSP = "default-src 'none'; frame-ancestors 'none'"
"""JSON answers need nothing; set by the frontend LB on responses that carry no CSP."""
