"""A credhost plugin written from sdk/proto/PROTOCOL.md alone, for the host's
tests: no go-plugin, no generated code (messages are encoded by hand), no
controller service. Run by credhost as: python3 plugin.py MODE.

Modes: found (Read returns the token py-token-A), prefixed (Read answers
NOT_FOUND "no credential found: nothing in the python store"), traceback
(fails at import time, before its handshake).
"""
import base64
import datetime
import os
import sys
import tempfile
from concurrent import futures

MODE = sys.argv[1] if len(sys.argv) > 1 else "found"

if MODE == "traceback":
    import no_such_module_for_credhost  # noqa: F401  (fails: a traceback on stderr)

import grpc
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

COOKIE_KEY = "CREDHOST_PLUGIN"
COOKIE_VALUE = "5d0c8e4b6f1a4d7c9e2b3a8f0c6d1e57"


def fail(msg):
    print(msg, file=sys.stderr, flush=True)
    sys.exit(1)


def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def field(num, data):
    """A length-delimited protobuf field."""
    return varint(num << 3 | 2) + varint(len(data)) + data


def read(request, context):
    if MODE == "prefixed":
        context.abort(grpc.StatusCode.NOT_FOUND, "no credential found: nothing in the python store")
    # ReadResponse{credential: Credential{access_token: "py-token-A"}}
    return field(1, field(1, b"py-token-A"))


def empty(request, context):
    return b""


def health(request, context):
    return varint(1 << 3 | 0) + varint(1)  # HealthCheckResponse{status: SERVING}


def main():
    if os.environ.get(COOKIE_KEY) != COOKIE_VALUE:
        fail("this is a credhost plugin; credhost runs it")
    if "1" not in os.environ.get("PLUGIN_PROTOCOL_VERSIONS", "").split(","):
        fail("credhost offers protocol versions %r; this plugin speaks 1" % os.environ.get("PLUGIN_PROTOCOL_VERSIONS"))
    print("plain line from a python plugin", file=sys.stderr, flush=True)

    # Mutual TLS: a self-signed certificate for localhost; require the
    # host's (PLUGIN_CLIENT_CERT).
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    creds = grpc.ssl_server_credentials(
        [(key_pem, cert_pem)],
        root_certificates=os.environ["PLUGIN_CLIENT_CERT"].encode(),
        require_client_auth=True,
    )

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    server.add_generic_rpc_handlers((
        grpc.method_handlers_generic_handler("credhost.v1.Provider", {
            "Info": grpc.unary_unary_rpc_method_handler(empty),
            "Configure": grpc.unary_unary_rpc_method_handler(empty),
            "Read": grpc.unary_unary_rpc_method_handler(read),
        }),
        grpc.method_handlers_generic_handler("grpc.health.v1.Health", {
            "Check": grpc.unary_unary_rpc_method_handler(health),
        }),
    ))
    sock = os.path.join(os.environ.get("PLUGIN_UNIX_SOCKET_DIR") or tempfile.gettempdir(), "py-%d.sock" % os.getpid())
    server.add_secure_port("unix:" + sock, creds)
    server.start()

    der = cert.public_bytes(serialization.Encoding.DER)
    print("1|1|unix|%s|grpc|%s" % (sock, base64.b64encode(der).decode().rstrip("=")), flush=True)
    server.wait_for_termination()


main()
