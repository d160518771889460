"""The key-encryption keys of personal data: `SHOPSTREAM_DATA_KEY`, or a key file in the data directory.

`SHOPSTREAM_DATA_KEY` lists one or more keys (32 bytes each, base64, comma-separated); the first wraps
every new data key, the others are still accepted to unwrap (during a rotation). Without it, the keys
are the lines of `<SHOPSTREAM_DATA_DIR>/data.key`, created with one fresh key, readable by its owner
only (0600), the first time a process needs it: fine for one machine, while several machines sharing a
database must share `SHOPSTREAM_DATA_KEY`.
"""

from __future__ import annotations

import base64
import contextlib
import os
import stat
from pathlib import Path

from bus.sealing import Keyring, new_data_key
from shopstream.settings import ConfigurationError, Settings, parse_keys

KEY_FILE = "data.key"
VARIABLE = "SHOPSTREAM_DATA_KEY"


def key_file(settings: Settings) -> Path:
    return Path(settings.data_dir) / KEY_FILE


def keyring_of(settings: Settings) -> Keyring:
    """The process's keyring: from `SHOPSTREAM_DATA_KEY`, else from the key file (created if missing)."""
    if settings.data_key:
        return Keyring(parse_keys(settings.data_key))
    path = key_file(settings)
    if not path.exists():
        write_key_file(path, [new_data_key()], replace=False)
    if path.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigurationError(
            f"configuration error: {VARIABLE} is unset and its key file {path} is readable by others"
            " than its owner (chmod 600 it)"
        )
    return Keyring(parse_keys(path.read_text(), f"{VARIABLE} (key file {path})"))


def write_key_file(path: Path, keys: list[bytes], *, replace: bool) -> None:
    """Write the keys, owner-only, all at once: a reader never sees half a file. Without `replace`, a
    file another process created meanwhile wins."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as out:
        out.write("".join(base64.b64encode(k).decode() + "\n" for k in keys))
        out.flush()
        os.fsync(out.fileno())
    try:
        if replace:
            os.replace(temporary, path)
        else:
            with contextlib.suppress(FileExistsError):
                os.link(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def add_key_to_file(settings: Settings) -> Keyring:
    """For a rotation without `SHOPSTREAM_DATA_KEY`: a fresh key first in the key file, the old ones
    kept after it (processes still running wrap with their first key until restarted)."""
    path = key_file(settings)
    keyring_of(settings)  # checks the file as a start would
    keys = [new_data_key(), *parse_keys(path.read_text(), str(path))]
    write_key_file(path, keys, replace=True)
    return Keyring(keys)
