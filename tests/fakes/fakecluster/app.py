"""Request dispatch: control endpoints (/fake/...), fault injection, then the Argo Server API
and/or the Kubernetes API depending on --mode."""

import json
import time

from .argo import ArgoApi, ArgoError
from .k8s_api import REASONS, ApiError, KubeApi


class App:
    def __init__(self, cluster, control_only=False):
        self.cluster = cluster
        self.kube = KubeApi(cluster)
        self.argo = ArgoApi(cluster, self.kube)
        self.control_only = control_only

    def __call__(self, req):
        req.user = None
        if not req.path.startswith("/fake"):
            req.on_respond = lambda: self._log(req)
        try:
            if req.path.startswith("/fake/") or req.path == "/fake":
                return self.control(req)
            if self.control_only:
                raise ApiError(404, "the control port serves /fake/... only")
            mode = self.cluster.opts.mode
            is_argo = mode in ("argo", "both") and self._argo_path(req.path)
            faults = self.cluster.faults
            if faults.latency:
                time.sleep(faults.latency)
            code = faults.failure_for(req.method, req.path)
            if code is not None:
                self._fail(req, code, is_argo)
                return
            if is_argo:
                self.argo.route(req)
            elif mode in ("kube", "both") and self.kube.route(req):
                pass
            else:
                raise ApiError(404, "the server could not find the requested resource",
                               details={})
        except ApiError as e:
            if req.status is None:
                req.send(e.code, e.status(), headers=e.headers)
        except ArgoError as e:
            if req.status is None:
                req.send(e.http, e.body())
        finally:
            if req.on_respond is not None:  # a stream (logged at its end), or no answer sent
                hook, req.on_respond = req.on_respond, None
                hook()

    def _log(self, req):
        self.cluster.requests.add({
            "time": req.started, "method": req.method, "path": req.path,
            "query": {k: v[-1] for k, v in req.query.items()}, "status": req.status,
            "user": req.user, "duration": round(time.time() - req.started, 4)})

    def _argo_path(self, path):
        return any(path.startswith(p) for p in ("/api/v1/workflows", "/api/v1/workflow-events",
                                                 "/api/v1/info", "/api/v1/version",
                                                 "/api/v1/userinfo"))

    def _fail(self, req, code, is_argo):
        headers = {}
        if code in (429, 503):
            headers["Retry-After"] = "1"
        if is_argo:
            grpc = {500: 13, 503: 14, 429: 8, 504: 4}.get(code, 13)
            req.send(code, ArgoError(grpc, f"fake fault: injected HTTP {code}").body(),
                     headers=headers)
            return
        details = {"causes": [{"message": "fake fault injection"}]}
        if code in (429, 503):
            details["retryAfterSeconds"] = 1
        msg = {500: "Internal error occurred: fake fault injection",
               503: "service unavailable (fake fault injection)",
               429: "Too many requests, please try again later.",
               504: "Timeout: request did not complete within the allotted timeout"}.get(
                   code, f"fake fault injection ({code})")
        err = ApiError(code, msg, reason=REASONS.get(code, "InternalError"), details=details)
        req.send(code, err.status(), headers=headers)

    # --- /fake/... ----------------------------------------------------------------------------

    def control(self, req):
        c = self.cluster
        path = req.path.rstrip("/")
        if path == "/fake/healthz":
            req.send(200, {"ok": True})
        elif path == "/fake/violations":
            req.send(200, {"violations": c.violations.list()})
        elif path == "/fake/objects":
            objs, rv = c.store.all_objects()
            want = req.q("resource")
            if want:
                objs = {want: objs.get(want, [])}
            req.send(200, {"resourceVersion": str(rv), "objects": objs})
        elif path == "/fake/requests":
            req.send(200, {"requests": c.requests.list()})
        elif path == "/fake/watches":
            req.send(200, c.watches.describe())
        elif path == "/fake/podroots":
            with c.kubelet.lock:
                roots = {f"{w.ns}/{w.name}": w.root for w in c.kubelet.workers.values()}
            req.send(200, {"podRoots": roots})
        elif path == "/fake/compact" and req.method == "POST":
            c.store.compact()
            req.send(200, {"compactedResourceVersion": str(c.store.compacted_rv)})
        elif path == "/fake/faults":
            if req.method == "POST":
                try:
                    spec = json.loads(req.body() or b"{}")
                    c.faults.apply(spec)
                except (ValueError, TypeError) as e:
                    req.send(400, {"error": str(e)})
                    return
            req.send(200, c.faults.state())
        else:
            req.send(404, {"error": f"no control endpoint {req.method} {req.path}",
                           "endpoints": ["GET /fake/healthz", "GET /fake/violations",
                                         "GET /fake/objects[?resource=jobs]",
                                         "GET /fake/requests", "GET /fake/watches",
                                         "GET /fake/podroots", "POST /fake/compact",
                                         "GET|POST /fake/faults"]})
