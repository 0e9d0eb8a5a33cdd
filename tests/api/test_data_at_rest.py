"""Data at rest is private to Portlog's account: the event log holds password hashes, the data
directory keys and every private image. Nothing under data_dir is readable by other users."""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

import pytest

from adapters.passwords import Argon2SecretHasher
from config.bootstrap import bootstrap
from tests.support.oci import push_image

pytestmark = pytest.mark.first_start  # what a first start creates, and how


def modes_under(root: Path) -> dict[str, int]:
    modes = {".": stat.S_IMODE(root.stat().st_mode)}
    for directory, subdirectories, files in os.walk(root):
        for name in subdirectories + files:
            path = Path(directory) / name
            modes[str(path.relative_to(root))] = stat.S_IMODE(path.lstat().st_mode)
    return modes


def test_every_file_under_the_data_directory_is_private_after_a_push(client, settings):
    previous = os.umask(0o022)  # the usual umask: files written from now on need their own modes
    try:
        client.post("/v2/team/app/blobs/uploads/")  # an upload left open: its files too
        push_image(client, "team/app", "v1")
    finally:
        os.umask(previous)

    modes = modes_under(settings.data_dir)
    names = set(modes)
    assert {"events.db", "readmodels.db", "secret.key", "token-keys.json"} <= names, names
    assert any(n.startswith("storage/blobs/sha256/") for n in names)
    assert any(n.startswith("storage/uploads/") for n in names)
    for name, mode in modes.items():
        expected = 0o700 if (settings.data_dir / name).is_dir() else 0o600
        assert mode == expected, f"{name} is {mode:04o}"


def warnings_of_a_start(settings) -> list[str]:
    """The warnings Portlog logs while bootstrapping on `settings`."""
    records: list[logging.LogRecord] = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = records.append
    logging.getLogger("portlog").addHandler(handler)
    try:
        bootstrap(settings, hasher=Argon2SecretHasher(fast=True)).close()
    finally:
        logging.getLogger("portlog").removeHandler(handler)
    return [r.getMessage() for r in records]


def test_a_data_directory_readable_by_others_is_named_in_a_warning(settings):
    settings.data_dir.mkdir(mode=0o755)
    os.chmod(settings.data_dir, 0o755)
    messages = warnings_of_a_start(settings)
    warnings = [m for m in messages if str(settings.data_dir) in m]
    assert len(warnings) == 1, messages
    assert "0755" in warnings[0] and f"chmod 700 {settings.data_dir}" in warnings[0]


def test_a_private_data_directory_gives_no_warning(settings):
    settings.data_dir.mkdir(mode=0o700)
    assert not [m for m in warnings_of_a_start(settings) if str(settings.data_dir) in m]
