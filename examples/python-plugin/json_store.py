#!/usr/bin/python3
"""jsonstore: a credhost provider, written in Python, that keeps one
credential in a JSON file. credhost_plugin does the plugin's plumbing; this
file is only the store.

The file:

    {"access_token": "...", "refresh_token": "...", "expires_at": 1767225600000,
     "scopes": ["user:inference"], "metadata": {"subscriptionType": "max"}}

expires_at is epoch milliseconds (absent or null: unknown). Keys it does not
know are kept by a save.

Config:

    path: FILE     required; a leading ~ is the home directory

Refresh uses the host's oauth block (the refresh_token grant) when it has a
token_url; without one the store cannot refresh. The host holds FILE.lock
(flock) around each refresh, so credhost processes refresh it one at a time.

Use it from a credhost config:

    providers:
      - name: team
        command: /opt/credhost/python-plugin/json_store.py
        config: {path: ~/.config/team/credential.json}

or pinned, so that what runs is what was hashed (README.md):

      - name: team
        command: /usr/bin/python3
        args: [-I, -B]
        script: /opt/credhost/python-plugin/json_store.py
        script_sha256: <sha256sum of json_store.py>
        modules: /opt/credhost/python-plugin
        modules_sha256: <tree hash of the directory>
        config: {path: ~/.config/team/credential.json}
"""

import datetime
import json
import os
import stat
import sys
import tempfile
import threading

# Pinned by credhost (script: and modules:), this file runs as /dev/fd/N
# under `python3 -I`: neither its directory nor PYTHONPATH is on sys.path,
# and the host names the pinned module directory instead.
if os.environ.get("CREDHOST_PLUGIN_MODULES"):
    sys.path.insert(0, os.environ["CREDHOST_PLUGIN_MODULES"])

import credhost_plugin as chp  # noqa: E402

# A store file larger than this is refused: a credential is a few KiB.
MAX_FILE = 1 << 20


class JSONStore(chp.Provider):
    def __init__(self):
        self._lock = threading.Lock()  # serialises saves in this process
        self._path = ""
        self._oauth = chp.OAuthConfig()

    def info(self, ctx):
        locks = [chp.Lock(kind="flock", path=self._path + ".lock")] if self._path else []
        return chp.Info(name="jsonstore", version="1", can_save=True, can_refresh=bool(self._oauth.token_url), locks=locks)

    def configure(self, ctx, req):
        c = req.decode({"path": str}, required=("path",))
        path = os.path.expanduser(c["path"])
        if not os.path.isabs(path):
            raise chp.InvalidConfig("key 'path': %r is not absolute (nor starts with ~)" % c["path"])
        self._path, self._oauth = os.path.realpath(path), req.oauth

    def _load(self):
        """The file's object, or None when there is no file. A fault names
        the path, never a value from the file."""
        try:
            with open(self._path, "rb") as f:
                if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
                    raise chp.Error("%s is not a regular file" % self._path)
                raw = f.read(MAX_FILE + 1)
        except FileNotFoundError:
            return None
        except OSError as e:
            raise chp.Error("read %s: %s" % (self._path, e.strerror))
        if len(raw) > MAX_FILE:
            raise chp.Error("%s is larger than %d bytes" % (self._path, MAX_FILE))
        try:
            doc = json.loads(raw)
        except ValueError as e:
            raise chp.Error("%s is not valid JSON (line %d, column %d)" % (self._path, e.lineno, e.colno))
        if not isinstance(doc, dict):
            raise chp.Error("%s does not hold a JSON object" % self._path)
        return doc

    def read(self, ctx):
        doc = self._load()
        if doc is None:
            raise chp.NotFound("no file at %s" % self._path)
        if not doc.get("access_token"):
            raise chp.NotFound("%s holds no access_token" % self._path)
        cred = chp.Credential()
        for key, want in (("access_token", str), ("refresh_token", str), ("scopes", list), ("metadata", dict)):
            v = doc.get(key)
            if v is None:
                continue
            if not isinstance(v, want) or (want is list and not all(isinstance(s, str) for s in v)) or (
                    want is dict and not all(isinstance(s, str) for s in v.values())):
                raise chp.Error("%s: %s has the wrong type" % (self._path, key))
            setattr(cred, key, v)
        exp = doc.get("expires_at")
        if exp is not None:
            if not isinstance(exp, int) or isinstance(exp, bool) or exp < 0:
                raise chp.Error("%s: expires_at is not epoch milliseconds" % self._path)
            if exp > 0:
                cred.expires_at = datetime.datetime.fromtimestamp(exp / 1000, datetime.timezone.utc)
        return cred

    def save(self, ctx, cred):
        with self._lock:
            doc = self._load() or {}
            doc["access_token"] = cred.access_token
            doc["refresh_token"] = cred.refresh_token
            doc["expires_at"] = round(cred.expires_at.timestamp() * 1000) if cred.expires_at else None
            doc["scopes"] = list(cred.scopes)
            doc["metadata"] = dict(cred.metadata)
            try:
                self._write(doc)
            except OSError as e:
                raise chp.Error("save %s: %s" % (self._path, e.strerror or e))

    def _write(self, doc):
        directory = os.path.dirname(self._path)
        os.makedirs(directory, mode=0o700, exist_ok=True)
        # Atomic: a temporary file beside it, 0600, synced, renamed.
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".jsonstore-")
        try:
            with os.fdopen(fd, "w") as f:
                json.dump(doc, f, indent=2)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self._path)
        except BaseException:
            os.unlink(tmp)
            raise
        dfd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)

    def refresh(self, ctx, cred):
        if not self._oauth.token_url:
            raise chp.Unsupported("no oauth token_url is configured")
        return chp.refresh_token_grant(ctx, self._oauth, cred)

    def check(self, ctx):
        try:
            st = os.stat(self._path)
        except FileNotFoundError:
            return [chp.Finding("warning", "no file at %s" % self._path, "save a credential there, e.g. with `credhost refresh`")]
        if st.st_mode & 0o077:
            return [chp.Finding("error", "%s is readable by others (mode %o)" % (self._path, st.st_mode & 0o777), "chmod 600 %s" % self._path)]
        return [chp.Finding("ok", "%s is private" % self._path)]


if __name__ == "__main__":
    chp.serve(JSONStore())
