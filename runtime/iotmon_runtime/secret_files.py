"""Secrets read from files (``*_FILE`` variables): Docker/Compose secrets, Kubernetes volumes.

A password in an environment variable shows in ``docker inspect``, ``/proc/<pid>/environ``
and every child process; a file under ``/run/secrets`` shows in none of them. Errors
name the variable and the file, never what the file holds.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import SecretStr

SECRET_FILE_SUFFIX = "_FILE"  # noqa: S105 - a variable-name suffix, not a secret
"""``IOTMON_API_TOKEN_FILE`` names the file that holds ``IOTMON_API_TOKEN``."""

MAX_SECRET_FILE_BYTES = 64 * 1024
"""Larger than any password, token or database URL: a bigger file is the wrong file."""


class SecretFileError(ValueError):
    """A secret file that cannot be used; the message names the file, never its content."""


class FileSecret(SecretStr):
    """A secret that came from a file: remembers which variable named which file, so a
    refusal (a placeholder in prod) points at the file to fix."""

    def __init__(self, secret_value: str, variable: str, path: Path) -> None:
        super().__init__(secret_value)
        self.variable = variable
        self.path = path

    @property
    def origin(self) -> str:
        """How the user gave it: ``IOTMON_X_FILE (/run/secrets/x)``."""
        return f"{self.variable} ({self.path})"


def read_secret_file(path: Path) -> str:
    """The file's text without its trailing line break(s), as ``$(cat file)`` gives it.

    Trailing newlines are dropped because editors and ``echo`` add them; anything
    else (inner spaces, a leading space) is part of the secret.
    """
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_SECRET_FILE_BYTES + 1)
    except OSError as exc:
        raise SecretFileError(f"cannot read {path}: {exc.strerror or type(exc).__name__}") from None
    if len(data) > MAX_SECRET_FILE_BYTES:
        raise SecretFileError(
            f"{path} is larger than {MAX_SECRET_FILE_BYTES // 1024} KiB: not a secret file"
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise SecretFileError(f"{path} is not UTF-8 text") from None
    return text.rstrip("\r\n")
