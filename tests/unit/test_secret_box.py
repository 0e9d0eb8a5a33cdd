"""Sealing stored credentials: AES-GCM round trip, tamper and wrong-key detection, and which
box the composition root picks."""

from __future__ import annotations

import stat

import pytest

from adapters.secret_box import AesGcmSecretBox, NoSecretBox, key_file_text
from config.bootstrap import secret_box_for
from config.settings import Settings
from domain.errors import ConflictError, InvalidInputError

KEY = "k" * 32


def test_a_sealed_secret_opens_and_reveals_nothing():
    box = AesGcmSecretBox(KEY)
    sealed = box.seal("Peer-Password-1")
    assert sealed.startswith("v1:") and "Peer-Password-1" not in sealed
    assert box.open(sealed) == "Peer-Password-1"
    assert box.seal("same") != box.seal("same")  # a fresh nonce every time


def test_tampering_or_another_key_is_refused_clearly():
    sealed = AesGcmSecretBox(KEY).seal("secret")
    tampered = sealed[:-4] + ("AAAA" if not sealed.endswith("AAAA") else "BBBB")
    for box, text in ((AesGcmSecretBox(KEY), tampered), (AesGcmSecretBox("x" * 32), sealed),
                      (AesGcmSecretBox(KEY), "v1:not base64!")):
        with pytest.raises(ConflictError, match="secret key changed"):
            box.open(text)
    with pytest.raises(InvalidInputError):
        AesGcmSecretBox("too short")


def test_the_key_file_is_created_once_private(tmp_path):
    path = tmp_path / "secret.key"
    first = key_file_text(path)
    assert len(first) >= 32 and key_file_text(path) == first
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_the_composition_root_picks_the_box(tmp_path):
    embedded = Settings(data_dir=tmp_path)
    assert isinstance(secret_box_for(embedded), AesGcmSecretBox) and (tmp_path / "secret.key").exists()
    scale_out = Settings.from_env({"PORTLOG_DATABASE_URL": "postgresql://portlog@127.0.0.1/portlog",
                                   "PORTLOG_DATA_DIR": str(tmp_path / "node")})
    box = secret_box_for(scale_out)
    assert isinstance(box, NoSecretBox)
    with pytest.raises(InvalidInputError, match="security.secret_key"):
        box.seal("secret")
    configured = Settings.from_env({"PORTLOG_DATABASE_URL": "postgresql://portlog@127.0.0.1/portlog",
                                    "PORTLOG_SECRET_KEY": KEY})
    assert secret_box_for(configured).open(AesGcmSecretBox(KEY).seal("s")) == "s"
