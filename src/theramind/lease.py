"""Who holds a session: lease owner ids and whether their holder is still alive.

A `Session` handle takes a lease on its session before it writes (see `PatientStore.acquire_lease`
for the row and its expiry). The store keeps the lease; this module decides when a lease whose
expiry has not come yet may still be taken over because its holder is gone:

- a holder in this process is alive while its handle object exists;
- a holder in another process on this host is alive while that process runs;
- a holder on another host is alive until its lease expires (hosts cannot see each other).
"""

from __future__ import annotations

import os
import socket
import uuid
import weakref

_HOST = socket.gethostname().replace(":", "_")
_LIVE: weakref.WeakValueDictionary[str, object] = weakref.WeakValueDictionary()
"""Owner id → the object holding it, for the holders of this process."""


def new_owner(holder: object) -> str:
    """Return a fresh owner id for `holder`, alive in this process while `holder` exists."""
    owner = f"{_HOST}:{os.getpid()}:{uuid.uuid4().hex}"
    _LIVE[owner] = holder
    return owner


def owner_alive(owner: str) -> bool:
    """Return whether the holder named by an owner id may still be writing."""
    parts = owner.rsplit(":", 2)
    if len(parts) != 3 or not parts[1].isdigit():
        return True  # not ours to judge: let the lease expire
    host, pid = parts[0], int(parts[1])
    if host != _HOST:
        return True
    if pid == os.getpid():
        return owner in _LIVE
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # a process of another user: alive
        return True
    return True


def owner_stale(owner: str) -> bool:
    """Return whether a lease's holder is gone, so the lease may be taken over at once."""
    return not owner_alive(owner)
