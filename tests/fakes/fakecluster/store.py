"""The fake's "etcd": every object, one global resourceVersion counter, and a bounded event history.

One RLock guards everything; `cond` is notified after every write so that watch streams, log
followers and controller loops can wait on it. Objects are plain JSON dicts; the store hands out
deep copies only.

ResourceVersions are decimal strings of one global counter, as with etcd: every write (create,
update, delete) takes the next value, a list reports the current value, and a watch from RV R
replays the retained events with RV > R. The history keeps the last `history_limit` events;
older ones are "compacted" and a watch (or an exact list) from before them gets 410 Expired.
"""

import collections
import re
import threading

from . import util


# Discovery verbs. The resources the fake stores list what the fake does (no deletecollection);
# the discovery-only ones list what a real API server lists: built-in resources in apiserver's
# order, custom resources in apiextensions-apiserver's.
FAKE_VERBS = ("create", "delete", "get", "list", "patch", "update", "watch")
BUILTIN_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")
CRD_VERBS = ("delete", "deletecollection", "get", "list", "patch", "create", "update", "watch")


class Resource:
    def __init__(self, plural, kind, group, version, schema, namespaced=True, fields=(),
                 short_names=(), categories=(), verbs=FAKE_VERBS):
        self.plural = plural
        self.kind = kind
        self.group = group
        self.version = version
        self.schema = schema
        self.namespaced = namespaced
        self.fields = ("metadata.name", "metadata.namespace") + tuple(fields)
        self.short_names = tuple(short_names)  # discovery, as the real server (or CRD) has them
        self.categories = tuple(categories)
        self.verbs = tuple(verbs)

    @property
    def api_version(self):
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def list_kind(self):
        return self.kind + "List"

    @property
    def qualified(self):
        """How apiserver names the resource in messages: 'jobs.batch', 'pods'."""
        return f"{self.plural}.{self.group}" if self.group else self.plural


RESOURCES = {
    "pods": Resource("pods", "Pod", "", "v1", "k8s-pod-v1", short_names=("po",),
                     categories=("all",),
                     fields=("spec.nodeName", "spec.restartPolicy", "spec.schedulerName",
                             "spec.serviceAccountName", "spec.hostNetwork", "status.phase",
                             "status.podIP", "status.nominatedNodeName")),
    "configmaps": Resource("configmaps", "ConfigMap", "", "v1", "k8s-configmap-v1",
                           short_names=("cm",)),
    "secrets": Resource("secrets", "Secret", "", "v1", "k8s-secret-v1", fields=("type",)),
    "jobs": Resource("jobs", "Job", "batch", "v1", "k8s-job-batch-v1", categories=("all",),
                     fields=("status.successful",)),
    "workflows": Resource("workflows", "Workflow", "argoproj.io", "v1alpha1", "argo-workflow",
                          short_names=("wf",)),
}

# Kinds the fake only names in discovery, so that a client can map them (kubectl apply/create
# --dry-run=client of deploy/kubernetes/): nothing of them is stored, a GET/PUT/PATCH/DELETE of
# one is 404 NotFound, a list is empty, a create or watch is 405. ServiceMonitor is the
# Prometheus Operator's CRD (v0.84), as on a cluster where the operator is installed.
DISCOVERY_ONLY = {(r.group, r.plural): r for r in (
    Resource("serviceaccounts", "ServiceAccount", "", "v1", "k8s-serviceaccount-v1",
             short_names=("sa",), verbs=BUILTIN_VERBS),
    Resource("services", "Service", "", "v1", "k8s-service-v1", short_names=("svc",),
             categories=("all",), verbs=BUILTIN_VERBS),
    Resource("statefulsets", "StatefulSet", "apps", "v1", "k8s-statefulset-apps-v1",
             short_names=("sts",), categories=("all",), verbs=BUILTIN_VERBS),
    Resource("roles", "Role", "rbac.authorization.k8s.io", "v1", "k8s-role-rbac-v1",
             verbs=BUILTIN_VERBS),
    Resource("rolebindings", "RoleBinding", "rbac.authorization.k8s.io", "v1",
             "k8s-rolebinding-rbac-v1", verbs=BUILTIN_VERBS),
    # (no schema of its own in ../shared/schemas: a RoleBinding's shape, without a namespace)
    Resource("clusterrolebindings", "ClusterRoleBinding", "rbac.authorization.k8s.io", "v1",
             "k8s-rolebinding-rbac-v1", namespaced=False, verbs=BUILTIN_VERBS),
    Resource("servicemonitors", "ServiceMonitor", "monitoring.coreos.com", "v1",
             "k8s-servicemonitor-monitoring-v1", short_names=("smon",),
             categories=("prometheus-operator",), verbs=CRD_VERBS),
)}

# Create-only "review" kinds: POSTed, answered, never stored (k8s_api.KubeApi.token_review).
REVIEWS = {(r.group, r.plural): r for r in (
    Resource("tokenreviews", "TokenReview", "authentication.k8s.io", "v1",
             "k8s-tokenreview-authentication-v1", namespaced=False, verbs=("create",)),
)}

# The order of /apis: kube-aggregator's group priorities for built-in groups, then custom
# resource groups (equal priority, by name).
GROUP_ORDER = ("apps", "authentication.k8s.io", "batch", "rbac.authorization.k8s.io")


class Gone(Exception):
    """The requested resourceVersion has been compacted away."""

    def __init__(self, requested, oldest):
        super().__init__(f"too old resource version: {requested} ({oldest})")
        self.requested = requested
        self.oldest = oldest


class SelectorError(Exception):
    pass


# --- label and field selectors -------------------------------------------------------------------

_KEY = r"[A-Za-z0-9][-A-Za-z0-9_./]*"


def _split_top(text):
    parts, depth, cur = [], 0, ""
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    parts.append(cur)
    return [p.strip() for p in parts if p.strip()]


def parse_label_selector(text):
    """k8s.io/apimachinery/pkg/labels.Parse: =, ==, !=, in, notin, exists, !exists, gt, lt."""
    reqs = []
    for part in _split_top(text or ""):
        m = re.fullmatch(r"!\s*(" + _KEY + r")", part)
        if m:
            reqs.append((m.group(1), "!", None))
            continue
        m = re.fullmatch(r"(" + _KEY + r")\s+(in|notin)\s*\((.*)\)", part)
        if m:
            vals = {v.strip() for v in m.group(3).split(",") if v.strip()}
            reqs.append((m.group(1), m.group(2), vals))
            continue
        m = re.fullmatch(r"(" + _KEY + r")\s*(==|=|!=)\s*([A-Za-z0-9_.\-]*)", part)
        if m:
            op = "=" if m.group(2) in ("=", "==") else "!="
            reqs.append((m.group(1), op, m.group(3)))
            continue
        m = re.fullmatch(r"(" + _KEY + r")\s*(>|<)\s*(-?\d+)", part)
        if m:
            reqs.append((m.group(1), m.group(2), int(m.group(3))))
            continue
        m = re.fullmatch(_KEY, part)
        if m:
            reqs.append((part, "exists", None))
            continue
        raise SelectorError(f"unable to parse requirement: found '{part}', expected: "
                            "identifier, '=', '==', '!=', 'in', 'notin', '!' or key")
    for key, _, _ in reqs:
        errs = util.qualified_name_errors(key)
        if errs:
            raise SelectorError(f"unable to parse requirement: key: Invalid value: \"{key}\": "
                                + "; ".join(errs))
    return reqs


def label_matches(reqs, labels):
    labels = labels or {}
    for key, op, val in reqs:
        have = key in labels
        cur = labels.get(key)
        if op == "=" and cur != val:
            return False
        if op == "!=" and cur == val:
            return False
        if op == "in" and cur not in val:
            return False
        if op == "notin" and have and cur in val:
            return False
        if op == "exists" and not have:
            return False
        if op == "!" and have:
            return False
        if op in (">", "<"):
            try:
                num = int(cur)
            except (TypeError, ValueError):
                return False
            if (op == ">" and not num > val) or (op == "<" and not num < val):
                return False
    return True


def parse_field_selector(text, resource):
    reqs = []
    for part in _split_top(text or ""):
        m = re.fullmatch(r"([A-Za-z0-9_.]+)\s*(==|=|!=)\s*(.*)", part)
        if not m:
            raise SelectorError(f"invalid selector: '{text}'; can't understand '{part}'")
        field, op, val = m.group(1), m.group(2), m.group(3)
        if field not in resource.fields:
            raise SelectorError(f"field label not supported: {field}")
        reqs.append((field, "=" if op in ("=", "==") else "!=", val))
    return reqs


def field_value(obj, field):
    if field == "status.successful":
        return str((obj.get("status") or {}).get("succeeded") or 0)
    cur = obj
    for part in field.split("."):
        cur = cur.get(part) if isinstance(cur, dict) else None
    if cur is None:
        return ""
    if isinstance(cur, bool):
        return "true" if cur else "false"
    return str(cur)


def fields_match(reqs, obj):
    for field, op, val in reqs:
        cur = field_value(obj, field)
        if (op == "=") != (cur == val):
            return False
    return True


class Filter:
    """Namespace + label selector + field selector, as one predicate over objects."""

    def __init__(self, resource, namespace=None, label_selector="", field_selector=""):
        self.resource = resource
        self.namespace = namespace
        self.labels = parse_label_selector(label_selector)
        self.fields = parse_field_selector(field_selector, resource)

    def __call__(self, obj):
        if obj is None:
            return False
        meta = obj.get("metadata") or {}
        if self.namespace and meta.get("namespace") != self.namespace:
            return False
        return label_matches(self.labels, meta.get("labels")) and fields_match(self.fields, obj)


# --- the store -----------------------------------------------------------------------------------

Event = collections.namedtuple("Event", "rv type resource namespace name obj old")


class Store:
    def __init__(self, history_limit=10000, first_rv=1000):
        self.lock = threading.RLock()
        self.cond = threading.Condition(self.lock)
        self.rv = first_rv
        self.objects = {}  # (plural, namespace, name) -> object
        self.history = collections.deque()
        self.history_limit = history_limit
        self.compacted_rv = first_rv  # events with rv <= compacted_rv are gone
        self.observers = []  # called with each Event, under the lock; must not block

    # reads
    def get(self, plural, namespace, name):
        with self.lock:
            obj = self.objects.get((plural, namespace, name))
            return util.deep(obj) if obj is not None else None

    def list(self, plural, predicate=None):
        with self.lock:
            items = [util.deep(o) for (p, _, _), o in sorted(self.objects.items()) if p == plural
                     and (predicate is None or predicate(o))]
            return items, self.rv

    def all_objects(self):
        with self.lock:
            out = {}
            for (plural, _, _), obj in sorted(self.objects.items()):
                out.setdefault(plural, []).append(util.deep(obj))
            return out, self.rv

    # writes
    def _next_rv(self):
        self.rv += 1
        return self.rv

    def _record(self, ev):
        self.history.append(ev)
        while len(self.history) > self.history_limit:
            self.compacted_rv = self.history.popleft().rv
        for obs in list(self.observers):
            obs(ev)
        self.cond.notify_all()

    def create(self, plural, obj):
        """Stores a new object, filling uid, creationTimestamp, resourceVersion, generation.
        REQUIRES: metadata.name and metadata.namespace set and not taken."""
        with self.lock:
            meta = obj.setdefault("metadata", {})
            key = (plural, meta.get("namespace"), meta["name"])
            assert key not in self.objects, key
            meta["uid"] = meta.get("uid") or util.new_uid()
            meta["creationTimestamp"] = util.now_rfc3339()
            meta["generation"] = 1
            rv = self._next_rv()
            meta["resourceVersion"] = str(rv)
            self.objects[key] = util.deep(obj)
            self._record(Event(rv, "ADDED", plural, key[1], key[2], util.deep(obj), None))
            return util.deep(obj)

    def update(self, plural, obj, bump_generation=False):
        """Replaces a stored object (same namespace/name); returns the stored copy or None if
        the object is gone. Status-only writes keep the generation, as the status subresource."""
        with self.lock:
            meta = obj["metadata"]
            key = (plural, meta.get("namespace"), meta["name"])
            old = self.objects.get(key)
            if old is None:
                return None
            meta["uid"] = old["metadata"]["uid"]
            meta["creationTimestamp"] = old["metadata"]["creationTimestamp"]
            meta["generation"] = old["metadata"].get("generation", 1) + (1 if bump_generation
                                                                          else 0)
            rv = self._next_rv()
            meta["resourceVersion"] = str(rv)
            self.objects[key] = util.deep(obj)
            self._record(Event(rv, "MODIFIED", plural, key[1], key[2], util.deep(obj), old))
            return util.deep(obj)

    def mutate(self, plural, namespace, name, fn, bump_generation=False):
        """Read-modify-write under the lock: fn(obj) edits a copy in place and returns truthy
        if it changed anything. Returns the new object, the unchanged one, or None if absent."""
        with self.lock:
            cur = self.objects.get((plural, namespace, name))
            if cur is None:
                return None
            obj = util.deep(cur)
            if not fn(obj):
                return util.deep(cur)
            return self.update(plural, obj, bump_generation)

    def remove(self, plural, namespace, name):
        with self.lock:
            key = (plural, namespace, name)
            old = self.objects.pop(key, None)
            if old is None:
                return None
            rv = self._next_rv()
            last = util.deep(old)
            last["metadata"]["resourceVersion"] = str(rv)
            self._record(Event(rv, "DELETED", plural, namespace, name, last, old))
            return util.deep(last)

    def compact(self):
        """Forget all history: any watch or exact list from an earlier RV now gets 410."""
        with self.lock:
            self.history.clear()
            self.compacted_rv = self.rv

    # watch support
    def events_after(self, rv):
        """Retained events with resourceVersion > rv. REQUIRES: lock held. Raises Gone."""
        if rv < self.compacted_rv:
            raise Gone(rv, self.compacted_rv + 1)
        if not self.history or self.history[-1].rv <= rv:
            return []
        # history is ordered by rv; scan from the end (watchers are usually near the head)
        out = []
        for ev in reversed(self.history):
            if ev.rv <= rv:
                break
            out.append(ev)
        out.reverse()
        return out


def watch_event_for(ev, predicate):
    """The event a watcher with this predicate sees (the watch cache's rules), or None."""
    new_ok = predicate(ev.obj) if ev.type != "DELETED" else False
    old_ok = predicate(ev.old) if ev.old is not None else False
    if ev.type == "ADDED":
        return ("ADDED", ev.obj) if new_ok else None
    if ev.type == "DELETED":
        return ("DELETED", ev.obj) if old_ok else None
    if new_ok and old_ok:
        return ("MODIFIED", ev.obj)
    if new_ok:
        return ("ADDED", ev.obj)
    if old_ok:
        gone = util.deep(ev.old)
        gone["metadata"]["resourceVersion"] = str(ev.rv)
        return ("DELETED", gone)
    return None
