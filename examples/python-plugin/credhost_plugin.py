"""Serve a credhost credential provider written in Python.

A credhost plugin is a program the host starts and talks gRPC to over
hashicorp/go-plugin's transport. This module does everything a plugin must
do besides keeping credentials, so a provider is only its store logic:

    import credhost_plugin as chp

    class MyStore(chp.Provider):
        def info(self, ctx): return chp.Info(name="mystore", version="1", can_save=True)
        def configure(self, ctx, req): ...
        def read(self, ctx): ...              # a Credential, or raise chp.NotFound
        def save(self, ctx, cred): ...

    if __name__ == "__main__":
        chp.serve(MyStore())

What serve() does for it, in the order the host needs it:

- checks the magic cookie (CREDHOST_PLUGIN in the environment; its value
  is MAGIC_COOKIE_VALUE): a program started by hand says what it is and
  exits 1 instead of printing a handshake;
- picks the protocol version from PLUGIN_PROTOCOL_VERSIONS (this module
  speaks version 1);
- mutual TLS (go-plugin's AutoMTLS, which credhost always uses): reads the
  host's certificate from PLUGIN_CLIENT_CERT, makes a self-signed
  certificate of its own for this one run, requires the host's certificate
  on every connection, and sends its own certificate in the handshake;
- listens on a unix socket in PLUGIN_UNIX_SOCKET_DIR and prints the one
  handshake line on stdout:
  1|1|unix|/path/to/socket|grpc|<DER certificate, base64 without padding>
- serves credhost.v1.Provider (your Provider), grpc.health.v1.Health
  (service "plugin" SERVING) and go-plugin's plugin.GRPCController, whose
  Shutdown ends the process at once (without it, every host call waits 2 s
  for the plugin to exit and then kills it);
- maps errors to gRPC status codes: NotFound to NOT_FOUND, Unsupported to
  UNIMPLEMENTED, InvalidConfig to INVALID_ARGUMENT, InvalidGrant to
  PERMISSION_DENIED, anything else to UNKNOWN (a fault of the provider); an
  error's retry_after travels as a google.rpc.RetryInfo detail and its
  hint as a google.rpc.ErrorInfo (domain "credhost", reason "HINT");
- logs hclog JSON lines on stderr (log.info(...), at the host's level,
  CREDHOST_LOG_LEVEL), including Python's own logging and any uncaught
  exception, so nothing reaches the host as unparsed text;
- hardens the process: no core dumps, SIGINT ignored (a Ctrl-C reaches the
  host, which ends its plugins), and the process (with its group, when it
  leads one or the host says so) ends when the host is gone.

Every provider method gets a Context first: ctx.time_remaining() is what is
left of the host's deadline for the call (None: no deadline).

Never log or raise a token: errors and log lines reach the user.

Requirements: Python 3.9+, grpcio, protobuf and cryptography (Debian:
python3-grpcio python3-protobuf python3-cryptography), and the stubs gen.sh
makes in generated/ next to this file (python3-grpc-tools).

CREDHOST_PY_FAULT breaks the plugin on purpose, for the tests that prove the
host and `credhost plugin check` catch each mistake a plugin author can make
(see FAULTS); it is never set in use.
"""

from __future__ import annotations

import base64
import collections
import dataclasses
import datetime
import hashlib
import ipaddress
import json
import logging
import os
import resource
import signal
import sys
import tempfile
import threading
import traceback
from concurrent import futures
from typing import Any, Dict, List, Optional

# The protocol, as the host (sdk/plugin/handshake.go) defines it. The magic
# cookie is not security: it only stops a person from running the plugin by
# hand and staring at a handshake line.
MAGIC_COOKIE_KEY = "CREDHOST_PLUGIN"
MAGIC_COOKIE_VALUE = "5d0c8e4b6f1a4d7c9e2b3a8f0c6d1e57"
# The credhost protocol versions this module serves (newest last).
PROTOCOL_VERSIONS = (1,)
# go-plugin's own protocol version, the handshake's first field.
CORE_PROTOCOL_VERSION = 1
# The health service name go-plugin checks.
HEALTH_SERVICE = "plugin"
# The host's log level for plugins.
LOG_LEVEL_ENV = "CREDHOST_LOG_LEVEL"
# Set to "1" by a host that starts each plugin in a process group of its own.
OWN_GROUP_ENV = "CREDHOST_PLUGIN_GROUP"

FAULT_ENV = "CREDHOST_PY_FAULT"
# The deliberate mistakes CREDHOST_PY_FAULT selects, one at a time.
FAULTS = {
    "no-mtls": "serve plain text and send no certificate, ignoring PLUGIN_CLIENT_CERT",
    "padded-cert": "send the certificate base64 with padding (a certificate whose length forces it)",
    "wrong-cookie": "expect the cookie's key as its value (CREDHOST_PLUGIN=CREDHOST_PLUGIN)",
    "empty-token": "answer Read with a credential whose access token is empty",
    "hang-start": "never print the handshake",
    "hang-read": "never answer Read",
    "no-controller": "serve no plugin.GRPCController (no Shutdown)",
    "bug-read": "raise an unexpected exception in Read, as a provider's bug would",
}

_HERE = os.path.dirname(os.path.abspath(__file__))


def _fatal(msg: str) -> None:
    """Says why the plugin cannot start, as one log line, and exits 1."""
    log.error(msg)
    sys.exit(1)


# --- logging ---------------------------------------------------------------

_LEVELS = {"trace": 0, "debug": 1, "info": 2, "warn": 3, "error": 4, "off": 5}


class Logger:
    """hclog's JSON format on stderr, one object a line, which the host
    parses and logs again under the provider's name at the same level:
    {"@level":"info","@message":"...","@timestamp":"...","key":value}.
    The timestamp must have exactly six fractional digits, or the host
    cannot parse the line and keeps it at debug."""

    def __init__(self, stream=None, level: Optional[str] = None):
        self._stream = stream or sys.stderr
        name = (level or os.environ.get(LOG_LEVEL_ENV, "") or "info").lower()
        self._level = _LEVELS.get(name, _LEVELS["info"])
        self._lock = threading.Lock()

    def enabled(self, level: str) -> bool:
        """Reports whether a line at level would be written."""
        return _LEVELS[level] >= self._level and self._level < _LEVELS["off"]

    def log(self, level: str, msg: str, **kv: Any) -> None:
        """Writes one line at level ("trace" to "error") with key-values kv."""
        if not self.enabled(level):
            return
        line = {
            "@level": level,
            "@message": msg,
            "@timestamp": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        }
        for k, v in kv.items():
            line[k] = v if isinstance(v, (str, int, float, bool)) or v is None else str(v)
        text = json.dumps(line, ensure_ascii=True, separators=(",", ":"))
        with self._lock:
            self._stream.write(text + "\n")
            self._stream.flush()

    def trace(self, msg: str, **kv: Any) -> None:
        self.log("trace", msg, **kv)

    def debug(self, msg: str, **kv: Any) -> None:
        self.log("debug", msg, **kv)

    def info(self, msg: str, **kv: Any) -> None:
        self.log("info", msg, **kv)

    def warn(self, msg: str, **kv: Any) -> None:
        self.log("warn", msg, **kv)

    def error(self, msg: str, **kv: Any) -> None:
        self.log("error", msg, **kv)


log = Logger()


class _LoggingHandler(logging.Handler):
    """Sends Python's logging (grpc logs through it) to log."""

    _map = {logging.DEBUG: "debug", logging.INFO: "info", logging.WARNING: "warn"}

    def emit(self, record: logging.LogRecord) -> None:
        level = self._map.get(record.levelno, "error" if record.levelno > logging.WARNING else "trace")
        kv = {"logger": record.name}
        if record.exc_info:
            kv["traceback"] = "".join(traceback.format_exception(*record.exc_info))
        log.log(level, record.getMessage(), **kv)


def _excepthook(kind, value, tb) -> None:
    log.error("uncaught exception: %s: %s" % (kind.__name__, value), traceback="".join(traceback.format_exception(kind, value, tb)))


def _install_logging() -> None:
    root = logging.getLogger()
    root.handlers[:] = [_LoggingHandler()]
    root.setLevel(logging.DEBUG if log.enabled("debug") else logging.INFO)
    sys.excepthook = _excepthook
    threading.excepthook = lambda a: _excepthook(a.exc_type, a.exc_value, a.exc_traceback)


# --- the generated stubs -----------------------------------------------------

try:
    import grpc
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
except ImportError as e:  # pragma: no cover - depends on the machine
    _fatal("credhost_plugin needs grpcio, protobuf and cryptography (Debian: apt-get install python3-grpcio python3-protobuf python3-cryptography): %s" % e)

sys.path.insert(0, os.path.join(_HERE, "generated"))
try:
    import credhost_pb2
    import credhost_pb2_grpc
    import grpc_controller_pb2
    import grpc_controller_pb2_grpc
    import health_pb2
    import health_pb2_grpc
    import rpc_status_pb2
    from google.protobuf import any_pb2
except ImportError as e:  # pragma: no cover
    _fatal("credhost_plugin: the generated stubs are missing from %s (run gen.sh): %s" % (os.path.join(_HERE, "generated"), e))
finally:
    sys.path.pop(0)


# --- the contract ---------------------------------------------------------------


@dataclasses.dataclass
class Credential:
    """A credential as the host sees it. expires_at is a timezone-aware
    datetime, or None when the expiry is unknown; metadata is free-form and
    must come back from a store untouched."""

    access_token: str = ""
    refresh_token: str = ""
    expires_at: Optional[datetime.datetime] = None
    scopes: List[str] = dataclasses.field(default_factory=list)
    metadata: Dict[str, str] = dataclasses.field(default_factory=dict)

    def __repr__(self) -> str:
        # Never a token in a log line or a traceback.
        return "Credential(access_token=%s, refresh_token=%s, expires_at=%s, scopes=%r, metadata keys=%r)" % (
            fingerprint(self.access_token),
            fingerprint(self.refresh_token),
            self.expires_at,
            self.scopes,
            sorted(self.metadata),
        )

    __str__ = __repr__


def fingerprint(token: str) -> str:
    """A short, safe name for a token in a log line (never the token)."""
    if not token:
        return "<empty>"
    return "sha256:" + hashlib.sha256(token.encode()).hexdigest()[:8]


@dataclasses.dataclass
class Lock:
    """A cross-process lock the host holds around this store's refresh.
    kind is "flock" (flock(2) on a regular file) or "dir" (a directory made
    with mkdir, as npm proper-lockfile takes it; stale_ms 0 means 10000);
    scope "refresh" (re-read, token request, save) or "save" (the save
    only); path is absolute."""

    kind: str
    path: str
    stale_ms: int = 0
    scope: str = "refresh"


@dataclasses.dataclass
class Info:
    """What the plugin is and can do. The host refreshes only a provider
    with can_refresh, and holds the locks it declares while it does."""

    name: str
    version: str = ""
    can_save: bool = False
    can_refresh: bool = False
    locks: List[Lock] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class OAuthConfig:
    """The host's shared oauth block (refresh_token_grant uses it)."""

    token_url: str = ""
    client_id: str = ""
    default_expires_in_seconds: int = 0
    body_format: str = "form"
    scopes: List[str] = dataclasses.field(default_factory=list)
    timeout_ms: int = 0
    client_id_metadata: str = ""
    keep_scopes: List[str] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class ConfigureRequest:
    """name is the provider's name in the host's config; config its
    `config:` block, decoded from JSON (values keep their YAML types)."""

    name: str
    config: Dict[str, Any]
    oauth: OAuthConfig

    def decode(self, known: Dict[str, type], required: tuple = ()) -> Dict[str, Any]:
        """Returns the config after checking it strictly: every key is in
        known with a value of its type, and every key of required is set;
        otherwise InvalidConfig names the key."""
        for key, value in self.config.items():
            if key not in known:
                raise InvalidConfig("unknown key %r (known: %s)" % (key, ", ".join(sorted(known))))
            want = known[key]
            if not isinstance(value, want) or (want is int and isinstance(value, bool)):
                raise InvalidConfig("key %r: want %s, got %s" % (key, _type_name(want), _type_name(type(value))))
        for key in required:
            if self.config.get(key) in (None, ""):
                raise InvalidConfig("key %r is required" % key)
        return dict(self.config)


def _type_name(t: type) -> str:
    return {str: "a string", int: "an integer", bool: "a boolean", list: "a list", dict: "a mapping", float: "a number"}.get(t, t.__name__)


@dataclasses.dataclass
class Finding:
    """One result of Check (for `credhost doctor`): severity "ok",
    "warning" or "error"; message never holds a secret; fix says what to do."""

    severity: str
    message: str
    fix: str = ""


class Error(Exception):
    """A provider's error: a fault, unless a subclass says what kind.
    retry_after (seconds) tells the host not to refresh again before then
    (a token endpoint's Retry-After); hint is a line of advice for the user.
    The message is the reason alone: the kind travels as the status code."""

    code = None  # set below, once grpc is imported

    def __init__(self, message: str, retry_after: Optional[float] = None, hint: str = ""):
        super().__init__(message)
        self.retry_after = retry_after
        self.hint = hint


class NotFound(Error):
    """The store holds no credential; the host moves on to the next one."""


class Unsupported(Error):
    """The provider cannot do this (Save on a read-only store, Refresh
    without a way to refresh)."""


class InvalidConfig(Error):
    """The provider's config is invalid; the message names the key."""


class InvalidGrant(Error):
    """The token endpoint rejected the refresh token (invalid_grant)."""


Error.code = grpc.StatusCode.UNKNOWN
NotFound.code = grpc.StatusCode.NOT_FOUND
Unsupported.code = grpc.StatusCode.UNIMPLEMENTED
InvalidConfig.code = grpc.StatusCode.INVALID_ARGUMENT
InvalidGrant.code = grpc.StatusCode.PERMISSION_DENIED


class Context:
    """What a provider method knows of its call."""

    def __init__(self, grpc_context):
        self._ctx = grpc_context

    def time_remaining(self) -> Optional[float]:
        """Seconds left before the host gives up on this call; None: no deadline."""
        return self._ctx.time_remaining() if self._ctx is not None else None

    def is_active(self) -> bool:
        """False once the host has given up on the call."""
        return self._ctx.is_active() if self._ctx is not None else True


class Provider:
    """The interface a provider implements; serve() calls it from several
    threads at once, so guard shared state. Save, Refresh and Check default
    to Unsupported."""

    def info(self, ctx: Context) -> Info:
        """Describes the plugin; may be called before configure."""
        raise NotImplementedError

    def configure(self, ctx: Context, req: ConfigureRequest) -> None:
        """Called once, before anything but info. Raise InvalidConfig naming the key."""
        raise NotImplementedError

    def read(self, ctx: Context) -> Credential:
        """Returns the stored credential, or raises NotFound when the store
        holds none (a credential with an empty access token is a fault)."""
        raise NotImplementedError

    def save(self, ctx: Context, cred: Credential) -> None:
        """Persists cred, keeping anything in the store it does not own."""
        raise Unsupported("this provider is read-only")

    def refresh(self, ctx: Context, cred: Credential) -> Credential:
        """Returns a fresh credential for cred (see refresh_token_grant)."""
        raise Unsupported("this provider cannot refresh")

    def check(self, ctx: Context) -> List[Finding]:
        """Reports problems with the store and how to fix them."""
        raise Unsupported("the plugin has no checks")


# --- the wire ---------------------------------------------------------------------


def _to_pb(c: Credential):
    out = credhost_pb2.Credential(access_token=c.access_token, refresh_token=c.refresh_token, scopes=list(c.scopes))
    for k, v in c.metadata.items():
        out.metadata[k] = v
    if c.expires_at is not None:
        out.expires_at.FromDatetime(c.expires_at.astimezone(datetime.timezone.utc).replace(tzinfo=None))
    return out


def _from_pb(c) -> Credential:
    out = Credential(access_token=c.access_token, refresh_token=c.refresh_token, scopes=list(c.scopes), metadata=dict(c.metadata))
    if c.HasField("expires_at"):
        out.expires_at = c.expires_at.ToDatetime().replace(tzinfo=datetime.timezone.utc)
    return out


_LOCK_KINDS = {"flock": credhost_pb2.LOCK_KIND_FLOCK, "dir": credhost_pb2.LOCK_KIND_DIR}
_LOCK_SCOPES = {"refresh": credhost_pb2.LOCK_SCOPE_REFRESH, "save": credhost_pb2.LOCK_SCOPE_SAVE}


class _Status(collections.namedtuple("_Status", ("code", "details", "trailing_metadata")), grpc.Status):
    pass


def _abort(context, err: Error) -> None:
    """Ends the call with err's status code and message, and its retry_after
    and hint as google.rpc details (grpc-status-details-bin)."""
    code, msg = err.code, str(err)
    details = []
    if err.retry_after and err.retry_after > 0:
        delay = rpc_status_pb2.RetryInfo()
        delay.retry_delay.FromNanoseconds(int(err.retry_after * 1e9))
        details.append(delay)
    if err.hint:
        details.append(rpc_status_pb2.ErrorInfo(reason="HINT", domain="credhost", metadata={"hint": err.hint}))
    trailers = ()
    if details:
        st = rpc_status_pb2.Status(code=code.value[0], message=msg)
        for d in details:
            a = any_pb2.Any()
            a.Pack(d)
            st.details.append(a)
        trailers = (("grpc-status-details-bin", st.SerializeToString()),)
    context.abort_with_status(_Status(code, msg, trailers))


class _ProviderServicer(credhost_pb2_grpc.ProviderServicer):
    def __init__(self, impl: Provider, fault: str):
        self._impl = impl
        self._fault = fault

    def _call(self, context, op: str, fn):
        try:
            return fn(Context(context))
        except Error as e:
            log.debug("%s failed" % op, error=str(e), code=e.code.name)
            _abort(context, e)
        except Exception as e:  # a bug in the provider: a fault, with its traceback in the log
            log.error("%s raised %s" % (op, type(e).__name__), traceback=traceback.format_exc())
            _abort(context, Error("%s: %s" % (type(e).__name__, e)))

    def Info(self, request, context):
        def do(ctx):
            i = self._impl.info(ctx)
            locks = []
            for lk in i.locks:
                if lk.kind not in _LOCK_KINDS or lk.scope not in _LOCK_SCOPES:
                    raise Error("lock %r: kind must be one of %s, scope one of %s" % (lk.path, sorted(_LOCK_KINDS), sorted(_LOCK_SCOPES)))
                locks.append(credhost_pb2.Lock(kind=_LOCK_KINDS[lk.kind], path=lk.path, stale_ms=lk.stale_ms, scope=_LOCK_SCOPES[lk.scope]))
            return credhost_pb2.InfoResponse(name=i.name, version=i.version, can_save=i.can_save, can_refresh=i.can_refresh, locks=locks)

        return self._call(context, "Info", do)

    def Configure(self, request, context):
        def do(ctx):
            raw = request.config_json or b"{}"
            try:
                config = json.loads(raw)
            except ValueError as e:
                raise InvalidConfig("the config block is not JSON: %s" % e)
            if not isinstance(config, dict):
                raise InvalidConfig("the config block is not a mapping")
            o = request.oauth
            oauth = OAuthConfig(
                token_url=o.token_url,
                client_id=o.client_id,
                default_expires_in_seconds=o.default_expires_in_seconds,
                body_format=o.body_format or "form",
                scopes=list(o.scopes),
                timeout_ms=o.timeout_ms,
                client_id_metadata=o.client_id_metadata,
                keep_scopes=list(o.keep_scopes),
            )
            self._impl.configure(ctx, ConfigureRequest(name=request.name, config=config, oauth=oauth))
            return credhost_pb2.ConfigureResponse()

        return self._call(context, "Configure", do)

    def Read(self, request, context):
        def do(ctx):
            if self._fault == "hang-read":
                threading.Event().wait()
            if self._fault == "bug-read":
                {}["no such key"]
            cred = self._impl.read(ctx)
            if self._fault == "empty-token":
                cred = dataclasses.replace(cred, access_token="")
            return credhost_pb2.ReadResponse(credential=_to_pb(cred))

        return self._call(context, "Read", do)

    def Save(self, request, context):
        def do(ctx):
            self._impl.save(ctx, _from_pb(request.credential))
            return credhost_pb2.SaveResponse()

        return self._call(context, "Save", do)

    def Refresh(self, request, context):
        def do(ctx):
            return credhost_pb2.RefreshResponse(credential=_to_pb(self._impl.refresh(ctx, _from_pb(request.credential))))

        return self._call(context, "Refresh", do)

    def Check(self, request, context):
        def do(ctx):
            findings = [credhost_pb2.Finding(severity=f.severity, message=f.message, fix=f.fix) for f in self._impl.check(ctx)]
            return credhost_pb2.CheckResponse(findings=findings)

        return self._call(context, "Check", do)


class _HealthServicer(health_pb2_grpc.HealthServicer):
    def Check(self, request, context):
        if request.service in ("", HEALTH_SERVICE):
            return health_pb2.HealthCheckResponse(status=health_pb2.HealthCheckResponse.SERVING)
        context.abort(grpc.StatusCode.NOT_FOUND, "unknown service %r" % request.service)


class _ControllerServicer(grpc_controller_pb2_grpc.GRPCControllerServicer):
    def __init__(self, done: threading.Event):
        self._done = done

    def Shutdown(self, request, context):
        log.debug("the host is done with the plugin; shutting down")
        self._done.set()
        return grpc_controller_pb2.Empty()


# --- mutual TLS -------------------------------------------------------------------


def _server_certificate(pad: bool):
    """A self-signed certificate and key for this run (ECDSA P-256), as
    go-plugin's host checks it: the host trusts exactly this certificate,
    for the name "localhost", as a server. Returns (cert PEM, key PEM,
    handshake field)."""
    while True:
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
        now = datetime.datetime.now(datetime.timezone.utc)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(seconds=30))
            .not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True, key_cert_sign=True, key_agreement=True,
                    content_commitment=False, key_encipherment=False, data_encipherment=False,
                    crl_sign=False, encipher_only=False, decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .sign(key, hashes.SHA256())
        )
        der = cert.public_bytes(serialization.Encoding.DER)
        if pad and len(der) % 3 == 0:
            continue  # the deliberate fault needs a certificate that pads
        field = base64.b64encode(der).decode("ascii")
        if not pad:
            # go-plugin decodes the field as base64 WITHOUT padding.
            field = field.rstrip("=")
        key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        return cert.public_bytes(serialization.Encoding.PEM), key_pem, field


# --- the process ------------------------------------------------------------------


def _negotiate() -> int:
    offered = os.environ.get("PLUGIN_PROTOCOL_VERSIONS", "")
    if not offered:
        return PROTOCOL_VERSIONS[-1]
    versions = set()
    for v in offered.split(","):
        try:
            versions.add(int(v))
        except ValueError:
            pass
    common = [v for v in PROTOCOL_VERSIONS if v in versions]
    if not common:
        _fatal("the host speaks credhost protocol versions %s; this plugin speaks %s" % (offered, ",".join(map(str, PROTOCOL_VERSIONS))))
    return common[-1]


def _harden() -> None:
    try:
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    except (ValueError, OSError):
        pass
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE 0: no core, no ptrace by the same user
            if os.environ.get(OWN_GROUP_ENV) == "1":
                libc.prctl(1, signal.SIGTERM, 0, 0, 0)  # PR_SET_PDEATHSIG: SIGTERM when the host dies
        except OSError:
            pass
    # A Ctrl-C reaches the whole foreground group; the host ends its plugins.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _host_gone(*_: Any) -> None:
    """Ends the plugin, with its process group when it leads one or the
    host says the group is its own (a wrapper script leads it)."""
    sys.stderr.flush()
    if os.getpgrp() == os.getpid() or os.environ.get(OWN_GROUP_ENV) == "1":
        os.killpg(0, signal.SIGKILL)
    os._exit(1)


def serve(provider: Provider) -> None:
    """Runs provider as a credhost plugin until the host is done with it,
    then exits the process. Call it from the plugin's main; print nothing
    to stdout (it carries the handshake): log through log."""
    _install_logging()
    fault = os.environ.get(FAULT_ENV, "")
    if fault and fault not in FAULTS:
        _fatal("%s=%s: not one of %s" % (FAULT_ENV, fault, ", ".join(sorted(FAULTS))))
    want_cookie = MAGIC_COOKIE_KEY if fault == "wrong-cookie" else MAGIC_COOKIE_VALUE
    if os.environ.get(MAGIC_COOKIE_KEY) != want_cookie:
        # One log line, so a host shows it; a person running the plugin
        # by hand reads it as well.
        _fatal("this program is a credhost plugin and runs only under credhost (a provider's command:): "
               "the magic cookie %s is missing or not the expected value; to test it, run "
               "`credhost plugin check -- PROGRAM`" % MAGIC_COOKIE_KEY)
    version = _negotiate()
    _harden()
    host = os.getppid()
    signal.signal(signal.SIGTERM, _host_gone)

    done = threading.Event()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=16))
    credhost_pb2_grpc.add_ProviderServicer_to_server(_ProviderServicer(provider, fault), server)
    health_pb2_grpc.add_HealthServicer_to_server(_HealthServicer(), server)
    if fault != "no-controller":
        grpc_controller_pb2_grpc.add_GRPCControllerServicer_to_server(_ControllerServicer(done), server)

    # The host names a private directory for the socket; without one, make one.
    own_dir = not os.environ.get("PLUGIN_UNIX_SOCKET_DIR")
    sock_dir = tempfile.mkdtemp(prefix="credhost-plugin-") if own_dir else os.environ["PLUGIN_UNIX_SOCKET_DIR"]
    sock = os.path.join(sock_dir, "plugin-%d.sock" % os.getpid())
    client_cert = os.environ.get("PLUGIN_CLIENT_CERT", "")
    cert_field = ""
    if client_cert and fault != "no-mtls":
        cert_pem, key_pem, cert_field = _server_certificate(pad=fault == "padded-cert")
        creds = grpc.ssl_server_credentials([(key_pem, cert_pem)], root_certificates=client_cert.encode(), require_client_auth=True)
        bound = server.add_secure_port("unix:" + sock, creds)
    else:
        # Without PLUGIN_CLIENT_CERT the host did not ask for TLS (credhost
        # always does); go-plugin's own servers then serve plain text too.
        bound = server.add_insecure_port("unix:" + sock)
    if not bound:
        _fatal("cannot listen on %s" % sock)
    server.start()

    if fault == "hang-start":
        threading.Event().wait()
    line = "%d|%d|unix|%s|grpc" % (CORE_PROTOCOL_VERSION, version, sock)
    if cert_field:
        line += "|" + cert_field
    sys.stdout.write(line + "\n")
    sys.stdout.flush()
    # stdout carried the handshake; a stray print goes to the log instead.
    sys.stdout = sys.stderr
    log.debug("plugin started", socket=sock, protocol=version, mtls=bool(cert_field))

    # Until the host says Shutdown, or is gone (its parent changes; on
    # Linux SIGTERM says so at once).
    while not done.wait(0.15):
        if os.getppid() != host:
            _host_gone()
    # Let the Shutdown answer reach the host, refuse anything new, and
    # exit without waiting for calls that hang (the host has given up on them).
    server.stop(grace=0.5).wait(1)
    try:
        os.unlink(sock)
        if own_dir:
            os.rmdir(sock_dir)
    except OSError:
        pass
    sys.stderr.flush()
    os._exit(0)


# --- OAuth refresh ------------------------------------------------------------------

# A token response larger than this is refused (real ones are a few KiB).
_MAX_RESPONSE = 1 << 20
# The request timeout when the oauth block sets none.
_DEFAULT_TIMEOUT = 30.0


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _scrub(s: str, sent: List[str], limit: int = 200) -> str:
    """A string from the server, made safe for a message: the tokens sent
    taken out, printable characters only, cut short."""
    for tok in sent:
        if tok:
            s = s.replace(tok, "[redacted]")
    s = "".join(ch if ch.isprintable() else " " for ch in s)
    return s if len(s) <= limit else s[:limit] + "..."


def refresh_token_grant(ctx: Context, oauth: OAuthConfig, cred: Credential) -> Credential:
    """Exchanges cred's refresh token at oauth.token_url (RFC 6749 section 6)
    and returns the new credential. It sends exactly one request (a refresh
    token may work only once). The result keeps cred's refresh token when
    the response has none, keeps its metadata and (absent a scope in the
    response) its scopes; without expires_in its expiry is unknown and the
    host applies its default. A rejected refresh token is InvalidGrant; a
    Retry-After travels on the error. Messages never hold a token."""
    # Imported here: a plugin that never refreshes starts faster without.
    import urllib.error
    import urllib.parse
    import urllib.request

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        # A redirect must never carry the refresh token to another place.
        def redirect_request(self, *args, **kwargs):
            return None

    if not cred.refresh_token:
        raise Error("no refresh token to refresh with")
    url = urllib.parse.urlsplit(oauth.token_url)
    if url.scheme != "https" and not (url.scheme == "http" and _is_loopback(url.hostname or "")):
        raise InvalidConfig("oauth token_url must be https (http only to a loopback address)")
    client_id, scopes = oauth.client_id, list(oauth.scopes)
    own = cred.metadata.get(oauth.client_id_metadata, "") if oauth.client_id_metadata else ""
    if own and own != oauth.client_id:
        client_id, scopes = own, list(cred.scopes) or scopes
    else:
        scopes += [s for s in cred.scopes if s in oauth.keep_scopes and s not in scopes]
    fields = {"grant_type": "refresh_token", "refresh_token": cred.refresh_token}
    if client_id:
        fields["client_id"] = client_id
    if scopes:
        fields["scope"] = " ".join(scopes)
    if oauth.body_format == "json":
        body, ctype = json.dumps(fields).encode(), "application/json"
    else:
        body, ctype = urllib.parse.urlencode(fields).encode(), "application/x-www-form-urlencoded"
    timeout = oauth.timeout_ms / 1000.0 if oauth.timeout_ms > 0 else _DEFAULT_TIMEOUT
    left = ctx.time_remaining()
    if left is not None:
        timeout = max(0.001, min(timeout, left))
    req = urllib.request.Request(oauth.token_url, data=body, method="POST",
                                 headers={"Content-Type": ctype, "Accept": "application/json", "User-Agent": "credhost-python-plugin/1"})
    sent = [cred.refresh_token, cred.access_token]
    opener = urllib.request.build_opener(NoRedirect)
    status, headers = 0, None
    try:
        with opener.open(req, timeout=timeout) as resp:
            status, headers, raw = resp.status, resp.headers, resp.read(_MAX_RESPONSE + 1)
    except urllib.error.HTTPError as e:
        status, headers = e.code, e.headers
        try:
            raw = e.read(_MAX_RESPONSE + 1)
        except OSError:
            raw = b""
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", e)
        raise Error("token endpoint: %s" % _scrub(str(reason), sent))
    if len(raw) > _MAX_RESPONSE:
        raise Error("token endpoint: HTTP %d: response larger than %d bytes" % (status, _MAX_RESPONSE))
    retry_after = None
    ra = (headers.get("Retry-After", "") if headers is not None else "").strip()
    if ra.isdigit() and int(ra) > 0:
        retry_after = float(int(ra))
    elif ra:
        import email.utils

        try:
            when = email.utils.parsedate_to_datetime(ra)
            retry_after = (when - datetime.datetime.now(datetime.timezone.utc)).total_seconds()
        except (TypeError, ValueError):
            pass
    if retry_after is not None:
        # A day is longer than any real rate limit; past dates mean none.
        retry_after = min(retry_after, 24 * 3600.0) if retry_after > 0 else None
    if 300 <= status < 400:
        raise Error("token endpoint: HTTP %d: redirects are not followed" % status)
    doc, why = None, ""
    text = raw.strip()
    if text.startswith(b"<") or "text/html" in (headers.get("Content-Type", "") if headers is not None else ""):
        why = "response is HTML, not JSON: a proxy or error page?"
    elif not text:
        why = "response body is empty"
    else:
        try:
            doc = json.loads(text)
            if not isinstance(doc, dict):
                doc, why = None, "response is not a JSON object"
        except ValueError:
            why = "response is not valid JSON"
    code = _scrub(str(doc.get("error", "")), sent, 64) if doc else ""
    desc = _scrub(str(doc.get("error_description", "")), sent) if doc else ""
    if status != 200 or code:
        msg = "token endpoint: HTTP %d" % status
        if code:
            msg += ": " + code
        if desc:
            msg += " (%s)" % desc
        if retry_after:
            msg += "; retry after %ds" % retry_after
        if code == "invalid_grant":
            raise InvalidGrant(msg)
        raise Error(msg, retry_after=retry_after)
    if doc is None:
        raise Error("token endpoint: HTTP %d: %s" % (status, why))
    access = doc.get("access_token")
    if not isinstance(access, str) or not access:
        raise Error("token endpoint: HTTP %d: response has no access_token" % status)
    out = dataclasses.replace(cred, access_token=access, scopes=list(cred.scopes), metadata=dict(cred.metadata), expires_at=None)
    refresh = doc.get("refresh_token")
    if isinstance(refresh, str) and refresh:
        out.refresh_token = refresh
    if doc.get("expires_in") is not None:
        try:
            secs = float(doc["expires_in"])
        except (TypeError, ValueError):
            secs = -1
        if not 0 < secs <= 10 * 365 * 24 * 3600:
            raise Error("token endpoint: expires_in is not a positive number of seconds")
        out.expires_at = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=secs)
    scope = doc.get("scope")
    if isinstance(scope, str) and scope.strip():
        out.scopes = scope.split()
    return out
