"""A resumable store of benchmark runs, keyed by each run's exact configuration, that several processes can share.

Each run is a plain dict (its *spec*: framework, data, training settings, regularizers, seed). Its key is the
SHA-1 of the spec's canonical JSON (sorted keys), so a rerun finds what is done and computes only what is missing,
and a changed setting is a new run, never a stale result. Results are one JSON line each in ``results.jsonl``,
appended under an exclusive ``flock``. A process *claims* a run before computing it by creating
``claims/<key>`` exclusively (with its pid and host); another process skips claimed runs, so two processes given
the same grid split the work. A claim whose process is gone (same host, pid not alive) is taken over.
"""
import fcntl
import hashlib
import json
import os
import socket
from typing import Dict, Iterable, Iterator, Optional


def run_key(spec: Dict) -> str:
    """The 16-hex-digit key of a run spec (SHA-1 of its canonical JSON)."""
    text = json.dumps(spec, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha1(text.encode()).hexdigest()[:16]


class RunStore:
    """``results.jsonl`` plus ``claims/`` under ``root``: ``get(spec)``, ``put(spec, result)``, ``claim(spec)``."""

    def __init__(self, root: str):
        self.root = os.path.abspath(root)
        self.path = os.path.join(self.root, "results.jsonl")
        self.claims = os.path.join(self.root, "claims")
        os.makedirs(self.claims, exist_ok=True)

    def _read(self) -> Dict[str, Dict]:
        if not os.path.isfile(self.path):
            return {}
        out = {}
        with open(self.path) as f:
            for line in f:
                line = line.strip()
                if not line:
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError:
                    continue  # a line cut by a killed writer: that run is simply not done
                out[row["key"]] = row
        return out

    def results(self) -> Dict[str, Dict]:
        """``{key: {"key", "spec", "result"}}`` of every stored run (the last line wins for a key)."""
        return self._read()

    def get(self, spec: Dict) -> Optional[Dict]:
        """The stored result of ``spec``, or None."""
        row = self._read().get(run_key(spec))
        return None if row is None else row["result"]

    def put(self, spec: Dict, result: Dict) -> None:
        """Append ``spec``'s result (one line, under an exclusive lock) and release its claim."""
        line = json.dumps({"key": run_key(spec), "spec": spec, "result": result}, sort_keys=True, default=_plain)
        with open(self.path, "a") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                f.write(line + "\n")
                f.flush()
                os.fsync(f.fileno())
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)
        self.release(spec)

    def _claim_path(self, spec: Dict) -> str:
        return os.path.join(self.claims, run_key(spec))

    def claim(self, spec: Dict) -> bool:
        """Claim ``spec`` for this process; False if it is done or another live process holds it."""
        if self.get(spec) is not None:
            return False
        path = self._claim_path(spec)
        for _ in range(2):
            try:
                fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                if _claim_alive(path):
                    return False
                try:
                    os.unlink(path)  # its process is gone: take it over
                except FileNotFoundError:
                    pass
                continue
            with os.fdopen(fd, "w") as f:
                json.dump({"pid": os.getpid(), "host": socket.gethostname()}, f)
            if self.get(spec) is not None:  # finished by another process in the meantime
                self.release(spec)
                return False
            return True
        return False

    def release(self, spec: Dict) -> None:
        """Drop this process's claim on ``spec`` (if any)."""
        try:
            os.unlink(self._claim_path(spec))
        except FileNotFoundError:
            pass

    def pending(self, specs: Iterable[Dict]) -> Iterator[Dict]:
        """The specs of ``specs`` that are neither done nor claimed by a live process, each claimed for this process
        as it is yielded (call :meth:`put` or :meth:`release` for each)."""
        done = set(self.results())  # read once; claim() checks again for runs finished since
        for spec in specs:
            if run_key(spec) not in done and self.claim(spec):
                yield spec


def _claim_alive(path: str) -> bool:
    try:
        with open(path) as f:
            owner = json.load(f)
    except (OSError, ValueError):
        return True  # being written right now: treat as held
    if owner.get("host") != socket.gethostname():
        return True  # cannot tell: another machine's process
    try:
        os.kill(int(owner["pid"]), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _plain(x):
    if hasattr(x, "item"):
        return x.item()
    return str(x)
