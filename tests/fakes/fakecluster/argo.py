"""The fake Argo: a workflow controller that executes Workflows on this host through the fake
kubelet, and the Argo Server REST API (/api/v1/workflows..., /api/v1/workflow-events/...).

Executed: container and script templates (one Pod node each, run like any pod), dag (tasks with
`dependencies` or `depends`, `when`, withItems/withParam fan-out, continueOn), steps (parallel
groups in sequence, `when`, withItems/withParam), retryStrategy (limit, retryPolicy, backoff),
onExit, spec.shutdown Stop/Terminate, activeDeadlineSeconds, outputs.parameters (valueFrom.path,
path-mapped), outputs.result, raw input artifacts, suspend/resume of scheduling. Not executed:
resource/http/plugin/data/containerSet/suspend templates, {{=expr}} expressions, artifacts other
than raw inputs, memoization, synchronization; those end the node in Error saying so.
"""

import json
import os
import re
import threading
import time

from . import util
from .k8s_api import ApiError
from .store import RESOURCES, Filter, SelectorError

TEMPLATE_TYPES = ("container", "containerSet", "steps", "script", "resource", "dag", "suspend",
                  "data", "http", "plugin")
SCRIPT_PATH = "/argo/staging/script"
WF = "workflows.argoproj.io"
DONE = ("Succeeded", "Failed", "Error", "Skipped", "Omitted")


class WorkflowGone(Exception):
    pass


class ArgoError(Exception):
    """A gRPC status, as the Argo Server's grpc-gateway returns it."""

    HTTP = {2: 500, 3: 400, 5: 404, 6: 409, 7: 403, 8: 429, 9: 400, 10: 409, 12: 501, 13: 500,
            14: 503, 16: 401}

    def __init__(self, code, message):
        super().__init__(message)
        self.code = code

    @property
    def http(self):
        return self.HTTP.get(self.code, 500)

    def body(self):
        # grpc-gateway v1's errorBody (details omitted when empty)
        return {"error": str(self), "code": self.code, "message": str(self)}


def _dur(text, default=0.0):
    if text is None:
        return default
    if isinstance(text, (int, float)):
        return float(text)
    total, matched = 0.0, False
    for num, unit in re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h)?", str(text)):
        matched = True
        total += float(num) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "": 1}[unit or ""]
    return total if matched else default


# --- workflow validation (a subset of Argo's validate.ValidateWorkflow) --------------------------

def _template_type(t):
    return [k for k in TEMPLATE_TYPES if t.get(k) is not None]


def _depends_names(expr):
    return {m.group(1) for m in re.finditer(
        r"([A-Za-z0-9_][-A-Za-z0-9_]*)(?:\.(?:Succeeded|Failed|Errored|Skipped|Omitted|Daemoned|"
        r"AnySucceeded|AllFailed|Completed))?", expr or "")}


def _task_deps(task):
    if task.get("depends"):
        return _depends_names(task["depends"])
    return set(task.get("dependencies") or [])


def validate_workflow(wf):
    meta = wf.get("metadata") or {}
    name = meta.get("name") or ""
    if len(name) > 63:
        raise ArgoError(3, f"workflow name {json.dumps(name)} must not be more than 63 "
                           f"characters long (currently {len(name)})")
    spec = wf.get("spec") or {}
    if spec.get("workflowTemplateRef"):
        raise ArgoError(3, "the fake does not resolve workflowTemplateRef")
    templates = spec.get("templates") or []
    names = {}
    for t in templates:
        n = t.get("name") or ""
        if not n:
            raise ArgoError(3, "templates.name is required")
        if n in names:
            raise ArgoError(3, f"templates.{n} template name '{n}' is not unique")
        names[n] = t
        kinds = _template_type(t)
        if not kinds:
            raise ArgoError(3, f"templates.{n} template type unspecified. choose one of: "
                               + ", ".join(TEMPLATE_TYPES))
        if len(kinds) > 1:
            raise ArgoError(3, f"templates.{n} multiple template types specified: "
                               + ", ".join(kinds))
    entry = spec.get("entrypoint")
    if not entry:
        raise ArgoError(3, "spec.entrypoint is required")
    if entry not in names:
        raise ArgoError(3, f"spec.entrypoint template '{entry}' undefined")
    if spec.get("onExit") and spec["onExit"] not in names:
        raise ArgoError(3, f"spec.onExit template '{spec['onExit']}' undefined")
    for t in templates:
        if t.get("dag") is not None:
            tasks = {x.get("name"): x for x in t["dag"].get("tasks") or []}
            for tn, task in tasks.items():
                if task.get("template") not in names and not task.get("templateRef"):
                    raise ArgoError(3, f"templates.{t['name']}.tasks.{tn} template "
                                       f"'{task.get('template')}' undefined")
                if task.get("depends") and task.get("dependencies"):
                    raise ArgoError(3, f"templates.{t['name']}.tasks.{tn} cannot use both "
                                       f"'depends' and 'dependencies' in the same DAG template")
                for d in _task_deps(task):
                    if d not in tasks:
                        raise ArgoError(3, f"templates.{t['name']}.tasks.{tn} dependency '{d}' "
                                           f"not defined")
            state = {}

            def visit(n, path):
                if state.get(n) == 1:
                    raise ArgoError(3, f"templates.{t['name']} dependency cycle detected: "
                                       + "->".join(path + [n]))
                if state.get(n) == 2:
                    return
                state[n] = 1
                for d in sorted(_task_deps(tasks[n])):
                    visit(d, path + [n])
                state[n] = 2
            for tn in tasks:
                visit(tn, [])
        if t.get("steps") is not None:
            for group in t["steps"]:
                for st in group or []:
                    if st.get("template") not in names and not st.get("templateRef"):
                        raise ArgoError(3, f"templates.{t['name']}.steps.{st.get('name')} "
                                           f"template '{st.get('template')}' undefined")


# --- expressions ---------------------------------------------------------------------------------

def _eval_depends(expr, phases):
    """Argo's `depends`: names, .Succeeded/.Failed/..., &&, ||, !, parentheses."""
    out = []
    for tok in re.findall(r"&&|\|\||!|\(|\)|[A-Za-z0-9_][-A-Za-z0-9_]*(?:\.[A-Za-z]+)?", expr):
        if tok == "&&":
            out.append(" and ")
        elif tok == "||":
            out.append(" or ")
        elif tok == "!":
            out.append(" not ")
        elif tok in "()":
            out.append(tok)
        else:
            name, _, suffix = tok.partition(".")
            ph = phases.get(name)
            val = {
                "": ph in ("Succeeded", "Skipped", "Daemoned"),
                "Succeeded": ph == "Succeeded", "Failed": ph == "Failed",
                "Errored": ph == "Error", "Skipped": ph == "Skipped",
                "Omitted": ph == "Omitted", "Daemoned": ph == "Daemoned",
                "AnySucceeded": ph == "Succeeded", "AllFailed": ph == "Failed",
                "Completed": ph in DONE,
            }.get(suffix, False)
            out.append(" True " if val else " False ")
    return bool(eval("".join(out) or "True", {"__builtins__": {}}, {}))  # noqa: S307 - tokens


def _eval_when(expr):
    """A small subset of govaluate: ==, !=, <, >, <=, >=, &&, ||, !, parentheses, literals."""
    toks = re.findall(r"&&|\|\||==|!=|<=|>=|<|>|!|\(|\)|'[^']*'|\"[^\"]*\"|[^\s()!=<>&|]+",
                      expr)
    out = []
    for tok in toks:
        if tok == "&&":
            out.append(" and ")
        elif tok == "||":
            out.append(" or ")
        elif tok == "!":
            out.append(" not ")
        elif tok in ("==", "!=", "<", ">", "<=", ">=", "(", ")"):
            out.append(f" {tok} ")
        elif tok in ("true", "false"):
            out.append(" True " if tok == "true" else " False ")
        else:
            v = tok.strip("'\"")
            try:
                out.append(repr(float(v)))
            except ValueError:
                out.append(repr(v))
    try:
        return bool(eval("".join(out), {"__builtins__": {}}, {}))  # noqa: S307 - literals only
    except Exception as e:
        raise ValueError(f"invalid when expression {expr!r}: {e}")


def _subst(obj, scope):
    text = json.dumps(obj)

    def rep(m):
        key = m.group(1).strip()
        if key in scope:
            return json.dumps(str(scope[key]))[1:-1]
        return m.group(0)
    return json.loads(re.sub(r"\{\{\s*([^{}=\s][^{}]*?)\s*\}\}", rep, text))


def _items(task, scope):
    if task.get("withItems") is not None:
        return list(task["withItems"])
    if task.get("withParam") is not None:
        raw = _subst(task["withParam"], scope)
        try:
            vals = json.loads(raw)
        except ValueError:
            raise ValueError(f"withParam value could not be parsed as a JSON list: {raw}")
        if not isinstance(vals, list):
            raise ValueError(f"withParam value could not be parsed as a JSON list: {raw}")
        return vals
    if task.get("withSequence") is not None:
        seq = _subst(task["withSequence"], scope)
        start = int(seq.get("start", 0))
        end = int(seq["end"]) if "end" in seq else start + int(seq.get("count", 0)) - 1
        return [str(i) for i in range(start, end + 1)]
    return None


def _item_scope(scope, item):
    s = dict(scope)
    if isinstance(item, dict):
        s["item"] = json.dumps(item, separators=(",", ":"))
        for k, v in item.items():
            s[f"item.{k}"] = v if isinstance(v, str) else json.dumps(v)
    else:
        s["item"] = item if isinstance(item, str) else json.dumps(item)
    return s


def _item_label(item):
    if isinstance(item, dict):
        return ",".join(f"{k}:{v}" for k, v in sorted(item.items()))
    return item if isinstance(item, str) else json.dumps(item)


# --- the controller ------------------------------------------------------------------------------

class Run:
    """One executing Workflow."""

    def __init__(self, ctl, ns, name, uid):
        self.ctl = ctl
        self.cluster = ctl.cluster
        self.store = ctl.cluster.store
        self.ns, self.name, self.uid = ns, name, uid
        self.shutdown = None
        self.started = time.monotonic()
        self.deadline = None
        self.templates = {}
        self.spec = {}

    # writes
    def _write(self, fn):
        def wrapped(wf):
            if wf["metadata"]["uid"] != self.uid:
                raise WorkflowGone()
            fn(wf)
            return True
        with self.store.lock:
            if self.store.mutate("workflows", self.ns, self.name, wrapped) is None:
                raise WorkflowGone()

    def node_id(self, node_name):
        return self.name if node_name == self.name else f"{self.name}-{util.fnv32a(node_name)}"

    def set_node(self, node):
        def fn(wf):
            st = wf.setdefault("status", {})
            nodes = st.setdefault("nodes", {})
            old = nodes.get(node["id"]) or {}
            new = util.deep(node)
            # children may have been linked by other threads since this copy was taken
            children = list(new.get("children") or [])
            for c in old.get("children") or []:
                if c not in children:
                    children.append(c)
            if children:
                new["children"] = children
            nodes[node["id"]] = new
            pods = [n for n in nodes.values() if n["type"] == "Pod"]
            st["progress"] = f"{sum(1 for n in pods if n['phase'] == 'Succeeded')}/{len(pods)}"
        self._write(fn)

    def new_node(self, node_name, ntype, tmpl_name, boundary, display, parent=None, phase=None):
        node = {"id": self.node_id(node_name), "name": node_name, "displayName": display,
                "type": ntype, "templateScope": f"local/{self.name}",
                "phase": phase or ("Pending" if ntype == "Pod" else "Running"),
                "startedAt": util.now_rfc3339()}
        if tmpl_name:
            node["templateName"] = tmpl_name
        if boundary:
            node["boundaryID"] = boundary
        if ntype == "Pod":
            node["progress"] = "0/1"
        self.set_node(node)
        if parent is not None:
            self.add_child(parent, node["id"])
        return node

    def add_child(self, parent, child_id):
        if child_id not in (parent.get("children") or []):
            parent.setdefault("children", []).append(child_id)
        self.link(parent["id"], child_id)

    def link(self, parent_id, child_id):
        def fn(wf):
            n = ((wf.get("status") or {}).get("nodes") or {}).get(parent_id)
            if n is not None and child_id not in (n.get("children") or []):
                n.setdefault("children", []).append(child_id)
        self._write(fn)

    def finish_node(self, node, phase, message=None, outputs=None):
        node["phase"] = phase
        node["finishedAt"] = util.now_rfc3339()
        if message:
            node["message"] = message
        if outputs:
            node["outputs"] = outputs
        if node["type"] == "Pod":
            node["progress"] = "1/1" if phase == "Succeeded" else "0/1"
            node["resourcesDuration"] = {"cpu": 1, "memory": 1}
        self.set_node(node)
        return node

    # control
    def check(self):
        """Raises WorkflowGone if deleted; notes spec.shutdown and the deadline."""
        wf = self.store.get("workflows", self.ns, self.name)
        if wf is None or wf["metadata"]["uid"] != self.uid:
            raise WorkflowGone()
        spec = wf.get("spec") or {}
        if spec.get("shutdown") in ("Stop", "Terminate"):
            self.shutdown = spec["shutdown"]
        if self.deadline is not None and time.monotonic() - self.started > self.deadline \
                and self.shutdown is None:
            self.shutdown = "Deadline"
        return spec

    def stopped_message(self):
        if self.shutdown == "Deadline":
            return "Step exceeded its deadline"
        return f"Stopped with strategy '{self.shutdown}'"

    def wait_resumed(self):
        while True:
            spec = self.check()
            if not spec.get("suspend") or self.shutdown:
                return
            time.sleep(0.1)

    # execution
    def run(self):
        try:
            wf = self.store.get("workflows", self.ns, self.name)
            if wf is None:
                return
            self.spec = wf["spec"]
            try:  # the controller validates too (a Workflow created through the CRD)
                validate_workflow(wf)
            except ArgoError as e:
                self._finish("Error", str(e))
                return
            self.templates = {t["name"]: t for t in self.spec.get("templates") or []}
            self.deadline = self.spec.get("activeDeadlineSeconds")
            wparams = {p["name"]: p.get("value", p.get("default"))
                       for p in (self.spec.get("arguments") or {}).get("parameters") or []}
            self.scope = {"workflow.name": self.name, "workflow.namespace": self.ns,
                          "workflow.uid": self.uid,
                          "workflow.serviceAccountName": self.spec.get("serviceAccountName",
                                                                        "default"),
                          "workflow.creationTimestamp": wf["metadata"]["creationTimestamp"]}
            for k, v in wparams.items():
                self.scope[f"workflow.parameters.{k}"] = v

            def init(w):
                labels = w["metadata"].setdefault("labels", {})
                labels[f"{WF}/phase"] = "Running"
                labels[f"{WF}/completed"] = "false"
                w["status"] = {"phase": "Running", "startedAt": util.now_rfc3339(),
                               "progress": "0/0", "nodes": {},
                               "artifactRepositoryRef": {"default": True,
                                                         "artifactRepository": {}},
                               "artifactGCStatus": {"notSpecified": True},
                               "conditions": [{"type": "PodRunning", "status": "False"}]}
            self._write(init)
            entry = self.spec["entrypoint"]
            node = self.exec_template(entry, self.name, wparams, None, self.name, None,
                                      dict(self.scope))
            phase = node["phase"]
            message = node.get("message")
            if self.shutdown in ("Stop", "Terminate"):
                phase, message = "Failed", self.stopped_message()
            elif self.shutdown == "Deadline":
                phase, message = "Failed", "Max duration limit exceeded"
            if self.spec.get("onExit") and self.shutdown != "Terminate":
                scope = dict(self.scope)
                scope["workflow.status"] = phase
                scope["workflow.failures"] = "[]"
                saved, self.shutdown = self.shutdown, None
                self.exec_template(self.spec["onExit"], f"{self.name}.onExit", {}, None,
                                   f"{self.name}.onExit", None, scope)
                self.shutdown = saved
            self._finish(phase, message)
        except WorkflowGone:
            return
        except Exception as e:
            import traceback
            traceback.print_exc()
            try:
                self._finish("Error", f"fake argo: {e}")
            except WorkflowGone:
                pass

    def _finish(self, phase, message):
        def fn(w):
            st = w.setdefault("status", {})
            st["phase"] = phase
            st["finishedAt"] = util.now_rfc3339()
            if message:
                st["message"] = message
            st["conditions"] = [{"type": "PodRunning", "status": "False"},
                                {"type": "Completed", "status": "True"}]
            st["taskResultsCompletionStatus"] = {
                n["id"]: True for n in (st.get("nodes") or {}).values() if n["type"] == "Pod"}
            labels = w["metadata"].setdefault("labels", {})
            labels[f"{WF}/phase"] = phase
            labels[f"{WF}/completed"] = "true"
        self._write(fn)

    def exec_template(self, tmpl_name, node_name, args, boundary, display, parent, scope):
        """Runs a template as node `node_name`; returns the finished node."""
        tmpl = self.templates[tmpl_name]
        scope = dict(scope)
        for k in [k for k in scope if k.startswith("inputs.")]:
            del scope[k]
        missing = None
        for p in (tmpl.get("inputs") or {}).get("parameters") or []:
            if p["name"] in args:
                val = args[p["name"]]
            elif p.get("value") is not None:
                val = p["value"]
            elif p.get("default") is not None:
                val = p["default"]
            else:
                missing = p["name"]
                continue
            scope[f"inputs.parameters.{p['name']}"] = _subst(val, scope) \
                if isinstance(val, str) else json.dumps(val, separators=(",", ":"))
        for a in (tmpl.get("inputs") or {}).get("artifacts") or []:
            if a.get("path"):
                scope[f"inputs.artifacts.{a['name']}.path"] = a["path"]
        ntype = self._node_type(tmpl)
        if missing is not None:
            node = self.new_node(node_name, ntype, tmpl_name, boundary, display, parent)
            return self.finish_node(node, "Error",
                                    f"inputs.parameters.{missing} was not supplied")
        retry = tmpl.get("retryStrategy")
        if retry is not None and ntype == "Pod":
            return self._exec_retry(tmpl, node_name, boundary, display, parent, scope, retry)
        return self._exec_once(tmpl, node_name, boundary, display, parent, scope)

    def _node_type(self, tmpl):
        if tmpl.get("dag") is not None:
            return "DAG"
        if tmpl.get("steps") is not None:
            return "Steps"
        if tmpl.get("suspend") is not None:
            return "Suspend"
        return "Pod"

    def _exec_retry(self, tmpl, node_name, boundary, display, parent, scope, retry):
        node = self.new_node(node_name, "Retry", tmpl["name"], boundary, display, parent)
        limit = retry.get("limit")
        limit = int(_subst(str(limit), scope)) if limit is not None else None
        policy = retry.get("retryPolicy", "OnFailure")
        backoff = retry.get("backoff") or {}
        delay = _dur(backoff.get("duration"), 0.0)
        factor = float(backoff.get("factor") or 1)
        attempt = 0
        while True:
            s = dict(scope)
            s["retries"] = str(attempt)
            child = self._exec_once(tmpl, f"{node_name}({attempt})", boundary,
                                    f"{display}({attempt})", node, s)
            ph = child["phase"]
            retryable = (policy == "Always" and ph in ("Failed", "Error")) or \
                (policy == "OnFailure" and ph == "Failed") or \
                (policy in ("OnError", "OnTransientError") and ph == "Error")
            if ph == "Succeeded" or not retryable or self.shutdown or \
                    (limit is not None and attempt >= limit):
                msg = child.get("message")
                if ph != "Succeeded" and retryable and limit is not None and attempt >= limit:
                    msg = "No more retries left"
                return self.finish_node(node, ph, msg, child.get("outputs"))
            if delay:
                end = time.monotonic() + delay
                while time.monotonic() < end and not self.shutdown:
                    self.check()
                    time.sleep(0.05)
                delay *= factor
            attempt += 1

    def _exec_once(self, tmpl, node_name, boundary, display, parent, scope):
        self.wait_resumed()
        self.check()
        if self.shutdown:
            node = self.new_node(node_name, self._node_type(tmpl), tmpl["name"], boundary,
                                 display, parent)
            return self.finish_node(node, "Failed", self.stopped_message())
        if tmpl.get("dag") is not None:
            return self._exec_dag(tmpl, node_name, boundary, display, parent, scope)
        if tmpl.get("steps") is not None:
            return self._exec_steps(tmpl, node_name, boundary, display, parent, scope)
        if tmpl.get("container") is not None or tmpl.get("script") is not None:
            return self._exec_pod(tmpl, node_name, boundary, display, parent, scope)
        kind = _template_type(tmpl)[0]
        node = self.new_node(node_name, self._node_type(tmpl), tmpl["name"], boundary, display,
                             parent)
        return self.finish_node(node, "Error", f"the fake Argo does not execute {kind} templates")

    def _outputs_scope(self, prefix, node, scope):
        out = node.get("outputs") or {}
        for p in out.get("parameters") or []:
            scope[f"{prefix}.outputs.parameters.{p['name']}"] = p.get("value", "")
        if "result" in out:
            scope[f"{prefix}.outputs.result"] = out["result"]
        if "exitCode" in out:
            scope[f"{prefix}.exitCode"] = out["exitCode"]
        scope[f"{prefix}.status"] = node["phase"]
        scope[f"{prefix}.id"] = node["id"]
        scope[f"{prefix}.startedAt"] = node.get("startedAt", "")
        scope[f"{prefix}.finishedAt"] = node.get("finishedAt", "")

    def _exec_fanout(self, step, node_name, boundary, display, parent, scope, items):
        """withItems/withParam: a TaskGroup whose children run the template once per item."""
        group = self.new_node(node_name, "TaskGroup", None, boundary, display, parent)
        results = [None] * len(items)

        def one(i, item):
            try:
                one_(i, item)
            except WorkflowGone:
                results[i] = {"phase": "Error", "id": "", "message": "workflow deleted"}

        def one_(i, item):
            s = _item_scope(scope, item)
            args = {p["name"]: _subst(p.get("value", ""), s)
                    for p in (step.get("arguments") or {}).get("parameters") or []}
            label = f"{display}({i}:{_item_label(item)})"
            results[i] = self.exec_template(step["template"], f"{node_name}({i}:"
                                            f"{_item_label(item)})", args, boundary, label,
                                            group, s)
        threads = [threading.Thread(target=one, args=(i, it), daemon=True)
                   for i, it in enumerate(items)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        phases = [r["phase"] for r in results]
        ph = "Succeeded" if all(p in ("Succeeded", "Skipped", "Omitted") for p in phases) \
            else ("Error" if "Error" in phases else "Failed")
        params = {}
        for r in results:
            for p in (r.get("outputs") or {}).get("parameters") or []:
                params.setdefault(p["name"], []).append(p.get("value"))
        outputs = {}
        if params:
            outputs["parameters"] = [{"name": k, "value": json.dumps(v, separators=(",", ":"))}
                                     for k, v in params.items()]
        res = [(r.get("outputs") or {}).get("result") for r in results]
        if any(x is not None for x in res):
            outputs["result"] = json.dumps(res, separators=(",", ":"))
        msg = None
        if ph != "Succeeded":
            failed = next(r for r in results if r["phase"] not in ("Succeeded", "Skipped",
                                                                   "Omitted"))
            msg = f"child '{failed['id']}' failed"
        return self.finish_node(group, ph, msg, outputs or None)

    def _exec_dag(self, tmpl, node_name, boundary, display, parent, scope):
        dag = self.new_node(node_name, "DAG", tmpl["name"], boundary, display, parent)
        tasks = {t["name"]: t for t in tmpl["dag"].get("tasks") or []}
        deps = {n: _task_deps(t) for n, t in tasks.items()}
        dependents = {n: [m for m in tasks if n in deps[m]] for n in tasks}
        target = tmpl["dag"].get("target")
        fail_fast = tmpl["dag"].get("failFast", True)
        results, running, lock = {}, {}, threading.Condition()
        nodes = {}
        scope = dict(scope)
        handled = set()  # failures another task's `depends` asks about
        for t in tasks.values():
            for m in re.finditer(r"([A-Za-z0-9_][-A-Za-z0-9_]*)\.(Failed|Errored|Completed|"
                                 r"AllFailed)", t.get("depends") or ""):
                handled.add(m.group(1))

        def run_task(name, task, s):
            try:
                display_name = name
                tnode_name = f"{node_name}.{name}"
                items = _items(task, s)
                if items is not None:
                    res = self._exec_fanout(task, tnode_name, dag["id"], display_name, None, s,
                                            items)
                else:
                    args = {p["name"]: _subst(p.get("value", ""), s)
                            for p in (task.get("arguments") or {}).get("parameters") or []}
                    res = self.exec_template(task["template"], tnode_name, args, dag["id"],
                                             display_name, None, s)
            except WorkflowGone:
                res = {"phase": "Error", "id": "", "message": "workflow deleted"}
            except ValueError as e:
                n = self.new_node(f"{node_name}.{name}", "Pod", task.get("template"), dag["id"],
                                  name)
                res = self.finish_node(n, "Error", str(e))
            with lock:
                results[name] = res
                running.pop(name, None)
                lock.notify_all()

        failed_fast = False
        while len(results) < len(tasks):
            self.check()
            started = []
            with lock:
                for name, task in tasks.items():
                    if name in results or name in running:
                        continue
                    if not all(d in results for d in deps[name]):
                        continue
                    phases = {d: results[d]["phase"] for d in deps[name]}
                    s = dict(scope)
                    for d in deps[name]:
                        self._outputs_scope(f"tasks.{d}", results[d], s)
                    ok = _eval_depends(task["depends"], phases) if task.get("depends") else \
                        all(phases[d] in ("Succeeded", "Skipped", "Daemoned") or
                            (tasks[d].get("continueOn") or {}).get("failed") for d in phases)
                    skip = None
                    if ok and task.get("when"):
                        try:
                            if not _eval_when(_subst(task["when"], s)):
                                skip = f"when '{_subst(task['when'], s)}' evaluated false"
                        except ValueError as e:
                            skip = str(e)
                    if not ok or skip or failed_fast or self.shutdown:
                        if failed_fast or self.shutdown:
                            results[name] = {"phase": "Omitted", "id": ""}
                            continue
                        n = self.new_node(f"{node_name}.{name}", "Skipped", task.get("template"),
                                          dag["id"], name,
                                          phase="Omitted" if not ok else "Skipped")
                        n = self.finish_node(n, n["phase"],
                                             "omitted: depends condition not met" if not ok
                                             else skip)
                        results[name] = n
                        nodes[name] = n
                        continue
                    running[name] = True
                    started.append((name, task, s))
                    child = self.node_id(f"{node_name}.{name}")
                    if not deps[name]:
                        self.add_child(dag, child)
                    for d in deps[name]:
                        if results[d].get("id"):
                            self.link(results[d]["id"], child)
            for name, task, s in started:
                threading.Thread(target=run_task, args=(name, task, s), daemon=True).start()
            with lock:
                if len(results) < len(tasks) and not started:
                    lock.wait(0.2)
                for name, r in results.items():
                    if name in nodes or not r.get("id"):
                        continue
                    nodes[name] = r
                    if r["phase"] in ("Failed", "Error") and fail_fast and \
                            name not in handled and not (
                                tasks[name].get("continueOn") or {}).get(
                                    "failed" if r["phase"] == "Failed" else "error"):
                        failed_fast = True
        for name, r in results.items():
            self._outputs_scope(f"tasks.{name}", r, scope)
        leaves = [target] if target else [n for n in tasks if not dependents[n]]
        bad = None
        for name in tasks:
            r = results[name]
            cont = tasks[name].get("continueOn") or {}
            if r["phase"] == "Failed" and not cont.get("failed") and \
                    (name in leaves or name not in handled):
                bad = r
                break
            if r["phase"] == "Error" and not cont.get("error") and \
                    (name in leaves or name not in handled):
                bad = r
                break
        outbound = [results[n]["id"] for n in leaves if results.get(n, {}).get("id")]
        if outbound:
            dag["outboundNodes"] = outbound
        if self.shutdown:
            return self.finish_node(dag, "Failed", self.stopped_message())
        if bad is not None:
            return self.finish_node(dag, "Failed" if bad["phase"] == "Failed" else "Error",
                                    f"child '{bad['id']}' failed")
        return self.finish_node(dag, "Succeeded")

    def _exec_steps(self, tmpl, node_name, boundary, display, parent, scope):
        steps = self.new_node(node_name, "Steps", tmpl["name"], boundary, display, parent)
        scope = dict(scope)
        prev = steps
        for gi, group in enumerate(tmpl["steps"]):
            self.check()
            gname = f"{node_name}[{gi}]"
            gnode = self.new_node(gname, "StepGroup", None, steps["id"], f"[{gi}]")
            if prev is steps:
                self.add_child(steps, gnode["id"])
            else:
                self.add_child(prev, gnode["id"])
            results = {}

            def run_step(st, s):
                sname = f"{gname}.{st['name']}"
                try:
                    if st.get("when") and not _eval_when(_subst(st["when"], s)):
                        n = self.new_node(sname, "Skipped", st.get("template"), steps["id"],
                                          st["name"], gnode, phase="Skipped")
                        results[st["name"]] = self.finish_node(
                            n, "Skipped", f"when '{_subst(st['when'], s)}' evaluated false")
                        return
                    items = _items(st, s)
                    if items is not None:
                        results[st["name"]] = self._exec_fanout(st, sname, steps["id"],
                                                                st["name"], gnode, s, items)
                        return
                    args = {p["name"]: _subst(p.get("value", ""), s)
                            for p in (st.get("arguments") or {}).get("parameters") or []}
                    results[st["name"]] = self.exec_template(st["template"], sname, args,
                                                             steps["id"], st["name"], gnode, s)
                except WorkflowGone:
                    results[st["name"]] = {"phase": "Error", "id": ""}
                except ValueError as e:
                    n = self.new_node(sname, "Pod", st.get("template"), steps["id"], st["name"],
                                      gnode)
                    results[st["name"]] = self.finish_node(n, "Error", str(e))
            threads = [threading.Thread(target=run_step, args=(st, dict(scope)), daemon=True)
                       for st in group or []]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            for sname, r in results.items():
                self._outputs_scope(f"steps.{sname}", r, scope)
            gnode = util.deep(self.store.get("workflows", self.ns, self.name)["status"]["nodes"]
                              [gnode["id"]])
            bad = [(n, r) for n, r in results.items()
                   if r["phase"] in ("Failed", "Error") and not (
                       next(s for s in group if s["name"] == n).get("continueOn") or {}).get(
                           "failed" if r["phase"] == "Failed" else "error")]
            if bad:
                self.finish_node(gnode, "Failed", f"child '{bad[0][1]['id']}' failed")
                return self.finish_node(steps, bad[0][1]["phase"],
                                        f"child '{bad[0][1]['id']}' failed")
            self.finish_node(gnode, "Succeeded")
            prev = gnode
            if self.shutdown:
                return self.finish_node(steps, "Failed", self.stopped_message())
        return self.finish_node(steps, "Succeeded")

    def _pod_name(self, node_name, tmpl_name):
        if node_name == self.name:
            return self.name
        prefix = f"{self.name}-{tmpl_name}"
        if len(prefix) > 63 - 11:
            prefix = prefix[:63 - 11]
        return f"{prefix}-{util.fnv32a(node_name)}"

    def _exec_pod(self, tmpl, node_name, boundary, display, parent, scope):
        node = self.new_node(node_name, "Pod", tmpl["name"], boundary, display, parent)
        pod_name = self._pod_name(node_name, tmpl["name"])
        scope = dict(scope)
        scope["pod.name"] = pod_name
        scope["node.name"] = node_name
        t = _subst(tmpl, scope)
        script = t.get("script")
        c = util.deep(script if script is not None else t["container"])
        source = c.pop("source", None) if script is not None else None
        container = {k: v for k, v in c.items() if k != "name"}
        container["name"] = "main"
        if script is not None:
            container["command"] = container.get("command") or ["sh"]
            container["args"] = list(container.get("args") or []) + [SCRIPT_PATH]
        if t.get("volumeMounts") and not container.get("volumeMounts"):
            container["volumeMounts"] = t["volumeMounts"]
        spec = {"containers": [container], "restartPolicy": "Never",
                "volumes": list(self.spec.get("volumes") or []) + list(t.get("volumes") or [])}
        if not spec["volumes"]:
            del spec["volumes"]
        for field, src in (("serviceAccountName", t.get("serviceAccountName") or
                            self.spec.get("serviceAccountName")),
                           ("nodeSelector", t.get("nodeSelector") or
                            self.spec.get("nodeSelector")),
                           ("tolerations", t.get("tolerations") or self.spec.get("tolerations")),
                           ("securityContext", t.get("securityContext") or
                            self.spec.get("securityContext")),
                           ("activeDeadlineSeconds", t.get("activeDeadlineSeconds"))):
            if src is not None:
                spec[field] = int(src) if field == "activeDeadlineSeconds" else src
        if t.get("timeout") and "activeDeadlineSeconds" not in spec:
            spec["activeDeadlineSeconds"] = max(1, int(_dur(t["timeout"])))
        from .controllers import default_pod_spec
        default_pod_spec(spec)
        outputs = t.get("outputs") or {}
        out_paths = [p["valueFrom"]["path"] for p in outputs.get("parameters") or []
                     if (p.get("valueFrom") or {}).get("path")]
        out_paths += [a["path"] for a in outputs.get("artifacts") or [] if a.get("path")]
        in_arts = [a for a in (t.get("inputs") or {}).get("artifacts") or [] if a.get("path")]
        # Argo creates the directories that hold input artifacts, and the runtime the working
        # directory: map them too (unless the host has them, as for the working directory), so
        # that a command naming them finds them.
        dirs = {os.path.dirname(a["path"].rstrip("/")) for a in in_arts}
        if container.get("workingDir"):
            dirs.add(container["workingDir"].rstrip("/"))
        dirs = sorted(d for d in dirs if d not in ("", "/") and not os.path.isdir(d))
        plan = {"paths": out_paths + [a["path"] for a in in_arts] + dirs
                + ([SCRIPT_PATH] if script is not None else []),
                "script": (SCRIPT_PATH, source) if script is not None else None,
                "files": [(a["path"], ((a.get("raw") or {}).get("data") or "").encode(),
                           a.get("mode", 0o644)) for a in in_arts if a.get("raw")],
                "outputs": outputs, "result": None, "done": threading.Event()}
        missing_art = [a["name"] for a in in_arts if not a.get("raw")]
        if missing_art:
            return self.finish_node(node, "Error", f"the fake Argo supports raw input artifacts "
                                                   f"only (artifact {missing_art[0]})")
        with self.ctl.lock:
            self.ctl.plans[(self.ns, pod_name)] = plan
        wf_meta = self.store.get("workflows", self.ns, self.name)["metadata"]
        pod = {"apiVersion": "v1", "kind": "Pod",
               "metadata": {"name": pod_name, "namespace": self.ns,
                            "labels": {f"{WF}/workflow": self.name, f"{WF}/completed": "false",
                                       **((t.get("metadata") or {}).get("labels") or {})},
                            "annotations": {f"{WF}/node-name": node_name,
                                            f"{WF}/node-id": node["id"],
                                            **((t.get("metadata") or {}).get("annotations")
                                               or {})},
                            "ownerReferences": [{"apiVersion": "argoproj.io/v1alpha1",
                                                 "kind": "Workflow", "name": self.name,
                                                 "uid": wf_meta["uid"], "controller": True,
                                                 "blockOwnerDeletion": True}]},
               "spec": spec, "status": {"phase": "Pending", "qosClass": "BestEffort"}}
        with self.store.lock:
            if self.store.get("pods", self.ns, pod_name) is not None:
                self.cluster.kubelet.delete_pod(self.ns, pod_name, 0)
            self.store.create("pods", pod)
        killed = False
        while True:
            with self.store.lock:
                p = self.store.get("pods", self.ns, pod_name)
                phase = (p or {}).get("status", {}).get("phase")
                if p is not None and phase not in ("Succeeded", "Failed"):
                    self.store.cond.wait(0.2)
                    p = self.store.get("pods", self.ns, pod_name)
                    phase = (p or {}).get("status", {}).get("phase")
            self.check()
            if p is None:
                return self.finish_node(node, "Failed" if killed else "Error",
                                        self.stopped_message() if killed else "pod deleted")
            if phase == "Running" and node["phase"] == "Pending":
                node["phase"] = "Running"
                node["hostNodeName"] = self.cluster.kubelet.node_name
                self.set_node(node)
            if phase in ("Succeeded", "Failed"):
                break
            if self.shutdown and not killed:
                killed = True
                w = self.cluster.kubelet.worker(p["metadata"]["uid"])
                if w is not None:
                    w.kill_container(2)
        plan["done"].wait(5)
        self.store.mutate("pods", self.ns, pod_name,
                          lambda o: o["metadata"]["labels"].update({f"{WF}/completed": "true"})
                          or True)
        term = (p["status"].get("containerStatuses") or [{}])[0].get("state", {}) \
            .get("terminated") or {}
        code = term.get("exitCode", 1)
        res = plan["result"] or {}
        outs = {"exitCode": str(code)}
        if res.get("stdout") is not None:
            outs["result"] = res["stdout"]
        if res.get("parameters"):
            outs["parameters"] = res["parameters"]
        if killed:
            return self.finish_node(node, "Failed", self.stopped_message(), outs)
        if term.get("reason") == "StartError":
            return self.finish_node(node, "Error", term.get("message"), outs)
        if p["status"].get("reason") == "DeadlineExceeded":
            return self.finish_node(node, "Failed", "Pod was active on the node longer than the "
                                                    "specified deadline", outs)
        if code != 0:
            return self.finish_node(node, "Failed", f"Error (exit code {code})", outs)
        if res.get("error"):
            return self.finish_node(node, "Error", res["error"], outs)
        return self.finish_node(node, "Succeeded", None, outs)


class WorkflowController:
    def __init__(self, cluster):
        self.cluster = cluster
        self.lock = threading.Lock()
        self.plans = {}
        cluster.store.observers.append(self._observe)
        cluster.kubelet.prepare.append(self._prepare)

    def _observe(self, ev):
        if ev.resource == "workflows" and ev.type == "ADDED":
            m = ev.obj["metadata"]
            run = Run(self, m["namespace"], m["name"], m["uid"])
            threading.Thread(target=run.run, name=f"wf-{m['name']}", daemon=True).start()

    def _prepare(self, worker, pod):
        with self.lock:
            plan = self.plans.pop((worker.ns, worker.name), None)
        if plan is None:
            return
        worker.extra_mapping = [(p, os.path.join(worker.root, p.lstrip("/")))
                                for p in plan["paths"]]
        worker.script = plan["script"]
        worker.files = plan["files"]
        worker.separate_stderr = True

        def on_exit(w, code):
            res = {"parameters": [], "stdout": None, "error": None}
            if w.runs:
                out = bytes(w.runs[-1].stdout).decode(errors="replace")
                res["stdout"] = out[:-1] if out.endswith("\n") else out
            for p in plan["outputs"].get("parameters") or []:
                vf = p.get("valueFrom") or {}
                entry = {"name": p["name"]}
                if vf.get("path"):
                    host = os.path.join(w.root, vf["path"].lstrip("/"))
                    try:
                        with open(host, errors="replace") as f:
                            val = f.read()
                        entry["value"] = val[:-1] if val.endswith("\n") else val
                    except OSError:
                        if vf.get("default") is not None:
                            entry["value"] = vf["default"]
                        elif code == 0:
                            res["error"] = (f"open {vf['path']}: no such file or directory")
                            continue
                        else:
                            continue
                    entry["valueFrom"] = {"path": vf["path"]}
                elif p.get("value") is not None:
                    entry["value"] = p["value"]
                else:
                    continue
                res["parameters"].append(entry)
            plan["result"] = res
            plan["done"].set()
        worker.on_exit = on_exit


# --- the Argo Server API ---------------------------------------------------------------------

class ArgoApi:
    def __init__(self, cluster, kube_api):
        self.cluster = cluster
        self.store = cluster.store
        self.kube = kube_api
        self.res = RESOURCES["workflows"]

    def route(self, req):
        path = req.path.rstrip("/")
        m = re.fullmatch(r"/api/v1/(workflows|workflow-events|info|version|userinfo)(/.*)?", path)
        if not m:
            return False
        try:
            if self.cluster.auth.check(req, allow_cookie=True) is None:
                raise ArgoError(16, "token not valid. see https://argo-workflows.readthedocs.io/"
                                    "en/latest/faq/")
            rest = [p for p in (m.group(2) or "").split("/") if p]
            what = m.group(1)
            if what == "version":
                req.send(200, {"version": "v3.6.0+dagd-fake", "buildDate": "",
                               "gitCommit": "", "gitTag": "", "gitTreeState": "",
                               "goVersion": "", "compiler": "", "platform": "linux/amd64"})
            elif what == "info":
                req.send(200, {"managedNamespace": "", "links": [], "modals": {},
                               "navColor": "", "columns": []})
            elif what == "userinfo":
                req.send(200, {"subject": "fake", "issuer": "fake"})
            elif what == "workflow-events":
                if len(rest) != 1 or req.method != "GET":
                    raise ArgoError(12, "Method Not Allowed")
                self.watch(req, rest[0])
            else:
                self._workflows(req, rest)
        except ArgoError as e:
            if req.status is None:
                req.send(e.http, e.body())
        except ApiError as e:
            if req.status is None:
                code = {400: 3, 401: 16, 403: 7, 404: 5, 409: 6, 410: 9, 422: 3, 429: 8}.get(
                    e.code, 13)
                err = ArgoError(code, str(e))
                req.send(err.http, err.body())
        return True

    def _strip(self, wf):
        wf = dict(wf)
        wf.pop("kind", None)
        wf.pop("apiVersion", None)
        return wf

    def _get(self, ns, name):
        wf = self.store.get("workflows", ns, name)
        if wf is None:
            raise ArgoError(5, f'{WF} "{name}" not found')
        return wf

    def _body(self, req):
        raw = req.body()
        try:
            return json.loads(raw) if raw.strip() else {}
        except ValueError as e:
            raise ArgoError(3, f"invalid character in request body: {e}")

    def _workflows(self, req, rest):
        if not rest:
            raise ArgoError(5, "Not Found")
        ns = rest[0]
        method = req.method
        if len(rest) == 1:
            if method == "POST":
                return self.create(req, ns)
            if method == "GET":
                return self.list(req, ns)
        elif len(rest) == 2:
            if rest[1] == "lint" and method == "POST":
                return self.create(req, ns, lint=True)
            if method == "GET":
                req.send(200, self._strip(self._get(ns, rest[1])))
                return
            if method == "DELETE":
                self._get(ns, rest[1])
                policy = req.q("deleteOptions.propagationPolicy") or "Background"
                self.cluster.gc.delete("workflows", ns, rest[1], policy)
                req.send(200, {})
                return
        elif len(rest) == 3 and method == "PUT" and rest[2] in ("stop", "terminate", "suspend",
                                                                 "resume"):
            return self.shutdown(req, ns, rest[1], rest[2])
        elif len(rest) == 3 and rest[2] == "log" and method == "GET":
            return self.logs(req, ns, rest[1], req.q("podName"))
        elif len(rest) == 4 and rest[3] == "log" and method == "GET":
            return self.logs(req, ns, rest[1], rest[2])
        raise ArgoError(12, "Method Not Allowed")

    def create(self, req, ns, lint=False):
        body = self._body(req)
        wf = body.get("workflow")
        if not isinstance(wf, dict):
            raise ArgoError(3, "workflow body not specified")
        meta = wf.get("metadata") if isinstance(wf.get("metadata"), dict) else {}
        shown = meta.get("name") or meta.get("generateName") or ""
        errs = self.cluster.schemas.errors("argo-workflow", wf)
        if errs:
            self.cluster.violations.record(source="request", method=req.method, path=req.path,
                                           resource="workflows", name=shown,
                                           schema="argo-workflow", errors=errs)
            req.send(400, ArgoError(3, "schema violation (argo-workflow.schema.json): "
                                       + "; ".join(errs)).body(),
                     headers={"X-Fake-Schema-Violation": "true"})
            return
        wf = util.deep(wf)
        meta = wf.setdefault("metadata", {})
        if not meta.get("namespace"):
            meta["namespace"] = ns
        if meta["namespace"] != ns:
            raise ArgoError(3, "the namespace of the provided object does not match the "
                               "namespace sent on the request")
        validate_workflow(wf)
        if lint:
            req.send(200, self._strip(wf))
            return
        if not meta.get("name") and not meta.get("generateName"):
            raise ArgoError(3, f'{WF} "" is invalid: metadata.name: Required value: name or '
                               f'generateName is required')
        dry = "All" in ((body.get("createOptions") or {}).get("dryRun") or []) or \
            body.get("serverDryRun")
        for f in ("uid", "resourceVersion", "creationTimestamp", "generation"):
            meta.pop(f, None)
        if not meta.get("name"):
            meta["name"] = util.generate_name(meta["generateName"])
        for e in util.subdomain_errors(meta["name"]):
            raise ArgoError(3, f'{WF} "{meta["name"]}" is invalid: metadata.name: Invalid value: '
                               f'"{meta["name"]}": {e}')
        wf["kind"], wf["apiVersion"] = "Workflow", "argoproj.io/v1alpha1"
        if dry:
            req.send(200, self._strip(wf))
            return
        with self.store.lock:
            if self.store.get("workflows", ns, meta["name"]) is not None:
                raise ArgoError(6, f'{WF} "{meta["name"]}" already exists')
            created = self.store.create("workflows", wf)
        req.send(200, self._strip(created))

    def _list_filter(self, req, ns, name=None):
        fs = req.q("listOptions.fieldSelector") or ""
        if name:
            fs = (fs + "," if fs else "") + f"metadata.name={name}"
        try:
            return Filter(self.res, ns, req.q("listOptions.labelSelector") or "", fs)
        except SelectorError as e:
            raise ArgoError(3, str(e))

    def list(self, req, ns):
        flt = self._list_filter(req, ns)
        if self.cluster.faults.take_gone_list():
            raise ArgoError(9, "The resourceVersion for the provided list is too old.")
        items, rv = self.store.list("workflows", flt)
        items = [self._strip(w) for w in items]
        items.sort(key=lambda w: w["metadata"].get("creationTimestamp", ""), reverse=True)
        req.send(200, {"metadata": {"resourceVersion": str(rv)}, "items": items or None})

    def shutdown(self, req, ns, name, action):
        wf = self._get(ns, name)
        if action in ("stop", "terminate") and \
                (wf["metadata"].get("labels") or {}).get(f"{WF}/completed") == "true":
            raise ArgoError(9, "cannot shutdown a completed workflow")

        def fn(o):
            spec = o.setdefault("spec", {})
            if action == "stop":
                spec["shutdown"] = "Stop"
            elif action == "terminate":
                spec["shutdown"] = "Terminate"
            elif action == "suspend":
                spec["suspend"] = True
            else:
                spec.pop("suspend", None)
            return True
        out = self.store.mutate("workflows", ns, name, fn, bump_generation=True)
        if out is None:
            raise ArgoError(5, f'{WF} "{name}" not found')
        req.send(200, self._strip(out))

    def _sse(self, req):
        return "text/event-stream" in (req.headers.get("Accept") or "")

    def watch(self, req, ns):
        flt = self._list_filter(req, ns)
        sse = self._sse(req)

        def wrap(ev):
            return {"result": {"type": ev[0], "object": self._strip(ev[1])}}

        def error_wrap(status):
            # grpc-gateway's stream error; the Kubernetes Status (e.g. 410) only as text
            return {"error": {"grpc_code": 2, "http_code": 500,
                              "message": status.get("message", ""),
                              "http_status": "Internal Server Error", "details": []}}
        ctype = "text/event-stream" if sse else "application/json"
        self.kube.run_watch(_SseAdapter(req) if sse else req, self.res, flt,
                            req.q("listOptions.resourceVersion") or "",
                            req.q_bool("listOptions.allowWatchBookmarks"),
                            float(req.q("listOptions.timeoutSeconds") or
                                  self.cluster.opts.watch_timeout),
                            False, wrap, error_wrap, content_type=ctype)

    def logs(self, req, ns, name, pod_name=None):
        self._get(ns, name)
        container = req.q("logOptions.container") or "main"
        follow = req.q_bool("logOptions.follow")
        timestamps = req.q_bool("logOptions.timestamps")
        tail = req.q("logOptions.tailLines")
        grep = req.q("grep")
        sse = self._sse(req)
        stream = req.stream(200, "text/event-stream" if sse else "application/json")
        stream.stop_requested = False
        wid = self.cluster.watches.add(stream, {"path": req.path, "log": True,
                                                "since": time.time()})
        sent = {}  # pod uid -> (run index, line index)
        try:
            while True:
                with self.store.lock:
                    pods, _ = self.store.list("pods", lambda o: (
                        o["metadata"]["namespace"] == ns and
                        (o["metadata"].get("labels") or {}).get(f"{WF}/workflow") == name and
                        (pod_name is None or o["metadata"]["name"] == pod_name)))
                    wf = self.store.get("workflows", ns, name)
                pods.sort(key=lambda p: (p["metadata"]["creationTimestamp"],
                                         p["metadata"]["name"]))
                all_done = True
                for p in pods:
                    if container != "main":
                        continue
                    w = self.cluster.kubelet.worker(p["metadata"]["uid"])
                    if w is None or not w.runs:
                        all_done = all_done and (p.get("status") or {}).get("phase") in (
                            "Succeeded", "Failed")
                        continue
                    log = w.runs[-1]
                    with log.cond:
                        lines = list(log.lines)
                        done = log.done
                    start = sent.get(p["metadata"]["uid"], 0)
                    if start == 0 and tail is not None and not follow:
                        start = max(0, len(lines) - int(tail))
                    for ts, data in lines[start:]:
                        text = data.decode(errors="replace").rstrip("\n")
                        if grep and not re.search(grep, text):
                            continue
                        if timestamps:
                            text = util.rfc3339_nano(ts) + " " + text
                        msg = {"result": {"content": text, "podName": p["metadata"]["name"]}}
                        if sse:
                            stream.write("data: " + json.dumps(msg, separators=(",", ":"))
                                         + "\n\n")
                        else:
                            stream.write_json_line(msg)
                    sent[p["metadata"]["uid"]] = len(lines)
                    all_done = all_done and done
                completed = wf is None or (wf["metadata"].get("labels") or {}).get(
                    f"{WF}/completed") == "true"
                if not follow or (completed and all_done) or stream.stop_requested:
                    stream.end()
                    return
                if stream.client_gone():
                    return
                with self.store.lock:
                    self.store.cond.wait(0.2)
        finally:
            self.cluster.watches.remove(wid)


class _SseAdapter:
    """Makes run_watch write Server-Sent Events (`data: {...}\\n\\n`) instead of JSON lines."""

    def __init__(self, req):
        self._req = req

    def __getattr__(self, name):
        return getattr(self._req, name)

    def stream(self, status, content_type):
        s = self._req.stream(status, content_type)

        def write_json_line(obj):
            s.write("data: " + json.dumps(obj, separators=(",", ":")) + "\n\n")
        s.write_json_line = write_json_line
        return s
