"""A consistent online backup of a live `portlog serve`, restored into a new registry, in both
deployments: embedded (SQLite, a directory) and scale-out (PostgreSQL and SeaweedFS S3, the
backup in another bucket).

While `portlog backup create` runs, real skopeo pushes and repository deletions go on and garbage
collection runs one collection after another. The backup is restored into a new data directory
(or a new database and bucket) and served: every tag that existed at the backup's position P
pulls with skopeo with the digest it had at P (its bytes checked against the pushed layout),
every stored blob hashes to its name, and nothing recorded after P is there (but the backup's
own completion, which the restore records).
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from adapters.log_store import log_store_for
from config.bootstrap import blob_store_for, empty_event_store
from config.settings import Settings
from tests.conftest import scale_out_environment
from tests.support.images import ImageInfo, build_image_layout
from tests.support.server import REPO_ROOT, start_server

pytestmark = pytest.mark.e2e

BEFORE, DURING = 6, 10  # images pushed before the backup starts, and while it runs
LAYER_BYTES = 2 * 1024 * 1024  # incompressible, so that copying takes a while


@dataclass
class Deployment:
    kind: str
    server: object
    env: dict[str, str]  # where its data is (PORTLOG_DATA_DIR, or the database and bucket)
    root: Path
    cleanup: list = field(default_factory=list)
    postgres: object = None  # scale-out: the PostgreSQL server and the S3 server
    s3: object = None


@pytest.fixture(scope="module", params=["embedded", "scale-out"])
def deployment(request, tmp_path_factory):
    root = tmp_path_factory.mktemp(f"backup-{request.param}")
    scale_out = request.param == "scale-out"
    env, cleanup = scale_out_environment(request) if scale_out else ({}, [])
    server = start_server(root / "data", root / "serve.log", extra_env=env, projects=("team",))
    deployment = Deployment(request.param, server, {**env, "PORTLOG_DATA_DIR": str(root / "data")}, root, cleanup)
    if scale_out:
        deployment.postgres, deployment.s3 = request.getfixturevalue("postgres_server"), request.getfixturevalue(
            "seaweedfs")
    yield deployment
    server.stop()
    for step in deployment.cleanup:
        step()


def skopeo(*args: str) -> str:
    result = subprocess.run(["skopeo", *args], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f"skopeo {' '.join(args)}\n{result.stderr}"
    return result.stdout


def portlog(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cli", *args], cwd=REPO_ROOT, capture_output=True, text=True,
                          timeout=600, env={**os.environ, **env})


def push(server, image: ImageInfo, repository: str) -> None:
    skopeo("copy", "--dest-tls-verify=false", "--dest-creds", server.admin_creds,
           f"oci:{image.layout}:{image.tag}", f"docker://{server.host}/{repository}:{image.tag}")


def image(root: Path, i: int) -> ImageInfo:
    return build_image_layout(root / f"image{i}", "1.0", text=f"image {i}",
                              extra_files={"data": secrets.token_bytes(LAYER_BYTES)})


def collect_until(client, stop: threading.Event, runs: list) -> None:
    while not stop.is_set():
        response = client.post("/api/v1/gc/runs", json={"grace_period_seconds": 0})
        if response.status_code == 202:
            run = response.json()
            while run["status"] == "running":
                time.sleep(0.1)
                run = client.get(f"/api/v1/gc/runs/{run['id']}").json()
            runs.append(run)
        time.sleep(0.2)


def state_at(client, position: int | None) -> dict[str, dict[str, str]]:
    """repository → tag → digest of the project `team`, at `position` (None: now)."""
    as_of = {} if position is None else {"as_of": position}
    names = client.get("/api/v1/repositories", params={"project": "team", **as_of}).json()
    return {r["name"]: {t["tag"]: t["digest"] for t in client.get(f"/api/v1/repositories/{r['name']}/tags",
                                                                   params=as_of).json()}
            for r in names}


def test_backup_under_pushes_deletes_and_collections_restores_the_registry_at_p(deployment, tmp_path):
    server = deployment.server
    images = [image(tmp_path / "layouts", i) for i in range(BEFORE + DURING)]
    for i in range(BEFORE):
        push(server, images[i], f"team/app{i}")
    destination = (str(tmp_path / "backup") if deployment.kind == "embedded" else _bucket_url(deployment, "backup"))

    with server.client() as client:
        assert client.delete("/api/v1/repositories/team/app0").status_code == 204  # garbage before the backup
        stop, runs = threading.Event(), []
        collector = threading.Thread(target=collect_until, args=(client, stop, runs))
        collector.start()

        creating = subprocess.Popen([sys.executable, "-m", "cli", "backup", "create", destination], cwd=REPO_ROOT,
                                    env={**os.environ, **deployment.env}, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, text=True)
        pushed_during = 0
        for i in range(BEFORE, BEFORE + DURING - 1):  # pushes, and deletions of what was pushed before
            if creating.poll() is not None:
                break
            push(server, images[i], f"team/app{i}")
            pushed_during += 1
            if i - BEFORE + 1 < BEFORE:
                client.delete(f"/api/v1/repositories/team/app{i - BEFORE + 1}")
        out, err = creating.communicate(timeout=600)
        push(server, images[-1], "team/after")  # certainly after P
        stop.set()
        collector.join(timeout=120)
        assert creating.returncode == 0, err
        assert pushed_during >= 2
        backup = json.loads(out)
        position = backup["position"]
        at_p = state_at(client, position)
        now = state_at(client, None)
    assert runs and all(run["status"] == "succeeded" for run in runs)
    assert at_p != now  # writes went on after P
    assert portlog({}, "backup", "verify", destination).returncode == 0

    restored_env = _restore(deployment, destination, tmp_path)
    # nothing after P but the backup's own completion (the first start wrote nothing)
    assert _log_head(restored_env) == position + 1
    _check_blobs(restored_env)
    restored = start_server(Path(restored_env["PORTLOG_DATA_DIR"]), tmp_path / "restored.log",
                            extra_env={k: v for k, v in restored_env.items() if k != "PORTLOG_DATA_DIR"})
    try:
        with restored.client() as client:
            assert state_at(client, None) == at_p
            assert client.get(f"/api/v1/backups/{backup['backup']}").json()["status"] == "succeeded"
        by_digest = {i.manifest_digest: i for i in images}
        for repository, tags in at_p.items():
            for tag, digest in tags.items():
                reference = f"docker://{restored.host}/{repository}:{tag}"
                inspected = json.loads(skopeo("inspect", "--tls-verify=false", "--creds", restored.admin_creds,
                                              reference))
                assert inspected["Digest"] == digest, (repository, tag)
                pulled = tmp_path / f"pulled-{repository.replace('/', '_')}"
                skopeo("copy", "--src-tls-verify=false", "--src-creds", restored.admin_creds, reference,
                       f"oci:{pulled}:{tag}")
                pushed = by_digest[digest]
                for blob in (pushed.config_digest, *pushed.layer_digests, pushed.manifest_digest):
                    name = blob.removeprefix("sha256:")
                    assert (pulled / "blobs/sha256" / name).read_bytes() == \
                        (pushed.layout / "blobs/sha256" / name).read_bytes()
    finally:
        restored.stop()


def _bucket_url(deployment: Deployment, name: str, prefix: str = "/nightly") -> str:
    s3 = deployment.s3
    return (f"s3://{s3.access_key}:{s3.secret_key}@{s3.endpoint}/{name}-{secrets.token_hex(4)}{prefix}"
            f"?secure=false&region={s3.region}")


def _restore(deployment: Deployment, destination: str, tmp_path: Path) -> dict[str, str]:
    """Restores into a new data directory (embedded) or a new database and bucket (scale-out);
    returns the new registry's environment."""
    data_dir = tmp_path / "restored-data"
    env = {"PORTLOG_DATA_DIR": str(data_dir)}
    arguments = ["--data-dir", str(data_dir)]
    if deployment.kind == "scale-out":
        new_env, cleanup = _new_scale_out(deployment)
        deployment.cleanup += cleanup
        env.update(new_env)
        arguments += ["--database-url", new_env["PORTLOG_DATABASE_URL"],
                      "--storage-url", new_env["PORTLOG_STORAGE_URL"]]
    restored = portlog({}, "backup", "restore", destination, *arguments)
    assert restored.returncode == 0, restored.stderr
    again = portlog({}, "backup", "restore", destination, *arguments)
    assert again.returncode == 1 and "refusing to restore" in again.stderr  # never over a registry
    return env


def _new_scale_out(deployment: Deployment) -> tuple[dict[str, str], list]:
    dsn = deployment.postgres.create_database(durable=False)
    env = {"PORTLOG_DATABASE_URL": dsn, "PORTLOG_STORAGE_URL": _bucket_url(deployment, "restored", prefix="")}
    return env, [lambda: deployment.postgres.drop_database(dsn)]


def _settings(env: dict[str, str]) -> Settings:
    return Settings.from_env({k: v for k, v in env.items() if k != "PORTLOG_DATA_DIR"},
                             data_dir=env["PORTLOG_DATA_DIR"])


def _log_head(env: dict[str, str]) -> int:
    store = empty_event_store(_settings(env))
    try:
        return log_store_for(store.recorder).head()
    finally:
        store.close()


def _check_blobs(env: dict[str, str]) -> None:
    blobs = blob_store_for(_settings(env))
    stored = list(blobs.stored_blobs())
    assert stored
    for blob in stored:
        hasher = hashlib.sha256()
        with blobs.open(blob.digest) as stream:
            while chunk := stream.read(1 << 20):
                hasher.update(chunk)
        assert f"sha256:{hasher.hexdigest()}" == blob.digest
