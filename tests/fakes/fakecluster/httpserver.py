"""A small HTTP/1.1 server on loopback: one thread per connection, keep-alive, chunked streams,
optional TLS and mutual TLS, and a listening socket that can be closed and reopened on the same
port (the "refuse connections" fault).

The application is one callable, app(request); it answers through request.send(...) or
request.stream(...).
"""

import http.server
import json
import select
import socket
import ssl
import sys
import threading
import time
import urllib.parse


class ClientGone(Exception):
    pass


class Stream:
    """A chunked response body (Transfer-Encoding: chunked)."""

    def __init__(self, request):
        self.request = request
        self.closed = False
        self._lock = threading.Lock()

    def write(self, data):
        if isinstance(data, str):
            data = data.encode()
        if not data:
            return
        with self._lock:
            if self.closed:
                raise ClientGone()
            try:
                w = self.request.handler.wfile
                w.write(b"%x\r\n" % len(data) + data + b"\r\n")
                w.flush()
            except (OSError, ValueError) as e:
                self.closed = True
                raise ClientGone() from e

    def write_json_line(self, obj):
        self.write(json.dumps(obj, separators=(",", ":")) + "\n")

    def end(self):
        """The terminating chunk: a clean end of the response (the connection stays usable)."""
        with self._lock:
            if self.closed:
                return
            self.closed = True
            try:
                self.request.handler.wfile.write(b"0\r\n\r\n")
                self.request.handler.wfile.flush()
            except (OSError, ValueError):
                self.request.handler.close_connection = True

    def abort(self):
        """Drops the connection mid-stream, without the terminating chunk (what a dying API
        server or a broken proxy does)."""
        with self._lock:
            self.closed = True
        self.request.handler.close_connection = True
        self.request.server.kill_connection(self.request.handler.connection)

    def client_gone(self):
        """True once the peer has closed its side (checked without blocking)."""
        if self.closed:
            return True
        sock = self.request.handler.connection
        try:
            r, _, _ = select.select([sock], [], [], 0)
            if not r:
                return False
            if isinstance(sock, ssl.SSLSocket):
                data = sock.recv(1)
            else:
                data = sock.recv(1, socket.MSG_PEEK)
            return not data
        except ssl.SSLWantReadError:
            return False
        except (OSError, ValueError):
            return True


class Request:
    def __init__(self, handler, server):
        self.handler = handler
        self.server = server
        self.method = handler.command
        parsed = urllib.parse.urlsplit(handler.path)
        self.raw_path = handler.path
        self.path = urllib.parse.unquote(parsed.path)
        self.query = urllib.parse.parse_qs(parsed.query, keep_blank_values=True)
        self.headers = handler.headers
        self.peer_cert = None
        self.status = None
        # Called once, just before a send() writes the answer (the request log, so that a client
        # that has its answer finds its request logged).
        self.on_respond = None
        self.started = time.time()
        self._body = None
        conn = handler.connection
        if isinstance(conn, ssl.SSLSocket):
            self.peer_cert = conn.getpeercert() or None

    def q(self, name, default=None):
        vals = self.query.get(name)
        return vals[-1] if vals else default

    def q_bool(self, name):
        """apimachinery's Convert_Slice_string_To_bool: present and not "0"/"false" is true."""
        v = self.q(name)
        return v is not None and v != "0" and v.lower() != "false"

    def body(self):
        if self._body is not None:
            return self._body
        h = self.handler
        if (h.headers.get("Transfer-Encoding") or "").lower() == "chunked":
            data = b""
            while True:
                line = h.rfile.readline(65537)
                size = int(line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while h.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass
                    break
                data += h.rfile.read(size)
                h.rfile.readline(65537)
            self._body = data
        else:
            n = int(h.headers.get("Content-Length") or 0)
            self._body = h.rfile.read(n) if n > 0 else b""
        return self._body

    def send(self, status, body=b"", content_type="application/json", headers=None):
        if isinstance(body, (dict, list)):
            body = (json.dumps(body, separators=(",", ":")) + "\n").encode()
        elif isinstance(body, str):
            body = body.encode()
        self.status = status
        if self.on_respond is not None:
            hook, self.on_respond = self.on_respond, None
            hook()
        h = self.handler
        h.send_response(status)
        h.send_header("Content-Type", content_type)
        h.send_header("Content-Length", str(len(body)))
        h.send_header("Cache-Control", "no-cache, private")
        for k, v in (headers or {}).items():
            h.send_header(k, v)
        if h.close_connection:
            h.send_header("Connection", "close")
        h.end_headers()
        if self.method != "HEAD":
            h.wfile.write(body)
        h.wfile.flush()

    def stream(self, status=200, content_type="application/json", headers=None):
        self.status = status
        h = self.handler
        h.send_response(status)
        h.send_header("Content-Type", content_type)
        h.send_header("Transfer-Encoding", "chunked")
        h.send_header("Cache-Control", "no-cache, private")
        for k, v in (headers or {}).items():
            h.send_header(k, v)
        h.end_headers()
        h.wfile.flush()
        return Stream(self)


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "dagd-fake"
    sys_version = ""
    timeout = 300  # idle keep-alive connections

    def __init__(self, sock, addr, server):
        self.fake_server = server
        super().__init__(sock, addr, server)

    def _dispatch(self):
        req = Request(self, self.fake_server)
        try:
            self.fake_server.app(req)
            self._drain(req)
        except ClientGone:
            self.close_connection = True
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
            self.close_connection = True
        except Exception as e:  # a bug in the fake: answer 500 and say so loudly
            import traceback
            traceback.print_exc()
            print(f"fake: internal error on {self.command} {self.path}: {e}", file=sys.stderr)
            if req.status is None:
                try:
                    req.send(500, {"kind": "Status", "apiVersion": "v1", "metadata": {},
                                   "status": "Failure", "message": f"fake internal error: {e}",
                                   "reason": "InternalError", "code": 500})
                except OSError:
                    pass
            self.close_connection = True

    def _drain(self, req):
        """A request body the application did not read (an early 401, 404, fault…) must be
        consumed, or the next request on this keep-alive connection would start inside it."""
        if req._body is not None or self.close_connection:
            return
        chunked = (self.headers.get("Transfer-Encoding") or "").lower() == "chunked"
        length = int(self.headers.get("Content-Length") or 0)
        if not chunked and length == 0:
            return
        if length > 16 * 1024 * 1024:
            self.close_connection = True
            return
        req.body()

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _dispatch

    def log_message(self, fmt, *args):
        if self.fake_server.verbose:
            sys.stderr.write("fake: %s %s\n" % (self.address_string(), fmt % args))


class Server:
    """Listens on host:port; `app` handles each request. close_listener()/reopen() implement the
    refused-connections window; kill_connection() and kill_all_connections() drop peers."""

    def __init__(self, app, host="127.0.0.1", port=0, ssl_context=None, verbose=False,
                 name="api"):
        self.app = app
        self.host = host
        self.port = port
        self.ssl_context = ssl_context
        self.verbose = verbose
        self.name = name
        self._sock = None
        self._lock = threading.Lock()
        self._conns = set()
        self._stopped = False
        self._reopen_at = None
        self._open()
        self._thread = threading.Thread(target=self._loop, name=f"accept-{name}", daemon=True)

    def start(self):
        self._thread.start()

    def _open(self):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((self.host, self.port))
        s.listen(128)
        self.port = s.getsockname()[1]
        self._sock = s

    def refusing(self):
        with self._lock:
            return self._sock is None

    def close_listener(self, seconds, kill_connections=True):
        """Closes the listening socket (connects now fail with ECONNREFUSED) and reopens it on
        the same port after `seconds`; existing connections are dropped too."""
        with self._lock:
            self._reopen_at = time.monotonic() + seconds
            if self._sock is not None:
                try:
                    # shutdown first: it stops the listener at once even while the accept
                    # thread is inside select() on it (close alone would wait for that)
                    self._sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                try:
                    self._sock.close()
                finally:
                    self._sock = None
        if kill_connections:
            self.kill_all_connections()

    def kill_connection(self, conn):
        try:
            conn.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def kill_all_connections(self, except_conn=None):
        with self._lock:
            conns = list(self._conns)
        for c in conns:
            if c is not except_conn:
                self.kill_connection(c)

    def stop(self):
        self._stopped = True
        with self._lock:
            if self._sock is not None:
                try:
                    self._sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                self._sock.close()
                self._sock = None
        self.kill_all_connections()

    def _loop(self):
        while not self._stopped:
            with self._lock:
                sock = self._sock
                if sock is None and self._reopen_at is not None \
                        and time.monotonic() >= self._reopen_at:
                    for _ in range(50):
                        try:
                            self._open()
                            break
                        except OSError:
                            time.sleep(0.1)
                    self._reopen_at = None
                    sock = self._sock
            if sock is None:
                time.sleep(0.05)
                continue
            try:
                r, _, _ = select.select([sock], [], [], 0.1)
                if not r:
                    continue
                conn, addr = sock.accept()
            except (OSError, ValueError):
                continue
            threading.Thread(target=self._serve, args=(conn, addr), daemon=True,
                             name=f"conn-{self.name}").start()

    def _serve(self, conn, addr):
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.ssl_context is not None:
            try:
                conn.settimeout(10)
                conn = self.ssl_context.wrap_socket(conn, server_side=True)
                conn.settimeout(None)
            except (OSError, ssl.SSLError) as e:
                if self.verbose:
                    print(f"fake: TLS handshake from {addr} failed: {e}", file=sys.stderr)
                conn.close()
                return
        with self._lock:
            self._conns.add(conn)
        try:
            _Handler(conn, addr, self)
        except (OSError, ssl.SSLError):
            pass
        finally:
            with self._lock:
                self._conns.discard(conn)
            try:
                conn.close()
            except OSError:
                pass


def make_ssl_context(cert, key, client_ca=None):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    if client_ca:
        ctx.load_verify_locations(client_ca)
        ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx
