#!/usr/bin/env python3
"""A reverse proxy in front of the plain-HTTP test registry, adding what the registry itself
cannot do for podrun's tests (stdlib only):

  --token-auth USER:PASSWORD   Docker/OCI token auth: /v2/ requests need `Authorization:
                               Bearer <token>`; GET /token with HTTP Basic USER:PASSWORD
                               hands out tokens (random, kept in memory, 300 s).
  --corrupt-repo NAME          (repeatable) layer blobs of repository NAME are served with a
                               few bytes flipped in the middle (same length), so their sha256
                               no longer matches their digest.

Fault paths: a repository named `faults/SESSION/SPEC/REPO` is REPO upstream, served with the
faults SPEC lists (tokens joined by `.`; SESSION, any lowercase word, keeps the counters of
concurrent tests apart):

  e500x2, e503x1, ...   the first N GETs of each manifest and blob answer that status
  e429x1                ... 429 with `Retry-After: 1`
  trunc                 the first GET of each layer blob sends half its body and closes
  drop                  ... half its body, then resets the connection (RST)
  stall                 ... half its body, then sends nothing for 60 s
  drip                  layer blobs come 64 KiB every 0.2 s
  corrupt               layer blobs have a few bytes flipped (same length)
  swap                  a layer blob is served with another layer's content and length
  badlen                layer blobs announce 1000 bytes more than they have (then close)
  endless               layer blobs come without a length, followed by zeros without end
  norange               Range headers are not passed on (the registry sends it all again)

GET /_faults/SESSION returns the GETs of that session: [{"path", "range", "status", "t"}].

It also counts blob GETs per digest: GET /_stats returns {"blob_gets": {"sha256:..": n}, ...},
DELETE /_stats (or POST /_stats/reset) sets the counters back to zero.

Usage: registry_proxy.py --listen 127.0.0.1:5859 --upstream http://127.0.0.1:5858 [-q] ...
"""

import argparse
import base64
import collections
import datetime
import hmac
import http.client
import http.server
import json
import re
import secrets
import socket
import struct
import sys
import threading
import time
import urllib.parse

TOKEN_LIFETIME = 300
SERVICE = "podrun-test"
CORRUPT_MIN_SIZE = 1024  # used only when the repository's layers cannot be listed
CHUNK = 1 << 16

MANIFEST_TYPES = [
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
]
HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te",
              "trailer", "trailers", "transfer-encoding", "upgrade"}
REPO_PATH = re.compile(r"^/v2/(.+?)/(manifests|blobs|tags)(/|$)")
BLOB_PATH = re.compile(r"^/v2/(.+?)/blobs/(sha256:[0-9a-f]{64})$")
FAULT_PATH = re.compile(r"^/v2/faults/([a-z0-9]+)/([a-z0-9.]+)/(.+)$")
FAULT_TOKENS = {"trunc", "drop", "stall", "drip", "corrupt", "swap", "badlen", "endless",
                "norange"}
STATUS_TOKEN = re.compile(r"^e(\d{3})x(\d+)$")


class Fault:
    """The faults one request is served with (from its `faults/SESSION/SPEC/` prefix)."""

    def __init__(self, session, spec):
        self.session = session
        self.spec = spec
        self.tokens = set()
        self.status = None  # (code, count)
        for token in spec.split("."):
            match = STATUS_TOKEN.match(token)
            if match:
                self.status = (int(match.group(1)), int(match.group(2)))
            elif token in FAULT_TOKENS:
                self.tokens.add(token)
            else:
                raise ValueError(f"unknown fault `{token}`")

    def has(self, token):
        return token in self.tokens


class State:
    """What the handler threads share."""

    def __init__(self, args):
        self.upstream = urllib.parse.urlsplit(args.upstream)
        self.listen = args.listen
        self.quiet = args.quiet
        self.credentials = args.token_auth
        self.corrupt_repos = set(args.corrupt_repo)
        self.lock = threading.Lock()
        self.tokens = {}  # token -> expiry (time.monotonic())
        self.blob_gets = collections.Counter()
        self.manifest_gets = collections.Counter()
        self.corrupted = collections.Counter()
        self.requests = 0
        self.layers = {}  # corrupt repository -> set of its layer digests
        self.fault_counts = collections.Counter()  # (session, spec, path, kind) -> GETs
        self.fault_log = collections.defaultdict(list)  # session -> [GET records]

    def upstream_conn(self):
        return http.client.HTTPConnection(self.upstream.hostname, self.upstream.port or 80,
                                          timeout=120)

    def issue_token(self):
        token = secrets.token_urlsafe(32)
        with self.lock:
            now = time.monotonic()
            # Forget expired tokens so the table stays small.
            for t in [t for t, exp in self.tokens.items() if exp < now]:
                del self.tokens[t]
            self.tokens[token] = now + TOKEN_LIFETIME
        return token

    def token_valid(self, token):
        with self.lock:
            expiry = self.tokens.get(token)
        return expiry is not None and expiry > time.monotonic()

    def layer_digests(self, repo, refresh=False):
        """The layer digests of every tagged image of `repo`, read from upstream; None when
        they cannot be listed."""
        with self.lock:
            if repo in self.layers and not refresh:
                return self.layers[repo]
        try:
            layers = set()
            tags = json.loads(self.get(f"/v2/{repo}/tags/list")).get("tags") or []
            todo = list(tags)
            seen = set()
            while todo:
                ref = todo.pop()
                if ref in seen:
                    continue
                seen.add(ref)
                manifest = json.loads(self.get(f"/v2/{repo}/manifests/{ref}",
                                               {"Accept": ", ".join(MANIFEST_TYPES)}))
                layers.update(layer["digest"] for layer in manifest.get("layers", []))
                todo.extend(m["digest"] for m in manifest.get("manifests", []))
        except (OSError, ValueError, KeyError) as e:
            print(f"registry_proxy: cannot list the layers of {repo}: {e}", file=sys.stderr)
            return None
        with self.lock:
            self.layers[repo] = layers
        return layers

    def get(self, path, headers=None):
        conn = self.upstream_conn()
        try:
            conn.request("GET", path, headers=headers or {})
            resp = conn.getresponse()
            body = resp.read()
            if resp.status != 200:
                raise OSError(f"GET {path}: {resp.status}")
            return body
        finally:
            conn.close()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: clients reuse connections as with a registry
    server_version = "podrun-registry-proxy"
    timeout = 300  # idle keep-alive connections do not hold a thread forever
    state: State = None  # set in main()

    # -- plumbing ---------------------------------------------------------------------

    def log_message(self, fmt, *args):
        if not self.state.quiet:
            sys.stderr.write(f"{self.address_string()} - {fmt % args}\n")

    def log_request(self, code="-", size="-"):
        pass  # one line per request comes from self.note() instead

    def note(self, status, extra=""):
        if not self.state.quiet:
            sys.stderr.write(f"{time.strftime('%H:%M:%S')} {self.command} {self.path} "
                             f"{status}{extra}\n")
            sys.stderr.flush()

    def proxy_base(self):
        host = self.headers.get("Host") or self.state.listen
        return f"http://{host}"

    def send_json(self, status, obj, headers=None):
        body = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Docker-Distribution-API-Version", "registry/2.0")
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        self.note(status)

    def read_request_body(self):
        """The request body as an iterable of chunks (None when there is none)."""
        length = self.headers.get("Content-Length")
        if length is not None:
            remaining = int(length)

            def fixed():
                nonlocal remaining
                while remaining > 0:
                    chunk = self.rfile.read(min(CHUNK, remaining))
                    if not chunk:
                        raise ConnectionError("client closed the request body early")
                    remaining -= len(chunk)
                    yield chunk
            return fixed(), int(length)
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            def chunked():
                while True:
                    size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                    if size == 0:
                        while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                            pass  # trailers
                        return
                    yield self.rfile.read(size)
                    self.rfile.readline()
            return chunked(), None
        return None, 0

    def drain(self):
        body, _ = self.read_request_body()
        for _ in body or ():
            pass

    # -- dispatch ---------------------------------------------------------------------

    def do_GET(self):
        self.handle_any()

    def do_HEAD(self):
        self.handle_any()

    def do_POST(self):
        self.handle_any()

    def do_PUT(self):
        self.handle_any()

    def do_PATCH(self):
        self.handle_any()

    def do_DELETE(self):
        self.handle_any()

    def handle_any(self):
        with self.state.lock:
            self.state.requests += 1
        path = urllib.parse.urlsplit(self.path).path
        try:
            if path in ("/_stats", "/_stats/reset", "/token") or path.startswith("/_faults/") or (
                    self.state.credentials and path.startswith("/v2")
                    and not self.authorized()):
                # Answered here: read any request body so the connection stays usable.
                self.drain()
            if path == "/_stats":
                return self.stats()
            if path.startswith("/_faults/"):
                with self.state.lock:
                    log = list(self.state.fault_log.get(path[len("/_faults/"):], []))
                return self.send_json(200, log)
            if path == "/_stats/reset" and self.command == "POST":
                return self.reset_stats()
            if path == "/token" and self.state.credentials:
                return self.token()
            if self.state.credentials and path.startswith("/v2") and not self.authorized():
                return self.challenge(path)
            self.forward(path)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    # -- our own endpoints ------------------------------------------------------------

    def stats(self):
        if self.command == "DELETE":
            return self.reset_stats()
        with self.state.lock:
            obj = {"blob_gets": dict(self.state.blob_gets),
                   "manifest_gets": dict(self.state.manifest_gets),
                   "corrupted": dict(self.state.corrupted),
                   "requests": self.state.requests}
        self.send_json(200, obj)

    def reset_stats(self):
        with self.state.lock:
            self.state.blob_gets.clear()
            self.state.manifest_gets.clear()
            self.state.corrupted.clear()
            self.state.requests = 0
        self.send_json(200, {"reset": True})

    def token(self):
        user, password = self.state.credentials.split(":", 1)
        given = self.headers.get("Authorization", "")
        ok = False
        if given.lower().startswith("basic "):
            try:
                decoded = base64.b64decode(given[6:].strip(), validate=True).decode()
                u, _, p = decoded.partition(":")
                ok = hmac.compare_digest(u.encode(), user.encode()) and hmac.compare_digest(
                    p.encode(), password.encode())
            except (ValueError, UnicodeDecodeError):
                ok = False
        if not ok:
            # Anonymous token requests are refused too: this registry has no public content.
            return self.send_json(
                401, {"errors": [{"code": "UNAUTHORIZED",
                                  "message": "invalid username or password"}]},
                {"WWW-Authenticate": f'Basic realm="{SERVICE}"'})
        token = self.state.issue_token()
        issued = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
        self.send_json(200, {"token": token, "access_token": token,
                             "expires_in": TOKEN_LIFETIME,
                             "issued_at": issued.replace("+00:00", "Z")})

    def authorized(self):
        given = self.headers.get("Authorization", "")
        return given.lower().startswith("bearer ") and self.state.token_valid(given[7:].strip())

    def challenge(self, path):
        challenge = f'Bearer realm="{self.proxy_base()}/token",service="{SERVICE}"'
        match = REPO_PATH.match(path)
        if match:
            actions = "pull" if self.command in ("GET", "HEAD") else "pull,push"
            challenge += f',scope="repository:{match.group(1)}:{actions}"'
        elif path.startswith("/v2/_catalog"):
            challenge += ',scope="registry:catalog:*"'
        self.send_json(401, {"errors": [{"code": "UNAUTHORIZED",
                                         "message": "authentication required"}]},
                       {"WWW-Authenticate": challenge})

    # -- the proxy --------------------------------------------------------------------

    def fault_for(self, path):
        """The Fault of a `faults/...` path and the upstream path, else (None, path)."""
        match = FAULT_PATH.match(path)
        if not match:
            return None, path
        return Fault(match.group(1), match.group(2)), "/v2/" + match.group(3)

    def count_get(self, fault, path, kind):
        """How many GETs of `path` this fault session has seen, this one included."""
        with self.state.lock:
            key = (fault.session, fault.spec, path, kind)
            self.state.fault_counts[key] += 1
            return self.state.fault_counts[key]

    def log_fault(self, fault, path, status):
        with self.state.lock:
            self.state.fault_log[fault.session].append(
                {"path": path, "range": self.headers.get("Range"), "status": status,
                 "t": time.monotonic()})

    def forward(self, path):
        state = self.state
        try:
            fault, path = self.fault_for(path)
        except ValueError as e:
            return self.send_json(400, {"errors": [{"code": "UNSUPPORTED", "message": str(e)}]})
        query = urllib.parse.urlsplit(self.path).query
        upstream_path = path + (f"?{query}" if query else "")
        # A list, not a dict: clients send several Accept headers (one per media type).
        headers = [(k, v) for k, v in self.headers.items()
                   if k.lower() not in HOP_BY_HOP and k.lower() not in ("host", "authorization")]
        if fault and fault.has("norange"):
            headers = [(k, v) for k, v in headers if k.lower() != "range"]
        headers.append(("Host", state.upstream.netloc))
        body, length = self.read_request_body()
        if body is not None and length is None:
            headers = [(k, v) for k, v in headers if k.lower() != "content-length"]

        blob = BLOB_PATH.match(path)
        if blob and self.command == "GET":
            with state.lock:
                state.blob_gets[blob.group(2)] += 1
        if self.command == "GET" and "/manifests/" in path:
            with state.lock:
                state.manifest_gets[path] += 1
        if fault and self.command == "GET":
            if fault.status and self.count_get(fault, path, "status") <= fault.status[1]:
                code = fault.status[0]
                self.log_fault(fault, path, code)
                self.close_connection = True
                return self.send_json(
                    code, {"errors": [{"code": "UNAVAILABLE", "message": "injected fault"}]},
                    {"Retry-After": "1"} if code == 429 else None)
            if blob and fault.has("swap") and self.is_layer(blob):
                self.log_fault(fault, path, 200)
                return self.swap(blob)

        conn = state.upstream_conn()
        try:
            try:
                conn.putrequest(self.command, upstream_path, skip_host=True,
                                skip_accept_encoding=True)
                for key, value in headers:
                    conn.putheader(key, value)
                if body is not None and length is None:
                    conn.putheader("Transfer-Encoding", "chunked")
                conn.endheaders()
                for chunk in body or ():
                    if length is None:
                        conn.send(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                    else:
                        conn.send(chunk)
                if body is not None and length is None:
                    conn.send(b"0\r\n\r\n")
                resp = conn.getresponse()
            except OSError as e:
                self.close_connection = True
                return self.send_json(502, {"errors": [{"code": "UNAVAILABLE",
                                                        "message": f"upstream: {e}"}]})
            if fault and self.command == "GET":
                self.log_fault(fault, path, resp.status)
            if (fault and blob and self.command == "GET" and resp.status in (200, 206)
                    and self.is_layer(blob)):
                return self.relay_faulty(resp, fault, path)
            self.relay(resp, blob)
        finally:
            conn.close()

    def is_layer(self, blob):
        layers = self.state.layer_digests(blob.group(1))
        if layers is not None and blob.group(2) not in layers:
            layers = self.state.layer_digests(blob.group(1), refresh=True)
        return layers is not None and blob.group(2) in layers

    def swap(self, blob):
        """Serves another layer of the repository in place of this one."""
        others = sorted(self.state.layer_digests(blob.group(1)) - {blob.group(2)})
        if not others:
            return self.send_json(500, {"errors": [{"code": "UNKNOWN",
                                                    "message": "no other layer to swap in"}]})
        body = self.state.get(f"/v2/{blob.group(1)}/blobs/{others[0]}")
        self.send_response_only(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Docker-Content-Digest", blob.group(2))
        self.end_headers()
        self.wfile.write(body)
        self.note(200, f" {len(body)} swapped with {others[0]}")

    def relay_faulty(self, resp, fault, path):
        """Relays a layer blob with the fault's transfer faults."""
        length = int(resp.getheader("Content-Length") or 0)
        first = self.count_get(fault, path, "transfer") == 1
        cut = first and resp.status == 200 and (fault.has("trunc") or fault.has("drop")
                                                or fault.has("stall"))
        self.send_response_only(resp.status, resp.reason)
        for key, value in resp.getheaders():
            if key.lower() in HOP_BY_HOP or key.lower() in ("content-length", "date",
                                                            "server", "connection"):
                continue
            self.send_header(key, value)
        if fault.has("endless"):
            self.send_header("Connection", "close")
        elif fault.has("badlen"):
            self.send_header("Content-Length", str(length + 1000))
        else:
            self.send_header("Content-Length", str(length))
        self.end_headers()
        corrupt_at = (length // 2, min(length, length // 2 + 16)) if fault.has("corrupt") else None
        limit = length // 2 if cut else length
        sent = 0
        while sent < limit:
            step = CHUNK if not fault.has("drip") else min(CHUNK, 64 * 1024)
            chunk = resp.read(min(step, limit - sent))
            if not chunk:
                break
            self.wfile.write(self.flip(chunk, sent, corrupt_at))
            sent += len(chunk)
            if fault.has("drip"):
                self.wfile.flush()
                time.sleep(0.2)
        self.wfile.flush()
        self.close_connection = True
        if cut and fault.has("stall"):
            self.note(resp.status, f" {sent} then stalling")
            time.sleep(60)
        elif cut and fault.has("drop"):
            # SO_LINGER 0: close() sends a RST, the client sees "connection reset".
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                       struct.pack("ii", 1, 0))
            self.connection.close()
        elif fault.has("endless"):
            zeros = bytes(CHUNK)
            for _ in range((64 << 20) // CHUNK):
                self.wfile.write(zeros)
        self.note(resp.status, f" {sent}" + (" cut" if cut else ""))

    def relay(self, resp, blob):
        state = self.state
        length = resp.getheader("Content-Length")
        if self.command == "HEAD" or resp.status in (204, 304):
            data = b""
        elif length is None:
            # Chunked or close-delimited upstream answer (errors, small JSON): read it whole
            # so the client gets a Content-Length.
            data = resp.read()
            length = str(len(data))
        else:
            data = None  # stream it

        corrupt_at = None
        if (blob and self.command == "GET" and resp.status in (200, 206)
                and blob.group(1) in state.corrupt_repos and length is not None):
            size = int(length)
            layers = state.layer_digests(blob.group(1))
            if layers is not None and blob.group(2) not in layers:
                layers = state.layer_digests(blob.group(1), refresh=True)
            is_layer = (blob.group(2) in layers if layers is not None
                        else size > CORRUPT_MIN_SIZE)
            if is_layer and size > 0:
                corrupt_at = (size // 2, min(size, size // 2 + 16))
                with state.lock:
                    state.corrupted[blob.group(2)] += 1

        self.send_response_only(resp.status, resp.reason)
        base = f"{state.upstream.scheme}://{state.upstream.netloc}"
        for key, value in resp.getheaders():
            lower = key.lower()
            if lower in HOP_BY_HOP or lower in ("content-length", "date", "server"):
                continue
            if lower == "location" and value.startswith(base):
                value = self.proxy_base() + value[len(base):]
            self.send_header(key, value)
        self.send_header("Date", self.date_time_string())
        if length is not None:
            self.send_header("Content-Length", length)
        self.end_headers()

        sent = 0
        if data is not None:
            if self.command != "HEAD":
                self.wfile.write(self.flip(data, 0, corrupt_at))
                sent = len(data)
        else:
            remaining = int(length)
            while remaining > 0:
                chunk = resp.read(min(CHUNK, remaining))
                if not chunk:
                    # Upstream ended early: the client cannot trust this connection.
                    self.close_connection = True
                    break
                self.wfile.write(self.flip(chunk, sent, corrupt_at))
                sent += len(chunk)
                remaining -= len(chunk)
        self.note(resp.status, f" {sent}" + (" corrupted" if corrupt_at else ""))

    @staticmethod
    def flip(chunk, offset, span):
        """Inverts the bytes of `chunk` (at `offset` in the body) that fall in `span`."""
        if span is None:
            return chunk
        start, end = max(span[0], offset), min(span[1], offset + len(chunk))
        if start >= end:
            return chunk
        out = bytearray(chunk)
        for i in range(start - offset, end - offset):
            out[i] ^= 0xFF
        return bytes(out)


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--listen", required=True, help="HOST:PORT to serve on")
    parser.add_argument("--upstream", required=True, help="the registry, http://HOST:PORT")
    parser.add_argument("--token-auth", metavar="USER:PASSWORD",
                        help="require bearer tokens issued at /token for these credentials")
    parser.add_argument("--corrupt-repo", metavar="NAME", action="append", default=[],
                        help="corrupt the layer blobs of this repository (repeatable)")
    parser.add_argument("-q", "--quiet", action="store_true", help="do not log requests")
    args = parser.parse_args()
    if args.token_auth and ":" not in args.token_auth:
        parser.error("--token-auth takes USER:PASSWORD")
    host, _, port = args.listen.rpartition(":")
    Handler.state = State(args)
    server = Server((host or "127.0.0.1", int(port)), Handler)
    print(f"registry_proxy: listening on {args.listen}, upstream {args.upstream}"
          + (", token auth" if args.token_auth else "")
          + "".join(f", corrupting {r}" for r in args.corrupt_repo), file=sys.stderr,
          flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
