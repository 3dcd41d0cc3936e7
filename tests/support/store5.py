"""The vantage6 algorithm store 5.0.3, run for one test: the real store app (its config, sqlite,
default roles, resources), its Keycloak stood in for by the one URL the store reads at start
(`GET {KEYCLOAK_URL}/realms/{realm}`: the realm's public key), so that the test can sign its
own access tokens, as Keycloak would.

Usage (the interpreter of V6_STORE_SCHEMA_PYTHON_5, which scripts/stack makes):
    python store5.py STATE_DIR

Prints one JSON line on stdout once the store answers:
    {"store": "http://127.0.0.1:PORT/api", "developer": TOKEN, "viewer": TOKEN, "stranger": TOKEN}
(access tokens of a store user with the Developer role, one with the Viewer role, and a user the
store does not know), then serves until stdin is closed. The store reads images over HTTPS:
REQUESTS_CA_BUNDLE (the stack's CA) is passed on from the environment.
"""

import base64
import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# First: the store's package patches the standard library for gevent when imported, and the
# realm server below must run on the patched one (as a greenlet beside the store's).
from vantage6.algorithm.store import db, run_store  # noqa: I001

import gevent.os
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from gevent.pywsgi import WSGIServer

REALM = "vantage6"

state = sys.argv[1]
os.makedirs(state, exist_ok=True)
key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
public_key = base64.b64encode(
    key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
).decode()


class Realm(BaseHTTPRequestHandler):
    """Keycloak's realm endpoint, the one the store reads; 404 for anything else."""

    def do_GET(self):
        found = self.path == f"/realms/{REALM}"
        body = json.dumps({"realm": REALM, "public_key": public_key} if found else {}).encode()
        self.send_response(200 if found else 404)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


realm = ThreadingHTTPServer(("127.0.0.1", 0), Realm)
threading.Thread(target=realm.serve_forever, daemon=True).start()
keycloak = f"http://127.0.0.1:{realm.server_address[1]}"
os.environ.update(
    KEYCLOAK_URL=keycloak,
    KEYCLOAK_REALM=REALM,
    KEYCLOAK_ADMIN_USERNAME="unused",
    KEYCLOAK_ADMIN_PASSWORD="unused",
    KEYCLOAK_ADMIN_CLIENT="unused",
    KEYCLOAK_ADMIN_CLIENT_SECRET="unused",
)

config = os.path.join(state, "config.yaml")
with open(config, "w") as f:
    f.write(
        f"""description: cargo v6 test store
ip: 127.0.0.1
port: 0
api_path: /api
uri: sqlite:///{state}/store.sqlite
root_user:
  username: root
policies:
  algorithm_view: public
dev:
  disable_review: true
directories: {{log: {state}/log, data: {state}/data}}
logging: {{level: WARNING, file: store.log, use_console: false, backup_count: 1,
  max_size: 1024, format: '%(levelname)s %(name)s %(message)s', datefmt: '%H:%M:%S',
  loggers: []}}
"""
    )

app = run_store(config, system_folders=False)
app.ensure_db_initialized()
with app.app.app_context():
    from vantage6.algorithm.store.model.base import DatabaseSessionManager

    DatabaseSessionManager.new_session()
    for name, role in [("developer", "Developer"), ("viewer", "Viewer")]:
        db.User(username=name, keycloak_id=f"kc-{name}", roles=[db.Role.get_by_name(role)]).save()
    DatabaseSessionManager.clear_session()


def token(subject):
    """An access token as Keycloak signs it for `subject`."""
    now = int(time.time())
    claims = {
        "sub": subject,
        "iat": now,
        "exp": now + 3600,
        "aud": "account",
        "typ": "Bearer",
        "azp": "public_client",
        "iss": f"{keycloak}/realms/{REALM}",
    }
    return jwt.encode(claims, key, algorithm="RS256")


server = WSGIServer(("127.0.0.1", 0), app.app, log=None)
server.start()
print(
    json.dumps(
        {
            "store": f"http://127.0.0.1:{server.server_port}/api",
            "developer": token("kc-developer"),
            "viewer": token("kc-viewer"),
            "stranger": token("kc-stranger"),
        }
    ),
    flush=True,
)
# Serve until the test closes stdin.
while gevent.os.tp_read(sys.stdin.fileno(), 1):
    pass
server.stop()
