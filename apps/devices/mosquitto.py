"""What Mosquitto reads to let devices in (docs/devices.md, "Broker security"): a password
file line's hash in Mosquitto 2's own format, and the password and ACL files of a node.

Pure functions: the services store a device's hash, ``manage.py mqtt_auth`` writes the files.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
from collections.abc import Iterable

# Mosquitto 2's ``$7$`` hash (what ``mosquitto_passwd`` writes by default): PBKDF2-HMAC-SHA512
# with a 12-byte salt and a 64-byte key, ``$7$<iterations>$<base64 salt>$<base64 key>``.
# 101 iterations is mosquitto_passwd's own choice; the passwords are random 24-byte tokens,
# so more would only cost the broker time on every CONNECT.
ITERATIONS = 101
SALT_BYTES = 12
KEY_BYTES = 64

# A username in the password file (and a node id): no ":" (the separator), no whitespace, no MQTT wildcard
# or level separator (it goes into topics in the ACL).
_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


def password_hash(password: str, *, salt: bytes | None = None, iterations: int = ITERATIONS) -> str:
    salt = os.urandom(SALT_BYTES) if salt is None else salt
    key = hashlib.pbkdf2_hmac("sha512", password.encode("utf-8"), salt, iterations, KEY_BYTES)
    return f"$7${iterations}${base64.b64encode(salt).decode()}${base64.b64encode(key).decode()}"


def password_matches(password: str, hashed: str) -> bool:
    """Does ``password`` match a ``$7$`` hash (ours or mosquitto_passwd's)?"""
    try:
        _, kind, iterations, salt, key = hashed.split("$")
        if kind != "7":
            return False
        expected = base64.b64decode(key)
        got = hashlib.pbkdf2_hmac(
            "sha512", password.encode("utf-8"), base64.b64decode(salt), int(iterations), len(expected)
        )
    except ValueError:
        return False
    return hmac.compare_digest(got, expected)


def check_name(name: str, what: str = "MQTT username") -> str:
    """``name`` if it can be a username in the password file and a topic level in the ACL."""
    if not _NAME.match(name or ""):
        raise ValueError(f"{name!r} cannot be an {what} here (letters, digits, '_', '.', '-'; 1 to 64)")
    return name


def password_file(entries: Iterable[tuple[str, str]]) -> str:
    """``username:hash`` lines; ``entries`` are (username, ``$7$`` hash)."""
    lines = []
    for username, hashed in entries:
        check_name(username)
        if not hashed.startswith("$7$") or any(c in hashed for c in ":\n"):
            raise ValueError(f"not a Mosquitto $7$ hash for {username!r}")
        lines.append(f"{username}:{hashed}\n")
    return "".join(lines)


def acl_file(*, node: str, server: str, devices: Iterable[str]) -> str:
    """The server writes every cue topic of the node and reads every ack and status; each
    device reads its own cue topic and writes its own ack and status; nobody else, nothing
    else (Mosquitto denies what no line allows)."""
    check_name(server)
    check_name(node, "NODE_ID")
    base = f"cc/{node}/devices"
    out = [
        '# Written by `manage.py mqtt_auth` (docs/devices.md, "Broker security"); do not edit.\n',
        f"# Node {node}: the server account, then one block per active device.\n\n",
        f"user {server}\n",
        f"topic write {base}/+/cue\n",
        f"topic read {base}/+/ack\n",
        f"topic read {base}/+/status\n",
    ]
    for device in devices:
        check_name(device)
        out += [
            f"\nuser {device}\n",
            f"topic read {base}/{device}/cue\n",
            f"topic write {base}/{device}/ack\n",
            f"topic write {base}/{device}/status\n",
        ]
    return "".join(out)
