"""The S3 access key is read from a systemd credential or a file only its owner may
read, never from the config; each way it can be wrong is one line naming the file and
what to do, and never shows the secret."""

from __future__ import annotations

from pathlib import Path

import pytest

from uploader import CredentialsError, read_credentials

KEY = (
    "[default]\n# the station's S3 user\n"
    "aws_access_key_id = AKIDEVIDOCK\naws_secret_access_key=s3cr3t/Key+\n"
)


def _file(path: Path, text: str, mode: int = 0o600) -> Path:
    path.write_text(text, "utf-8")
    path.chmod(mode)
    return path


def test_a_systemd_credential_is_read_from_its_directory(tmp_path: Path) -> None:
    _file(tmp_path / "evidock-s3", KEY, 0o400)
    keys = read_credentials("evidock-s3", {"CREDENTIALS_DIRECTORY": str(tmp_path)})
    assert (keys.access_key, keys.secret_key) == ("AKIDEVIDOCK", "s3cr3t/Key+")
    assert "s3cr3t" not in repr(keys)


def test_a_credential_name_without_systemd_says_how_to_give_it() -> None:
    with pytest.raises(
        CredentialsError, match=r"\$CREDENTIALS_DIRECTORY is not set.*LoadCredential=evidock-s3:"
    ):
        read_credentials("evidock-s3", {})


def test_a_key_file_must_be_private_and_whole(tmp_path: Path) -> None:
    path = _file(tmp_path / "s3-key", KEY)
    assert read_credentials(str(path), {}).access_key == "AKIDEVIDOCK"
    path.chmod(0o640)
    with pytest.raises(CredentialsError, match=r"mode 0640\); run chmod 600"):
        read_credentials(str(path), {})
    _file(path, "aws_access_key_id = AKIDEVIDOCK\n")
    with pytest.raises(CredentialsError, match="lacks aws_secret_access_key;"):
        read_credentials(str(path), {})
    with pytest.raises(CredentialsError, match="does not exist"):
        read_credentials(str(tmp_path / "absent"), {})
    with pytest.raises(CredentialsError, match="not a regular file"):
        read_credentials(str(tmp_path), {})
    _file(path, "aws_secret_access_key = s3cr3t\n")
    with pytest.raises(CredentialsError) as caught:
        read_credentials(str(path), {})
    assert "s3cr3t" not in str(caught.value) and "\n" not in str(caught.value)
