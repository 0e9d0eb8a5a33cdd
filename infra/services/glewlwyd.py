"""glewlwyd (Debian's OpenID Connect provider, 2.7) as a private server for tests: a free loopback
port, its SQLite database and web app in a directory of its own, the oidc plugin signing ID tokens
with an RS256 key made here, a `groups` claim, and one confidential client. Ready in ~0.1 s.

    with glewlwyd.running(tmp_dir) as provider:
        provider.set_redirect_uris(["http://127.0.0.1:8123/c/oidc/callback"])
        provider.add_user("alice", "alice-pass-1", groups=["devs"])
        provider.issuer  # http://127.0.0.1:<port>/api/oidc (what Portlog's oidc_endpoint names)

Users log in on the provider's own page (`login.html`) or through its API (`login_session`).
"""

from __future__ import annotations

import gzip
import json
import shutil
import sqlite3
import subprocess
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

import httpx
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from infra.services import processes
from infra.services.processes import HOST

BINARY = Path("/usr/bin/glewlwyd")
INIT_SQL = Path("/usr/share/doc/glewlwyd/database/init.sqlite3.sql.gz")
WEBAPP = Path("/usr/share/glewlwyd/webapp")
WEBAPP_CONFIG = Path("/etc/glewlwyd/config-2.7.json/config.json")
# Apart from the other private servers' ranges (infra/services/processes.py) and below the
# kernel's ephemeral range.
PORT_RANGE = range(8_000, 9_000)
START_ATTEMPTS = 3
# What init.sqlite3.sql creates.
ADMIN = ("admin", "password")
SIGNING_KID = "portlog-test-1"
CLIENT_ID, CLIENT_SECRET = "portlog", "portlog-client-secret"
# Scopes the client may ask for; glewlwyd's database has only `openid` at first.
EXTRA_SCOPES = ("profile", "email")

CONFIG_TEMPLATE = """\
port={port}
bind_address="{host}"
external_url="{url}"
login_url="login.html"
api_prefix="api"
static_files_path="{webapp}/"
log_mode="console"
log_level="WARNING"
cookie_secure=0
hash_algorithm="SHA512"
user_module_path="/usr/lib/glewlwyd/user"
client_module_path="/usr/lib/glewlwyd/client"
user_auth_scheme_module_path="/usr/lib/glewlwyd/scheme"
plugin_module_path="/usr/lib/glewlwyd/plugin"
database = {{ type = "sqlite3" path = "{database}" }};
static_files_mime_types = (
  {{ extension = ".html" mime_type = "text/html" }},
  {{ extension = ".js" mime_type = "application/javascript" }},
  {{ extension = ".css" mime_type = "text/css" }},
  {{ extension = ".json" mime_type = "application/json" }},
  {{ extension = ".png" mime_type = "image/png" }},
  {{ extension = ".woff2" mime_type = "font/woff2" }}
)
"""


@dataclass
class GlewlwydServer(processes.ServerProcess):
    program = "glewlwyd"
    directory: Path
    port: int
    process: subprocess.Popen | None = None
    signing_key: rsa.RSAPrivateKey = field(default_factory=lambda: rsa.generate_private_key(65537, 2048))
    client_id: str = CLIENT_ID
    client_secret: str = CLIENT_SECRET

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def api(self) -> str:
        return f"{self.url}/api"

    @property
    def issuer(self) -> str:
        """Also the endpoint to configure: discovery is at issuer + /.well-known/openid-configuration."""
        return f"{self.api}/oidc"

    endpoint = issuer

    @property
    def log_path(self) -> Path:
        return self.directory / "glewlwyd.log"

    @property
    def database_path(self) -> Path:
        return self.directory / "glewlwyd.db"

    # --- administration (its admin API, as `admin`) ---

    def admin(self) -> httpx.Client:
        """An HTTP client with an administrator's session cookie."""
        return self.login_session(*ADMIN)

    def login_session(self, username: str, password: str) -> httpx.Client:
        """A client with `username`'s glewlwyd session (what its login page gives a browser)."""
        client = httpx.Client(base_url=self.api, timeout=10, trust_env=False)
        _check(client.post("/auth/", json={"username": username, "password": password}))
        return client

    def add_user(self, username: str, password: str, groups: Iterable[str] = (), *, email: str = "",
                 name: str = "") -> None:
        with closing(self.admin()) as admin:
            _check(admin.post("/user/", json={
                "username": username, "password": password, "name": name or username.title(),
                "email": email or f"{username}@example.org", "enabled": True,
                "scope": ["openid", *EXTRA_SCOPES], "groups": list(groups)}))

    def set_groups(self, username: str, groups: Iterable[str]) -> None:
        with closing(self.admin()) as admin:
            user = _check(admin.get(f"/user/{username}")).json()
            user.pop("source", None)
            user["groups"] = list(groups)
            _check(admin.put(f"/user/{username}", json=user))

    def set_redirect_uris(self, uris: Iterable[str]) -> None:
        with closing(self.admin()) as admin:
            client = _check(admin.get(f"/client/{self.client_id}")).json()
            client.pop("source", None)
            client["redirect_uri"] = list(uris)
            _check(admin.put(f"/client/{self.client_id}", json=client))

    def public_jwk(self) -> dict:
        return {**RSAAlgorithm.to_jwk(self.signing_key.public_key(), as_dict=True),
                "kid": SIGNING_KID, "alg": "RS256", "use": "sig"}

    # --- the process ---

    def launch(self) -> subprocess.Popen:
        return _launch(self)

    def wait_until_ready(self, timeout: float) -> None:
        processes.wait_for_health(self.process, f"{self.url}/config/", self.log_path, timeout)


def start(directory: Path, timeout: float = 20.0) -> GlewlwydServer:
    """A provider set up in `directory` (database, web app, oidc plugin, client) on a free port;
    other ports are tried if another process took one between our probe and its bind."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    _init_database(directory / "glewlwyd.db")
    _copy_webapp(directory / "webapp")
    for _ in range(START_ATTEMPTS):
        server = GlewlwydServer(directory, processes.free_port(PORT_RANGE))
        _write_config(server)
        try:
            server.start(timeout)
        except processes.ExitedEarly:
            continue
        try:
            _configure(server)
        except BaseException:
            server.stop()
            raise
        return server
    raise RuntimeError(f"glewlwyd exited at start {START_ATTEMPTS} times; see {directory / 'glewlwyd.log'}")


@contextmanager
def running(directory: Path) -> Iterator[GlewlwydServer]:
    server = start(directory)
    try:
        yield server
    finally:
        server.stop()


def _init_database(path: Path) -> None:
    with gzip.open(INIT_SQL, "rt") as script, sqlite3.connect(path) as db:
        db.executescript(script.read())
        (raw,) = db.execute(
            "SELECT gumi_parameters FROM g_user_module_instance WHERE gumi_name = 'database'").fetchone()
        parameters = json.loads(raw)
        # Properties the user module does not declare are dropped when a user is written.
        parameters["data-format"]["groups"] = {"multiple": True, "read": True, "write": True}
        db.execute("UPDATE g_user_module_instance SET gumi_parameters = ? WHERE gumi_name = 'database'",
                   (json.dumps(parameters),))


def _copy_webapp(target: Path) -> None:
    """The packaged config.json is a symlink to a directory, and the server refuses symlinks."""
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(WEBAPP, target, symlinks=False, ignore=shutil.ignore_patterns("config.json"))
    shutil.copyfile(WEBAPP_CONFIG, target / "config.json")


def _write_config(server: GlewlwydServer) -> None:
    (server.directory / "glewlwyd.conf").write_text(CONFIG_TEMPLATE.format(
        port=server.port, host=HOST, url=server.url, webapp=server.directory / "webapp",
        database=server.database_path))


def _launch(server: GlewlwydServer) -> subprocess.Popen:
    if not BINARY.exists():
        raise FileNotFoundError("glewlwyd is missing: apt-get install glewlwyd (scripts/install-system-packages)")
    with open(server.log_path, "ab") as log:
        return subprocess.Popen([str(BINARY), "-c", str(server.directory / "glewlwyd.conf")], stdout=log,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)


def _configure(server: GlewlwydServer) -> None:
    private = {**RSAAlgorithm.to_jwk(server.signing_key, as_dict=True), "kid": SIGNING_KID, "alg": "RS256",
               "use": "sig"}
    with closing(server.admin()) as admin:
        for scope in EXTRA_SCOPES:
            _check(admin.post("/scope/", json={"name": scope, "display_name": scope, "description": scope,
                                                "password_required": False, "password_max_age": 0}))
        _check(admin.post("/mod/plugin/", json={
            "module": "oidc", "name": "oidc", "display_name": "OIDC", "enabled": True, "parameters": {
                "iss": server.issuer, "jwks-private": json.dumps({"keys": [private]}),
                "default-kid": SIGNING_KID, "jwks-show": True,
                "auth-type-code-enabled": True, "auth-type-refresh-enabled": True, "pkce-allowed": True,
                "name-claim": "mandatory", "email-claim": "mandatory",
                "claims": [{"name": "groups", "user-property": "groups", "type": "string", "mandatory": True},
                           {"name": "preferred_username", "user-property": "username", "mandatory": True}]}}))
        _check(admin.post("/client/", json={
            "client_id": server.client_id, "password": server.client_secret, "name": "Portlog", "enabled": True,
            "confidential": True, "redirect_uri": [], "authorization_type": ["code", "refresh_token"],
            # Without it the token endpoint answers 403 unauthorized_client.
            "token_endpoint_auth_method": ["client_secret_basic", "client_secret_post"]}))


def _check(response: httpx.Response) -> httpx.Response:
    if response.status_code >= 400:
        raise RuntimeError(f"glewlwyd {response.request.method} {response.request.url}: "
                           f"{response.status_code} {response.text[:500]}")
    return response
