"""What one fake process holds: options, the store, schemas, bearer-token auth, fault switches,
the record of schema violations and requests, and the controllers that act on the store."""

import json
import os
import sys
import threading
import time
import uuid

from . import schemas as schemas_mod
from . import store as store_mod


class Options:
    """Everything the command line sets; tests may build one directly."""

    def __init__(self, **kw):
        self.mode = "kube"  # kube | argo | both
        self.host = "127.0.0.1"
        self.port = 0
        self.port_file = None
        self.control_port_file = None
        self.schemas_dir = None
        self.token_file = None
        self.service_account_tokens = None
        self.tls_cert = None
        self.tls_key = None
        self.tls_client_ca = None
        self.tls_ca = None
        self.work_dir = None
        self.history_limit = 10000
        self.bookmark_interval = 5.0
        self.watch_timeout = 1800.0
        self.pod_start_delay = 0.2
        self.crash_backoff = 1.0
        self.job_backoff = 10.0
        self.image_entrypoints = {}
        self.pod_env = {}
        self.violations_file = None
        self.self_check = False
        self.verbose = False
        self.faults = {}
        self.kubeconfig_out = None
        self.literal_argo_schema = False
        for k, v in kw.items():
            if not hasattr(self, k):
                raise TypeError(f"unknown option {k}")
            setattr(self, k, v)


class Auth:
    """Bearer tokens, re-read from the token file on every request (so tests can rotate them).
    The file holds one or more tokens, one per line. No token file: authentication is off."""

    def __init__(self, token_file):
        self.token_file = token_file

    def current_tokens(self):
        if not self.token_file:
            return []
        try:
            with open(self.token_file) as f:
                return [t.strip() for t in f.read().splitlines() if t.strip()]
        except OSError:
            return []

    def check(self, request, allow_cookie=False):
        """Returns the user name, or None when the request is not authenticated."""
        if not self.token_file:
            return "anonymous"
        if request.peer_cert:  # verified client certificate (x509 authentication)
            for rdn in request.peer_cert.get("subject", ()):
                for k, v in rdn:
                    if k == "commonName":
                        return v
            return "x509"
        header = request.headers.get("Authorization") or ""
        token = None
        if header[:7].lower() == "bearer ":
            token = header[7:].strip()
        elif allow_cookie:
            for part in (request.headers.get("Cookie") or "").split(";"):
                k, _, v = part.strip().partition("=")
                if k == "authorization" and v.startswith("Bearer "):
                    token = v[7:].strip()
        if token and token in self.current_tokens():
            return "token-user"
        return None


class ServiceAccountTokens:
    """The service account tokens TokenReview knows (--service-account-tokens FILE): a JSON
    object {token: {"namespace": NS, "name": SA, "audiences": [...]}} ("audiences" optional),
    re-read on every review so that tests revoke a token by rewriting the file. No file, or a
    file that does not exist (yet): no token is known. These tokens are not accepted as
    credentials for the API itself (that is --token-file)."""

    def __init__(self, path):
        self.path = path

    def lookup(self, token):
        """The entry of `token` ({"namespace", "name", "audiences"}), or None. Raises ValueError
        when the file is not what the flag promises (a test's mistake: answered with a 500)."""
        if not self.path:
            return None
        try:
            with open(self.path) as f:
                text = f.read()
        except OSError:
            return None
        where = f"--service-account-tokens {self.path}"
        try:
            doc = json.loads(text)
        except ValueError as e:
            raise ValueError(f"{where}: not JSON: {e}") from e
        if not isinstance(doc, dict):
            raise ValueError(f"{where}: must be a JSON object {{token: {{namespace, name}}}}")
        for entry in doc.values():
            ok = isinstance(entry, dict) and all(
                isinstance(entry.get(k), str) and entry[k] for k in ("namespace", "name"))
            auds = entry.get("audiences") if ok else None
            if ok and auds is not None:
                ok = isinstance(auds, list) and all(isinstance(a, str) and a for a in auds)
            if not ok:
                raise ValueError(f"{where}: the entry of a token must be {{\"namespace\": NS, "
                                 f"\"name\": SA, \"audiences\": [...] (optional)}}, not "
                                 f"{json.dumps(entry)[:200]}")
        entry = doc.get(token)
        if entry is None:
            return None
        return {"namespace": entry["namespace"], "name": entry["name"],
                "audiences": list(entry.get("audiences") or [])}

    @staticmethod
    def uid(namespace, name):
        """The service account's uid: stable for a namespace and name, across runs."""
        return str(uuid.uuid5(uuid.NAMESPACE_URL, f"dagd-fake:serviceaccount:{namespace}/{name}"))


class Faults:
    """Fault switches, set at start-up (--faults JSON) and through POST /fake/faults."""

    KEYS = ("drop_watches", "close_watches", "gone_next_watch", "gone_next_list",
            "fail_500_for_seconds", "fail_code", "fail_next", "refuse_connections_for_seconds",
            "compact", "latency_ms", "clear")

    def __init__(self, cluster):
        self.cluster = cluster
        self.lock = threading.Lock()
        self.gone_next_watch = 0
        self.gone_next_list = 0
        self.fail_until = 0.0
        self.fail_code = 500
        self.fail_next = []  # [{"count": n, "code": c, "method": m, "path": prefix}]
        self.latency = 0.0

    def apply(self, spec, server=None):
        unknown = [k for k in spec if k not in self.KEYS]
        if unknown:
            raise ValueError(f"unknown fault switches {unknown}; known: {list(self.KEYS)}")
        with self.lock:
            if spec.get("clear"):
                self.gone_next_watch = self.gone_next_list = 0
                self.fail_until = 0.0
                self.fail_next = []
                self.latency = 0.0
            if "gone_next_watch" in spec:
                self.gone_next_watch = int(spec["gone_next_watch"])
            if "gone_next_list" in spec:
                self.gone_next_list = int(spec["gone_next_list"])
            if "fail_code" in spec:
                self.fail_code = int(spec["fail_code"])
            if "fail_500_for_seconds" in spec:
                self.fail_until = time.monotonic() + float(spec["fail_500_for_seconds"])
            if "fail_next" in spec:
                rule = dict(spec["fail_next"])
                rule.setdefault("count", 1)
                rule.setdefault("code", 500)
                self.fail_next.append(rule)
            if "latency_ms" in spec:
                self.latency = float(spec["latency_ms"]) / 1000.0
        if spec.get("compact"):
            self.cluster.store.compact()
        if spec.get("drop_watches"):
            self.cluster.watches.drop_all(abort=True)
        if spec.get("close_watches"):
            self.cluster.watches.drop_all(abort=False)
        if spec.get("refuse_connections_for_seconds"):
            secs = float(spec["refuse_connections_for_seconds"])
            srv = server or self.cluster.api_server
            # answer the control request first, then go away
            threading.Timer(0.05, srv.close_listener, args=(secs,)).start()

    def take_gone_watch(self):
        with self.lock:
            if self.gone_next_watch > 0:
                self.gone_next_watch -= 1
                return True
            return False

    def take_gone_list(self):
        with self.lock:
            if self.gone_next_list > 0:
                self.gone_next_list -= 1
                return True
            return False

    def failure_for(self, method, path):
        """The HTTP status to fail this API request with, or None."""
        with self.lock:
            if time.monotonic() < self.fail_until:
                return self.fail_code
            for rule in self.fail_next:
                if rule["count"] > 0 and rule.get("method", method).upper() == method \
                        and path.startswith(rule.get("path", "")):
                    rule["count"] -= 1
                    return int(rule["code"])
            return None

    def state(self):
        with self.lock:
            return {"gone_next_watch": self.gone_next_watch,
                    "gone_next_list": self.gone_next_list,
                    "failing_for_seconds": max(0.0, self.fail_until - time.monotonic()),
                    "fail_code": self.fail_code, "fail_next": list(self.fail_next),
                    "latency_ms": self.latency * 1000.0,
                    "refusing": self.cluster.api_server.refusing()
                    if self.cluster.api_server else False}


class Watches:
    """Open watch and log streams, so that faults can drop them."""

    def __init__(self):
        self.lock = threading.Lock()
        self.streams = {}  # id -> (stream, description)
        self.next_id = 0
        self.opened = 0

    def add(self, stream, desc):
        with self.lock:
            self.next_id += 1
            self.opened += 1
            self.streams[self.next_id] = (stream, desc)
            return self.next_id

    def remove(self, wid):
        with self.lock:
            self.streams.pop(wid, None)

    def drop_all(self, abort=True):
        with self.lock:
            streams = [s for s, _ in self.streams.values()]
        for s in streams:
            if abort:
                s.abort()
            else:
                s.stop_requested = True

    def describe(self):
        with self.lock:
            return {"open": [d for _, d in self.streams.values()], "opened_total": self.opened}


class Violations:
    """Schema violations: kept for GET /fake/violations, printed loudly, appended to a file."""

    def __init__(self, path):
        self.path = path
        self.lock = threading.Lock()
        self.items = []

    def record(self, **v):
        v["time"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        with self.lock:
            self.items.append(v)
            if self.path:
                with open(self.path, "a") as f:
                    f.write(json.dumps(v) + "\n")
        print("\n*** fake: SCHEMA VIOLATION: " + json.dumps(v, indent=1) + "\n", file=sys.stderr,
              flush=True)

    def list(self):
        with self.lock:
            return list(self.items)


class RequestLog:
    def __init__(self, limit=20000):
        self.lock = threading.Lock()
        self.items = []
        self.limit = limit

    def add(self, entry):
        with self.lock:
            self.items.append(entry)
            if len(self.items) > self.limit:
                del self.items[: len(self.items) - self.limit]

    def list(self):
        with self.lock:
            return list(self.items)


class Cluster:
    def __init__(self, opts):
        self.opts = opts
        if not opts.work_dir:
            raise ValueError("work_dir is required")
        os.makedirs(opts.work_dir, exist_ok=True)
        self.store = store_mod.Store(history_limit=opts.history_limit)
        self.schemas = schemas_mod.Schemas(opts.schemas_dir, opts.literal_argo_schema)
        self.auth = Auth(opts.token_file)
        self.service_accounts = ServiceAccountTokens(opts.service_account_tokens)
        self.faults = Faults(self)
        self.watches = Watches()
        self.violations = Violations(opts.violations_file)
        self.requests = RequestLog()
        self.api_server = None
        self.port = 0
        # controllers, wired by main (imports kept local to avoid cycles)
        from . import argo, controllers, kubelet
        self.kubelet = kubelet.Kubelet(self)
        self.gc = controllers.GarbageCollector(self)
        self.jobs = controllers.JobController(self)
        self.argo = argo.WorkflowController(self)
        if opts.self_check:
            self.store.observers.append(self._self_check)

    def _self_check(self, ev):
        """--self-check: every object the fake itself writes must match its schema too."""
        if ev.type == "DELETED":
            return
        res = store_mod.RESOURCES[ev.resource]
        errs = self.schemas.errors(res.schema, ev.obj)
        if errs:
            self.violations.record(source="fake (self-check)", resource=ev.resource,
                                   name=ev.name, namespace=ev.namespace, event=ev.type,
                                   errors=errs)
