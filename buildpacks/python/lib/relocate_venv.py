"""Makes a freshly built virtual environment relocatable and reproducible.

    python3 relocate_venv.py VENV

A venv remembers where it was built: the activate scripts and pyvenv.cfg's
`command` name that path, and pip writes console scripts whose shebang is the
absolute path of the venv's python. A slug is unpacked somewhere else, so the
scripts get pip's own relocatable form (sh finds the python beside the script),
and what names the build path goes. The wheel RECORD files are updated to the
rewritten scripts' hashes so that the environment stays consistent for pip.
"""

import base64
import csv
import hashlib
import io
import os
import sys

RELOCATABLE = (
    b"#!/bin/sh\n"
    b"'''exec' \"$(dirname -- \"$(realpath -- \"$0\")\")\"/python \"$0\" \"$@\"\n"
    b"' '''\n"
)


def record_hash(data):
    digest = hashlib.sha256(data).digest()
    return "sha256=" + base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def relocate(venv):
    venv = os.path.abspath(venv)
    bin_dir = os.path.join(venv, "bin")
    for name in os.listdir(bin_dir):
        if name.startswith("activate") or name == "Activate.ps1":
            os.unlink(os.path.join(bin_dir, name))

    config = os.path.join(venv, "pyvenv.cfg")
    with open(config) as file:
        lines = [line for line in file if not line.startswith("command = ")]
    with open(config, "w") as file:
        file.writelines(lines)

    rewritten = {}
    prefix = ("#!" + os.path.join(bin_dir, "python")).encode()
    for name in sorted(os.listdir(bin_dir)):
        path = os.path.join(bin_dir, name)
        if os.path.islink(path) or not os.path.isfile(path):
            continue
        with open(path, "rb") as file:
            data = file.read()
        first, _, rest = data.partition(b"\n")
        if not first.startswith(prefix):
            continue
        data = RELOCATABLE + rest
        with open(path, "wb") as file:
            file.write(data)
        rewritten[name] = (record_hash(data), str(len(data)))

    if rewritten:
        update_records(venv, rewritten)


def update_records(venv, rewritten):
    for root, _, files in os.walk(os.path.join(venv, "lib")):
        if "RECORD" not in files or not root.endswith(".dist-info"):
            continue
        path = os.path.join(root, "RECORD")
        with open(path, newline="") as file:
            rows = list(csv.reader(file))
        changed = False
        for row in rows:
            script = os.path.basename(row[0]) if row and "/bin/" in "/" + row[0] else None
            if script in rewritten and len(row) == 3:
                row[1], row[2] = rewritten[script]
                changed = True
        if changed:
            out = io.StringIO()
            csv.writer(out, lineterminator="\n").writerows(rows)
            with open(path, "w", newline="") as file:
                file.write(out.getvalue())


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: relocate_venv.py VENV")
    relocate(sys.argv[1])
