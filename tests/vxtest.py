"""Helpers shared by the Python integration tests that drive the real `vidx` binary
(tests/web, tests/indexer, tests/cli): running vidx in a clean environment, FFmpeg, a running
`vidx serve` on a loopback port, read-only catalog access, the reference fixtures' models and
the command line every test script takes.

Python's standard library only (Debian's /usr/bin/python3). A test imports it from its own
folder with `sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))`. Nothing here
asserts anything about vidx: the checks stay in the tests.
"""
import argparse
import http.client
import json
import os
import re
import shutil
import signal
import socket
import sqlite3
import struct
import subprocess
import sys
import tempfile
import unittest
import urllib.parse

# Set by a developer's shell, they would change what vidx reads: never passed on.
VIDX_VARIABLES = ("VIDX_DATA", "VIDX_MODEL", "VIDX_TOKEN")


def clean_env(log="warn", extra=None):
    """This process's environment without VIDX_DATA, VIDX_MODEL and VIDX_TOKEN; VIDX_LOG set to
    `log` (None leaves it as it is); then `extra` (a dict) added over it."""
    e = dict(os.environ)
    for k in VIDX_VARIABLES:
        e.pop(k, None)
    if log is not None:
        e["VIDX_LOG"] = log
    if extra:
        e.update(extra)
    return e


def run(vidx, *args, log="warn", env=None, timeout=120, errors="replace"):
    """Runs `vidx args...` in clean_env(log, env) and returns (exit code, stdout, stderr) as
    text; `errors` is how undecodable output is read ("strict" raises)."""
    p = subprocess.run([vidx, *args], capture_output=True, text=True, env=clean_env(log, env),
                       timeout=timeout, errors=errors)
    return p.returncode, p.stdout, p.stderr


def ffmpeg(*args):
    """Runs the FFmpeg CLI quietly, overwriting its output; raises if it fails."""
    subprocess.run(["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y", *args],
                   check=True, timeout=120)


def srt_time(ms):
    """An SRT timestamp, HH:MM:SS,mmm."""
    return f"{ms // 3600000:02}:{ms // 60000 % 60:02}:{ms // 1000 % 60:02},{ms % 1000:03}"


def reference_fixture(source_dir, *parts):
    """A path under tests/reference/fixtures, e.g. ("models", "distilled_like_f32")."""
    return os.path.join(source_dir, "tests", "reference", "fixtures", *parts)


def open_catalog(data):
    """A read-only sqlite3 connection to DATA/catalog.db (the caller closes it)."""
    return sqlite3.connect(f"file:{data}/catalog.db?mode=ro", uri=True)


def floats(blob):
    """A stored vector (little-endian float32 bytes) as a tuple of floats."""
    return struct.unpack(f"{len(blob) // 4}f", blob)


def parse_args(*required):
    """Parses the required `--name VALUE` options; returns (namespace, the other arguments,
    which go to unittest_main)."""
    ap = argparse.ArgumentParser()
    for name in required:
        ap.add_argument(name, required=True)
    return ap.parse_known_args()


def unittest_main(rest):
    """Runs this script's unittest cases verbosely with the arguments parse_args left over."""
    unittest.main(argv=[sys.argv[0], "-v", *rest])


class TempDirTest(unittest.TestCase):
    """Each test in its own temporary folder, removed afterwards: self.tmp, self.data (the data
    directory, left for vidx to make) and, where lib_name is set, self.lib (made empty)."""
    prefix = "vidx-test-"
    lib_name = None

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix=self.prefix)
        self.data = os.path.join(self.tmp, "data")
        if self.lib_name:
            self.lib = os.path.join(self.tmp, self.lib_name)
            os.makedirs(self.lib)

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def db(self):
        """A read-only connection to this test's catalog (see open_catalog)."""
        return open_catalog(self.data)


class Server:
    """A running `vidx --data DATA GLOBAL_ARGS... serve --listen 127.0.0.1:0 SERVE_ARGS...`;
    the port is read from its first line on stdout. `timeout` is each request's default (s),
    `stop_timeout` how long stop() waits after SIGTERM. The caller must call stop()."""

    def __init__(self, vidx, data, *serve_args, global_args=(), env=None, timeout=20,
                 stop_timeout=15):
        self.timeout, self.stop_timeout = timeout, stop_timeout
        self.p = subprocess.Popen([vidx, "--data", data, *global_args, "serve", "--listen",
                                   "127.0.0.1:0", *serve_args], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True,
                                  env=env if env is not None else clean_env())
        line = self.p.stdout.readline()
        m = re.search(r"http://127\.0\.0\.1:(\d+)/", line)
        if not m:
            self.p.kill()
            raise AssertionError(f"no address in {line!r}: {self.p.stderr.read()}")
        self.port = int(m.group(1))
        self.base = f"http://127.0.0.1:{self.port}"

    def request(self, method, path, body=None, headers=None, timeout=None):
        """Returns (status, {lower-case header: value}, body bytes)."""
        c = http.client.HTTPConnection("127.0.0.1", self.port,
                                       timeout=self.timeout if timeout is None else timeout)
        try:
            c.request(method, path, body=body, headers=headers or {})
            r = c.getresponse()
            return r.status, dict((k.lower(), v) for k, v in r.getheaders()), r.read()
        finally:
            c.close()

    def json(self, method, path, body=None, headers=None):
        """Returns (status, the parsed JSON body); a dict or list body is sent as JSON."""
        if isinstance(body, (dict, list)):
            body = json.dumps(body)
            headers = dict(headers or {}, **{"Content-Type": "application/json"})
        s, h, b = self.request(method, path, body, headers)
        return s, json.loads(b)

    def get(self, path, **args):
        """GET path with args as its query string; returns (status, parsed JSON)."""
        return self.json("GET", path + ("?" + urllib.parse.urlencode(args) if args else ""))

    def raw(self, data, timeout=5, tolerate_resets=False):
        """Sends bytes as they are (no client-side normalisation) and returns the status
        line's code (None: no answer). With tolerate_resets, a connection the server resets or
        a read that times out ends the answer instead of raising."""
        quiet = (BrokenPipeError, ConnectionResetError) if tolerate_resets else ()
        with socket.create_connection(("127.0.0.1", self.port), timeout=timeout) as sk:
            try:
                sk.sendall(data)
            except quiet:
                pass
            out = b""
            try:
                while b"\r\n" not in out:
                    chunk = sk.recv(4096)
                    if not chunk:
                        break
                    out += chunk
            except (ConnectionResetError, socket.timeout) if tolerate_resets else ():
                pass
        m = re.match(rb"HTTP/1\.[01] (\d{3})", out)
        return int(m.group(1)) if m else None

    def stop(self, raise_on_hang=True):
        """SIGTERM (if still running), then the exit code. A server that does not exit within
        stop_timeout is killed; then TimeoutExpired is raised, or with raise_on_hang=False the
        code of the kill returned."""
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
        try:
            code = self.p.wait(timeout=self.stop_timeout)
        except subprocess.TimeoutExpired:
            self.p.kill()
            code = self.p.wait()
            if raise_on_hang:
                raise
        self.p.stdout.close()
        self.p.stderr.close()
        return code
