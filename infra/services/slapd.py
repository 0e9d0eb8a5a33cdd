"""OpenLDAP as a private directory for tests: Debian's `slapd` (2.5) on two free loopback ports
(ldap:// with StartTLS, and ldaps://), a certificate from a test CA made for the run, and a small
directory under dc=example,dc=org:

    ou=people        alice, bob, carol, erin (the one whose password tests change)
      ou=contractors dave (a nested OU: found by a subtree search only)
    ou=groups        groupOfNames devs (alice, dave), admins (alice), ops (bob)

Ready in well under a second. `restart()` comes back on the same ports with the same data (a
directory outage); `reset()` puts the entries back as they were at the start. `memberof=True`
loads the memberOf overlay, so user entries carry their groups as Active Directory's do.

    with slapd.running(tmp_dir) as directory:
        Server(directory.ldaps_url, use_ssl=True, tls=Tls(ca_certs_file=str(directory.ca_file)))
        directory.set_password("erin", "new-pass")
"""

from __future__ import annotations

import datetime
import ipaddress
import shutil
import subprocess
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import ldap3
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from ldap3.core.exceptions import LDAPException
from ldap3.utils.hashed import hashed

from infra.services import processes
from infra.services.processes import HOST

BINARY = Path("/usr/sbin/slapd")
SCHEMA_DIR = Path("/etc/ldap/schema")
MODULE_DIR = Path("/usr/lib/ldap")
# Below the kernel's ephemeral range (32768 and up), so that an outgoing connection cannot take
# a port while the directory is down for a restart; apart from the other servers' ranges
# (infra/services/processes.py).
PORT_RANGE = range(6_000, 8_000)
START_ATTEMPTS = 3

BASE_DN = "dc=example,dc=org"
ADMIN_DN = f"cn=admin,{BASE_DN}"
ADMIN_PASSWORD = "directory-admin-secret"
PEOPLE_DN = f"ou=people,{BASE_DN}"
CONTRACTORS_DN = f"ou=contractors,{PEOPLE_DN}"
GROUPS_DN = f"ou=groups,{BASE_DN}"
MANAGE_DSA_IT = ("2.16.840.1.113730.3.4.2", True, None)


@dataclass(frozen=True)
class Person:
    uid: str
    ou_dn: str
    password: str
    name: str

    @property
    def dn(self) -> str:
        return f"uid={self.uid},{self.ou_dn}"

    @property
    def email(self) -> str:
        return f"{self.uid}@example.org"


PEOPLE = {person.uid: person for person in (
    Person("alice", PEOPLE_DN, "alice-pass-1", "Alice Liddell"),
    Person("bob", PEOPLE_DN, "bob-pass-1", "Bob Builder"),
    Person("carol", PEOPLE_DN, "carol-pass-1", "Carol Danvers"),
    Person("erin", PEOPLE_DN, "erin-pass-1", "Erin Brockovich"),
    Person("dave", CONTRACTORS_DN, "dave-pass-1", "Dave Bowman"),
)}
GROUPS = {"devs": ("alice", "dave"), "admins": ("alice",), "ops": ("bob",)}

CONFIG = """\
include {schema}/core.schema
include {schema}/cosine.schema
include {schema}/inetorgperson.schema
modulepath {modules}
moduleload back_mdb
{memberof_module}
TLSCACertificateFile {ca}
TLSCertificateFile {cert}
TLSCertificateKeyFile {key}
database mdb
maxsize 16777216
suffix "{base}"
rootdn "{admin_dn}"
rootpw {admin_password}
directory {db}
{memberof_overlay}
access to attrs=userPassword by self write by anonymous auth by * none
access to * by * read
"""


def group_dn(cn: str) -> str:
    return f"cn={cn},{GROUPS_DN}"


@dataclass
class SlapdServer(processes.ServerProcess):
    program = "slapd"
    directory: Path
    port: int
    ldaps_port: int
    memberof: bool = False
    process: subprocess.Popen | None = None
    admin_dn: str = ADMIN_DN
    admin_password: str = ADMIN_PASSWORD
    base_dn: str = BASE_DN
    people: dict[str, Person] = field(default_factory=lambda: dict(PEOPLE))

    @property
    def url(self) -> str:
        return f"ldap://{HOST}:{self.port}"

    @property
    def ldaps_url(self) -> str:
        return f"ldaps://{HOST}:{self.ldaps_port}"

    @property
    def ca_file(self) -> Path:
        return self.directory / "ca.crt"

    @property
    def untrusted_ca_file(self) -> Path:
        """A CA that did not sign the server's certificate."""
        return self.directory / "other-ca.crt"

    @property
    def log_path(self) -> Path:
        return self.directory / "slapd.log"

    def user_dn(self, uid: str) -> str:
        return self.people[uid].dn

    def password(self, uid: str) -> str:
        return self.people[uid].password

    def launch(self) -> subprocess.Popen:
        return _launch(self)

    def wait_until_ready(self, timeout: float) -> None:
        _wait_until_ready(self, timeout)

    # --- changing the directory, as its administrator ---

    def admin_connection(self) -> ldap3.Connection:
        server = ldap3.Server(self.url, connect_timeout=5)
        return ldap3.Connection(server, self.admin_dn, self.admin_password, auto_bind=True, receive_timeout=10)

    def reset(self) -> None:
        """Every entry as it was at the start (passwords and group members too)."""
        self.people = dict(PEOPLE)
        with self.admin_connection() as connection:
            # ManageDsaIT: referral entries a test added are entries to delete, not referrals to follow.
            connection.search(self.base_dn, "(objectClass=*)", ldap3.SUBTREE, attributes=[], controls=[MANAGE_DSA_IT])
            # Children before their parents.
            for dn in sorted((entry.entry_dn for entry in connection.entries), key=lambda dn: -dn.count(",")):
                _checked(connection, connection.delete(dn, controls=[MANAGE_DSA_IT]), f"delete {dn}")
            for dn, object_class, attributes in _entries(self.people.values()):
                _checked(connection, connection.add(dn, object_class, attributes), f"add {dn}")

    def set_password(self, uid: str, password: str) -> None:
        person = self.people[uid]
        with self.admin_connection() as connection:
            changed = connection.modify(person.dn, {"userPassword": [(ldap3.MODIFY_REPLACE, [_hashed(password)])]})
            _checked(connection, changed, f"set the password of {uid}")
        self.people[uid] = Person(person.uid, person.ou_dn, password, person.name)

    def remove_member(self, group: str, uid: str) -> None:
        self._change_member(group, uid, ldap3.MODIFY_DELETE)

    def add_member(self, group: str, uid: str) -> None:
        self._change_member(group, uid, ldap3.MODIFY_ADD)

    def _change_member(self, group: str, uid: str, operation: str) -> None:
        with self.admin_connection() as connection:
            changed = connection.modify(group_dn(group), {"member": [(operation, [self.user_dn(uid)])]})
            _checked(connection, changed, f"{operation} {uid} in {group}")


def _checked(connection: ldap3.Connection, succeeded: bool, what: str) -> None:
    if not succeeded:
        raise RuntimeError(f"slapd refused to {what}: {connection.result}")


def available() -> bool:
    return BINARY.exists()


def start(directory: Path, *, memberof: bool = False, timeout: float = 20.0) -> SlapdServer:
    """Starts a directory in `directory` on free ports and loads the entries; if slapd exits
    first (another process took a port between our probe and its bind), other ports are tried."""
    if not available():
        raise FileNotFoundError("slapd is missing: apt-get install slapd ldap-utils (scripts/install-system-packages)")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    _write_certificates(directory)
    for _ in range(START_ATTEMPTS):
        port, ldaps_port = processes.free_port(PORT_RANGE), processes.free_port(PORT_RANGE)
        server = SlapdServer(directory, port, ldaps_port, memberof)
        _write_config(server)
        try:
            server.start(timeout)
        except processes.ExitedEarly:
            continue
        server.reset()
        return server
    raise RuntimeError(f"slapd exited at start {START_ATTEMPTS} times; see {directory / 'slapd.log'}")


@contextmanager
def running(directory: Path, *, memberof: bool = False) -> Iterator[SlapdServer]:
    server = start(directory, memberof=memberof)
    try:
        yield server
    finally:
        server.stop()


def _write_config(server: SlapdServer) -> None:
    db = server.directory / "db"
    if db.exists():
        shutil.rmtree(db)
    db.mkdir()
    d = server.directory
    (d / "slapd.conf").write_text(CONFIG.format(
        schema=SCHEMA_DIR, modules=MODULE_DIR, ca=d / "ca.crt", cert=d / "server.crt", key=d / "server.key",
        base=server.base_dn, admin_dn=server.admin_dn, admin_password=_hashed(server.admin_password), db=db,
        memberof_module="moduleload memberof" if server.memberof else "",
        memberof_overlay="overlay memberof" if server.memberof else ""))


def _launch(server: SlapdServer) -> subprocess.Popen:
    # -d 0: in the foreground, without debug output (its stderr still takes the errors).
    command = [str(BINARY), "-d", "0", "-f", str(server.directory / "slapd.conf"),
               "-h", f"{server.url}/ {server.ldaps_url}/"]
    with open(server.log_path, "ab") as log:
        return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)


def _wait_until_ready(server: SlapdServer, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise processes.ExitedEarly(f"exited at start; see {server.log_path}")
        try:
            with server.admin_connection():
                return
        except LDAPException:
            time.sleep(0.02)
    raise TimeoutError(f"slapd not ready after {timeout} s; see {server.log_path}")


def _hashed(password: str) -> str:
    return hashed(ldap3.HASHED_SALTED_SHA, password)


def _entries(people) -> Iterator[tuple[str, list[str], dict]]:
    yield BASE_DN, ["dcObject", "organization"], {"dc": "example", "o": "Example"}
    for ou_dn in (PEOPLE_DN, CONTRACTORS_DN, GROUPS_DN):
        yield ou_dn, ["organizationalUnit"], {"ou": ou_dn.split(",")[0].split("=")[1]}
    for person in sorted(people, key=lambda p: p.dn.count(",")):
        given, surname = person.name.split(" ", 1)
        yield person.dn, ["inetOrgPerson"], {
            "uid": person.uid, "cn": person.name, "givenName": given, "sn": surname,
            "displayName": person.name, "mail": person.email, "userPassword": _hashed(person.password)}
    for cn, members in GROUPS.items():
        yield group_dn(cn), ["groupOfNames"], {"cn": cn, "member": [PEOPLE[uid].dn for uid in members]}


# --- a test CA and the server's certificate ---

def _write_certificates(directory: Path) -> None:
    ca_key, ca_cert = _certificate_authority("Portlog test CA")
    _, other_cert = _certificate_authority("Portlog other test CA")
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, HOST)]))
            .issuer_name(ca_cert.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(HOST)),
                                                        x509.DNSName("localhost")]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .sign(ca_key, hashes.SHA256()))
    (directory / "ca.crt").write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    (directory / "other-ca.crt").write_bytes(other_cert.public_bytes(serialization.Encoding.PEM))
    (directory / "server.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file = directory / "server.key"
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    key_file.chmod(0o600)


def _certificate_authority(name: str) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                         content_commitment=False, key_encipherment=False, data_encipherment=False,
                                         key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
            .sign(key, hashes.SHA256()))
    return key, cert

