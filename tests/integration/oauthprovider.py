"""A small OAuth2 provider of our own, for the OAuth2 tests: HTTPS on 127.0.0.1 with a
certificate from the test CA (alcodetest.make_ca), and the endpoints alcode and dovecot use:

- GET  /authorize   authorization code grant with PKCE (S256 only); approves at once as `user`
                    and redirects the browser to the client's loopback redirect_uri (RFC 8252);
- POST /token       grant_type authorization_code (checks the code_verifier), refresh_token,
                    urn:ietf:params:oauth:grant-type:device_code (authorization_pending until
                    approve_device(), optionally one slow_down first);
- POST /device      device authorization (RFC 8628);
- POST /introspect  token introspection (RFC 7662) for dovecot's oauth2 passdb:
                    {"active": true, "username": ...} for a live access token.

Everything it issues is random; it counts requests per grant type and remembers every token it
issued, so a test can look for them in logs. revoke() makes the refresh tokens invalid_grant.
"""

import base64
import hashlib
import http.server
import json
import os
import secrets
import socketserver
import ssl
import threading
import time
import urllib.parse


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class _Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class OAuthProvider:
    def __init__(self, cert, key, user="alice", client_id="alcode-test-client", client_secret=None,
                 expires_in=3600, rotate_refresh=False, device_slow_down=False, token_delay=0):
        self.user = user
        self.client_id = client_id
        self.client_secret = client_secret
        self.expires_in = expires_in
        self.rotate_refresh = rotate_refresh
        self.device_slow_down = device_slow_down
        self.token_delay = token_delay  # seconds the token endpoint takes (a provider that hangs)
        self.lock = threading.Lock()
        self.codes = {}
        self.refresh_tokens = {}
        self.access_tokens = {}
        self.devices = {}
        self.issued = []          # every token and code handed out (secrets to look for in logs)
        self.requests = []        # (path, grant_type or None)
        self.introspections = []  # (token_known, active)
        self.refreshes = []       # (time, seconds the newest access token had left then)
        provider = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _json(self, status, obj):
                body = json.dumps(obj).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                self.wfile.write(body)

            def _form(self):
                n = int(self.headers.get("Content-Length") or 0)
                return {k: v[0] for k, v in urllib.parse.parse_qs(self.rfile.read(n).decode()).items()}

            def do_GET(self):
                u = urllib.parse.urlparse(self.path)
                if u.path != "/authorize":
                    return self._json(404, {"error": "not_found"})
                q = {k: v[0] for k, v in urllib.parse.parse_qs(u.query).items()}
                provider.requests.append(("/authorize", None))
                status, location = provider.authorize(q)
                if status != 302:
                    return self._json(status, {"error": location})
                self.send_response(302)
                self.send_header("Location", location)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def do_POST(self):
                path = urllib.parse.urlparse(self.path).path
                form = self._form()
                with provider.lock:
                    provider.requests.append((path, form.get("grant_type")))
                if path == "/token":
                    if provider.token_delay:
                        time.sleep(provider.token_delay)
                    return self._json(*provider.token(form))
                if path == "/device":
                    return self._json(*provider.device(form))
                if path == "/introspect":
                    return self._json(*provider.introspect(form))
                return self._json(404, {"error": "not_found"})

        self.httpd = _Server(("127.0.0.1", 0), Handler)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        self.base = "https://127.0.0.1:%d" % self.port
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    # ---- endpoints ----

    def _new(self, prefix):
        t = prefix + secrets.token_urlsafe(24)
        self.issued.append(t)
        return t

    def _client_ok(self, form):
        if form.get("client_id") != self.client_id:
            return False
        return self.client_secret is None or form.get("client_secret") == self.client_secret

    def _issue(self, with_refresh=True):
        at = self._new("at-")
        self.access_tokens[at] = (self.user, time.time() + self.expires_in)
        out = {"access_token": at, "token_type": "Bearer", "expires_in": self.expires_in}
        if with_refresh:
            rt = self._new("rt-")
            self.refresh_tokens[rt] = self.user
            out["refresh_token"] = rt
        return out

    def authorize(self, q):
        if q.get("client_id") != self.client_id:
            return 400, "unauthorized_client"
        redirect = q.get("redirect_uri", "")
        if not redirect.startswith(("http://127.0.0.1:", "http://localhost:")):
            return 400, "invalid_request: redirect_uri must be a loopback address"
        if q.get("response_type") != "code" or q.get("code_challenge_method") != "S256" \
                or len(q.get("code_challenge", "")) != 43:
            return 400, "invalid_request"
        with self.lock:
            code = self._new("code-")
            self.codes[code] = (redirect, q["code_challenge"], q.get("scope"))
        params = urllib.parse.urlencode({"code": code, "state": q.get("state", "")})
        return 302, redirect + ("&" if "?" in redirect else "?") + params

    def token(self, form):
        with self.lock:
            if not self._client_ok(form):
                return 401, {"error": "invalid_client"}
            grant = form.get("grant_type")
            if grant == "authorization_code":
                entry = self.codes.pop(form.get("code", ""), None)
                if not entry:
                    return 400, {"error": "invalid_grant", "error_description": "unknown code"}
                redirect, challenge, _ = entry
                if form.get("redirect_uri") != redirect:
                    return 400, {"error": "invalid_grant", "error_description": "redirect_uri differs"}
                verifier = form.get("code_verifier", "")
                if b64url(hashlib.sha256(verifier.encode()).digest()) != challenge:
                    return 400, {"error": "invalid_grant", "error_description": "PKCE verification failed"}
                return 200, self._issue()
            if grant == "refresh_token":
                rt = form.get("refresh_token", "")
                now = time.time()
                left = max((exp for _, exp in self.access_tokens.values()), default=now) - now
                self.refreshes.append((now, left))
                if rt not in self.refresh_tokens:
                    return 400, {"error": "invalid_grant", "error_description": "the refresh token was revoked"}
                if self.rotate_refresh:
                    del self.refresh_tokens[rt]
                    return 200, self._issue()
                return 200, self._issue(with_refresh=False)
            if grant == "urn:ietf:params:oauth:grant-type:device_code":
                d = self.devices.get(form.get("device_code", ""))
                if not d:
                    return 400, {"error": "invalid_grant"}
                d["polls"].append(time.monotonic())
                if self.device_slow_down and not d["slowed"]:
                    d["slowed"] = True
                    return 400, {"error": "slow_down"}
                if not d["approved"]:
                    return 400, {"error": "authorization_pending"}
                del self.devices[form["device_code"]]
                return 200, self._issue()
            return 400, {"error": "unsupported_grant_type"}

    def device(self, form):
        with self.lock:
            if form.get("client_id") != self.client_id:
                return 400, {"error": "unauthorized_client"}
            dc = self._new("dc-")
            user_code = "%04d-%04d" % (secrets.randbelow(10000), secrets.randbelow(10000))
            self.devices[dc] = {"user_code": user_code, "approved": False, "slowed": False, "polls": []}
            return 200, {"device_code": dc, "user_code": user_code, "verification_uri": self.base + "/device",
                         "expires_in": 120, "interval": 1}

    def introspect(self, form):
        with self.lock:
            entry = self.access_tokens.get(form.get("token", ""))
            active = bool(entry) and entry[1] > time.time()
            self.introspections.append((bool(entry), active))
            if not active:
                return 200, {"active": False}
            return 200, {"active": True, "username": entry[0], "client_id": self.client_id}

    # ---- for the tests ----

    def approve_device(self, user_code):
        with self.lock:
            for d in self.devices.values():
                if d["user_code"] == user_code:
                    d["approved"] = True
                    return True
        return False

    def device_polls(self):
        with self.lock:
            return [list(d["polls"]) for d in self.devices.values()]

    def revoke(self):
        with self.lock:
            self.refresh_tokens.clear()

    def grant_new_refresh_token(self):
        """A refresh token as a sign-in would give it (for tests that start from a stored one)."""
        with self.lock:
            rt = self._new("rt-")
            self.refresh_tokens[rt] = self.user
            return rt

    def count(self, path, grant=None):
        with self.lock:
            return sum(1 for p, g in self.requests if p == path and (grant is None or g == grant))

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def dovecot_oauth2(dovecot, provider, ca):
    """Points a not yet started alcodetest.Dovecot's passdb at the provider's introspection endpoint,
    so that dovecot itself checks each bearer token (XOAUTH2 and OAUTHBEARER)."""
    ext = os.path.join(dovecot.dir, "dovecot-oauth2.conf.ext")
    with open(ext, "w") as f:
        f.write("introspection_mode = post\n"
                "introspection_url = %s/introspect\n"
                "force_introspection = yes\n"
                "username_attribute = username\n"
                "active_attribute = active\n"
                "active_value = true\n"
                "tls_ca_cert_file = %s\n" % (provider.base, ca))
    with open(dovecot.conf) as f:
        text = f.read()
    start = text.index("passdb {")
    end = text.index("}", start) + 1
    text = text[:start] + "passdb {\n  driver = oauth2\n  args = %s\n}" % ext + text[end:]
    with open(dovecot.conf, "w") as f:
        f.write(text)
