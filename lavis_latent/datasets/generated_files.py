"""Folders a generator writes (the demo world, the digits): json files, a manifest of the parameters, and an
atomic swap into place, so readers never see a half-written folder that claims to be complete."""
import json
import os
import shutil
import tempfile
import uuid

#: name of the manifest file under a generated root
MANIFEST = "manifest.json"
#: quality of the JPEG images the generators write
JPEG_QUALITY = 95


def write_json(path, obj, indent=None):
    """Write ``obj`` as json to ``path`` (creating its folder), with a final newline."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump(obj, f, indent=indent, sort_keys=False)
        f.write("\n")


def read_manifest(root):
    """The manifest dict written under a generated ``root``, or ``None`` when absent or unreadable."""
    path = os.path.join(os.path.abspath(os.path.expanduser(str(root))), MANIFEST)
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def manifest_matches(root, format_version, params, paths):
    """True when ``root``'s manifest records ``format_version`` and exactly ``params``, and every path exists."""
    manifest = read_manifest(root)
    if not manifest or manifest.get("format_version") != format_version or manifest.get("params") != params:
        return False
    return all(os.path.exists(p) for p in paths)


def _refuse_foreign(root, what):
    """``FileExistsError`` when ``root`` is a non-empty folder without a manifest (not generated data)."""
    if os.path.isdir(root) and os.listdir(root) and read_manifest(root) is None:
        raise FileExistsError(
            f"{root} exists, is not empty and holds no {what} manifest: refusing to replace it; "
            "choose another root (build_info.generator.root) or remove that folder")


def _swap_in(staging, root):
    """Rename ``staging`` to ``root``, moving an existing ``root`` aside first and deleting it afterwards."""
    parent = os.path.dirname(root)
    old = None
    if os.path.lexists(root):
        old = os.path.join(parent, f".{os.path.basename(root)}.old-{uuid.uuid4().hex[:8]}")
        os.rename(root, old)
    os.chmod(staging, 0o755)  # mkdtemp makes it private
    os.rename(staging, root)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def replace_atomically(root, fill, manifest, what):
    """Build a generated folder in a staging folder beside ``root`` and swap it in with renames.

    ``fill(staging)`` writes the data and may return a dict of further manifest entries; ``manifest`` (a dict) plus
    those is written last, as ``manifest.json``, so readers never see a half-written folder with a manifest. A
    non-empty ``root`` without a manifest (not generated data) is never replaced: ``FileExistsError`` naming
    ``what`` (e.g. ``"demo-data"``, ``"digits"``).
    """
    _refuse_foreign(root, what)
    parent = os.path.dirname(root)
    os.makedirs(parent, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=f".{os.path.basename(root)}.staging-", dir=parent)
    try:
        extra = fill(staging) or {}
        write_json(os.path.join(staging, MANIFEST), {**manifest, **extra}, indent=1)
        _swap_in(staging, root)
        staging = None
    finally:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
