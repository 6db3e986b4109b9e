#!/usr/bin/env python3
"""Rebuild any casman backup version from a copy of the bucket, without casman.

Usage:
    casman-rebuild.py ROOT KEY OUTPUT

ROOT is a directory holding the bucket's objects under their keys (the
local-directory store itself, or e.g. `aws s3 sync s3://BUCKET ROOT`), KEY a
version's key as `casmanctl sync list` prints it (e.g.
backups/parts.db/20261201_212528_lab_3_parts.db.delta.zst), OUTPUT the SQLite
file to write. The manifest (ROOT/backups/<db>/MANIFEST.json) gives each
version's kind and delta base; the result is checked against the SHA-256 the
manifest records. Without a readable manifest (lost or truncated), the
versions' sidecars (<key>.meta.json, each holding the version's manifest
entry) stand in for it. Needs Python 3.8+ and `zstandard` (pip install zstandard).
The format is described in docs/object-format.md.
"""

import hashlib
import json
import os
import struct
import sys

import zstandard

MAGIC = b"CASMDLT1"


def read_zst(path):
    with open(path, "rb") as f:
        return zstandard.ZstdDecompressor().stream_reader(f).read()


def chain(manifest, key):
    """The versions to apply, the full snapshot first."""
    by_key = {}
    for v in manifest["versions"]:
        by_key.setdefault(v["key"], v)
    out = []
    while True:
        v = by_key.get(key)
        if v is None:
            sys.exit(f"{key}: not in the manifest")
        out.append(v)
        if v.get("kind", "full") == "full":
            return out[::-1]
        key = v["delta_base"]
        if len(out) > len(by_key):
            sys.exit("the delta chain loops")


def apply_delta(data, delta, base_key, base_sha):
    if delta[:8] != MAGIC:
        sys.exit("not a casman delta (no CASMDLT1 magic)")
    fmt, page_size, page_count = struct.unpack_from("<IIQ", delta, 8)
    if fmt != 1:
        sys.exit(f"delta format {fmt}: this script reads format 1")
    want_base, result = delta[24:56].hex(), delta[56:88].hex()
    (n,) = struct.unpack_from("<H", delta, 88)
    key = delta[90 : 90 + n].decode()
    if key != base_key or want_base != base_sha:
        sys.exit(f"delta applies to {key} ({want_base}), not {base_key} ({base_sha})")
    at = 90 + n
    (records,) = struct.unpack_from("<Q", delta, at)
    at += 8
    size = page_count * page_size
    data = bytearray(data[:size]) + bytearray(max(0, size - len(data)))
    for _ in range(records):
        (index,) = struct.unpack_from("<Q", delta, at)
        at += 8
        data[index * page_size : (index + 1) * page_size] = delta[at : at + page_size]
        at += page_size
    if at != len(delta):
        sys.exit("delta has bytes after its last record")
    return bytes(data), result


def content_sha(v):
    return v.get("content_sha256") or v["sha256"]


def load_manifest(root, db):
    """The manifest of db, or one made of the versions' sidecars when it is
    missing or not valid JSON."""
    folder = os.path.join(root, "backups", db)
    try:
        with open(os.path.join(folder, "MANIFEST.json"), "rb") as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        print(f"MANIFEST.json of {db} unreadable ({e}); using the sidecars", file=sys.stderr)
    versions = []
    for name in sorted(os.listdir(folder)):
        if name.endswith(".meta.json") and ".restore_" not in name:
            with open(os.path.join(folder, name), "rb") as f:
                versions.append(json.load(f)["version"])
    return {"versions": versions}


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    root, key, output = sys.argv[1:]
    db = key.split("/")[1]
    manifest = load_manifest(root, db)
    versions = chain(manifest, key)
    full = versions[0]
    path = os.path.join(root, full["key"])
    if full["codec"] == "zstd":
        data = read_zst(path)
    else:
        with open(path, "rb") as f:
            data = f.read()
    for base, v in zip(versions, versions[1:]):
        data, result = apply_delta(data, read_zst(os.path.join(root, v["key"])), base["key"], content_sha(base))
        if result != content_sha(v):
            sys.exit(f"{v['key']}: the delta's result {result} is not the manifest's {content_sha(v)}")
    got = hashlib.sha256(data).hexdigest()
    want = content_sha(versions[-1])
    if want != "unknown" and got != want:
        sys.exit(f"rebuilt {key}: SHA-256 {got}, the manifest says {want}")
    with open(output, "wb") as f:
        f.write(data)
    print(f"{output}: {len(data)} bytes, SHA-256 {got}, from {len(versions)} object(s)")


if __name__ == "__main__":
    main()
