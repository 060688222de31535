"""One HTTP server per ``ApiGatewayV2``, on 127.0.0.1: routes, payload 2.0 events, CORS, auth.

Each request is matched to a route key the way API Gateway does (an exact path beats
a path parameter, which beats a greedy ``{proxy+}``; ``ANY`` matches every method;
``$default`` catches the rest), turned into a payload format 2.0 event (path
parameters, query string, cookies, base64 bodies for binary content) and handed to
the route's real handler. The answer is mapped back as API Gateway maps it.

Auth has a local meaning, for development only (a deployed API verifies for real):

* ``JWT``: a bearer token's claims are read WITHOUT verifying its signature; no token
  means the fixed dev user (``sub`` = ``dev-user``) with the route's scopes;
* ``AWS_IAM``: any request is the dev user (``arn:aws:iam::<account>:user/dev-user``).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from infra.dev.functions import FunctionHost, Invocation, LogStream
from infra.dev.model import ApiSpec, RouteSpec
from infra.mocks import ACCOUNT_ID

DEV_USER = "dev-user"
TEXT_TYPES = re.compile(r"^(text/|application/(json|xml|javascript|x-www-form-urlencoded)|.*\+(json|xml))", re.I)


@dataclass
class Match:
    route: RouteSpec
    parameters: dict[str, str]


def _segments(path: str) -> list[str]:
    return [s for s in path.split("/") if s]


def match_route(routes: list[RouteSpec], method: str, path: str) -> Match | None:
    """The route API Gateway would pick for ``method`` and ``path``, with its path parameters."""
    best: tuple[tuple[int, int, int], Match] | None = None
    parts = _segments(path)
    for route in routes:
        if route.key == "$default":
            continue
        route_method, _, pattern = route.key.partition(" ")
        if route_method not in (method, "ANY"):
            continue
        wanted = _segments(pattern)
        parameters: dict[str, str] = {}
        literal = 0
        greedy = False
        ok = True
        for index, segment in enumerate(wanted):
            if segment.startswith("{") and segment.endswith("+}"):
                rest = parts[index:]
                if not rest or index != len(wanted) - 1:
                    ok = False
                    break
                parameters[segment[1:-2]] = unquote("/".join(rest))
                greedy = True
                break
            if index >= len(parts):
                ok = False
                break
            if segment.startswith("{") and segment.endswith("}"):
                parameters[segment[1:-1]] = unquote(parts[index])
            elif segment == parts[index]:
                literal += 1
            else:
                ok = False
                break
        if not ok or (not greedy and len(wanted) != len(parts)):
            continue
        score = (literal, 0 if greedy else 1, 1 if route_method == method else 0)
        if best is None or score > best[0]:
            best = (score, Match(route, parameters))
    if best is not None:
        return best[1]
    default = next((r for r in routes if r.key == "$default"), None)
    return Match(default, {}) if default else None


def jwt_claims(header: str | None) -> dict[str, Any] | None:
    """The claims of a ``Bearer`` token, read without verifying it (dev only); None if malformed."""
    token = (header or "").strip()
    if token.lower().startswith("bearer "):
        token = token[7:].strip()
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        claims = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (ValueError, binascii.Error):
        return None
    return claims if isinstance(claims, dict) else None


def authorize(route: RouteSpec, headers: dict[str, str]) -> tuple[int, dict[str, Any] | None]:
    """``(0, authorizer context)`` for an allowed request, else ``(status, None)``."""
    if route.auth == "AWS_IAM":
        return 0, {
            "iam": {
                "accessKey": "AKIADEVUSER00000000",
                "accountId": ACCOUNT_ID,
                "callerId": "AIDADEVUSER",
                "cognitoIdentity": None,
                "principalOrgId": None,
                "userArn": f"arn:aws:iam::{ACCOUNT_ID}:user/{DEV_USER}",
                "userId": "AIDADEVUSER",
            }
        }
    if route.auth == "JWT":
        header = headers.get("authorization")
        if not header:
            claims: dict[str, Any] = {"sub": DEV_USER, "iss": "harbor-dev"}
            scopes = list(route.scopes)
        else:
            found = jwt_claims(header)
            if found is None:
                return 401, None
            claims = found
            scope_text = claims.get("scope") or claims.get("scp") or ""
            scopes = scope_text.split() if isinstance(scope_text, str) else [str(s) for s in scope_text]
            if route.scopes and not set(route.scopes) & set(scopes):
                return 403, None
        return 0, {"jwt": {"claims": {k: v if isinstance(v, str) else json.dumps(v) for k, v in claims.items()},
                           "scopes": scopes or None}}
    if route.auth == "CUSTOM":
        return 0, {"lambda": {"userId": DEV_USER}}
    return 0, None


class ApiServer:
    """The local HTTP API: a threading server bound to 127.0.0.1."""

    def __init__(
        self, spec: ApiSpec, port: int, hosts: Callable[[str], FunctionHost | None], log: LogStream
    ) -> None:
        self.spec = spec
        self.port = port
        self.hosts = hosts
        self.log = log
        self.name = spec.label.lower()
        self.api_id = spec.endpoint.removeprefix("https://").split(".")[0]
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # the invocation line says it all
                pass

            def _handle(self) -> None:
                server.handle(self)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_HEAD = _handle

        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.httpd.daemon_threads = True
        self._thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self._thread.join(timeout=5)

    # -- one request ----------------------------------------------------------------------------
    def handle(self, request: BaseHTTPRequestHandler) -> None:
        started = time.monotonic()
        method = request.command
        url = urlsplit(request.path)
        headers = {k.lower(): v for k, v in request.headers.items()}
        length = int(headers.get("content-length") or 0)
        body = request.rfile.read(length) if length else b""
        cors = self._cors_headers(headers.get("origin"))

        if method == "OPTIONS" and self.spec.cors and "access-control-request-method" in headers:
            self._send(request, 204, {**cors, **self._preflight_headers()}, b"")
            self._log(method, url.path, 204, started)
            return
        found = match_route(self.spec.routes, method, url.path)
        if found is None:
            self._send_json(request, 404, {"message": "Not Found"}, cors)
            self._log(method, url.path, 404, started)
            return
        status, authorizer = authorize(found.route, headers)
        if status:
            self._send_json(request, status, {"message": "Unauthorized" if status == 401 else "Forbidden"}, cors)
            self._log(found.route.key, url.path, status, started)
            return
        host = self.hosts(found.route.function)
        if host is None:
            self._send_json(request, 502, {"message": "Internal Server Error"}, cors)
            self._log(found.route.key, url.path, 502, started, "its function does not run locally")
            return
        event = self.event(found, method, url.path, url.query, headers, body, request.client_address[0], authorizer)
        outcome = host.invoke(event, timeout=found.route.timeout)
        status, out_headers, cookies, payload = self.response(outcome)
        self._send(request, status, {**out_headers, **cors}, payload, cookies)
        note = "" if outcome.ok else outcome.summary
        self._log(found.route.key, url.path, status, started, note)

    def event(
        self, found: Match, method: str, path: str, query: str, headers: dict[str, str], body: bytes,
        source_ip: str, authorizer: dict[str, Any] | None,
    ) -> dict[str, Any]:
        """The payload format 2.0 event API Gateway sends the integration."""
        now = datetime.now(UTC)
        params: dict[str, list[str]] = {}
        for key, value in parse_qsl(query, keep_blank_values=True):
            params.setdefault(key, []).append(value)
        cookies = [c.strip() for c in headers.get("cookie", "").split(";") if c.strip()]
        event_headers = {k: v for k, v in headers.items() if k != "cookie"}
        context: dict[str, Any] = {
            "accountId": ACCOUNT_ID,
            "apiId": self.api_id,
            "domainName": f"127.0.0.1:{self.port}",
            "domainPrefix": "127",
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": source_ip,
                     "userAgent": headers.get("user-agent", "")},
            "requestId": str(uuid.uuid4()),
            "routeKey": found.route.key,
            "stage": "$default",
            "time": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "timeEpoch": int(now.timestamp() * 1000),
        }
        if authorizer is not None:
            context["authorizer"] = authorizer
        event: dict[str, Any] = {
            "version": "2.0",
            "routeKey": found.route.key,
            "rawPath": path,
            "rawQueryString": query,
            "headers": event_headers,
            "requestContext": context,
            "isBase64Encoded": False,
        }
        if cookies:
            event["cookies"] = cookies
        if params:
            event["queryStringParameters"] = {k: ",".join(v) for k, v in params.items()}
        if found.parameters:
            event["pathParameters"] = found.parameters
        if body:
            if TEXT_TYPES.match(headers.get("content-type", "")):
                event["body"] = body.decode("utf-8", errors="replace")
            else:
                event["body"] = base64.b64encode(body).decode()
                event["isBase64Encoded"] = True
        return event

    @staticmethod
    def response(outcome: Invocation) -> tuple[int, dict[str, str], list[str], bytes]:
        """API Gateway's mapping of a 2.0 answer: status, headers, cookies, body."""
        if not outcome.ok:
            if outcome.timed_out:
                return 503, {"content-type": "application/json"}, [], b'{"message":"Service Unavailable"}'
            return 500, {"content-type": "application/json"}, [], b'{"message":"Internal Server Error"}'
        value = outcome.value
        if isinstance(value, dict) and "statusCode" in value:
            headers = {str(k).lower(): str(v) for k, v in (value.get("headers") or {}).items()}
            for key, values in (value.get("multiValueHeaders") or {}).items():
                headers[str(key).lower()] = ",".join(map(str, values))
            raw = value.get("body")
            if raw is None:
                payload = b""
            elif value.get("isBase64Encoded"):
                payload = base64.b64decode(raw)
            else:
                payload = (raw if isinstance(raw, str) else json.dumps(raw)).encode()
            return int(value["statusCode"]), headers, [str(c) for c in value.get("cookies") or []], payload
        text = value if isinstance(value, str) else json.dumps(value)
        return 200, {"content-type": "application/json"}, [], text.encode()

    # -- CORS ------------------------------------------------------------------------------------
    def _cors_headers(self, origin: str | None) -> dict[str, str]:
        cors = self.spec.cors
        if not cors or not origin:
            return {}
        allowed = cors.get("allowOrigins") or []
        if "*" in allowed:
            value = "*"
        elif origin in allowed:
            value = origin
        else:
            return {}
        headers = {"access-control-allow-origin": value}
        if cors.get("allowCredentials"):
            headers["access-control-allow-credentials"] = "true"
        if cors.get("exposeHeaders"):
            headers["access-control-expose-headers"] = ",".join(cors["exposeHeaders"])
        return headers

    def _preflight_headers(self) -> dict[str, str]:
        cors = self.spec.cors or {}
        headers = {}
        if cors.get("allowMethods"):
            headers["access-control-allow-methods"] = ",".join(cors["allowMethods"])
        if cors.get("allowHeaders"):
            headers["access-control-allow-headers"] = ",".join(cors["allowHeaders"])
        if cors.get("maxAge") is not None:
            headers["access-control-max-age"] = str(int(cors["maxAge"]))
        return headers

    # -- output ----------------------------------------------------------------------------------
    def _send_json(self, request: BaseHTTPRequestHandler, status: int, body: Any, extra: dict[str, str]) -> None:
        self._send(request, status, {"content-type": "application/json", **extra}, json.dumps(body).encode())

    @staticmethod
    def _send(
        request: BaseHTTPRequestHandler, status: int, headers: dict[str, str], payload: bytes,
        cookies: list[str] | None = None,
    ) -> None:
        request.send_response(status)
        for key, value in headers.items():
            if key not in ("content-length", "connection", "transfer-encoding"):
                request.send_header(key, value)
        for cookie in cookies or []:
            request.send_header("set-cookie", cookie)
        request.send_header("content-length", str(len(payload)))
        request.end_headers()
        if request.command != "HEAD":
            request.wfile.write(payload)

    def _log(self, route: str, path: str, status: int, started: float, note: str = "") -> None:
        ms = (time.monotonic() - started) * 1000
        self.log.service(self.name, f"{route:<24} {path}  {status}  {ms:.0f} ms" + (f"  {note}" if note else ""))
