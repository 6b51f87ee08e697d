"""Access logs as JSON lines (`searchsvc serve --access-log`), with no client address by default.

People searching human-rights material deserve privacy: a line says what was asked and how it
went, not who asked, unless the operator chooses `--access-log-client truncated` (the network:
IPv4 /24, IPv6 /48) or `full`. Behind a proxy (SEARCHSVC_TRUST_PROXY=1) the client is the last
X-Forwarded-For entry, as for the rate limits.
"""

from __future__ import annotations

import ipaddress
import json
import re
import traceback
from datetime import datetime, timezone
from typing import Any

from gunicorn import glogging

from searchsvc.web.ratelimit import client_of

CLIENT_CHOICES = ("omit", "truncated", "full")
_INVALID_FROM = re.compile(r"Invalid request from ip=(\S*?): ")
# Characters that end a line for some readers (Python's splitlines, JavaScript before ES2019)
# but that json.dumps leaves as they are: escaped, so that a request is always one line.
_LINE_BREAKS = {ord(c): f"\\u{ord(c):04x}" for c in "\x85\u2028\u2029"}


class JsonAccessLog(glogging.Logger):
    """gunicorn's logger, with each access line one JSON object."""

    client = "omit"
    trust_proxy = False

    @classmethod
    def configured(cls, *, client: str, trust_proxy: bool) -> type[JsonAccessLog]:
        return type(cls.__name__, (cls,), {"client": client, "trust_proxy": trust_proxy})

    def access(self, resp: Any, req: Any, environ: dict[str, Any], request_time: Any) -> None:
        if not self.access_log_enabled:
            return
        status = resp.status.split(None, 1)[0] if isinstance(resp.status, str) else resp.status
        entry: dict[str, Any] = {
            "time": datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "method": environ.get("REQUEST_METHOD"),
            "path": _text(environ.get("PATH_INFO")),
            "query": environ.get("QUERY_STRING") or None,
            "status": int(status),
            "bytes": getattr(resp, "sent", None),
            "ms": round(request_time.total_seconds() * 1000, 1),
        }
        address = client_of(environ, self.trust_proxy)
        if self.client != "omit" and address:
            entry["client"] = address if self.client == "full" else truncated(address)
        try:
            self.access_log.info("%s", json.dumps(entry, ensure_ascii=False).translate(_LINE_BREAKS))
        except Exception:
            self.error(traceback.format_exc())

    def warning(self, msg: Any, *args: Any, **kwargs: Any) -> None:
        """gunicorn's own warnings, with the client's address kept only as the access log keeps it
        ("Invalid request from ip=…" for every malformed request)."""
        if isinstance(msg, str) and (found := _INVALID_FROM.match(msg)) and self.client != "full":
            who = "" if self.client == "omit" else f" from {truncated(found[1])}"
            msg = f"Invalid request{who}: {msg[found.end():]}"
        super().warning(msg, *args, **kwargs)

def _text(wsgi: str | None) -> str | None:
    """A WSGI string (bytes as latin-1) as the UTF-8 text it was sent as."""
    if wsgi is None:
        return None
    try:
        return wsgi.encode("latin-1").decode("utf-8", "replace")
    except UnicodeEncodeError:
        return wsgi


def truncated(address: str) -> str:
    """The address's network: 203.0.113.7 -> 203.0.113.0/24, 2001:db8:1:2::1 -> 2001:db8:1::/48;
    anything that is not an IP address (a Unix socket's name) -> "other"."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return "other"
    prefix = 24 if ip.version == 4 else 48
    return str(ipaddress.ip_network(f"{ip}/{prefix}", strict=False))
