"""A client of `credhost serve` for launchers written in Python.

Standard library only (http.client over an AF_UNIX socket), Python 3.8 or
later. The daemon serves every agent of the user from memory and refreshes
ahead of expiry; a launcher asks it for a token per agent, and after a 401
asks for one refresh naming the token it saw rejected (by fingerprint:
the token itself never goes back over the socket), so twenty agents that
all got a 401 cause one refresh.

    import credhost_client as credhost

    token = credhost.get_token()
    ...                                   # the API answered 401 for token
    token = credhost.refresh(credhost.fingerprint(token))

Errors are CredhostError with the daemon's code ("no_credential",
"refresh_failed", ...) and exit_code (what the credhost command would exit
with: 1 no credential, 2 usage or config, 3 refresh failed);
DaemonUnavailable when no daemon answers on the socket.
"""

import hashlib
import http.client
import json
import os
import socket

SOCKET_ENV = "CREDHOST_SOCKET"

# A refresh may take a while (the daemon's refresh.timeout, 10s by
# default, and a plugin's start); connecting, and the first health check,
# must not.
CONNECT_TIMEOUT = 0.5
ANSWER_TIMEOUT = 90.0


class CredhostError(Exception):
    """An answer of the daemon that is not 2xx, or no answer at all."""

    def __init__(self, message, code, exit_code, status=None):
        super().__init__(message)
        self.message = message
        self.code = code            # e.g. "no_credential", "refresh_failed"
        self.exit_code = exit_code  # what `credhost token` would exit with
        self.status = status        # the HTTP status, None without answer


class DaemonUnavailable(CredhostError):
    """No daemon answers on the socket: run `credhost token` instead."""

    def __init__(self, message):
        super().__init__(message, "unavailable", 2)


def default_socket():
    """The socket `credhost serve` listens on by default, as it finds it."""
    path = os.environ.get(SOCKET_ENV)
    if path:
        return path
    if os.name == "nt" and os.environ.get("LOCALAPPDATA"):
        return os.path.join(os.environ["LOCALAPPDATA"], "credhost", "credhost.sock")
    runtime = os.environ.get("XDG_RUNTIME_DIR", "")
    if os.path.isabs(runtime):
        return os.path.join(runtime, "credhost", "credhost.sock")
    tmp = os.environ.get("TMPDIR") or "/tmp"
    return os.path.join(tmp, "credhost-%d" % os.geteuid(), "credhost.sock")


def fingerprint(token):
    """The token's fingerprint, as `credhost status` shows it."""
    return hashlib.sha256(token.encode()).hexdigest()[:12]


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path, timeout):
        super().__init__("credhost", timeout=timeout)
        self._path = path

    def connect(self):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(CONNECT_TIMEOUT)
        try:
            sock.connect(self._path)
        except OSError:
            sock.close()
            raise
        sock.settimeout(self.timeout)
        self.sock = sock


class Client:
    """A client of the daemon on socket_path (default_socket() if None).

    Its first request is preceded by a health check that must be answered
    within dial_timeout, so a daemon that hangs costs that much and raises
    DaemonUnavailable, not the much longer answer timeout a refresh may need.
    """

    def __init__(self, socket_path=None, timeout=ANSWER_TIMEOUT, dial_timeout=CONNECT_TIMEOUT):
        self.socket_path = socket_path or default_socket()
        self.timeout = timeout
        self.dial_timeout = dial_timeout
        self._checked = False

    def token(self):
        """The daemon's token: the dict `credhost token --json` prints."""
        return self._call("GET", "/v1/token")

    def get_token(self):
        """A usable access token."""
        return self.token()["access_token"]

    def refresh(self, rejected=None):
        """Have the daemon refresh, and return the new access token.

        rejected is the fingerprint of the token the API refused; when the
        daemon already holds another token it returns that one without
        refreshing. Without it, the refresh is forced.
        """
        body = {"rejected": rejected} if rejected else None
        return self._call("POST", "/v1/refresh", body)["access_token"]

    def status(self):
        """Every provider's state: the dict `credhost status --json` prints."""
        return self._call("GET", "/v1/status")

    def health(self):
        """The daemon's pid, chain and config source."""
        return self._call("GET", "/v1/health")

    def _call(self, method, path, body=None):
        if not self._checked:
            self._checked = True
            try:
                self._request("GET", "/v1/health", None, self.dial_timeout)
            except CredhostError as e:
                self._checked = False
                if isinstance(e, DaemonUnavailable):
                    raise
                raise DaemonUnavailable("the daemon on %s fails its health check: %s" % (self.socket_path, e.message)) from None
        return self._request(method, path, body, self.timeout)

    def _request(self, method, path, body, timeout):
        conn = _UnixConnection(self.socket_path, timeout)
        try:
            headers = {}
            data = None
            if body is not None:
                data = json.dumps(body).encode()
                headers["Content-Type"] = "application/json"
            try:
                conn.request(method, path, body=data, headers=headers)
                resp = conn.getresponse()
                raw = resp.read()
            except (OSError, http.client.HTTPException) as e:
                raise DaemonUnavailable("no credhost daemon answers on %s: %s" % (self.socket_path, e)) from None
            try:
                answer = json.loads(raw)
            except ValueError:
                answer = None
            if 200 <= resp.status < 300 and isinstance(answer, dict):
                return answer
            if not isinstance(answer, dict):
                raise CredhostError("the daemon answered %d %s" % (resp.status, resp.reason), "internal", 2, resp.status)
            raise CredhostError(answer.get("error", ""), answer.get("code", "internal"), answer.get("exit_code", 2), resp.status)
        finally:
            conn.close()


def get_token(socket_path=None):
    """A usable access token from the daemon on socket_path (or the default)."""
    return Client(socket_path).get_token()


def refresh(rejected=None, socket_path=None):
    """Have the daemon refresh (see Client.refresh); the new access token."""
    return Client(socket_path).refresh(rejected)


if __name__ == "__main__":
    # A launcher in a few lines: print a token's fingerprint, never the token.
    import sys

    try:
        tok = get_token()
    except CredhostError as e:
        print("credhost: %s (%s)" % (e.message, e.code), file=sys.stderr)
        sys.exit(e.exit_code)
    print("token %s" % fingerprint(tok))
