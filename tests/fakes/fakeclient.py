"""A tiny client and process harness for the fakes, for Python tests (test_fakes.py) and for
poking at a running fake by hand. Standard library only."""

import http.client
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
_DEFAULT = object()


def _read(path):
    with open(path) as f:
        return f.read()


class Response:
    def __init__(self, status, headers, data):
        self.status = status
        self.headers = headers
        self.data = data
        try:
            self.json = json.loads(data) if data else None
        except ValueError:
            self.json = None

    @property
    def text(self):
        return self.data.decode(errors="replace")

    def __repr__(self):
        return f"<Response {self.status} {self.data[:300]!r}>"


class Stream:
    """A streaming response: lines() yields JSON objects (or raw lines)."""

    def __init__(self, conn, resp):
        self.conn = conn
        self.resp = resp
        self.status = resp.status
        self.headers = resp.headers
        self._buf = b""

    def readline(self):
        """One line (bytes); b"" at a clean end (the terminating chunk); raises
        http.client.IncompleteRead (or ConnectionError) when the server drops the connection
        mid-stream. (HTTPResponse.readline cannot tell those two apart; read1 can.)"""
        while b"\n" not in self._buf:
            data = self.resp.read1(65536)
            if not data:
                line, self._buf = self._buf, b""
                return line
            self._buf += data
        line, _, self._buf = self._buf.partition(b"\n")
        return line + b"\n"

    def events(self):
        while True:
            line = self.readline()
            if not line:
                return
            line = line.strip()
            if not line:
                continue
            if line.startswith(b"data: "):
                line = line[6:]
            yield json.loads(line)

    def close(self):
        try:
            self.conn.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class Client:
    def __init__(self, port, token=None, ssl_context=None, host="127.0.0.1", timeout=30):
        self.port = port
        self.token = token
        self.ssl_context = ssl_context
        self.host = host
        self.timeout = timeout

    def _conn(self, timeout=None):
        t = timeout or self.timeout
        if self.ssl_context is not None:
            return http.client.HTTPSConnection(self.host, self.port, timeout=t,
                                               context=self.ssl_context)
        return http.client.HTTPConnection(self.host, self.port, timeout=t)

    def _headers(self, token, headers, body, ctype):
        h = dict(headers or {})
        tok = self.token if token is _DEFAULT else token
        if tok:
            h["Authorization"] = f"Bearer {tok}"
        if body is not None and ctype:
            h["Content-Type"] = ctype
        return h

    def request(self, method, path, body=None, token=_DEFAULT, headers=None,
                ctype="application/json"):
        if isinstance(body, (dict, list)):
            body = json.dumps(body)
        conn = self._conn()
        try:
            conn.request(method, path, body=body,
                         headers=self._headers(token, headers, body, ctype))
            resp = conn.getresponse()
            return Response(resp.status, resp.headers, resp.read())
        finally:
            conn.close()

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, body, **kw):
        return self.request("POST", path, body, **kw)

    def put(self, path, body=None, **kw):
        return self.request("PUT", path, body if body is not None else {}, **kw)

    def delete(self, path, body=None, **kw):
        return self.request("DELETE", path, body, **kw)

    def stream(self, path, token=_DEFAULT, headers=None, timeout=30):
        conn = self._conn(timeout)
        conn.request("GET", path, headers=self._headers(token, headers, None, None))
        return Stream(conn, conn.getresponse())


class FakeProcess:
    """Starts fake_kube.py on a free port in a temporary directory; stop() returns its exit
    status (3 means it received schema violations). token=None: no --token-file, so no
    authentication (then kubectl can use plain HTTP: client-go sends tokens over TLS only)."""

    def __init__(self, mode="kube", extra_args=(), token="test-token", schemas=None):
        self.dir = tempfile.mkdtemp(prefix="fake-test-")
        self.token_file = os.path.join(self.dir, "token")
        self.port_file = os.path.join(self.dir, "port")
        self.control_port_file = os.path.join(self.dir, "control-port")
        self.log_file = os.path.join(self.dir, "fake.log")
        self.violations_file = os.path.join(self.dir, "violations.jsonl")
        self.token = token
        if token is not None:
            with open(self.token_file, "w") as f:
                f.write(token + "\n")
        # Debian's interpreter, so that Debian's python3-jsonschema is the one in use
        python = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable
        args = [python, os.path.join(HERE, "fake_kube.py"), "--mode", mode,
                "--port-file", self.port_file, "--control-port-file", self.control_port_file,
                "--work-dir", os.path.join(self.dir, "work"),
                "--violations-file", self.violations_file, "--self-check"]
        if token is not None:
            args += ["--token-file", self.token_file]
        if schemas:
            args += ["--schemas", schemas]
        args += list(extra_args)
        self.log = open(self.log_file, "w")
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while not (os.path.exists(self.port_file) and os.path.exists(self.control_port_file)):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("fake did not start:\n" + _read(self.log_file))
            time.sleep(0.05)
        self.port = int(_read(self.port_file))
        self.control_port = int(_read(self.control_port_file))
        self.control = Client(self.control_port)

    def client(self, **kw):
        kw.setdefault("token", self.token)
        return Client(self.port, **kw)

    def set_token(self, token):
        with open(self.token_file, "w") as f:
            f.write(token + "\n")

    def faults(self, **spec):
        r = self.control.post("/fake/faults", spec)
        assert r.status == 200, r
        return r.json

    def violations(self):
        return self.control.get("/fake/violations").json["violations"]

    def output(self):
        if not self.log.closed:
            self.log.flush()
        return _read(self.log_file)

    def cleanup(self):
        """Removes the temporary directory (after stop())."""
        shutil.rmtree(self.dir, ignore_errors=True)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        return self.proc.returncode
