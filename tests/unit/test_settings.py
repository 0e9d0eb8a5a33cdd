"""Settings: the layers (flags > PORTLOG_* > config file > defaults), the backends they select,
and the errors that name the bad field."""

from __future__ import annotations

import os
import sys
import types
from pathlib import Path

import pytest

from adapters.storage.filesystem import FilesystemBlobStore
from config.bootstrap import blob_store_for
from config.locations import event_store_pool
from config.settings import CacheConfig, ConfigError, MetricsConfig, Settings, default_workers
from projections.database import read_model_pools

SCALE_OUT_ENV = {
    "PORTLOG_DATABASE_URL": "postgresql://registry:p%40ss%2Fw@db.internal:5433/registry",
    "PORTLOG_STORAGE_URL": "s3://AKIA:se%2Bcr%2Fet@minio.internal:9000/portlog-blobs?secure=false&region=eu-west-1",
}


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_the_defaults_are_the_embedded_layout_under_the_data_directory():
    settings = Settings.from_env({})
    assert (settings.host, settings.port, settings.log_level) == ("127.0.0.1", 5000, "info")
    assert settings.workers == default_workers()
    assert settings.event_store_env["PERSISTENCE_MODULE"] == "eventsourcing.sqlite"
    assert settings.event_store_env["SQLITE_DBNAME"] == str(Path("data") / "events.db")
    assert settings.read_model_url == f"sqlite:///{Path('data') / 'readmodels.db'}"
    assert settings.blob_root == Path("data") / "storage"
    assert settings.storage.kind == "filesystem"


def test_a_directly_built_settings_derives_every_path_from_its_data_directory(tmp_path):
    settings = Settings(data_dir=tmp_path)
    assert settings.event_store_env["SQLITE_DBNAME"] == str(tmp_path / "events.db")
    assert settings.read_model_url == f"sqlite:///{tmp_path / 'readmodels.db'}"
    assert settings.blob_root == tmp_path / "storage"


def test_the_existing_variables_keep_working():
    settings = Settings.from_env({"PORTLOG_HOST": "0.0.0.0", "PORTLOG_PORT": "5005", "PORTLOG_DATA_DIR": "/srv/p",
                                  "PORTLOG_ADMIN_PASSWORD": "Admin-Pass-1", "PORTLOG_WORKERS": "3"})
    assert (settings.host, settings.port, settings.data_dir) == ("0.0.0.0", 5005, Path("/srv/p"))
    assert (settings.admin_password, settings.workers) == ("Admin-Pass-1", 3)
    assert settings.event_store_env["SQLITE_DBNAME"] == "/srv/p/events.db"


def test_an_empty_variable_counts_as_not_set(tmp_path):
    config = write(tmp_path / "portlog.toml", 'admin_password = "From-File-1"\n[server]\nport = 6000\n')
    settings = Settings.from_env({"PORTLOG_ADMIN_PASSWORD": "", "PORTLOG_PORT": ""}, config_file=config)
    assert (settings.admin_password, settings.port) == ("From-File-1", 6000)
    assert Settings.from_env({"PORTLOG_ADMIN_PASSWORD": ""}).admin_password is None


@pytest.mark.parametrize("file, env, flag, expected", [
    (True, True, True, 8000),
    (True, True, False, 7000),
    (True, False, False, 6000),
    (False, False, False, 5000),
    (False, True, True, 8000),
])
def test_flags_win_over_variables_which_win_over_the_file(tmp_path, file, env, flag, expected):
    config = write(tmp_path / "portlog.toml", "[server]\nport = 6000\n") if file else None
    environ = {"PORTLOG_PORT": "7000"} if env else {}
    settings = Settings.from_env(environ, config_file=config, port=8000 if flag else None)
    assert settings.port == expected


def test_the_config_file_comes_from_the_flag_before_portlog_config(tmp_path):
    by_env = write(tmp_path / "env.toml", "[server]\nworkers = 2\n")
    by_flag = write(tmp_path / "flag.toml", "[server]\nworkers = 4\n")
    assert Settings.from_env({"PORTLOG_CONFIG": str(by_env)}).workers == 2
    assert Settings.from_env({"PORTLOG_CONFIG": str(by_env)}, config_file=by_flag).workers == 4
    assert Settings.from_env({"PORTLOG_CONFIG": str(by_env)}).config_file == by_env.absolute()


def test_a_whole_config_file(tmp_path):
    config = write(tmp_path / "portlog.toml", """
data_dir = "/srv/portlog"
admin_password = "Admin-Pass-1"

[server]
host = "0.0.0.0"
port = 5005
workers = 2
log_level = "DEBUG"
access_log = false

[database]
url = "postgres://registry:registry@db:5432/events"
read_models_url = "postgresql+psycopg://reader:r@replica:5432/views"

[storage]
type = "s3"
endpoint = "minio:9000"
bucket = "blobs"
access_key = "access"
secret_key = "secret"
region = "us-east-1"
secure = false
redirect = true
upload_max_age_seconds = 3600
""")
    settings = Settings.from_env({}, config_file=config)
    assert (settings.host, settings.port, settings.workers) == ("0.0.0.0", 5005, 2)
    assert (settings.log_level, settings.access_log, settings.data_dir) == ("debug", False, Path("/srv/portlog"))
    assert settings.event_store_env["POSTGRES_HOST"] == "db"
    assert settings.event_store_env["POSTGRES_DBNAME"] == "events"
    assert settings.read_model_url == "postgresql+psycopg://reader:r@replica:5432/views"
    storage = settings.storage
    assert (storage.kind, storage.endpoint, storage.bucket) == ("s3", "minio:9000", "blobs")
    assert (storage.access_key, storage.secret_key, storage.region) == ("access", "secret", "us-east-1")
    assert (storage.secure, storage.redirect, storage.upload_max_age_seconds) == (False, True, 3600)


@pytest.mark.parametrize("scheme", ["postgresql", "postgres", "postgresql+psycopg"])
def test_a_postgres_dsn_becomes_the_event_store_environment_and_the_read_model_url(scheme):
    settings = Settings.from_env({"PORTLOG_DATABASE_URL": f"{scheme}://registry:p%40ss%2Fw@db.internal:5433/"
                                                          f"registry?connect_timeout=7&pool_size=4"})
    env = settings.event_store_env
    assert env["PERSISTENCE_MODULE"] == "eventsourcing.postgres"
    assert (env["POSTGRES_HOST"], env["POSTGRES_PORT"], env["POSTGRES_DBNAME"]) == ("db.internal", "5433", "registry")
    assert (env["POSTGRES_USER"], env["POSTGRES_PASSWORD"]) == ("registry", "p@ss/w")
    assert (env["POSTGRES_CONNECT_TIMEOUT"], env["POSTGRES_POOL_SIZE"]) == ("7", "4")
    assert env["POSTGRES_ENABLE_DB_FUNCTIONS"] == "y"
    assert (env["AGGREGATE_CACHE_MAXSIZE"], env["AGGREGATE_CACHE_FASTFORWARD"]) == (str(settings.cache.aggregates), "y")
    # the read models default to the same database; pool_size is the event store's, not libpq's
    assert settings.read_model_url == "postgresql+psycopg://registry:p%40ss%2Fw@db.internal:5433/registry?connect_timeout=7"


def test_the_default_is_a_worker_for_each_cpu_this_process_may_run_on():
    assert default_workers() == len(os.sched_getaffinity(0)) >= 1
    assert Settings.from_env({}).workers == default_workers()
    assert Settings.from_env({"PORTLOG_WORKERS": "1"}).workers == 1
    assert Settings(data_dir=Path("d")).workers == 1  # built in code: serves in the process that built it


def test_each_worker_keeps_its_share_of_the_default_caches_down_to_an_eighth():
    one = Settings.from_env({"PORTLOG_WORKERS": "1"}).cache
    assert one == CacheConfig()
    assert Settings.from_env({"PORTLOG_WORKERS": "4"}).cache == CacheConfig(
        aggregates=250, manifest_bytes=8 * 1024 * 1024, upload_hashers=2500)
    assert Settings.from_env({"PORTLOG_WORKERS": "64"}).cache == CacheConfig(
        aggregates=125, manifest_bytes=4 * 1024 * 1024, upload_hashers=1250)
    # a size the operator set is each process's, whatever the workers
    given = Settings.from_env({"PORTLOG_WORKERS": "4", "PORTLOG_CACHE_AGGREGATES": "900"}).cache
    assert (given.aggregates, given.upload_hashers) == (900, 2500)


def test_a_worker_process_gets_its_share_and_does_not_divide_it_again():
    parent = Settings.from_env({"PORTLOG_WORKERS": "4"})
    worker = Settings.from_env(parent.as_environment())
    assert worker.cache == parent.cache and worker.cache.aggregates == 250 and worker.workers == 4


# The PostgreSQL connections of a node, all its workers' pools at their largest: the one process
# of before (35) up to 8 workers, then each worker's floor (two readers, two writers, an event
# store connection and one more under load). PostgreSQL's default max_connections is 100.
NODE_CONNECTIONS, WORKER_FLOOR = 48, 6


@pytest.mark.parametrize("workers", [1, 2, 8, 64])
def test_a_node_opens_a_bounded_number_of_postgres_connections(workers):
    readers, writers = read_model_pools(workers)
    kept, more = event_store_pool(workers)
    env = Settings.from_env({**SCALE_OUT_ENV, "PORTLOG_WORKERS": str(workers)}).event_store_env
    assert (env["POSTGRES_POOL_SIZE"], env["POSTGRES_MAX_OVERFLOW"]) == (str(kept), str(more))
    assert readers >= 2 and writers >= 2 and kept >= 1 and more >= 1
    assert workers * (readers + writers + kept + more) <= max(NODE_CONNECTIONS, WORKER_FLOOR * workers)
    if workers == 1:
        assert (readers, writers, kept, more) == (16, 4, 5, 10)  # what one process always had


def test_a_pool_size_in_the_dsn_is_each_process_s():
    url = SCALE_OUT_ENV["PORTLOG_DATABASE_URL"] + "?pool_size=7"
    env = Settings.from_env({"PORTLOG_DATABASE_URL": url, "PORTLOG_WORKERS": "8"}).event_store_env
    assert (env["POSTGRES_POOL_SIZE"], env["POSTGRES_MAX_OVERFLOW"]) == ("7", "1")


def test_a_postgres_dsn_without_a_port_uses_5432():
    env = Settings.from_env({"PORTLOG_DATABASE_URL": "postgresql://u@h/db"}).event_store_env
    assert (env["POSTGRES_PORT"], env["POSTGRES_PASSWORD"]) == ("5432", "")


@pytest.mark.parametrize("url, events, read_models", [
    ("/var/lib/portlog/log.sqlite", "/var/lib/portlog/log.sqlite", "/var/lib/portlog/readmodels.db"),
    ("sqlite:////var/lib/portlog/log.sqlite", "/var/lib/portlog/log.sqlite", "/var/lib/portlog/readmodels.db"),
    ("sqlite:///relative/events.db", "relative/events.db", "relative/readmodels.db"),
])
def test_a_sqlite_event_store_keeps_its_read_models_next_to_it(url, events, read_models):
    settings = Settings.from_env({"PORTLOG_DATABASE_URL": url, "PORTLOG_DATA_DIR": "/elsewhere"})
    assert settings.event_store_env["SQLITE_DBNAME"] == events
    assert settings.read_model_url == f"sqlite:///{read_models}"


def test_the_read_models_url_can_be_set_on_its_own():
    settings = Settings.from_env({**SCALE_OUT_ENV, "PORTLOG_READ_MODELS_URL": "/tmp/views.db"})
    assert settings.event_store_env["PERSISTENCE_MODULE"] == "eventsourcing.postgres"
    assert settings.read_model_url == "sqlite:////tmp/views.db"


def test_two_variables_select_the_scale_out_backends():
    settings = Settings.from_env(SCALE_OUT_ENV)
    assert settings.event_store_env["POSTGRES_PASSWORD"] == "p@ss/w"
    storage = settings.storage
    assert (storage.kind, storage.endpoint, storage.bucket) == ("s3", "minio.internal:9000", "portlog-blobs")
    assert (storage.access_key, storage.secret_key) == ("AKIA", "se+cr/et")
    assert (storage.secure, storage.region, storage.redirect) == (False, "eu-west-1", False)


def test_an_s3_url_is_secure_unless_it_says_otherwise():
    storage = Settings.from_env({"PORTLOG_STORAGE_URL": "s3://a:b@s3.example.com/bucket"}).storage
    assert (storage.endpoint, storage.secure, storage.region) == ("s3.example.com", True, None)


def test_a_file_storage_url_sets_the_blob_root():
    settings = Settings.from_env({"PORTLOG_STORAGE_URL": "file:///mnt/blobs"})
    assert settings.storage.kind == "filesystem" and settings.blob_root == Path("/mnt/blobs")


def test_a_storage_url_in_the_environment_replaces_the_files_location_but_keeps_its_behaviour(tmp_path):
    config = write(tmp_path / "portlog.toml", '[storage]\ntype = "s3"\nendpoint = "old:9000"\nbucket = "old"\n'
                                              'access_key = "a"\nsecret_key = "s"\nregion = "old-region"\n'
                                              'redirect = true\nupload_max_age_seconds = 60\n')
    storage = Settings.from_env({"PORTLOG_STORAGE_URL": "s3://k:v@new:9000/new"}, config_file=config).storage
    assert (storage.endpoint, storage.bucket, storage.access_key, storage.region) == ("new:9000", "new", "k", None)
    assert (storage.redirect, storage.upload_max_age_seconds) == (True, 60)


def field_and_problem(environ=None, config_text=None, tmp_path=None, **flags) -> tuple[str, str]:
    config = write(tmp_path / "portlog.toml", config_text) if config_text is not None else None
    with pytest.raises(ConfigError) as raised:
        Settings.from_env(environ or {}, config_file=config, **flags)
    return raised.value.field, raised.value.problem


@pytest.mark.parametrize("environ, field, problem", [
    ({"PORTLOG_PORT": "http"}, "PORTLOG_PORT", "must be an integer, not 'http'"),
    ({"PORTLOG_PORT": "65536"}, "PORTLOG_PORT", "must be from 1 to 65535, not 65536"),
    ({"PORTLOG_PORT": "0"}, "PORTLOG_PORT", "must be from 1 to 65535, not 0"),
    ({"PORTLOG_WORKERS": "0"}, "PORTLOG_WORKERS", "must be at least 1, not 0"),
    ({"PORTLOG_LOG_LEVEL": "verbose"}, "PORTLOG_LOG_LEVEL", "must be one of"),
    ({"PORTLOG_ACCESS_LOG": "maybe"}, "PORTLOG_ACCESS_LOG", "must be true or false"),
    ({"PORTLOG_STORAGE_URL": "gs://bucket"}, "PORTLOG_STORAGE_URL", "unknown scheme 'gs'"),
    ({"PORTLOG_STORAGE_URL": "/mnt/blobs"}, "PORTLOG_STORAGE_URL", "not a URL"),
    ({"PORTLOG_STORAGE_URL": "s3://a:b@minio:9000"}, "PORTLOG_STORAGE_URL", "missing the bucket"),
    ({"PORTLOG_STORAGE_URL": "s3://a:b@minio:9000/Bad_Bucket"}, "PORTLOG_STORAGE_URL", "is not a bucket name"),
    ({"PORTLOG_STORAGE_URL": "s3://minio:9000/b"}, "PORTLOG_STORAGE_URL", "missing the access key and secret"),
    ({"PORTLOG_STORAGE_URL": "s3://a:b@minio:x/b"}, "PORTLOG_STORAGE_URL (port)", "must be an integer"),
    ({"PORTLOG_STORAGE_URL": "s3://a:b@m/blobs?secure=perhaps"}, "PORTLOG_STORAGE_URL (secure)", "true or false"),
    ({"PORTLOG_STORAGE_URL": "s3://a:b@m/blobs?acl=public"}, "PORTLOG_STORAGE_URL", "unsupported query parameter acl"),
    ({"PORTLOG_STORAGE_URL": "file://server/share"}, "PORTLOG_STORAGE_URL", "file:///ABSOLUTE/PATH"),
    ({"PORTLOG_DATABASE_URL": "mysql://db/registry"}, "PORTLOG_DATABASE_URL", "unknown scheme 'mysql'"),
    ({"PORTLOG_DATABASE_URL": "postgresql://db:5432"}, "PORTLOG_DATABASE_URL", "needs one database name"),
    ({"PORTLOG_DATABASE_URL": "postgresql://db:99999/r"}, "PORTLOG_DATABASE_URL", "port must be a number"),
    ({"PORTLOG_DATABASE_URL": "postgresql://db/r?sslmode=require"}, "PORTLOG_DATABASE_URL",
     "unsupported query parameter sslmode"),
    ({"PORTLOG_DATABASE_URL": "postgresql://db/r?pool_size=0"}, "PORTLOG_DATABASE_URL (pool_size)", "at least 1"),
    ({"PORTLOG_DATABASE_URL": "sqlite://"}, "PORTLOG_DATABASE_URL", "sqlite:///PATH"),
    ({"PORTLOG_READ_MODELS_URL": "redis://cache"}, "PORTLOG_READ_MODELS_URL", "unknown scheme 'redis'"),
    ({"PORTLOG_METRICS_PORT": "metrics"}, "PORTLOG_METRICS_PORT", "must be an integer"),
    ({"PORTLOG_METRICS_PORT": "70000"}, "PORTLOG_METRICS_PORT", "must be from 0 to 65535"),
    ({"PORTLOG_METRICS_ENABLED": "sometimes"}, "PORTLOG_METRICS_ENABLED", "must be true or false"),
])
def test_a_bad_variable_is_named_with_its_problem(environ, field, problem):
    got_field, got_problem = field_and_problem(environ)
    assert got_field == field and problem in got_problem


@pytest.mark.parametrize("config_text, field, problem", [
    ("[server]\nport = \"http\"\n", "server.port", "must be an integer, not 'http'"),
    ("[server]\nport = 70000\n", "server.port", "must be from 1 to 65535"),
    ("[server]\nport = true\n", "server.port", "must be an integer, not bool True"),
    ("[server]\nworkers = 0\n", "server.workers", "must be at least 1"),
    ("[server]\nlog_level = \"loud\"\n", "server.log_level", "must be one of critical, error, warning, info"),
    ("[server]\nhots = \"x\"\n", "server.hots", "unknown key in"),
    ("[databse]\nurl = \"x\"\n", "databse", "unknown key in"),
    ("server = 5\n", "server", "must be a table"),
    ("data_dir = 5\n", "data_dir", "must be a string"),
    ("[storage]\nurl = \"ftp://x\"\n", "storage.url", "unknown scheme 'ftp'"),
    ("[storage]\ntype = \"gcs\"\n", "storage.type", "unknown storage type 'gcs'"),
    ("[storage]\ntype = \"s3\"\nendpoint = \"m:9000\"\naccess_key = \"a\"\nsecret_key = \"s\"\n",
     "storage.bucket", "missing (required for s3 storage)"),
    ("[storage]\ntype = \"s3\"\nendpoint = \"http://m:9000\"\nbucket = \"b\"\naccess_key = \"a\"\nsecret_key = \"s\"\n",
     "storage.endpoint", "without a scheme"),
    ("[storage]\nbucket = \"b\"\n", "storage.bucket", "does not apply to filesystem storage"),
    ("[storage]\nurl = \"file:///b\"\nroot = \"/a\"\n", "storage.url", "either url or the keys storage.root"),
    ("[storage]\nupload_max_age_seconds = 0\n", "storage.upload_max_age_seconds", "at least 1"),
])
def test_a_bad_file_key_is_named_with_its_problem(tmp_path, config_text, field, problem):
    got_field, got_problem = field_and_problem(config_text=config_text, tmp_path=tmp_path)
    assert got_field == field and problem in got_problem


def test_a_flag_is_named_by_its_option():
    assert field_and_problem(port="x") == ("--port", "must be an integer, not 'x'")
    assert field_and_problem(workers="0") == ("--workers", "must be at least 1, not 0")


def test_a_toml_syntax_error_gives_the_line(tmp_path):
    field, problem = field_and_problem(config_text="[server]\nport = 5000\nhost = \n", tmp_path=tmp_path)
    assert field == "--config" and "is not valid TOML" in problem and "line 3" in problem


def test_an_unreadable_file_is_named_by_where_its_path_came_from(tmp_path):
    missing = tmp_path / "missing.toml"
    with pytest.raises(ConfigError) as raised:
        Settings.from_env({"PORTLOG_CONFIG": str(missing)})
    assert raised.value.field == "PORTLOG_CONFIG"
    assert raised.value.problem == f"cannot read {missing}: No such file or directory"


def test_the_metrics_settings():
    assert Settings().metrics == MetricsConfig(enabled=True, require_auth=True, port=None, host="127.0.0.1")
    metrics = Settings.from_env({"PORTLOG_METRICS_ENABLED": "false", "PORTLOG_METRICS_PORT": "9101",
                                 "PORTLOG_METRICS_HOST": "10.0.0.5", "PORTLOG_METRICS_REQUIRE_AUTH": "no"}).metrics
    assert metrics == MetricsConfig(enabled=False, require_auth=False, port=9101, host="10.0.0.5")


def test_as_environment_gives_the_same_settings_back(tmp_path):
    config = write(tmp_path / "portlog.toml", '[server]\nlog_level = "warning"\n'
                                              '[storage]\nredirect = true\nupload_max_age_seconds = 120\n'
                                              '[metrics]\nport = 9101\nrequire_auth = false\n')
    original = Settings.from_env({**SCALE_OUT_ENV, "PORTLOG_ADMIN_PASSWORD": "Admin-Pass-1",
                                  "PORTLOG_READ_MODELS_URL": "postgresql://r:x@replica/views"},
                                 config_file=config, port=6001, workers=3, access_log=False, data_dir=str(tmp_path))
    assert Settings.from_env(original.as_environment()) == original


@pytest.mark.parametrize("environ", [{}, {"PORTLOG_STORAGE_URL": "file:///mnt/blobs",
                                          "PORTLOG_DATABASE_URL": "/var/lib/portlog/events.db"}])
def test_as_environment_round_trips_the_embedded_layouts(environ):
    original = Settings.from_env(environ)
    assert Settings.from_env(original.as_environment()) == original


def test_the_effective_configuration_masks_every_secret():
    settings = Settings.from_env({**SCALE_OUT_ENV, "PORTLOG_ADMIN_PASSWORD": "Admin-Pass-1"})
    shown = str(settings.effective(masked=True))
    for secret in ("p@ss", "p%40ss", "se+cr/et", "se%2Bcr", "Admin-Pass-1"):
        assert secret not in shown
    effective = settings.effective(masked=True)
    assert effective["database"]["url"] == "postgresql://registry:***@db.internal:5433/registry"
    assert effective["storage"]["secret_key"] == effective["admin_password"] == "***"
    assert effective["storage"]["access_key"] == "AKIA"
    assert settings.effective(masked=False)["storage"]["secret_key"] == "se+cr/et"


def test_the_blob_store_is_the_filesystem_by_default(tmp_path):
    blobs = blob_store_for(Settings(data_dir=tmp_path))
    assert isinstance(blobs, FilesystemBlobStore)


def test_s3_storage_builds_the_s3_blob_store_with_the_configured_values(tmp_path, monkeypatch):
    class RecordingS3BlobStore:
        def __init__(self, *args, **kwargs):
            self.args, self.kwargs = args, kwargs

    fake = types.ModuleType("adapters.storage.s3")
    fake.S3BlobStore = RecordingS3BlobStore
    monkeypatch.setitem(sys.modules, "adapters.storage.s3", fake)
    config = write(tmp_path / "portlog.toml", "[storage]\nredirect = true\n")
    settings = Settings.from_env({"PORTLOG_STORAGE_URL": SCALE_OUT_ENV["PORTLOG_STORAGE_URL"]},
                                 config_file=config, data_dir=str(tmp_path / "data"))
    blobs = blob_store_for(settings)
    assert isinstance(blobs, RecordingS3BlobStore)
    assert blobs.args == ("minio.internal:9000", "portlog-blobs", "AKIA", "se+cr/et")
    assert blobs.kwargs == {"region": "eu-west-1", "secure": False, "spool_dir": tmp_path / "data" / "spool",
                            "redirect": True, "upload_hashers": settings.cache.upload_hashers}
    without_region = blob_store_for(Settings.from_env({"PORTLOG_STORAGE_URL": "s3://a:b@minio:9000/blobs"}))
    assert "region" not in without_region.kwargs and without_region.kwargs["secure"] is True


def test_the_configuration_doc_lists_every_variable_and_file_key():
    from config.layers import ENV_KEYS, FILE_SECTIONS, FILE_TOP_LEVEL

    doc = (Path(__file__).resolve().parents[2] / "docs" / "configuration.md").read_text()
    names = [*ENV_KEYS, "PORTLOG_CONFIG", *FILE_TOP_LEVEL,
             *(f"{section}.{key}" for section, keys in FILE_SECTIONS.items() for key in keys)]
    assert [name for name in names if f"`{name}`" not in doc] == []


def test_events_settings_from_the_environment_and_their_errors():
    settings = Settings.from_env({"PORTLOG_NATS_URL": "nats://127.0.0.1:4222", "PORTLOG_PULL_RECORD_SECONDS": "5"})
    assert settings.events.nats_url == "nats://127.0.0.1:4222" and settings.events.pull_record_seconds == 5
    assert Settings.from_env(settings.as_environment()) == settings
    assert Settings.from_env({}).events.nats_url is None  # the relay is off in the embedded default
    with pytest.raises(ConfigError, match="PORTLOG_NATS_URL"):
        Settings.from_env({"PORTLOG_NATS_URL": "http://127.0.0.1:4222"})
    with pytest.raises(ConfigError, match="PORTLOG_WEBHOOK_RETRY_SECONDS"):
        Settings.from_env({"PORTLOG_WEBHOOK_RETRY_SECONDS": "-1"})


def test_the_external_url_names_the_registry_for_clients():
    assert Settings.from_env({}).registry_address == "127.0.0.1:5000"
    behind_proxy = Settings.from_env({"PORTLOG_EXTERNAL_URL": "https://registry.example.com/"})
    assert behind_proxy.registry_address == "registry.example.com"
    assert Settings.from_env(behind_proxy.as_environment()) == behind_proxy
    with pytest.raises(ConfigError, match="PORTLOG_EXTERNAL_URL"):
        Settings.from_env({"PORTLOG_EXTERNAL_URL": "registry.example.com/v2"})


def test_the_replication_lease_from_the_file_the_environment_and_its_errors(tmp_path):
    assert Settings.from_env({}).replication_lease_seconds == 60
    config = write(tmp_path / "portlog.toml", "[replication]\nworkers = 2\nlease_seconds = 30\n")
    from_file = Settings.from_env({}, config_file=config)
    assert (from_file.replication_workers, from_file.replication_lease_seconds) == (2, 30)
    settings = Settings.from_env({"PORTLOG_REPLICATION_LEASE_SECONDS": "2"}, config_file=config)
    assert settings.replication_lease_seconds == 2
    assert Settings.from_env(settings.as_environment()) == settings
    assert settings.effective()["replication"] == {"workers": 2, "lease_seconds": 2}
    assert field_and_problem({"PORTLOG_REPLICATION_LEASE_SECONDS": "1"}) == (
        "PORTLOG_REPLICATION_LEASE_SECONDS", "must be at least 2, not 1")
    assert field_and_problem(config_text="[replication]\nlease_seconds = \"long\"\n", tmp_path=tmp_path) == (
        "replication.lease_seconds", "must be an integer, not 'long'")


def test_the_outbound_allowances_and_refusals_from_the_file_the_environment_and_their_errors(tmp_path):
    assert (Settings.from_env({}).outbound_allow, Settings.from_env({}).outbound_deny) == ((), ())
    config = write(tmp_path / "portlog.toml", '[security]\noutbound_allow = ["127.0.0.0/8", "::1"]\n'
                                              'outbound_deny = "10.1.0.0/16, 10.2.3.4/8"\n')
    from_file = Settings.from_env({}, config_file=config)
    assert from_file.outbound_allow == ("127.0.0.0/8", "::1/128")
    assert from_file.outbound_deny == ("10.1.0.0/16", "10.0.0.0/8")
    settings = Settings.from_env({"PORTLOG_OUTBOUND_ALLOW": "192.168.0.0/16,fd00::/8"}, config_file=config)
    assert settings.outbound_allow == ("192.168.0.0/16", "fd00::/8")
    assert Settings.from_env(settings.as_environment()) == settings
    assert settings.effective()["security"] == {"outbound_allow": ["192.168.0.0/16", "fd00::/8"],
                                                "outbound_deny": ["10.1.0.0/16", "10.0.0.0/8"]}
    assert field_and_problem({"PORTLOG_OUTBOUND_DENY": "10.0.0.0/8,localhost"}) == (
        "PORTLOG_OUTBOUND_DENY", "'localhost' is not a CIDR block (such as 10.0.0.0/8 or ::1/128)")
    assert field_and_problem(config_text="[security]\noutbound_allow = 127\n", tmp_path=tmp_path) == (
        "security.outbound_allow", "must be a list of CIDR blocks, not int 127")


def test_log_format_and_levels_from_a_file_and_the_environment(tmp_path):
    config = write(tmp_path / "portlog.toml", """
[log]
format = "json"
levels = { "portlog.gc" = "debug", "uvicorn.error" = "WARNING" }
""")
    from_file = Settings.from_env({}, config_file=config)
    assert from_file.log_format == "json"
    assert from_file.log_levels == (("portlog.gc", "debug"), ("uvicorn.error", "warning"))
    from_env = Settings.from_env({"PORTLOG_LOG_FORMAT": "TEXT",
                                  "PORTLOG_LOG_LEVELS": "portlog.access=warning, portlog=debug"})
    assert (from_env.log_format, from_env.log_levels) == ("text", (("portlog.access", "warning"), ("portlog", "debug")))
    assert Settings.from_env(from_file.as_environment()).log_levels == from_file.log_levels  # worker processes
    assert from_file.effective()["log"] == {"format": "json",
                                            "levels": {"portlog.gc": "debug", "uvicorn.error": "warning"}}
    assert Settings().log_format == "text" and Settings().log_levels == ()


@pytest.mark.parametrize(("variable", "value", "message"), [
    ("PORTLOG_LOG_FORMAT", "xml", "PORTLOG_LOG_FORMAT: must be one of text, json, not 'xml'"),
    ("PORTLOG_LOG_LEVELS", "portlog.gc=loud", "PORTLOG_LOG_LEVELS: portlog.gc=loud is not a logger name"),
    ("PORTLOG_LOG_LEVELS", "portlog.gc", "PORTLOG_LOG_LEVELS: portlog.gc= is not a logger name"),
    ("PORTLOG_LOG_LEVELS", "no spaces=info", "PORTLOG_LOG_LEVELS: no spaces=info is not a logger name"),
])
def test_bad_log_settings_name_their_variable(variable, value, message):
    with pytest.raises(ConfigError) as raised:
        Settings.from_env({variable: value})
    assert str(raised.value).startswith(message)
