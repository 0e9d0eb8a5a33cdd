"""`portlog config check`, and every command refusing a bad configuration before it starts."""

from __future__ import annotations

import subprocess
import sys
import time
import tomllib
import urllib.request

import pytest

from cli.main import main
from tests.support.server import REPO_ROOT, free_port

PORTLOG_VARIABLES = ("PORTLOG_CONFIG", "PORTLOG_HOST", "PORTLOG_PORT", "PORTLOG_WORKERS", "PORTLOG_LOG_LEVEL",
                     "PORTLOG_ACCESS_LOG", "PORTLOG_DATA_DIR", "PORTLOG_ADMIN_PASSWORD", "PORTLOG_DATABASE_URL",
                     "PORTLOG_READ_MODELS_URL", "PORTLOG_STORAGE_URL")
SCALE_OUT_CONFIG = """
admin_password = "Admin-Pass-1"

[server]
port = 6000

[database]
url = "postgresql://registry:db-secret@db.internal:5432/registry"

[storage]
url = "s3://AKIA:s3-secret@minio.internal:9000/blobs?secure=false"
redirect = true
"""


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch):
    for name in PORTLOG_VARIABLES:
        monkeypatch.delenv(name, raising=False)


def portlog(*args: str, env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cli", *args], cwd=REPO_ROOT, capture_output=True, text=True,
                          timeout=timeout, env={"PATH": "/usr/bin:/bin", **(env or {})})


def test_config_check_prints_the_effective_configuration_with_secrets_masked(tmp_path, capsys, monkeypatch):
    config = tmp_path / "portlog.toml"
    config.write_text(SCALE_OUT_CONFIG)
    monkeypatch.setenv("PORTLOG_WORKERS", "3")
    assert main(["config", "check", "--config", str(config), "--host", "0.0.0.0"]) == 0
    out = capsys.readouterr().out
    for secret in ("Admin-Pass-1", "db-secret", "s3-secret"):
        assert secret not in out
    printed = tomllib.loads(out)
    assert printed["server"] == {"host": "0.0.0.0", "port": 6000, "workers": 3, "log_level": "info",
                                 "access_log": True, "max_body_bytes": 1048576, "header_timeout_seconds": 30,
                                 "body_timeout_seconds": 60, "trusted_proxies": []}
    assert printed["admin_password"] == "***"
    assert printed["database"]["url"] == "postgresql://registry:***@db.internal:5432/registry"
    assert printed["database"]["read_models_url"] == printed["database"]["url"]
    assert printed["storage"]["type"] == "s3" and printed["storage"]["secret_key"] == "***"
    assert (printed["storage"]["endpoint"], printed["storage"]["redirect"]) == ("minio.internal:9000", True)
    assert str(config) in out  # the header names the file in use


def test_config_check_without_a_file_shows_the_embedded_defaults(tmp_path, capsys):
    assert main(["config", "check", "--data-dir", str(tmp_path / "data")]) == 0
    out = capsys.readouterr().out
    printed = tomllib.loads(out)
    assert printed["database"] == {"url": str(tmp_path / "data" / "events.db"),
                                   "read_models_url": str(tmp_path / "data" / "readmodels.db")}
    assert printed["storage"]["type"] == "filesystem"
    assert printed["storage"]["root"] == str(tmp_path / "data" / "storage")
    assert "admin_password: not set" in out
    assert not (tmp_path / "data").exists()  # checking creates nothing


def test_the_config_option_works_before_the_command_and_after_it(tmp_path, capsys):
    first, second = tmp_path / "first.toml", tmp_path / "second.toml"
    first.write_text("[server]\nport = 6001\n")
    second.write_text("[server]\nport = 6002\n")
    assert main(["--config", str(first), "config", "check"]) == 0
    assert tomllib.loads(capsys.readouterr().out)["server"]["port"] == 6001
    assert main(["--config", str(first), "config", "check", "--config", str(second)]) == 0
    assert tomllib.loads(capsys.readouterr().out)["server"]["port"] == 6002


def test_a_bad_configuration_is_reported_with_its_field_and_exit_code_2(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("PORTLOG_STORAGE_URL", "s3://a:b@minio:9000")
    assert main(["config", "check"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == ("portlog: configuration error: PORTLOG_STORAGE_URL: missing the bucket: "
                            "s3://ACCESS:SECRET@HOST:PORT/BUCKET\n")


def test_administration_commands_refuse_a_bad_configuration_before_touching_data(tmp_path, capsys):
    config = tmp_path / "portlog.toml"
    config.write_text("[server]\nworkers = 0\n")
    data = tmp_path / "data"
    assert main(["admin", "projects", "list", "--config", str(config), "--data-dir", str(data)]) == 2
    assert "configuration error: server.workers: must be at least 1, not 0" in capsys.readouterr().err
    assert not data.exists()


def test_config_check_in_a_process_exits_2_on_a_toml_error(tmp_path):
    config = tmp_path / "portlog.toml"
    config.write_text("[server]\nport = 5000\nhost = \n")
    result = portlog("config", "check", env={"PORTLOG_CONFIG": str(config)})
    assert result.returncode == 2
    assert result.stderr.startswith(f"portlog: configuration error: PORTLOG_CONFIG: {config} is not valid TOML")
    assert "line 3" in result.stderr and "Traceback" not in result.stderr


def test_serve_with_a_bad_configuration_exits_2_before_starting(tmp_path):
    config = tmp_path / "portlog.toml"
    config.write_text("[server]\nport = 5000\n\n[storage]\ntype = \"s3\"\nendpoint = \"minio:9000\"\n")
    data = tmp_path / "data"
    result = portlog("serve", "--config", str(config), "--data-dir", str(data), "--port", str(free_port()),
                     timeout=30)
    assert result.returncode == 2
    assert result.stderr == ("portlog: configuration error: storage.bucket: missing (required for s3 storage)\n")
    assert not data.exists()  # nothing was started: not even the data directory was created


def test_serve_listens_where_the_config_file_says(tmp_path):
    port = free_port()
    config = tmp_path / "portlog.toml"
    config.write_text(f'data_dir = "{tmp_path / "data"}"\nadmin_password = "Admin-Pass-1"\n\n'
                      f'[server]\nport = {port}\nlog_level = "warning"\naccess_log = false\n')
    process = subprocess.Popen([sys.executable, "-m", "cli", "serve"], cwd=REPO_ROOT,
                               env={"PATH": "/usr/bin:/bin", "PORTLOG_CONFIG": str(config)},
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        assert _answers(f"http://127.0.0.1:{port}/v2/", process) in (200, 401)
        assert (tmp_path / "data" / "events.db").exists()
    finally:
        process.terminate()
        _, stderr = process.communicate(timeout=20)
    assert b"Uvicorn running" not in stderr  # log_level = "warning" reached uvicorn


def _answers(url: str, process: subprocess.Popen, timeout: float = 20) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, "portlog serve exited"
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                return response.status
        except urllib.error.HTTPError as error:
            return error.code
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"nothing answered at {url}")


def test_config_check_prints_the_outbound_lists_as_toml_lists(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("PORTLOG_OUTBOUND_ALLOW", "127.0.0.0/8,::1/128")
    assert main(["config", "check", "--data-dir", str(tmp_path)]) == 0
    assert tomllib.loads(capsys.readouterr().out)["security"] == {"outbound_allow": ["127.0.0.0/8", "::1/128"],
                                                                  "outbound_deny": []}
