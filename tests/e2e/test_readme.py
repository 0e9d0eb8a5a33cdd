"""The README's walkthrough runs as written, top to bottom, on a fresh data directory.

The shell blocks of its sections that talk to a server (logging in and managing projects,
events, deleting and reclaiming space, replicating) run in one bash, from a directory laid out
like the checkout (`scripts/` and `.venv/bin` linked in, so `./data` and the image are made
there). Two things differ from a reader's terminal: 127.0.0.1:5000 becomes a free port (the
README's only address), and `curl` fails on an HTTP error (a reader sees the answer; the test
must notice it)."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
from datetime import datetime, timezone

import pytest

from tests.support.server import REPO_ROOT, free_port

pytestmark = pytest.mark.e2e

WALKTHROUGH = ("Logging in and managing projects", "Subscribing to events", "Deleting, undeleting, reclaiming space",
               "Replicating")
README_ADDRESS = "127.0.0.1:5000"
PRELUDE = """set -eEuo pipefail
trap 'echo "README command failed ($?): $BASH_COMMAND" >&2' ERR
curl() { command curl --fail-with-body --silent --show-error "$@"; }
"""


def walkthrough_blocks(readme: str) -> list[str]:
    """The ```sh block of each walkthrough section, in order."""
    blocks = []
    for heading in WALKTHROUGH:
        section = re.search(rf"^### {re.escape(heading)}\n(.*?)(?=^#)", readme, re.S | re.M)
        assert section, f"README.md has no section '### {heading}'"
        found = re.findall(r"^```sh\n(.*?)^```", section.group(1), re.S | re.M)
        assert len(found) == 1, f"'{heading}' should have one sh block, not {len(found)}"
        blocks.append(found[0])
    return blocks


def checkout_like(root) -> None:
    """`scripts/` and a `.venv` whose bin/ is the real one (stamped installed: scripts/serve
    does not reinstall), so the README's relative paths work and its files land in `root`."""
    (root / "scripts").symlink_to(REPO_ROOT / "scripts")
    (root / ".venv").mkdir()
    (root / ".venv" / "bin").symlink_to(REPO_ROOT / ".venv" / "bin")
    (root / ".venv" / ".installed").touch()


@pytest.mark.skipif(not all(shutil.which(tool) for tool in ("skopeo", "umoci", "curl")),
                    reason="needs skopeo, umoci and curl")
def test_the_readme_walkthrough_runs_as_written(tmp_path):
    readme = (REPO_ROOT / "README.md").read_text()
    assert readme.count(README_ADDRESS) > 10  # the address the test replaces
    port = free_port()
    script = PRELUDE + "\n".join(walkthrough_blocks(readme)).replace(README_ADDRESS, f"127.0.0.1:{port}")
    root = tmp_path / "checkout"
    root.mkdir()
    checkout_like(root)
    (tmp_path / "run").mkdir(mode=0o700)
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "XDG_RUNTIME_DIR": str(tmp_path / "run"),
           "PORTLOG_PORT": str(port), "LANG": "C.UTF-8"}
    log_path = tmp_path / "walkthrough.log"
    with open(log_path, "wb") as log:  # a file, not a pipe: the background server keeps its end open
        process = subprocess.Popen(["bash", "-c", script], cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT,
                                   start_new_session=True)
        try:
            returncode = process.wait(timeout=120)
        finally:
            with contextlib.suppress(ProcessLookupError):  # with the server the walkthrough started
                os.killpg(process.pid, signal.SIGTERM)
            process.wait()
    output = log_path.read_text()
    assert returncode == 0, output
    assert f"ready on http://127.0.0.1:{port}" in output
    assert "Pong" in output and '"dry_run":true' in output.replace(" ", "")
    if datetime.now(timezone.utc) > datetime(2026, 10, 1, tzinfo=timezone.utc):
        assert "nothing existed then" in output  # the retention dry run as of 2026-10-01 says so
    assert (root / "data" / "events.db").is_file() and (root / "img" / "index.json").is_file()
