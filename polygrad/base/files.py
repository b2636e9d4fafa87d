"""Files polygrad writes (reports, listings): checked before any work starts, and
written atomically, so that a failed write never turns a good previous file into half of one.

>>> import os, tempfile
>>> d = tempfile.mkdtemp()
>>> write_atomic(os.path.join(d, "r.json"), "{}\\n")
>>> open(os.path.join(d, "r.json")).read()
'{}\\n'
>>> check_writable(os.path.join(d, "no", "r.json"), "--json")[:6]
'--json'
"""

from __future__ import annotations

import contextlib
import os
import tempfile

__all__ = ["write_atomic", "check_writable"]


def write_atomic(path, text, encoding="utf-8"):
    """Write ``text`` to ``path`` all at once: a temporary file in the same folder, flushed
    to disk, then ``os.replace``. A failed write (disk full, a file size limit, an error
    while producing the text) leaves the previous file as it was and no temporary behind."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "w", encoding=encoding) as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        if os.path.exists(path):          # keep the permissions the old file had
            with contextlib.suppress(OSError):
                os.chmod(tmp, os.stat(path).st_mode & 0o7777)
        else:                             # mkstemp's 0600 is for secrets: use the umask
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def check_writable(path, option, *, make_folders=False):
    """None when ``path`` can be written; otherwise a message naming ``option`` (the
    command-line option that gave it), what is wrong and the fix. With ``make_folders``,
    missing folders are fine as long as the nearest existing one is a writable folder
    (the writer makes them)."""
    path = os.path.abspath(os.fspath(path))
    folder = os.path.dirname(path)
    if os.path.isdir(path):
        return f"{option} {path}: is a folder; give a file name inside it"
    if make_folders:
        while not os.path.exists(folder):
            folder = os.path.dirname(folder)
        if not os.path.isdir(folder):
            return f"{option} {path}: {folder} is a file, not a folder; choose another path"
    elif not os.path.isdir(folder):
        return f"{option} {path}: the folder {folder} does not exist; create it first"
    if not os.access(folder, os.W_OK | os.X_OK):
        return f"{option} {path}: the folder {folder} is not writable; choose another path"
    if os.path.exists(path) and not os.access(path, os.W_OK):
        return f"{option} {path}: the file is read-only; choose another path or make it writable"
    return None
