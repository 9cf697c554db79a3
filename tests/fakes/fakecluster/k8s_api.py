"""The Kubernetes REST API subset: create/get/list/watch/update/patch/delete of pods, configmaps,
secrets, jobs (batch/v1) and Argo workflows (the argoproj.io/v1alpha1 CRD), pod logs, TokenReview
(authentication.k8s.io/v1, create only), discovery, and `Status` objects for every error, as
kube-apiserver writes them."""

import base64
import json
import re
import time

from . import controllers, util
from .store import (DISCOVERY_ONLY, GROUP_ORDER, RESOURCES, REVIEWS, Filter, Gone,
                    SelectorError, watch_event_for)

MAX_BODY = 3 * 1024 * 1024  # kube-apiserver's request body limit
MAX_CONFIG_SIZE = 1024 * 1024  # ConfigMap / Secret data limit

REASONS = {400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound",
           405: "MethodNotAllowed", 409: "Conflict", 410: "Expired", 413: "RequestEntityTooLarge",
           415: "UnsupportedMediaType", 422: "Invalid", 429: "TooManyRequests",
           500: "InternalError", 503: "ServiceUnavailable", 504: "Timeout"}


class ApiError(Exception):
    def __init__(self, code, message, reason=None, details=None, headers=None):
        super().__init__(message)
        self.code = code
        self.reason = reason or REASONS.get(code, "Unknown")
        self.details = details
        self.headers = headers or {}

    def status(self):
        body = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": str(self), "reason": self.reason}
        if self.details is not None:
            body["details"] = self.details
        body["code"] = self.code
        return body


def status_success(name, res, uid):
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
            "details": {"name": name, "group": res.group, "kind": res.plural, "uid": uid}}


def not_found(res, name):
    return ApiError(404, f'{res.qualified} "{name}" not found',
                    details={"name": name, "group": res.group, "kind": res.plural})


# --- field errors (k8s.io/apimachinery/pkg/util/validation/field) --------------------------------

def _gofmt(v):
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, bool):
        return "true" if v else "false"
    if v is None:
        return "null"
    if isinstance(v, (dict, list)):
        return json.dumps(v, separators=(",", ":"))
    return str(v)


class Causes:
    def __init__(self):
        self.items = []  # (reason, field, message)

    def required(self, field, detail=""):
        self.items.append(("FieldValueRequired", field,
                           "Required value" + (f": {detail}" if detail else "")))

    def invalid(self, field, value, detail):
        self.items.append(("FieldValueInvalid", field, f"Invalid value: {_gofmt(value)}: {detail}"))

    def unsupported(self, field, value, supported):
        vals = ", ".join(json.dumps(s) for s in supported)
        self.items.append(("FieldValueNotSupported", field,
                           f"Unsupported value: {_gofmt(value)}: supported values: {vals}"))

    def not_found(self, field, value):
        self.items.append(("FieldValueNotFound", field, f"Not found: {_gofmt(value)}"))

    def duplicate(self, field, value):
        self.items.append(("FieldValueDuplicate", field, f"Duplicate value: {_gofmt(value)}"))

    def too_long(self, field, limit):
        self.items.append(("FieldValueTooLong", field,
                           f"Too long: must have at most {limit} bytes"))

    def forbidden(self, field, detail):
        self.items.append(("FieldValueForbidden", field, f"Forbidden: {detail}"))

    def raise_if_any(self, res, name):
        if not self.items:
            return
        msgs = [f"{f}: {m}" for _, f, m in self.items]
        text = msgs[0] if len(msgs) == 1 else "[" + ", ".join(msgs) + "]"
        kind = f"{res.kind}.{res.group}" if res.group else res.kind
        raise ApiError(422, f'{kind} "{name}" is invalid: {text}', details={
            "name": name, "group": res.group, "kind": res.kind,
            "causes": [{"reason": r, "message": m, "field": f} for r, f, m in self.items]})


def validate_meta(meta, c, name_rule="subdomain"):
    name = meta.get("name") or ""
    if name:
        errs = util.subdomain_errors(name) if name_rule == "subdomain" else \
            util.label_errors(name)
        for e in errs:
            c.invalid("metadata.name", name, e)
    for k, v in (meta.get("labels") or {}).items():
        for e in util.qualified_name_errors(k):
            c.invalid("metadata.labels", k, e)
        for e in util.label_value_errors(v or ""):
            c.invalid("metadata.labels", v, e)
    for k in (meta.get("annotations") or {}):
        for e in util.qualified_name_errors(k):
            c.invalid("metadata.annotations", k, e)


def validate_pod_spec(spec, path, c, job=False):
    vol_names = set()
    for i, v in enumerate(spec.get("volumes") or []):
        p = f"{path}.volumes[{i}]"
        n = v.get("name") or ""
        if not n:
            c.required(p + ".name")
        else:
            for e in util.label_errors(n):
                c.invalid(p + ".name", n, e)
            if n in vol_names:
                c.duplicate(p + ".name", n)
            vol_names.add(n)
        sources = [k for k in v if k != "name" and v[k] is not None]
        if not sources:
            c.required(p, "must specify a volume type")
        elif len(sources) > 1:
            c.forbidden(p + "." + sources[1], "may not specify more than 1 volume type")
    containers = spec.get("containers") or []
    if not containers:
        c.required(path + ".containers")
    names = set()
    for kind in ("initContainers", "containers"):
        for i, ctr in enumerate(spec.get(kind) or []):
            p = f"{path}.{kind}[{i}]"
            n = ctr.get("name") or ""
            if not n:
                c.required(p + ".name")
            else:
                for e in util.label_errors(n):
                    c.invalid(p + ".name", n, e)
                if n in names:
                    c.duplicate(p + ".name", n)
                names.add(n)
            if not ctr.get("image"):
                c.required(p + ".image")
            for j, e in enumerate(ctr.get("env") or []):
                en = e.get("name") or ""
                if not en:
                    c.required(f"{p}.env[{j}].name")
                elif not util.ENV_NAME.match(en):
                    c.invalid(f"{p}.env[{j}].name", en, util.MSG_ENV_NAME)
                if e.get("value") and e.get("valueFrom"):
                    c.invalid(f"{p}.env[{j}].valueFrom", "",
                              "may not be specified when `value` is not empty")
            mounts = set()
            for j, m in enumerate(ctr.get("volumeMounts") or []):
                mp = f"{p}.volumeMounts[{j}]"
                if not m.get("name"):
                    c.required(mp + ".name")
                elif m["name"] not in vol_names:
                    c.not_found(mp + ".name", m["name"])
                if not m.get("mountPath"):
                    c.required(mp + ".mountPath")
                elif m["mountPath"] in mounts:
                    c.invalid(mp + ".mountPath", m["mountPath"], "must be unique")
                else:
                    mounts.add(m["mountPath"])
                sp = m.get("subPath") or ""
                if sp and (sp.startswith("/") or ".." in sp.split("/")):
                    c.invalid(mp + ".subPath", sp, "must be a relative path without '..'")
    rp = spec.get("restartPolicy", "Always")
    allowed = ["OnFailure", "Never"] if job else ["Always", "OnFailure", "Never"]
    if rp not in allowed:
        c.unsupported(path + ".restartPolicy", rp, allowed)
    ads = spec.get("activeDeadlineSeconds")
    if ads is not None and ads <= 0:
        c.invalid(path + ".activeDeadlineSeconds", ads, "must be between 1 and 2147483647, "
                  "inclusive")


def validate_job(job, c, create=True):
    meta = job.get("metadata") or {}
    validate_meta(meta, c)
    spec = job.get("spec")
    if spec is None:
        c.required("spec.template")
        return
    name = meta.get("name") or ""
    if len(name) > 63:
        c.invalid("spec.template.labels", name, "must be no more than 63 characters")
    for field in ("parallelism", "completions", "backoffLimit", "ttlSecondsAfterFinished"):
        v = spec.get(field)
        if v is not None and v < 0:
            c.invalid("spec." + field, v, "must be greater than or equal to 0")
    ads = spec.get("activeDeadlineSeconds")
    if ads is not None and ads <= 0:
        c.invalid("spec.activeDeadlineSeconds", ads, "must be greater than or equal to 0"
                  if ads < 0 else "must be greater than 0")
    if create and spec.get("selector") is not None and not spec.get("manualSelector"):
        c.invalid("spec.selector", spec["selector"], "`selector` not auto-generated")
    if spec.get("completionMode") not in (None, "NonIndexed"):
        c.unsupported("spec.completionMode", spec["completionMode"],
                      ["NonIndexed"])  # the fake runs NonIndexed jobs only
    tmpl = spec.get("template")
    if tmpl is None:
        c.required("spec.template")
        return
    tmeta = tmpl.get("metadata") or {}
    for k, v in (tmeta.get("labels") or {}).items():
        for e in util.qualified_name_errors(k):
            c.invalid("spec.template.metadata.labels", k, e)
        for e in util.label_value_errors(v or ""):
            c.invalid("spec.template.metadata.labels", v, e)
    validate_pod_spec(tmpl.get("spec") or {}, "spec.template.spec", c, job=True)


def validate_config(obj, c, res):
    validate_meta(obj.get("metadata") or {}, c)
    total = 0
    seen = set()
    for field in ("data", "binaryData", "stringData"):
        for k, v in (obj.get(field) or {}).items():
            if not util.CONFIG_KEY.match(k):
                c.invalid(f"{field}[{k}]", k, util.MSG_CONFIG_KEY)
            if k in seen and not (res.plural == "secrets"):
                c.invalid(f"{field}[{k}]", k, "duplicate of key present in data")
            seen.add(k)
            total += len(v or "") if field != "binaryData" else len(base64.b64decode(v or ""))
    if res.plural == "configmaps" and total > MAX_CONFIG_SIZE:
        c.too_long("[]", MAX_CONFIG_SIZE)
    if res.plural == "secrets" and total > MAX_CONFIG_SIZE:
        c.too_long("data", MAX_CONFIG_SIZE)


def _merge_patch(target, patch):
    if not isinstance(patch, dict):
        return patch
    if not isinstance(target, dict):
        target = {}
    out = dict(target)
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = _merge_patch(out.get(k), v)
    return out


def _json_pointer(path):
    if path == "":
        return []
    return [p.replace("~1", "/").replace("~0", "~") for p in path.lstrip("/").split("/")]


def _json_patch(doc, ops):
    doc = util.deep(doc)
    for op in ops:
        parts = _json_pointer(op.get("path", ""))
        parent = doc
        for p in parts[:-1]:
            parent = parent[int(p)] if isinstance(parent, list) else parent[p]
        last = parts[-1] if parts else None
        kind = op.get("op")
        if kind in ("add", "replace"):
            if isinstance(parent, list):
                idx = len(parent) if last == "-" else int(last)
                if kind == "add":
                    parent.insert(idx, op["value"])
                else:
                    parent[idx] = op["value"]
            else:
                if kind == "replace" and last not in parent:
                    raise ApiError(422, f"replace operation does not apply: doc is missing key: "
                                        f"{op['path']}")
                parent[last] = op["value"]
        elif kind == "remove":
            if isinstance(parent, list):
                del parent[int(last)]
            else:
                if last not in parent:
                    raise ApiError(422, f"remove operation does not apply: doc is missing path: "
                                        f"{op['path']}")
                del parent[last]
        elif kind == "test":
            cur = parent[int(last)] if isinstance(parent, list) else parent.get(last)
            if cur != op.get("value"):
                raise ApiError(422, f"testing value {op['path']} failed")
        else:
            raise ApiError(400, f"unexpected kind of operation: {kind}")
    return doc


def _apply_defaults(plural, obj):
    if plural == "jobs":
        spec = obj.setdefault("spec", {})
        spec.setdefault("parallelism", 1)
        spec.setdefault("completions", 1)
        spec.setdefault("backoffLimit", 6)
        spec.setdefault("completionMode", "NonIndexed")
        spec.setdefault("suspend", False)
        spec.setdefault("manualSelector", None)
        if spec["manualSelector"] is None:
            del spec["manualSelector"]
        spec.setdefault("podReplacementPolicy", "TerminatingOrFailed")
        tmpl = spec.setdefault("template", {})
        tmeta = tmpl.setdefault("metadata", {})
        uid = obj["metadata"]["uid"]
        name = obj["metadata"]["name"]
        labels = tmeta.setdefault("labels", {})
        labels.update({"batch.kubernetes.io/controller-uid": uid,
                       "batch.kubernetes.io/job-name": name,
                       "controller-uid": uid, "job-name": name})
        if "selector" not in spec:
            spec["selector"] = {"matchLabels": {"batch.kubernetes.io/controller-uid": uid}}
        controllers.default_pod_spec(tmpl.setdefault("spec", {}))
        labels = obj["metadata"].setdefault("labels", {})
        labels.setdefault("batch.kubernetes.io/controller-uid", uid)
        labels.setdefault("batch.kubernetes.io/job-name", name)
        labels.setdefault("controller-uid", uid)
        labels.setdefault("job-name", name)
    elif plural == "pods":
        controllers.default_pod_spec(obj.setdefault("spec", {}))
    elif plural == "secrets":
        obj.setdefault("type", "Opaque")


class KubeApi:
    def __init__(self, cluster):
        self.cluster = cluster
        self.store = cluster.store

    # --- routing ------------------------------------------------------------------------------

    def route(self, req):
        """Returns True if this is a Kubernetes API path (handled), False otherwise."""
        path = req.path.rstrip("/") or "/"
        if path in ("/healthz", "/livez", "/readyz"):
            req.send(200, "ok", content_type="text/plain; charset=utf-8")
            return True
        if path == "/version":
            req.send(200, {"major": "1", "minor": "32", "gitVersion": "v1.32.2-dagd-fake",
                           "gitCommit": "0000000000000000000000000000000000000000",
                           "gitTreeState": "clean", "buildDate": "2025-01-01T00:00:00Z",
                           "goVersion": "go1.23", "compiler": "gc",
                           "platform": "linux/amd64"})
            return True
        m = re.fullmatch(r"/(api/v1|apis/([^/]+)/([^/]+))((?:/.*)?)", path)
        if path in ("/api", "/apis") or m is None:
            if path == "/api":
                self._auth(req)
                req.send(200, {"kind": "APIVersions", "versions": ["v1"],
                               "serverAddressByClientCIDRs": [{
                                   "clientCIDR": "0.0.0.0/0",
                                   "serverAddress": f"127.0.0.1:{self.cluster.port}"}]})
                return True
            if path == "/apis":
                self._auth(req)
                req.send(200, self._group_list())
                return True
            return False
        self._auth(req)
        group, version = (m.group(2) or ""), (m.group(3) or "v1")
        rest = [p for p in m.group(4).split("/") if p]
        if not rest:
            return self._resource_list(req, group, version)
        watch_path = False
        if rest[0] == "watch":
            watch_path = True
            rest = rest[1:]
        ns = None
        if len(rest) >= 2 and rest[0] == "namespaces":
            ns = rest[1]
            rest = rest[2:]
            if not rest:
                if group == "" and not watch_path:
                    return self._namespace(req, ns)
                raise ApiError(404, "the server could not find the requested resource",
                               details={})
        elif len(rest) == 1 and rest[0] == "namespaces" and group == "":
            return self._namespaces(req)
        review = REVIEWS.get((group, rest[0]))
        if review is not None and review.version == version:
            if ns is not None or watch_path or len(rest) > 1:  # cluster-scoped, no objects
                raise ApiError(404, "the server could not find the requested resource",
                               details={})
            if req.method != "POST":
                raise ApiError(405, "the server does not allow this method on the requested "
                                    "resource", details={})
            return self.token_review(req, review)
        res = self._resource(group, version, rest[0])
        only_discovered = None
        if res is None:
            only_discovered = self._discovery_only(group, version, rest[0])
            if only_discovered is None:
                raise ApiError(404, "the server could not find the requested resource",
                               details={})
        name = rest[1] if len(rest) > 1 else None
        sub = rest[2] if len(rest) > 2 else None
        if len(rest) > 3:
            raise ApiError(404, "the server could not find the requested resource", details={})
        if name is not None and ns is None:
            raise ApiError(404, "the server could not find the requested resource", details={})
        method = req.method
        if only_discovered is not None:
            return self._not_stored(req, only_discovered, name, watch_path)
        if watch_path:
            if method != "GET" or sub:
                raise ApiError(405, "the server does not allow this method on the requested "
                                    "resource")
            return self.watch(req, res, ns, name)
        if name is None:
            if method == "GET":
                if req.q_bool("watch"):
                    return self.watch(req, res, ns, None)
                return self.list(req, res, ns)
            if method == "POST" and ns is not None:
                return self.create(req, res, ns)
            raise ApiError(405, "the server does not allow this method on the requested resource",
                           details={})
        if sub == "log" and res.plural == "pods" and method == "GET":
            return self.logs(req, ns, name)
        if sub not in (None, "status"):
            raise ApiError(404, "the server could not find the requested resource", details={})
        if method == "GET":
            return self.get(req, res, ns, name)
        if method == "DELETE" and sub is None:
            return self.delete(req, res, ns, name)
        if method in ("PUT", "PATCH"):
            return self.update(req, res, ns, name, status_only=(sub == "status"))
        raise ApiError(405, "the server does not allow this method on the requested resource",
                       details={})

    def _auth(self, req):
        user = self.cluster.auth.check(req)
        if user is None:
            raise ApiError(401, "Unauthorized")
        req.user = user

    def _resource(self, group, version, plural):
        res = RESOURCES.get(plural)
        if res is None or res.group != group or res.version != version:
            return None
        if plural == "workflows" and self.cluster.opts.mode == "argo":
            return None
        return res

    def _discovery_only(self, group, version, plural):
        res = DISCOVERY_ONLY.get((group, plural))
        return res if res is not None and res.version == version else None

    def _not_stored(self, req, res, name, watch_path):
        """A kind served for discovery only: there is never an object of it."""
        method = req.method
        if name is not None and method in ("GET", "PUT", "PATCH", "DELETE") and not watch_path:
            raise not_found(res, name)
        if name is None and method == "GET" and not watch_path and not req.q_bool("watch"):
            with self.store.lock:
                rv = self.store.rv
            req.send(200, {"kind": res.list_kind, "apiVersion": res.api_version,
                           "metadata": {"resourceVersion": str(rv)}, "items": []})
            return True
        raise ApiError(405, f"the fake serves {res.qualified} for discovery only: it stores "
                            f"none, so it cannot {method} this", details={})

    def _resources_of(self, group, version):
        return [r for r in list(RESOURCES.values()) + list(DISCOVERY_ONLY.values())
                + list(REVIEWS.values())
                if r.group == group and r.version == version
                and (r.plural != "workflows" or self.cluster.opts.mode != "argo")]

    def _group_list(self):
        groups = []
        every = (list(RESOURCES.values()) + list(DISCOVERY_ONLY.values())
                 + list(REVIEWS.values()))
        order = lambda gv: (GROUP_ORDER.index(gv[0]) if gv[0] in GROUP_ORDER
                            else len(GROUP_ORDER), gv)
        for gv in sorted({(r.group, r.version) for r in every if r.group}, key=order):
            if gv[0] == "argoproj.io" and self.cluster.opts.mode == "argo":
                continue
            v = {"groupVersion": f"{gv[0]}/{gv[1]}", "version": gv[1]}
            groups.append({"name": gv[0], "versions": [v], "preferredVersion": v})
        return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}

    def _resource_list(self, req, group, version):
        res = self._resources_of(group, version)
        if not res:
            raise ApiError(404, "the server could not find the requested resource", details={})
        out = []
        for r in res:
            entry = {"name": r.plural, "singularName": r.kind.lower(),
                     "namespaced": r.namespaced,
                     "kind": r.kind, "verbs": list(r.verbs)}
            if r.short_names:
                entry["shortNames"] = list(r.short_names)
            if r.categories:
                entry["categories"] = list(r.categories)
            out.append(entry)
            if r.plural in ("pods", "jobs"):
                out.append({"name": r.plural + "/status", "singularName": "", "namespaced": True,
                            "kind": r.kind, "verbs": ["get", "patch", "update"]})
            if r.plural == "pods":
                out.append({"name": "pods/log", "singularName": "", "namespaced": True,
                            "kind": "Pod", "verbs": ["get"]})
        if group == "":
            out.append({"name": "namespaces", "singularName": "namespace", "namespaced": False,
                        "kind": "Namespace", "verbs": ["get", "list"], "shortNames": ["ns"]})
        out.sort(key=lambda e: e["name"])  # as kube-apiserver lists them
        req.send(200, {"kind": "APIResourceList", "apiVersion": "v1",
                       "groupVersion": f"{group}/{version}" if group else version,
                       "resources": out})
        return True

    def _ns_object(self, ns):
        return {"kind": "Namespace", "apiVersion": "v1",
                "metadata": {"name": ns, "uid": "00000000-0000-0000-0000-" +
                             ("%012x" % (util.fnv32a(ns)))[-12:],
                             "resourceVersion": "1", "creationTimestamp": "2025-01-01T00:00:00Z",
                             "labels": {"kubernetes.io/metadata.name": ns}},
                "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}}

    def _namespace(self, req, ns):
        if req.method != "GET":
            raise ApiError(405, "the fake has implicit namespaces: every namespace exists")
        req.send(200, self._ns_object(ns))
        return True

    def _namespaces(self, req):
        with self.store.lock:
            names = {k[1] for k in self.store.objects} | {"default"}
            rv = self.store.rv
        items = []
        for n in sorted(names):
            o = self._ns_object(n)
            del o["kind"], o["apiVersion"]
            items.append(o)
        req.send(200, {"kind": "NamespaceList", "apiVersion": "v1",
                       "metadata": {"resourceVersion": str(rv)}, "items": items})
        return True

    # --- bodies -------------------------------------------------------------------------------

    def _json_body(self, req, patch=False):
        body = req.body()
        if len(body) > MAX_BODY:
            raise ApiError(413, f"Request entity too large: limit is {MAX_BODY}")
        ctype = (req.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        accepted = ["application/json"]
        if patch:
            accepted = ["application/json-patch+json", "application/merge-patch+json",
                        "application/strategic-merge-patch+json"]
        if ctype not in accepted:
            raise ApiError(415, f"the body of the request was in an unknown format - accepted "
                                f"media types include: {', '.join(accepted)}")
        try:
            obj = json.loads(body.decode("utf-8")) if body else None
        except (ValueError, UnicodeDecodeError) as e:
            raise ApiError(400, f"couldn't get version/kind; json parse error: {e}")
        return obj, ctype

    def _check_type(self, res, obj):
        if not isinstance(obj, dict):
            raise ApiError(400, "couldn't get version/kind; json parse error: json: cannot "
                                "unmarshal array into Go value of type struct { APIVersion "
                                "string \"json:\\\"apiVersion,omitempty\\\"\"; Kind string "
                                "\"json:\\\"kind,omitempty\\\"\" }")
        av, kind = obj.get("apiVersion"), obj.get("kind")
        if res.plural == "workflows" and (not av or not kind):
            raise ApiError(400, f"Object 'Kind' is missing in '{json.dumps(obj)[:200]}'")
        if av and av != res.api_version:
            raise ApiError(400, f"the API version in the data ({av}) does not match the "
                                f"expected API version ({res.api_version})")
        if kind and kind != res.kind:
            raise ApiError(400, f"the kind in the data ({kind}) does not match the expected "
                                f"kind ({res.kind})")

    def _schema_check(self, req, res, obj, name):
        errs = self.cluster.schemas.errors(res.schema, obj)
        if not errs:
            return
        self.cluster.violations.record(source="request", method=req.method, path=req.path,
                                       resource=res.plural, name=name, schema=res.schema,
                                       errors=errs)
        kind = f"{res.kind}.{res.group}" if res.group else res.kind
        raise ApiError(422, f'{kind} "{name}" is invalid: schema violation '
                            f'({res.schema}.schema.json): ' + "; ".join(errs), details={
                                "name": name, "group": res.group, "kind": res.kind,
                                "causes": [{"reason": "FieldValueInvalid", "message": e,
                                            "field": e.split(":")[0]} for e in errs]},
                       headers={"X-Fake-Schema-Violation": "true"})

    def _semantic_check(self, res, obj, name, create=True):
        c = Causes()
        if res.plural == "jobs":
            validate_job(obj, c, create)
        elif res.plural == "pods":
            validate_meta(obj.get("metadata") or {}, c)
            validate_pod_spec(obj.get("spec") or {}, "spec", c)
        elif res.plural in ("configmaps", "secrets"):
            validate_config(obj, c, res)
        else:
            validate_meta(obj.get("metadata") or {}, c)
        c.raise_if_any(res, name)

    def _normalise_secret(self, obj):
        data = obj.get("data") or {}
        for k, v in data.items():
            try:
                base64.b64decode(v or "", validate=True)
            except ValueError:
                raise ApiError(400, f"Secret in version \"v1\" cannot be handled as a Secret: "
                                    f"illegal base64 data at input byte 0 (key {k!r})")
        for k, v in (obj.pop("stringData", None) or {}).items():
            data[k] = base64.b64encode(v.encode()).decode()
        if data:
            obj["data"] = data

    def _out(self, res, obj):
        obj = dict(obj)
        obj["kind"] = res.kind
        obj["apiVersion"] = res.api_version
        return obj

    # --- verbs --------------------------------------------------------------------------------

    def token_review(self, req, res):
        """POST /apis/authentication.k8s.io/v1/tokenreviews, as pkg/registry/authentication/
        tokenreview does it: nothing is stored; 201 with the request's TokenReview and its
        `status`. Known tokens are those of --service-account-tokens. Go's omitempty shapes the
        status: `authenticated` appears only when true, `user` always (`{}` when nobody)."""
        obj, _ = self._json_body(req)
        self._check_type(res, obj)
        meta = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
        self._schema_check(req, res, obj, meta.get("name") or "")
        spec = obj.get("spec") or {}
        token = spec.get("token") or ""
        if not token:
            raise ApiError(400, "token is required for TokenReview in authentication")
        try:
            sa = self.cluster.service_accounts.lookup(token)
        except ValueError as e:
            raise ApiError(500, f"Internal error occurred: {e}")
        wanted = [a for a in spec.get("audiences") or [] if a]
        status = {"user": {}}
        if sa is None:
            status["error"] = "invalid bearer token"
        else:
            granted = [a for a in sa["audiences"] if a in wanted] if wanted and sa["audiences"] \
                else (wanted or sa["audiences"] or [API_AUDIENCE])
            if not granted:  # serviceaccount.jwtTokenAuthenticator's words, in union's list
                status["error"] = (f"[invalid bearer token, token audiences "
                                   f"{_go_quote(sa['audiences'])} is invalid for the target "
                                   f"audiences {_go_quote(wanted)}]")
            else:
                ns, name = sa["namespace"], sa["name"]
                status = {"authenticated": True,
                          "user": {"username": f"system:serviceaccount:{ns}:{name}",
                                   "uid": self.cluster.service_accounts.uid(ns, name),
                                   "groups": ["system:serviceaccounts",
                                              f"system:serviceaccounts:{ns}",
                                              "system:authenticated"]},
                          "audiences": granted}
        out = {"kind": res.kind, "apiVersion": res.api_version,
               "metadata": {"creationTimestamp": None, **meta}, "spec": spec, "status": status}
        if self.cluster.opts.self_check:
            errs = self.cluster.schemas.errors(res.schema, out)
            if errs:
                self.cluster.violations.record(source="fake (self-check)", resource=res.plural,
                                               name="", namespace="", event="CREATE",
                                               errors=errs)
        req.send(201, out)
        return True

    def create(self, req, res, ns):
        obj, _ = self._json_body(req)
        self._check_type(res, obj)
        meta = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
        shown = meta.get("name") or meta.get("generateName") or ""
        self._schema_check(req, res, obj, shown)
        if meta.get("namespace") and meta["namespace"] != ns:
            raise ApiError(400, "the namespace of the provided object does not match the "
                                "namespace sent on the request")
        obj = util.deep(obj)
        meta = obj.setdefault("metadata", {})
        meta["namespace"] = ns
        for field in ("uid", "resourceVersion", "creationTimestamp", "deletionTimestamp",
                      "deletionGracePeriodSeconds", "generation", "selfLink", "managedFields"):
            meta.pop(field, None)
        if not meta.get("name"):
            if meta.get("generateName"):
                meta["name"] = util.generate_name(meta["generateName"])
            else:
                c = Causes()
                c.required("metadata.name", "name or generateName is required")
                c.raise_if_any(res, "")
        name = meta["name"]
        self._semantic_check(res, obj, name)
        if res.plural == "secrets":
            self._normalise_secret(obj)
        obj["kind"], obj["apiVersion"] = res.kind, res.api_version
        if res.plural in ("jobs", "pods"):
            obj["status"] = {"phase": "Pending", "qosClass": "BestEffort"} \
                if res.plural == "pods" else {}
        if req.q("dryRun") == "All":
            preview = util.deep(obj)
            preview["metadata"].update({"uid": util.new_uid(),
                                        "creationTimestamp": util.now_rfc3339()})
            _apply_defaults(res.plural, preview)
            req.send(201, preview)
            return True
        with self.store.lock:
            if self.store.get(res.plural, ns, name) is not None:
                raise ApiError(409, f'{res.qualified} "{name}" already exists',
                               reason="AlreadyExists",
                               details={"name": name, "group": res.group, "kind": res.plural})
            meta["uid"] = util.new_uid()  # the defaults (Job labels, selector) need it
            _apply_defaults(res.plural, obj)
            created = self.store.create(res.plural, obj)
        req.send(201, self._out(res, created))
        return True

    def get(self, req, res, ns, name):
        obj = self.store.get(res.plural, ns, name)
        if obj is None:
            raise not_found(res, name)
        req.send(200, self._out(res, obj))
        return True

    def _filter(self, req, res, ns, name=None):
        fs = req.q("fieldSelector") or ""
        if name:
            fs = (fs + "," if fs else "") + f"metadata.name={name}"
        try:
            return Filter(res, ns, req.q("labelSelector") or "", fs)
        except SelectorError as e:
            raise ApiError(400, str(e))

    def list(self, req, res, ns):
        flt = self._filter(req, res, ns)
        rv_param = req.q("resourceVersion") or ""
        match = req.q("resourceVersionMatch") or ""
        if self.cluster.faults.take_gone_list():
            raise ApiError(410, "The resourceVersion for the provided list is too old.")
        if match and not rv_param:
            raise ApiError(422, "resourceVersionMatch: Forbidden: resourceVersionMatch is "
                                "forbidden unless resourceVersion is provided")
        limit = int(req.q("limit") or 0)
        cont = req.q("continue") or ""
        start = None
        with self.store.lock:
            current = self.store.rv
            if match == "Exact" and rv_param != str(current):
                if int(rv_param) < self.store.compacted_rv or int(rv_param) < current:
                    raise ApiError(410, "The resourceVersion for the provided list is too old.")
            if cont:
                try:
                    token = json.loads(base64.b64decode(cont))
                    start = token["start"]
                    if int(token["rv"]) < self.store.compacted_rv:
                        raise ApiError(410, "The provided continue parameter is too old to "
                                            "display a consistent list result. You can start a "
                                            "new list without the continue parameter.")
                except ApiError:
                    raise
                except Exception:
                    raise ApiError(400, "continue key is not valid: illegal base64 data")
            items, rv = self.store.list(res.plural, flt)
        items.sort(key=lambda o: (o["metadata"].get("namespace", ""), o["metadata"]["name"]))
        if start is not None:
            items = [o for o in items if [o["metadata"].get("namespace", ""),
                                          o["metadata"]["name"]] > start]
        meta = {"resourceVersion": str(rv)}
        if limit > 0 and len(items) > limit:
            last = items[limit - 1]["metadata"]
            meta["continue"] = base64.b64encode(json.dumps(
                {"rv": rv, "start": [last.get("namespace", ""), last["name"]]}).encode()).decode()
            meta["remainingItemCount"] = len(items) - limit
            items = items[:limit]
        for o in items:
            o.pop("kind", None)
            o.pop("apiVersion", None)
        req.send(200, {"kind": res.list_kind, "apiVersion": res.api_version, "metadata": meta,
                       "items": items})
        return True

    def watch(self, req, res, ns, name):
        flt = self._filter(req, res, ns, name)
        self.run_watch(req, res, flt, req.q("resourceVersion") or "",
                       req.q_bool("allowWatchBookmarks"),
                       float(req.q("timeoutSeconds") or self.cluster.opts.watch_timeout),
                       req.q_bool("sendInitialEvents"),
                       lambda ev: {"type": ev[0], "object": ev[1]})
        return True

    def run_watch(self, req, res, flt, rv_param, bookmarks, timeout, initial_events, wrap,
                  error_wrap=None, content_type="application/json"):
        """Streams watch events until the timeout, a fault, or the client leaves.
        wrap(("TYPE", obj)) -> the JSON line to send (the Argo Server wraps it differently)."""
        store = self.store
        error_wrap = error_wrap or (lambda st: wrap(("ERROR", st)))
        opts = self.cluster.opts
        if rv_param not in ("", "0") and not rv_param.isdigit():
            raise ApiError(400, f'invalid resource version: strconv.ParseUint: parsing '
                                f'"{rv_param}": invalid syntax')
        stream = req.stream(200, content_type)
        stream.stop_requested = False
        desc = {"path": req.path, "query": {k: v[-1] for k, v in req.query.items()},
                "since": time.time()}
        wid = self.cluster.watches.add(stream, desc)

        def out(o):
            return self._out(res, o)

        def bookmark(rv, initial_end=False):
            meta = {"resourceVersion": str(rv), "creationTimestamp": None}
            if initial_end:
                meta["annotations"] = {"k8s.io/initial-events-end": "true"}
            return ("BOOKMARK", {"kind": res.kind, "apiVersion": res.api_version,
                                 "metadata": meta})

        try:
            pending = []
            if self.cluster.faults.take_gone_watch():
                with store.lock:
                    cur = store.rv
                st = ApiError(410, f"too old resource version: {rv_param or 0} ({cur})").status()
                stream.write_json_line(error_wrap(st))
                stream.end()
                return
            with store.lock:
                if rv_param in ("", "0"):
                    items, cursor = store.list(res.plural, flt)
                    pending = [("ADDED", out(o)) for o in items]
                    if initial_events and bookmarks:
                        pending.append(bookmark(cursor, True))
                else:
                    cursor = int(rv_param)
                    deadline = time.monotonic() + 3
                    while cursor > store.rv and time.monotonic() < deadline:
                        store.cond.wait(0.1)
                    if cursor > store.rv:
                        st = ApiError(504, f"Timeout: Too large resource version: {cursor}, "
                                           f"current: {store.rv}", details={
                                               "causes": [{"reason": "ResourceVersionTooLarge",
                                                           "message": "Too large resource "
                                                                      "version"}],
                                               "retryAfterSeconds": 1}).status()
                        pending = None
                    else:
                        try:
                            store.events_after(cursor)
                            if initial_events:  # the state now, then changes from now
                                items, cursor = store.list(res.plural, flt)
                                pending = [("ADDED", out(o)) for o in items]
                                if bookmarks:
                                    pending.append(bookmark(cursor, True))
                        except Gone as g:
                            st = ApiError(410, str(g)).status()
                            pending = None
            if pending is None:
                stream.write_json_line(error_wrap(st))
                stream.end()
                return
            for ev in pending:
                stream.write_json_line(wrap(ev))
            end = time.monotonic() + timeout
            next_bookmark = time.monotonic() + opts.bookmark_interval
            while True:
                if stream.stop_requested:
                    stream.end()
                    return
                now = time.monotonic()
                if now >= end:
                    stream.end()
                    return
                if stream.client_gone():
                    return
                send = []
                gone = None
                with store.lock:
                    try:
                        evs = store.events_after(cursor)
                    except Gone as g:
                        evs, gone = [], g
                    if not evs and gone is None:
                        store.cond.wait(min(0.2, max(0.01, end - now)))
                        evs = []
                        try:
                            evs = store.events_after(cursor)
                        except Gone as g:
                            gone = g
                    for ev in evs:
                        cursor = ev.rv
                        if ev.resource != res.plural:
                            continue
                        w = watch_event_for(ev, flt)
                        if w is not None:
                            send.append((w[0], out(w[1])))
                    if bookmarks and time.monotonic() >= next_bookmark and gone is None:
                        if not store.events_after(cursor):
                            cursor = store.rv
                        send.append(bookmark(cursor))
                        next_bookmark = time.monotonic() + opts.bookmark_interval
                if gone is not None:
                    stream.write_json_line(error_wrap(ApiError(410, str(gone)).status()))
                    stream.end()
                    return
                for ev in send:
                    stream.write_json_line(wrap(ev))
        finally:
            self.cluster.watches.remove(wid)

    def delete(self, req, res, ns, name):
        opts = {}
        body = req.body()
        if body.strip():
            try:
                opts = json.loads(body)
            except ValueError as e:
                raise ApiError(400, f"couldn't get version/kind; json parse error: {e}")
        policy = req.q("propagationPolicy") or opts.get("propagationPolicy")
        orphan = req.q("orphanDependents") or opts.get("orphanDependents")
        if orphan is not None and policy is not None:
            raise ApiError(422, 'DeleteOptions.meta.k8s.io "" is invalid: propagationPolicy: '
                                'Invalid value: "' + policy + '": orphanDependents and '
                                'deletionPropagation cannot be both set')
        if orphan is not None:
            policy = "Orphan" if str(orphan).lower() in ("true", "1") else "Background"
        if policy is not None and policy not in ("Foreground", "Background", "Orphan"):
            raise ApiError(422, f'DeleteOptions.meta.k8s.io "" is invalid: propagationPolicy: '
                                f'Unsupported value: "{policy}": supported values: '
                                f'"Foreground", "Background", "Orphan"')
        grace = req.q("gracePeriodSeconds")
        grace = int(grace) if grace is not None else opts.get("gracePeriodSeconds")
        pre = opts.get("preconditions") or {}
        cur = self.store.get(res.plural, ns, name)
        if cur is None:
            raise not_found(res, name)
        if pre.get("uid") and pre["uid"] != cur["metadata"]["uid"]:
            raise ApiError(409, f"Precondition failed: UID in precondition: {pre['uid']}, UID in "
                                f"object meta: {cur['metadata']['uid']}", reason="Conflict",
                           details={"name": name, "group": res.group, "kind": res.plural})
        if pre.get("resourceVersion") and pre["resourceVersion"] != \
                cur["metadata"]["resourceVersion"]:
            raise ApiError(409, f"Precondition failed: ResourceVersion in precondition: "
                                f"{pre['resourceVersion']}, ResourceVersion in object meta: "
                                f"{cur['metadata']['resourceVersion']}", reason="Conflict",
                           details={"name": name, "group": res.group, "kind": res.plural})
        if req.q("dryRun") == "All":
            req.send(200, status_success(name, res, cur["metadata"]["uid"]))
            return True
        done, last = self.cluster.gc.delete(res.plural, ns, name, policy, grace)
        if last is None:
            raise not_found(res, name)
        if res.plural == "pods" or not done:
            code = 202 if (not done and orphan is not None and policy != "Orphan") else 200
            req.send(code, self._out(res, last))
        else:
            req.send(200, status_success(name, res, last["metadata"]["uid"]))
        return True

    def update(self, req, res, ns, name, status_only=False):
        patch = req.method == "PATCH"
        body, ctype = self._json_body(req, patch=patch)
        with self.store.lock:
            cur = self.store.get(res.plural, ns, name)
            if cur is None:
                raise not_found(res, name)
            cur = self._out(res, cur)
            if patch:
                if ctype == "application/json-patch+json":
                    if not isinstance(body, list):
                        raise ApiError(400, "json: cannot unmarshal object into Go value of "
                                            "type jsonpatch.Patch")
                    new = _json_patch(cur, body)
                else:
                    if not isinstance(body, dict):
                        raise ApiError(400, "json: cannot unmarshal into Go value of type "
                                            "map[string]interface {}")
                    new = _merge_patch(cur, body)
            else:
                self._check_type(res, body)
                new = util.deep(body)
                bm = new.get("metadata") or {}
                if bm.get("name") and bm["name"] != name:
                    raise ApiError(400, f"the name of the object ({bm['name']}) does not match "
                                        f"the name on the URL ({name})")
                rv = bm.get("resourceVersion")
                if rv and rv != cur["metadata"]["resourceVersion"]:
                    raise ApiError(409, f'Operation cannot be fulfilled on {res.qualified} '
                                        f'"{name}": the object has been modified; please apply '
                                        f'your changes to the latest version and try again',
                                   reason="Conflict",
                                   details={"name": name, "group": res.group,
                                            "kind": res.plural})
            self._schema_check(req, res, new, name)
            new.setdefault("metadata", {})
            new["metadata"]["name"] = name
            new["metadata"]["namespace"] = ns
            for f in ("uid", "creationTimestamp", "deletionTimestamp", "generation"):
                if cur["metadata"].get(f) is not None:
                    new["metadata"][f] = cur["metadata"][f]
            if status_only:
                final = util.deep(cur)
                final["status"] = new.get("status")
            else:
                if res.plural in ("jobs", "pods"):
                    new["status"] = cur.get("status")
                final = new
                c = Causes()
                if res.plural == "jobs":
                    for f in ("template", "selector", "completions", "completionMode"):
                        if (final.get("spec") or {}).get(f) != cur["spec"].get(f) and not (
                                f == "template" and _template_equal(final, cur)):
                            c.invalid(f"spec.{f}", (final.get("spec") or {}).get(f),
                                      "field is immutable")
                if res.plural == "pods" and final.get("spec") != cur.get("spec"):
                    c.forbidden("spec", "pod updates may not change fields other than "
                                        "`spec.containers[*].image`, "
                                        "`spec.initContainers[*].image`, "
                                        "`spec.activeDeadlineSeconds`, "
                                        "`spec.tolerations` (only additions to existing "
                                        "tolerations) or `spec.terminationGracePeriodSeconds`")
                if res.plural in ("configmaps", "secrets") and cur.get("immutable"):
                    for f in ("data", "binaryData"):
                        if final.get(f) != cur.get(f):
                            c.forbidden(f, "field is immutable when `immutable` is set")
                c.raise_if_any(res, name)
                self._semantic_check(res, final, name, create=False)
                if res.plural == "secrets":
                    self._normalise_secret(final)
            spec_changed = final.get("spec") != cur.get("spec")
            final["kind"], final["apiVersion"] = res.kind, res.api_version
            if final == cur:
                stored = cur
            else:
                stored = self.store.update(res.plural, final, bump_generation=spec_changed)
        req.send(200, self._out(res, stored))
        return True

    def logs(self, req, ns, name):
        pod = self.store.get("pods", ns, name)
        if pod is None:
            raise not_found(RESOURCES["pods"], name)
        containers = [c["name"] for c in pod["spec"].get("containers") or []]
        inits = [c["name"] for c in pod["spec"].get("initContainers") or []]
        cname = req.q("container")
        if not cname:
            if len(containers) != 1:
                raise ApiError(400, f"a container name must be specified for pod {name}, choose "
                                    f"one of: [{' '.join(containers)}]")
            cname = containers[0]
        elif cname not in containers:
            if cname in inits:
                raise ApiError(400, f'container "{cname}" in pod "{name}" is waiting to start: '
                                    f'PodInitializing')
            raise ApiError(400, f"container {cname} is not valid for pod {name}")
        if cname != containers[0]:
            raise ApiError(400, f'container "{cname}" in pod "{name}" is waiting to start: '
                                f'ContainerCreating')
        w = self.cluster.kubelet.worker(pod["metadata"]["uid"])
        previous = req.q_bool("previous")
        if w is None or not w.runs or (not previous and w.runs[-1] is None):
            cs = ((pod.get("status") or {}).get("containerStatuses") or [{}])[0]
            reason = ((cs.get("state") or {}).get("waiting") or {}).get("reason",
                                                                       "ContainerCreating")
            raise ApiError(400, f'container "{cname}" in pod "{name}" is waiting to start: '
                                f'{reason}')
        if previous:
            if len(w.runs) < 2:
                raise ApiError(400, f'previous terminated container "{cname}" in pod "{name}" '
                                    f'not found')
            log = w.runs[-2]
        else:
            log = w.runs[-1]
        timestamps = req.q_bool("timestamps")
        tail = req.q("tailLines")
        limit = req.q("limitBytes")
        since = req.q("sinceSeconds")
        limit = int(limit) if limit else None
        since_ts = time.time() - int(since) if since else None

        def fmt(ts, data):
            return (util.rfc3339_nano(ts).encode() + b" " + data) if timestamps else data

        with log.cond:
            lines = list(log.lines)
        seen = len(lines)
        if since_ts is not None:
            lines = [ln for ln in lines if ln[0] >= since_ts]
        if tail is not None:
            lines = lines[-int(tail):] if int(tail) > 0 else []
        sent = 0
        if not req.q_bool("follow"):
            data = b"".join(fmt(*ln) for ln in lines)
            if limit is not None:
                data = data[:limit]
            req.send(200, data, content_type="text/plain")
            return True
        stream = req.stream(200, "text/plain")
        stream.stop_requested = False
        wid = self.cluster.watches.add(stream, {"path": req.path, "log": True,
                                                "since": time.time()})
        try:
            idx = seen if tail is not None or since_ts is not None else 0
            pending = lines if (tail is not None or since_ts is not None) else []
            while True:
                for ln in pending:
                    chunk = fmt(*ln)
                    if limit is not None:
                        chunk = chunk[: max(0, limit - sent)]
                    if chunk:
                        stream.write(chunk)
                        sent += len(chunk)
                    if limit is not None and sent >= limit:
                        stream.end()
                        return True
                if stream.stop_requested:
                    stream.end()
                    return True
                with log.cond:
                    if idx >= len(log.lines):
                        if log.done:
                            break
                        log.cond.wait(0.2)
                    pending = log.lines[idx:]
                    idx += len(pending)
                if not pending and stream.client_gone():
                    return True
            stream.end()
        finally:
            self.cluster.watches.remove(wid)
        return True


# The audience of the API server itself (--api-audiences; kubeadm's default), which TokenReview
# reports when the review names no audiences and the token names none either.
API_AUDIENCE = "https://kubernetes.default.svc.cluster.local"


def _go_quote(strings):
    """fmt.Sprintf("%q", []string{...}): ["a" "b"]."""
    return "[" + " ".join(json.dumps(s) for s in strings) + "]"


def _template_equal(a, b):
    return (a.get("spec") or {}).get("template") == (b.get("spec") or {}).get("template")
