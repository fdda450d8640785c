"""The development signing key that `passport token` uses and a development server trusts."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

DEV_KEY_FILE = "dev-signing-key.pem"


@dataclass(frozen=True)
class DevKey:
    private_key: Ed25519PrivateKey
    kid: str

    @property
    def public_key(self) -> Ed25519PublicKey:
        return self.private_key.public_key()


def load_dev_key(data_dir: Path) -> DevKey:
    """The key kept in ``data_dir``; FileNotFoundError if there is none (`passport token` never
    makes one: a token signed by a key no server knows would only be refused)."""
    path = data_dir / DEV_KEY_FILE
    loaded = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(loaded, Ed25519PrivateKey):
        raise ValueError(f"{path} is not an Ed25519 key")
    return _dev_key(loaded)


def load_or_create_dev_key(data_dir: Path) -> DevKey:
    """What a development server trusts: the key in ``data_dir``, made there the first time."""
    path = data_dir / DEV_KEY_FILE
    if path.exists():
        return load_dev_key(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    path.write_bytes(pem)
    path.chmod(0o600)
    return _dev_key(key)


def _dev_key(key: Ed25519PrivateKey) -> DevKey:
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return DevKey(private_key=key, kid="dev-" + raw.hex()[:16])


def find_data_dir(start: Path, name: Path) -> tuple[Path | None, list[Path]]:
    """The nearest ``name`` folder holding a development key, in ``start`` or one of its
    parents (as git finds .git), so `passport token` works from any folder of the project;
    also every place looked, to say so when there is none."""
    looked = []
    for folder in (start.resolve(), *start.resolve().parents):
        candidate = folder / name
        looked.append(candidate)
        if (candidate / DEV_KEY_FILE).is_file():
            return candidate, looked
    return None, looked
