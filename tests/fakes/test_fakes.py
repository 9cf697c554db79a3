#!/usr/bin/python3
"""Self-test of the Kubernetes API and Argo Server fakes: each real-protocol behaviour dagd's
runners rely on, exercised over HTTP against a real fake process.

  python3 tests/fakes/test_fakes.py [-v] [--schemas DIR] [TestCase.test_name ...]
"""

import base64
import http.client
import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import unittest

sys.dont_write_bytecode = True  # keep __pycache__ out of the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from fakeclient import FakeProcess  # noqa: E402

SCHEMAS = None  # --schemas; None: fake_kube.py's default (<repo>/../shared/schemas)
FAST = ["--bookmark-interval", "0.5", "--pod-start-delay", "0.1", "--job-backoff", "0.5",
        "--crash-backoff", "0.2"]


def job(name, command, labels=None, volumes=None, mounts=None, env=None, **spec):
    container = {"name": "main", "image": "debian:12", "command": command}
    if mounts:
        container["volumeMounts"] = mounts
    if env:
        container["env"] = env
    pod_spec = {"restartPolicy": "Never", "containers": [container]}
    if volumes:
        pod_spec["volumes"] = volumes
    spec.setdefault("backoffLimit", 0)
    spec["template"] = {"spec": pod_spec}
    meta = {"name": name}
    if labels:
        meta["labels"] = labels
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": meta, "spec": spec}


def wait_for(fn, timeout=20, interval=0.05, what="condition"):
    deadline = time.monotonic() + timeout
    while True:
        v = fn()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(interval)


class FakeTestCase(unittest.TestCase):
    fake = None
    mode = "both"
    args = FAST

    @classmethod
    def setUpClass(cls):
        cls.fake = FakeProcess(mode=cls.mode, extra_args=cls.args, schemas=SCHEMAS)
        cls.c = cls.fake.client()
        cls.expected_violations = 0

    @classmethod
    def tearDownClass(cls):
        v = cls.fake.violations()
        self_found = [x for x in v if x.get("source") != "request"]
        rc = cls.fake.stop()
        if "Traceback" in cls.fake.output():
            raise AssertionError("the fake raised an exception:\n" + cls.fake.output())
        if self_found:
            raise AssertionError("the fake wrote objects that violate their own schema:\n"
                                 + json.dumps(self_found, indent=1))
        if len(v) != cls.expected_violations:
            raise AssertionError(f"expected {cls.expected_violations} schema violations, got "
                                 f"{json.dumps(v, indent=1)}")
        want_rc = 3 if cls.expected_violations else 0
        if rc != want_rc:
            raise AssertionError(f"fake exited {rc}, expected {want_rc}:\n" + cls.fake.output())
        cls.fake.cleanup()

    def stream(self, path, **kw):
        s = self.c.stream(path, **kw)
        self.addCleanup(s.close)
        return s

    def ns(self):
        return self._testMethodName.replace("_", "-")[5:40].strip("-")

    def jobs(self, ns=None):
        return f"/apis/batch/v1/namespaces/{ns or self.ns()}/jobs"

    def core(self, what, ns=None):
        return f"/api/v1/namespaces/{ns or self.ns()}/{what}"

    def create(self, path, body, status=201):
        r = self.c.post(path, body)
        self.assertEqual(r.status, status, r)
        return r.json

    def finished(self, name, ns=None, timeout=30):
        """Waits for the Job's Complete or Failed condition; returns (type, job)."""
        def done():
            j = self.c.get(f"{self.jobs(ns)}/{name}").json
            for cond in (j.get("status") or {}).get("conditions") or []:
                if cond["type"] in ("Complete", "Failed") and cond["status"] == "True":
                    return cond["type"], j
            return None
        return wait_for(done, timeout, what=f"job {name} to finish")

    def pods_of(self, name, ns=None):
        r = self.c.get(self.core("pods", ns) + f"?labelSelector=job-name%3D{name}")
        self.assertEqual(r.status, 200, r)
        return r.json["items"]

    def log(self, pod, ns=None, query=""):
        r = self.c.get(self.core(f"pods/{pod}/log", ns) + query)
        self.assertEqual(r.status, 200, r)
        return r.text


class KubeApiTest(FakeTestCase):
    def test_auth_401_and_token_rotation(self):
        for token in (None, "wrong"):
            r = self.c.get(self.jobs(), token=token)
            self.assertEqual(r.status, 401)
            self.assertEqual(r.json, {"kind": "Status", "apiVersion": "v1", "metadata": {},
                                      "status": "Failure", "message": "Unauthorized",
                                      "reason": "Unauthorized", "code": 401})
        self.fake.set_token("rotated")
        try:
            self.assertEqual(self.c.get(self.jobs()).status, 401)
            self.assertEqual(self.c.get(self.jobs(), token="rotated").status, 200)
        finally:
            self.fake.set_token(self.fake.token)
        self.assertEqual(self.c.get(self.jobs()).status, 200)

    def test_job_create_get_conflict_delete(self):
        created = self.create(self.jobs(), job("crud", ["true"]))
        meta = created["metadata"]
        self.assertEqual(created["kind"], "Job")
        self.assertEqual(meta["namespace"], self.ns())
        for field in ("uid", "creationTimestamp", "resourceVersion"):
            self.assertTrue(meta.get(field), field)
        self.assertEqual(meta["generation"], 1)
        labels = created["spec"]["template"]["metadata"]["labels"]
        self.assertEqual(labels["job-name"], "crud")
        self.assertEqual(labels["batch.kubernetes.io/job-name"], "crud")
        self.assertEqual(labels["controller-uid"], meta["uid"])
        got = self.c.get(f"{self.jobs()}/crud")
        self.assertEqual(got.status, 200)
        self.assertEqual(got.json["metadata"]["uid"], meta["uid"])
        again = self.c.post(self.jobs(), job("crud", ["true"]))
        self.assertEqual(again.status, 409)
        self.assertEqual(again.json["reason"], "AlreadyExists")
        self.assertEqual(again.json["message"], 'jobs.batch "crud" already exists')
        self.assertEqual(again.json["details"], {"name": "crud", "group": "batch",
                                                 "kind": "jobs"})
        self.finished("crud")
        d = self.c.delete(f"{self.jobs()}/crud?propagationPolicy=Background")
        self.assertEqual(d.status, 200, d)
        self.assertEqual(d.json["status"], "Success")
        self.assertEqual(d.json["details"]["uid"], meta["uid"])
        gone = self.c.get(f"{self.jobs()}/crud")
        self.assertEqual(gone.status, 404)
        self.assertEqual(gone.json["reason"], "NotFound")
        self.assertEqual(gone.json["message"], 'jobs.batch "crud" not found')
        self.assertEqual(self.c.delete(f"{self.jobs()}/crud").status, 404)
        wait_for(lambda: not self.pods_of("crud"), what="pods garbage-collected")

    def test_generate_name_and_wrong_media_type(self):
        body = job("x", ["true"])
        body["metadata"] = {"generateName": "gen-"}
        created = self.create(self.jobs(), body)
        self.assertRegex(created["metadata"]["name"], r"^gen-[bcdfghjklmnpqrstvwxz2456789]{5}$")
        r = self.c.post(self.jobs(), job("y", ["true"]), ctype="application/x-www-form-urlencoded")
        self.assertEqual(r.status, 415)
        self.assertEqual(r.json["reason"], "UnsupportedMediaType")
        r = self.c.post(self.jobs(), "{not json")
        self.assertEqual(r.status, 400)
        self.assertEqual(r.json["reason"], "BadRequest")

    def test_schema_violation_is_422_and_recorded(self):
        before = len(self.fake.violations())
        body = job("bad-schema", ["true"])
        body["spec"]["template"]["spec"]["containers"][0]["comand"] = ["typo"]
        r = self.c.post(self.jobs(), body)
        type(self).expected_violations += 1
        self.assertEqual(r.status, 422, r)
        self.assertEqual(r.json["reason"], "Invalid")
        self.assertIn("'comand' was unexpected", r.json["message"])
        self.assertIn("spec.template.spec.containers[0]", r.json["message"])
        self.assertEqual(r.headers["X-Fake-Schema-Violation"], "true")
        v = self.fake.violations()
        self.assertEqual(len(v), before + 1)
        self.assertEqual(v[-1]["name"], "bad-schema")
        self.assertEqual(v[-1]["schema"], "k8s-job-batch-v1")
        with open(self.fake.violations_file) as f:
            self.assertIn("bad-schema", f.read())
        self.assertEqual(self.c.get(f"{self.jobs()}/bad-schema").status, 404)
        # the v1.32 schema caps a Job's name at 63 characters (the job-name label's limit)
        r = self.c.post(self.jobs(), job("a" * 64, ["true"]))
        type(self).expected_violations += 1
        self.assertEqual(r.status, 422, r)
        self.assertIn("is too long", r.json["message"])

    def test_semantic_validation_is_422_not_a_violation(self):
        before = len(self.fake.violations())
        cases = [
            (job("Upper", ["true"]), "a lowercase RFC 1123 subdomain"),
            (job("no-image", ["true"]), "spec.template.spec.containers[0].image: Required"),
            (job("always", ["true"]), 'Unsupported value: "Always"'),
            (job("bad-mount", ["true"], mounts=[{"name": "nope", "mountPath": "/x"}]),
             'volumeMounts[0].name: Not found: "nope"'),
            (job("bad-label", ["true"], labels={"dagd.io/run": "not valid!"}),
             "metadata.labels: Invalid value"),
        ]
        del cases[1][0]["spec"]["template"]["spec"]["containers"][0]["image"]
        cases[2][0]["spec"]["template"]["spec"]["restartPolicy"] = "Always"
        for body, text in cases:
            r = self.c.post(self.jobs(), body)
            self.assertEqual(r.status, 422, (body["metadata"], r))
            self.assertEqual(r.json["reason"], "Invalid")
            self.assertIn(text, r.json["message"])
            self.assertTrue(r.json["details"]["causes"])
        self.assertEqual(len(self.fake.violations()), before)

    def test_failed_job_keeps_its_log(self):
        self.create(self.jobs(), job("fails", ["sh", "-c", "echo hi; echo oops >&2; exit 3"]))
        kind, j = self.finished("fails")
        self.assertEqual(kind, "Failed")
        cond = [c for c in j["status"]["conditions"] if c["type"] == "Failed"][0]
        self.assertEqual(cond["reason"], "BackoffLimitExceeded")
        self.assertEqual(j["status"]["failed"], 1)
        self.assertNotIn("completionTime", j["status"])  # only set on success
        pods = self.pods_of("fails")
        self.assertEqual(len(pods), 1)
        pod = pods[0]
        self.assertRegex(pod["metadata"]["name"], r"^fails-[a-z0-9]{5}$")
        self.assertEqual(pod["metadata"]["ownerReferences"][0]["kind"], "Job")
        self.assertEqual(pod["status"]["phase"], "Failed")
        term = pod["status"]["containerStatuses"][0]["state"]["terminated"]
        self.assertEqual((term["exitCode"], term["reason"]), (3, "Error"))
        self.assertEqual(self.log(pod["metadata"]["name"]), "hi\noops\n")
        stamped = self.log(pod["metadata"]["name"], query="?timestamps=true&tailLines=1")
        self.assertRegex(stamped, r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z oops\n$")

    def test_successful_job_and_backoff_retries(self):
        self.create(self.jobs(), job("ok", ["sh", "-c", "exit 0"]))
        kind, j = self.finished("ok")
        self.assertEqual(kind, "Complete")
        self.assertEqual(j["status"]["succeeded"], 1)
        self.assertIn("completionTime", j["status"])
        types = [c["type"] for c in j["status"]["conditions"]]
        self.assertEqual(types, ["SuccessCriteriaMet", "Complete"])
        # backoffLimit 1: a second pod after the first fails, then the Job fails
        self.create(self.jobs(), job("retry", ["false"], backoffLimit=1))
        kind, j = self.finished("retry")
        self.assertEqual(kind, "Failed")
        self.assertEqual(j["status"]["failed"], 2)
        self.assertEqual(len(self.pods_of("retry")), 2)

    def test_ansible_playbook_from_configmap_volume(self):
        playbook = ("- hosts: localhost\n  connection: local\n  gather_facts: false\n"
                    "  tasks:\n"
                    "    - name: say where we are\n"
                    "      ansible.builtin.debug:\n"
                    "        msg: \"playbook dir {{ playbook_dir }} greeting {{ greeting }}\"\n"
                    "    - name: write a file into the emptyDir\n"
                    "      ansible.builtin.copy:\n"
                    "        dest: \"{{ lookup('env', 'OUT_DIR') }}/result.txt\"\n"
                    "        content: done\n")
        self.create(self.core("configmaps"), {
            "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "bundle"},
            "data": {"playbook.yml": playbook, "vars.json": json.dumps({"greeting": "hello"})}})
        body = job("ansible", ["ansible-playbook", "-i", "localhost,", "-e", "@/bundle/vars.json",
                               "/bundle/playbook.yml"],
                   volumes=[{"name": "bundle", "configMap": {"name": "bundle"}},
                            {"name": "out", "emptyDir": {}}],
                   mounts=[{"name": "bundle", "mountPath": "/bundle", "readOnly": True},
                           {"name": "out", "mountPath": "/work/out"}],
                   env=[{"name": "ANSIBLE_NOCOLOR", "value": "1"},
                        {"name": "OUT_DIR", "value": "/work/out"},
                        {"name": "ANSIBLE_LOCAL_TEMP", "value": "/work/out/.ansible-tmp"}],
                   activeDeadlineSeconds=120, ttlSecondsAfterFinished=300)
        self.create(self.jobs(), body)
        kind, _ = self.finished("ansible", timeout=60)
        pod = self.pods_of("ansible")[0]
        text = self.log(pod["metadata"]["name"])
        self.assertEqual(kind, "Complete", text)
        root = self.fake.control.get("/fake/podroots").json["podRoots"][
            f"{self.ns()}/{pod['metadata']['name']}"]
        self.assertIn(f"playbook dir {root}/bundle greeting hello", text)
        self.assertRegex(text, r"localhost\s+: ok=2\s+changed=1")
        with open(os.path.join(root, "work", "out", "result.txt")) as f:
            self.assertEqual(f.read(), "done")
        # kubelet's AtomicWriter layout: the keys are symlinks into ..data
        self.assertTrue(os.path.islink(os.path.join(root, "volumes", "bundle", "playbook.yml")))

    def test_volumes_env_and_path_mapping(self):
        self.create(self.core("configmaps"), {
            "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg"},
            "data": {"a.txt": "from-configmap", "level": "debug"}})
        self.create(self.core("secrets"), {
            "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "creds"},
            "data": {"password": base64.b64encode(b"s3cret").decode()},
            "stringData": {"user": "admin"}})
        script = ('echo "cfg=$(cat /etc/cfg/renamed.txt)";'
                  ' stat -c "mode=%a" -L /etc/cfg/renamed.txt;'
                  ' echo "secret=$(cat /etc/creds/password)/$(cat /etc/creds/user)";'
                  ' echo "env=$LEVEL $PASS $ME $GREETING"; echo "pwd=$(pwd)";'
                  ' echo "root=$DAGD_FAKE_POD_ROOT"; echo "token=$(cat '
                  '/var/run/secrets/kubernetes.io/serviceaccount/token)"')
        body = job("vols", ["sh", "-c", script],
                   volumes=[{"name": "cfg", "configMap": {"name": "cfg", "defaultMode": 0o600,
                                                          "items": [{"key": "a.txt",
                                                                     "path": "renamed.txt"}]}},
                            {"name": "creds", "secret": {"secretName": "creds"}}],
                   mounts=[{"name": "cfg", "mountPath": "/etc/cfg"},
                           {"name": "creds", "mountPath": "/etc/creds"}],
                   env=[{"name": "LEVEL", "valueFrom": {"configMapKeyRef": {"name": "cfg",
                                                                           "key": "level"}}},
                        {"name": "PASS", "valueFrom": {"secretKeyRef": {"name": "creds",
                                                                       "key": "password"}}},
                        {"name": "ME", "valueFrom": {"fieldRef": {
                            "fieldPath": "metadata.name"}}},
                        {"name": "GREETING", "value": "hi-$(LEVEL)"}])
        body["spec"]["template"]["spec"]["containers"][0]["workingDir"] = "/etc/cfg"
        self.create(self.jobs(), body)
        kind, _ = self.finished("vols")
        pod = self.pods_of("vols")[0]
        name = pod["metadata"]["name"]
        text = self.log(name)
        self.assertEqual(kind, "Complete", text)
        root = self.fake.control.get("/fake/podroots").json["podRoots"][f"{self.ns()}/{name}"]
        self.assertIn("cfg=from-configmap\nmode=600\n", text)
        self.assertIn("secret=s3cret/admin\n", text)
        self.assertIn(f"env=debug s3cret {name} hi-debug\n", text)
        self.assertIn(f"pwd={root}/etc/cfg\n", text)
        self.assertIn(f"root={root}\n", text)
        self.assertIn(f"token={self.fake.token}\n", text)
        secret = self.c.get(self.core("secrets") + "/creds").json
        self.assertNotIn("stringData", secret)
        self.assertEqual(base64.b64decode(secret["data"]["user"]), b"admin")
        self.assertEqual(secret["type"], "Opaque")

    def test_configmap_size_limit_and_keys(self):
        big = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "big"},
               "data": {"blob": "x" * (1024 * 1024 + 1)}}
        r = self.c.post(self.core("configmaps"), big)
        self.assertEqual(r.status, 422, r)
        self.assertIn("Too long: must have at most 1048576 bytes", r.json["message"])
        r = self.c.post(self.core("configmaps"), {"metadata": {"name": "k"},
                                                   "data": {"bad key": "v"}})
        self.assertEqual(r.status, 422, r)
        self.assertIn("a valid config key", r.json["message"])

    def test_list_and_watch_with_resource_versions_and_bookmarks(self):
        ns = self.ns()
        listed = self.c.get(self.jobs() + "?labelSelector=app%3Dwatched")
        self.assertEqual(listed.status, 200)
        self.assertEqual(listed.json["kind"], "JobList")
        self.assertEqual(listed.json["items"], [])
        rv = listed.json["metadata"]["resourceVersion"]
        w = self.stream(self.jobs() + f"?watch=1&labelSelector=app%3Dwatched&resourceVersion="
                          f"{rv}&allowWatchBookmarks=true&timeoutSeconds=30")
        self.assertEqual(w.status, 200)
        self.assertEqual(w.headers["Transfer-Encoding"], "chunked")
        self.create(self.jobs(), job("unwatched", ["true"]))
        self.create(self.jobs(), job("watched", ["true"], labels={"app": "watched"}))
        seen, bookmark_rv, last_rv, deleting = [], None, int(rv), False
        for ev in w.events():
            obj = ev["object"]
            if ev["type"] == "BOOKMARK":
                bookmark_rv = int(obj["metadata"]["resourceVersion"])
                self.assertEqual(obj["kind"], "Job")
                if seen and seen[-1][0] == "DELETED":
                    break
                continue
            self.assertEqual(obj["kind"], "Job")
            self.assertEqual(obj["metadata"]["name"], "watched")
            obj_rv = int(obj["metadata"]["resourceVersion"])
            self.assertGreater(obj_rv, last_rv)
            last_rv = obj_rv
            conds = [c["type"] for c in (obj.get("status") or {}).get("conditions") or []]
            seen.append((ev["type"], conds))
            if "Complete" in conds and ev["type"] == "MODIFIED" and not deleting:
                deleting = True
                d = self.c.delete(f"{self.jobs()}/watched?propagationPolicy=Foreground")
                self.assertEqual(d.status, 200, d)
                self.assertIn("foregroundDeletion", d.json["metadata"]["finalizers"])
                self.assertTrue(d.json["metadata"]["deletionTimestamp"])
        w.close()
        self.assertEqual(seen[0][0], "ADDED")
        self.assertEqual(seen[-1][0], "DELETED")
        self.assertIn(("MODIFIED", ["SuccessCriteriaMet", "Complete"]), seen)
        self.assertGreaterEqual(bookmark_rv, last_rv)
        # a watch without resourceVersion starts with the current state as ADDED events
        w = self.stream(self.jobs() + "?watch=true&timeoutSeconds=1")
        first = next(w.events())
        self.assertEqual((first["type"], first["object"]["metadata"]["name"]),
                         ("ADDED", "unwatched"))
        rest = list(w.events())  # the stream ends cleanly at timeoutSeconds
        self.assertTrue(all(e["type"] != "ERROR" for e in rest))
        w.close()
        # list items carry no kind/apiVersion, as with the real API server
        items = self.c.get(self.jobs()).json["items"]
        self.assertNotIn("kind", items[0])
        self.assertEqual(ns, items[0]["metadata"]["namespace"])

    def test_pagination(self):
        for i in range(3):
            self.create(self.core("configmaps"), {"metadata": {"name": f"page-{i}"}})
        r = self.c.get(self.core("configmaps") + "?limit=2").json
        self.assertEqual([o["metadata"]["name"] for o in r["items"]], ["page-0", "page-1"])
        self.assertEqual(r["metadata"]["remainingItemCount"], 1)
        r2 = self.c.get(self.core("configmaps") + "?limit=2&continue="
                        + r["metadata"]["continue"]).json
        self.assertEqual([o["metadata"]["name"] for o in r2["items"]], ["page-2"])
        self.assertNotIn("continue", r2["metadata"])

    def test_410_gone_after_compaction(self):
        old = self.c.get(self.core("configmaps")).json["metadata"]["resourceVersion"]
        self.create(self.core("configmaps"), {"metadata": {"name": "bump"}})
        self.assertEqual(self.fake.control.post("/fake/compact", {}).status, 200)
        w = self.stream(self.core("configmaps") + f"?watch=1&resourceVersion={old}")
        self.assertEqual(w.status, 200)
        events = list(w.events())
        self.assertEqual(len(events), 1)
        self.assertEqual(events[0]["type"], "ERROR")
        st = events[0]["object"]
        self.assertEqual((st["kind"], st["code"], st["reason"]), ("Status", 410, "Expired"))
        self.assertIn(f"too old resource version: {old}", st["message"])
        r = self.c.get(self.core("configmaps") + f"?resourceVersion={old}"
                       "&resourceVersionMatch=Exact")
        self.assertEqual(r.status, 410)
        self.assertEqual(r.json["reason"], "Expired")
        # the current resourceVersion still works
        cur = self.c.get(self.core("configmaps")).json["metadata"]["resourceVersion"]
        w = self.stream(self.core("configmaps") + f"?watch=1&resourceVersion={cur}"
                          "&timeoutSeconds=1")
        self.assertEqual(list(w.events()), [])

    def test_410_through_fault_switches(self):
        self.fake.faults(gone_next_watch=1, gone_next_list=1)
        r = self.c.get(self.core("configmaps"))
        self.assertEqual(r.status, 410)
        self.assertEqual(self.c.get(self.core("configmaps")).status, 200)
        w = self.stream(self.core("configmaps") + "?watch=1&resourceVersion=1")
        ev = next(w.events())
        self.assertEqual((ev["type"], ev["object"]["code"]), ("ERROR", 410))
        w = self.stream(self.core("configmaps") + "?watch=1&timeoutSeconds=1")
        self.assertTrue(all(e["type"] != "ERROR" for e in w.events()))

    def test_500_window_and_targeted_failures(self):
        self.fake.faults(fail_500_for_seconds=1.5)
        r = self.c.get(self.jobs())
        self.assertEqual(r.status, 500)
        self.assertEqual((r.json["kind"], r.json["reason"], r.json["code"]),
                         ("Status", "InternalError", 500))
        self.assertEqual(self.fake.control.get("/fake/healthz").status, 200)
        wait_for(lambda: self.c.get(self.jobs()).status == 200, 5, what="end of 500 window")
        self.fake.faults(fail_next={"count": 1, "code": 503, "method": "POST",
                                    "path": "/apis/batch/"})
        self.assertEqual(self.c.get(self.jobs()).status, 200)
        r = self.c.post(self.jobs(), job("after-503", ["true"]))
        self.assertEqual(r.status, 503)
        self.assertEqual(r.headers["Retry-After"], "1")
        self.assertEqual(self.c.post(self.jobs(), job("after-503", ["true"])).status, 201)

    def test_refused_connections_window(self):
        w = self.stream(self.jobs() + "?watch=1&timeoutSeconds=30")
        self.fake.faults(refuse_connections_for_seconds=2.0)
        try:
            with self.assertRaises((http.client.IncompleteRead, ConnectionError)):
                for _ in w.events():
                    pass
            w.close()
            with self.assertRaises(ConnectionRefusedError):
                socket.create_connection(("127.0.0.1", self.fake.port), timeout=2).close()
            self.assertTrue(self.fake.control.get("/fake/faults").json["refusing"])
        finally:
            wait_for(lambda: not self.fake.control.get("/fake/faults").json["refusing"], 10,
                     what="the listener to come back on the same port")
        self.assertEqual(self.c.get(self.jobs()).status, 200)

    def test_drop_watch(self):
        w = self.stream(self.jobs() + "?watch=1&timeoutSeconds=30")
        wait_for(lambda: self.fake.control.get("/fake/watches").json["open"], 5)
        self.fake.faults(drop_watches=True)
        with self.assertRaises((http.client.IncompleteRead, ConnectionError)):
            for _ in w.events():
                pass
        w.close()
        # a clean close (as at timeoutSeconds) ends with the terminating chunk instead
        w = self.stream(self.jobs() + "?watch=1&timeoutSeconds=30")
        wait_for(lambda: self.fake.control.get("/fake/watches").json["open"], 5)
        self.fake.faults(close_watches=True)
        self.assertEqual(list(w.events()), [])

    def test_follow_logs_while_running(self):
        self.create(self.jobs(), job("slow", ["sh", "-c",
                                              "for i in 1 2 3; do echo line$i; sleep 0.3; done"]))
        pod = wait_for(lambda: [p for p in self.pods_of("slow")
                                if p["status"].get("phase") == "Running"], 10)[0]
        s = self.stream(self.core(f"pods/{pod['metadata']['name']}/log") + "?follow=true")
        self.assertEqual(s.status, 200)
        first = s.readline()
        self.assertEqual(first, b"line1\n")
        # line1 arrived while the job was still running
        self.assertNotIn("conditions", self.c.get(f"{self.jobs()}/slow").json["status"])
        rest = b""
        while True:
            line = s.readline()
            if not line:
                break
            rest += line
        self.assertEqual(rest, b"line2\nline3\n")
        s.close()

    def test_log_of_pending_pod_is_400_until_its_configmap_exists(self):
        body = job("waits", ["cat", "/cfg/x"], volumes=[{"name": "c", "configMap": {
            "name": "later"}}], mounts=[{"name": "c", "mountPath": "/cfg"}])
        self.create(self.jobs(), body)
        pod = wait_for(lambda: self.pods_of("waits"), 10)[0]["metadata"]["name"]
        time.sleep(0.3)
        r = self.c.get(self.core(f"pods/{pod}/log"))
        self.assertEqual(r.status, 400)
        self.assertIn(f'container "main" in pod "{pod}" is waiting to start: ContainerCreating',
                      r.json["message"])
        r = self.c.get(self.core(f"pods/{pod}/log?container=other"))
        self.assertEqual(r.status, 400)
        self.create(self.core("configmaps"), {"metadata": {"name": "later"}, "data": {"x": "y"}})
        kind, _ = self.finished("waits")
        self.assertEqual(kind, "Complete")
        self.assertEqual(self.log(pod), "y")

    def test_delete_propagation_kills_process_group(self):
        # $$ is Kubernetes' escape for $ in command/args: the shell sees $$
        cmd = ["sh", "-c", "sleep 300 & echo pid=$!; echo sh=$$$$; wait"]
        for name, policy in (("bg", "Background"), ("orphan", None)):
            self.create(self.jobs(), job(name, cmd))
            pod = wait_for(lambda: [p for p in self.pods_of(name)
                                    if p["status"].get("phase") == "Running"], 10)[0]
            pname = pod["metadata"]["name"]
            text = wait_for(lambda: "sh=" in self.log(pname) and self.log(pname), 5)
            pids = [int(x.split("=")[1]) for x in text.split()]
            q = f"?propagationPolicy={policy}" if policy else ""
            d = self.c.delete(f"{self.jobs()}/{name}{q}")
            self.assertEqual(d.status, 200, d)
            if policy == "Background":
                self.assertEqual(d.json["kind"], "Status")
                wait_for(lambda: self.c.get(self.core(f"pods/{pname}")).status == 404, 10,
                         what="the pod to be deleted")
                for pid in pids:
                    wait_for(lambda: not os.path.exists(f"/proc/{pid}"), 5,
                             what=f"process {pid} to die")
            else:  # the REST default for Jobs is orphan: the pod keeps running
                self.assertEqual(d.json["metadata"]["finalizers"], ["orphan"])
                wait_for(lambda: self.c.get(f"{self.jobs()}/{name}").status == 404, 5)
                p = self.c.get(self.core(f"pods/{pname}")).json
                self.assertNotIn("ownerReferences", p["metadata"])
                self.assertEqual(p["status"]["phase"], "Running")
                self.assertTrue(all(os.path.exists(f"/proc/{pid}") for pid in pids))
                d = self.c.delete(self.core(f"pods/{pname}"))
                self.assertEqual(d.status, 200)
                self.assertEqual(d.json["kind"], "Pod")  # pods return the object
                self.assertTrue(d.json["metadata"]["deletionTimestamp"])
                wait_for(lambda: self.c.get(self.core(f"pods/{pname}")).status == 404, 10)
                for pid in pids:
                    wait_for(lambda: not os.path.exists(f"/proc/{pid}"), 5)

    def test_active_deadline_and_ttl(self):
        self.create(self.jobs(), job("deadline", ["sleep", "60"], activeDeadlineSeconds=1))
        kind, j = self.finished("deadline", timeout=15)
        self.assertEqual(kind, "Failed")
        cond = [c for c in j["status"]["conditions"] if c["type"] == "Failed"][0]
        self.assertEqual(cond["reason"], "DeadlineExceeded")
        self.create(self.jobs(), job("ttl", ["true"], ttlSecondsAfterFinished=1))
        self.finished("ttl")  # seen finished: it outlived its completion
        wait_for(lambda: self.c.get(f"{self.jobs()}/ttl").status == 404, 10,
                 what="the TTL controller")
        wait_for(lambda: not self.pods_of("ttl"), 10)

    def test_suspended_job_runs_when_resumed(self):
        self.create(self.jobs(), job("later", ["true"], suspend=True))
        time.sleep(0.5)
        self.assertEqual(self.pods_of("later"), [])
        j = self.c.get(f"{self.jobs()}/later").json
        self.assertEqual([(c["type"], c["status"]) for c in j["status"]["conditions"]],
                         [("Suspended", "True")])
        r = self.c.request("PATCH", f"{self.jobs()}/later", {"spec": {"suspend": False}},
                           ctype="application/merge-patch+json")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json["metadata"]["generation"], 2)
        kind, j = self.finished("later")
        self.assertEqual(kind, "Complete")

    def test_update_conflict_and_patch(self):
        cm = self.create(self.core("configmaps"), {"metadata": {"name": "upd"},
                                                   "data": {"a": "1"}})
        cm["data"]["a"] = "2"
        r = self.c.put(self.core("configmaps/upd"), cm)
        self.assertEqual(r.status, 200, r)
        self.assertGreater(int(r.json["metadata"]["resourceVersion"]),
                           int(cm["metadata"]["resourceVersion"]))
        r = self.c.put(self.core("configmaps/upd"), cm)  # stale resourceVersion
        self.assertEqual(r.status, 409)
        self.assertEqual(r.json["reason"], "Conflict")
        r = self.c.request("PATCH", self.core("configmaps/upd"), {"data": {"b": "3"}},
                           ctype="application/merge-patch+json")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json["data"], {"a": "2", "b": "3"})

    def test_discovery_and_unknown_paths(self):
        self.assertEqual(self.c.get("/api").json["versions"], ["v1"])
        groups = [g["name"] for g in self.c.get("/apis").json["groups"]]
        self.assertIn("batch", groups)
        self.assertIn("argoproj.io", groups)
        res = [r["name"] for r in self.c.get("/apis/batch/v1").json["resources"]]
        self.assertIn("jobs", res)
        r = self.c.get("/apis/batch/v1/namespaces/x/cronjobs")
        self.assertEqual((r.status, r.json["reason"]), (404, "NotFound"))
        # kinds served for discovery only (kubectl --dry-run=client of deploy/kubernetes/)
        self.assertEqual(groups[:4], ["apps", "authentication.k8s.io", "batch",
                                      "rbac.authorization.k8s.io"])
        self.assertIn("monitoring.coreos.com", groups)
        core = {r["name"]: r for r in self.c.get("/api/v1").json["resources"]}
        self.assertEqual(core["services"]["shortNames"], ["svc"])
        self.assertEqual(core["serviceaccounts"]["kind"], "ServiceAccount")
        self.assertEqual(core["configmaps"]["shortNames"], ["cm"])
        sts = self.c.get("/apis/apps/v1").json["resources"][0]
        self.assertEqual((sts["name"], sts["singularName"], sts["namespaced"], sts["kind"],
                          sts["shortNames"]), ("statefulsets", "statefulset", True,
                                               "StatefulSet", ["sts"]))
        self.assertIn("deletecollection", sts["verbs"])
        rbac = [r["kind"] for r in
                self.c.get("/apis/rbac.authorization.k8s.io/v1").json["resources"]]
        # sorted by name: clusterrolebindings, rolebindings, roles
        self.assertEqual(rbac, ["ClusterRoleBinding", "RoleBinding", "Role"])
        smon = self.c.get("/apis/monitoring.coreos.com/v1").json["resources"][0]
        self.assertEqual((smon["kind"], smon["shortNames"]), ("ServiceMonitor", ["smon"]))
        r = self.c.get("/apis/apps/v1/namespaces/x/statefulsets/dagd")
        self.assertEqual((r.status, r.json["reason"], r.json["message"]),
                         (404, "NotFound", 'statefulsets.apps "dagd" not found'))
        r = self.c.get("/api/v1/namespaces/x/services")
        self.assertEqual((r.status, r.json["kind"], r.json["items"]), (200, "ServiceList", []))
        r = self.c.post("/api/v1/namespaces/x/services", {"metadata": {"name": "s"}})
        self.assertEqual((r.status, r.json["reason"]), (405, "MethodNotAllowed"))
        self.assertEqual(self.c.get("/api/v1/namespaces/anything").json["status"]["phase"],
                         "Active")


class TokenReviewTest(FakeTestCase):
    """POST /apis/authentication.k8s.io/v1/tokenreviews against --service-account-tokens."""
    mode = "kube"
    PATH = "/apis/authentication.k8s.io/v1/tokenreviews"

    @classmethod
    def setUpClass(cls):
        cls.sa_dir = tempfile.mkdtemp(prefix="fake-sa-")
        cls.sa_file = os.path.join(cls.sa_dir, "sa-tokens.json")
        cls.args = FAST + ["--service-account-tokens", cls.sa_file]
        super().setUpClass()

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.sa_dir, ignore_errors=True)
        super().tearDownClass()

    def setUp(self):
        self.write_tokens({
            "sa-token-1": {"namespace": "ci", "name": "builder"},
            "sa-token-aud": {"namespace": "ci", "name": "deployer",
                             "audiences": ["dagd", "vault"]}})

    def write_tokens(self, tokens):
        tmp = self.sa_file + ".tmp"
        with open(tmp, "w") as f:
            json.dump(tokens, f)
        os.replace(tmp, self.sa_file)

    def review(self, token, audiences=None, status=201, **kw):
        spec = {"token": token}
        if audiences is not None:
            spec["audiences"] = audiences
        r = self.c.post(self.PATH, {"apiVersion": "authentication.k8s.io/v1",
                                    "kind": "TokenReview", "spec": spec}, **kw)
        self.assertEqual(r.status, status, r)
        return r.json

    def test_service_account_token_is_authenticated(self):
        tr = self.review("sa-token-1")
        self.assertEqual((tr["kind"], tr["apiVersion"]),
                         ("TokenReview", "authentication.k8s.io/v1"))
        self.assertEqual(tr["metadata"], {"creationTimestamp": None})
        self.assertEqual(tr["spec"], {"token": "sa-token-1"})  # echoed, as the real server does
        st = tr["status"]
        self.assertIs(st["authenticated"], True)
        self.assertEqual(st["user"]["username"], "system:serviceaccount:ci:builder")
        self.assertEqual(st["user"]["groups"], ["system:serviceaccounts",
                                                "system:serviceaccounts:ci",
                                                "system:authenticated"])
        self.assertRegex(st["user"]["uid"], r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-"
                                            r"[0-9a-f]{4}-[0-9a-f]{12}$")
        self.assertEqual(self.review("sa-token-1")["status"]["user"]["uid"], st["user"]["uid"])
        self.assertEqual(st["audiences"], ["https://kubernetes.default.svc.cluster.local"])
        self.assertNotIn("error", st)
        # create-only: nothing stored, no list or get
        objs = self.fake.control.get("/fake/objects").json["objects"]
        self.assertNotIn("tokenreviews", objs)
        r = self.c.get(self.PATH)
        self.assertEqual((r.status, r.json["reason"]), (405, "MethodNotAllowed"))
        r = self.c.post("/apis/authentication.k8s.io/v1/namespaces/ci/tokenreviews",
                        {"spec": {"token": "sa-token-1"}})
        self.assertEqual(r.status, 404, r)

    def test_unknown_and_revoked_tokens(self):
        # Go's omitempty: no `authenticated` when false, an empty `user`
        self.assertEqual(self.review("nobody")["status"],
                         {"user": {}, "error": "invalid bearer token"})
        self.assertTrue(self.review("sa-token-1")["status"]["authenticated"])
        self.write_tokens({})  # revoked: the file is re-read on every review
        self.assertNotIn("authenticated", self.review("sa-token-1")["status"])
        os.remove(self.sa_file)  # no file: no token known
        self.assertNotIn("authenticated", self.review("sa-token-1")["status"])

    def test_audiences(self):
        st = self.review("sa-token-aud", ["other", "vault"])["status"]
        self.assertTrue(st["authenticated"])
        self.assertEqual(st["audiences"], ["vault"])  # the intersection
        st = self.review("sa-token-aud", ["other"])["status"]
        self.assertNotIn("authenticated", st)
        self.assertEqual(st["error"], '[invalid bearer token, token audiences ["dagd" "vault"] is '
                                      'invalid for the target audiences ["other"]]')
        self.assertEqual(self.review("sa-token-aud")["status"]["audiences"], ["dagd", "vault"])
        # a token without audiences of its own is good for any audience asked for
        st = self.review("sa-token-1", ["dagd"])["status"]
        self.assertEqual((st["authenticated"], st["audiences"]), (True, ["dagd"]))

    def test_caller_must_authenticate_and_bad_requests(self):
        for token in (None, "sa-token-1"):  # reviewed tokens are not credentials for the API
            r = self.c.post(self.PATH, {"spec": {"token": "sa-token-1"}}, token=token)
            self.assertEqual((r.status, r.json["reason"]), (401, "Unauthorized"))
        r = self.c.post(self.PATH, {"spec": {"token": ""}})
        self.assertEqual((r.status, r.json["message"]),
                         (400, "token is required for TokenReview in authentication"))
        r = self.c.post(self.PATH, {"kind": "SubjectAccessReview", "spec": {"token": "x"}})
        self.assertEqual(r.status, 400, r)
        with open(self.sa_file, "w") as f:
            f.write("{not json")
        r = self.c.post(self.PATH, {"spec": {"token": "sa-token-1"}})
        self.assertEqual((r.status, r.json["reason"]), (500, "InternalError"))
        self.assertIn("--service-account-tokens", r.json["message"])

    def test_schema_violation_is_422_and_recorded(self):
        before = len(self.fake.violations())
        r = self.c.post(self.PATH, {"apiVersion": "authentication.k8s.io/v1",
                                    "kind": "TokenReview", "spec": {"tokne": "sa-token-1"}})
        type(self).expected_violations += 1
        self.assertEqual((r.status, r.json["reason"]), (422, "Invalid"), r)
        self.assertIn("'tokne' was unexpected", r.json["message"])
        self.assertEqual(r.headers["X-Fake-Schema-Violation"], "true")
        v = self.fake.violations()
        self.assertEqual(len(v), before + 1)
        self.assertEqual(v[-1]["schema"], "k8s-tokenreview-authentication-v1")
        r = self.c.post(self.PATH, {"kind": "TokenReview"})  # spec is required
        type(self).expected_violations += 1
        self.assertEqual(r.status, 422, r)

    def test_discovery(self):
        groups = [g["name"] for g in self.c.get("/apis").json["groups"]]
        self.assertEqual(groups.index("authentication.k8s.io"), groups.index("apps") + 1)
        r = self.c.get("/apis/authentication.k8s.io/v1").json
        self.assertEqual(r["groupVersion"], "authentication.k8s.io/v1")
        self.assertEqual(r["resources"], [{"name": "tokenreviews", "singularName": "tokenreview",
                                           "namespaced": False, "kind": "TokenReview",
                                           "verbs": ["create"]}])


class ArgoServerTest(FakeTestCase):
    def wf(self, templates, entry="main", name=None, **spec):
        meta = {"name": name} if name else {"generateName": "t-"}
        meta["labels"] = {"suite": self.ns()}
        spec.update({"entrypoint": entry, "templates": templates})
        return {"workflow": {"apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow",
                             "metadata": meta, "spec": spec}}

    def submit(self, body):
        r = self.c.post(f"/api/v1/workflows/{self.ns()}", body)
        self.assertEqual(r.status, 200, r)
        return r.json

    def until_done(self, name, timeout=30):
        ns = self.ns()
        s = self.stream(f"/api/v1/workflow-events/{ns}?listOptions.fieldSelector="
                          f"metadata.name%3D{name}", timeout=timeout)
        self.assertEqual(s.status, 200)
        phases = []
        for ev in s.events():
            wf = ev["result"]["object"]
            ph = (wf.get("status") or {}).get("phase")
            if not phases or phases[-1] != ph:
                phases.append(ph)
            if (wf["metadata"].get("labels") or {}).get("workflows.argoproj.io/completed") == \
                    "true":
                s.close()
                return wf, phases
        raise AssertionError("watch ended early")

    def test_submit_get_watch_log_list(self):
        wf = self.submit(self.wf([{
            "name": "main", "inputs": {"parameters": [{"name": "who", "value": "argo"}]},
            "outputs": {"parameters": [{"name": "answer",
                                        "valueFrom": {"path": "/tmp/answer.txt"}}]},
            "container": {"image": "alpine:3", "command": ["sh", "-c"],
                          "args": ["echo hello {{inputs.parameters.who}}; "
                                   "echo 42 > /tmp/answer.txt"]}}]))
        name = wf["metadata"]["name"]
        self.assertNotIn("kind", wf)  # typed-client responses carry no TypeMeta
        done, phases = self.until_done(name)
        self.assertEqual(done["status"]["phase"], "Succeeded")
        self.assertIn("Running", phases)
        node = done["status"]["nodes"][name]
        self.assertEqual((node["type"], node["phase"]), ("Pod", "Succeeded"))
        self.assertEqual(node["outputs"]["parameters"][0]["value"], "42")
        self.assertEqual(node["outputs"]["result"], "hello argo")
        self.assertEqual(node["outputs"]["exitCode"], "0")
        self.assertEqual(done["status"]["progress"], "1/1")
        self.assertTrue(done["status"]["finishedAt"])
        s = self.stream(f"/api/v1/workflows/{self.ns()}/{name}/log?logOptions.container=main"
                          "&logOptions.follow=true")
        self.assertEqual(list(s.events()), [{"result": {"content": "hello argo",
                                                        "podName": name}}])
        s = self.stream(f"/api/v1/workflows/{self.ns()}/{name}/log?logOptions.container=main",
                          headers={"Accept": "text/event-stream"})
        self.assertEqual(s.headers["Content-Type"], "text/event-stream")
        self.assertEqual(s.readline(), b'data: {"result":{"content":"hello argo","podName":"'
                         + name.encode() + b'"}}\n')
        listed = self.c.get(f"/api/v1/workflows/{self.ns()}?listOptions.labelSelector="
                            f"suite%3D{self.ns()}").json
        self.assertEqual([w["metadata"]["name"] for w in listed["items"]], [name])
        none = self.c.get(f"/api/v1/workflows/{self.ns()}?listOptions.labelSelector=suite%3Dno")
        self.assertIsNone(none.json["items"])
        got = self.c.get(f"/api/v1/workflows/{self.ns()}/{name}")
        self.assertEqual(got.json["status"]["phase"], "Succeeded")
        # the same Workflow through the Kubernetes API (the CRD), with its pod
        crd = self.c.get(f"/apis/argoproj.io/v1alpha1/namespaces/{self.ns()}/workflows/{name}")
        self.assertEqual(crd.json["kind"], "Workflow")
        pod = self.c.get(f"/api/v1/namespaces/{self.ns()}/pods/{name}").json
        self.assertEqual(pod["metadata"]["labels"]["workflows.argoproj.io/workflow"], name)
        d = self.c.delete(f"/api/v1/workflows/{self.ns()}/{name}")
        self.assertEqual((d.status, d.json), (200, {}))
        wait_for(lambda: self.c.get(f"/api/v1/namespaces/{self.ns()}/pods/{name}").status
                 == 404, 10)

    def test_errors_auth_and_schema(self):
        r = self.c.get(f"/api/v1/workflows/{self.ns()}/missing")
        self.assertEqual(r.status, 404)
        self.assertEqual(r.json["code"], 5)
        self.assertEqual(r.json["message"], 'workflows.argoproj.io "missing" not found')
        r = self.c.get(f"/api/v1/workflows/{self.ns()}", token=None)
        self.assertEqual((r.status, r.json["code"]), (401, 16))
        r = self.c.get(f"/api/v1/workflows/{self.ns()}", token=None,
                       headers={"Cookie": f"authorization=Bearer {self.fake.token}"})
        self.assertEqual(r.status, 200)
        bad = self.wf([{"name": "main", "container": {"image": "x", "command": ["true"]}}])
        bad["workflow"]["spec"]["templates"][0]["retryStrategy"] = {"limit": {"nested": 1}}
        r = self.c.post(f"/api/v1/workflows/{self.ns()}", bad)
        type(self).expected_violations += 1
        self.assertEqual((r.status, r.json["code"]), (400, 3), r)
        self.assertIn("schema violation", r.json["message"])
        self.assertEqual(self.fake.violations()[-1]["schema"], "argo-workflow")
        r = self.c.post(f"/api/v1/workflows/{self.ns()}", self.wf(
            [{"name": "main", "container": {"image": "x"}}], entry="nope"))
        self.assertEqual((r.status, r.json["code"]), (400, 3))
        self.assertIn("spec.entrypoint template 'nope' undefined", r.json["message"])
        body = self.wf([{"name": "main", "container": {"image": "x", "command": ["true"]}}],
                       name="fixed")
        self.submit(body)
        r = self.c.post(f"/api/v1/workflows/{self.ns()}", body)
        self.assertEqual((r.status, r.json["code"]), (409, 6))

    def test_stop_and_terminate(self):
        for action, msg in (("stop", "Stopped with strategy 'Stop'"),
                            ("terminate", "Stopped with strategy 'Terminate'")):
            wf = self.submit(self.wf([{"name": "main", "container": {
                "image": "x", "command": ["sh", "-c", "echo started; sleep 60"]}}]))
            name = wf["metadata"]["name"]
            wait_for(lambda: (self.c.get(f"/api/v1/workflows/{self.ns()}/{name}").json
                              .get("status", {}).get("nodes", {}).get(name, {})
                              .get("phase")) == "Running", 10)
            r = self.c.put(f"/api/v1/workflows/{self.ns()}/{name}/{action}",
                           {"name": name, "namespace": self.ns()})
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.json["spec"]["shutdown"], action.capitalize())
            done, _ = self.until_done(name)
            self.assertEqual((done["status"]["phase"], done["status"]["message"]),
                             ("Failed", msg))
            self.assertEqual(done["status"]["nodes"][name]["phase"], "Failed")
            r = self.c.put(f"/api/v1/workflows/{self.ns()}/{name}/{action}")
            self.assertEqual(r.status, 400)

    def test_dag_with_depends_parameters_and_retry(self):
        step = {"name": "step", "inputs": {"parameters": [{"name": "n"}]},
                "outputs": {"parameters": [{"name": "out", "valueFrom": {"path": "/tmp/o"}}]},
                "script": {"image": "python:3", "command": ["sh"],
                           "source": "echo step-{{inputs.parameters.n}}; "
                                     "printf '{{inputs.parameters.n}}' > /tmp/o"}}
        flaky = {"name": "flaky", "retryStrategy": {"limit": 2, "backoff": {"duration": "0.1s"}},
                 "container": {"image": "x", "command": ["sh", "-c",
                                                         "echo {{retries}}; "
                                                         "test {{retries}} -ge 1"]}}
        dag = {"name": "main", "dag": {"tasks": [
            {"name": "A", "template": "step", "arguments": {"parameters": [
                {"name": "n", "value": "{{workflow.parameters.first}}"}]}},
            {"name": "B", "depends": "A", "template": "flaky"},
            {"name": "C", "depends": "A", "template": "step", "arguments": {"parameters": [
                {"name": "n", "value": "{{tasks.A.outputs.parameters.out}}-c"}]}},
            {"name": "D", "depends": "B && C", "template": "step", "arguments": {
                "parameters": [{"name": "n", "value": "{{tasks.C.outputs.parameters.out}}-d"}]}},
            {"name": "E", "depends": "D.Failed", "template": "step", "arguments": {
                "parameters": [{"name": "n", "value": "never"}]}},
        ]}}
        wf = self.submit(self.wf([dag, step, flaky],
                                 arguments={"parameters": [{"name": "first", "value": "a"}]}))
        name = wf["metadata"]["name"]
        done, _ = self.until_done(name, timeout=40)
        self.assertEqual(done["status"]["phase"], "Succeeded",
                         json.dumps(done["status"], indent=1))
        nodes = {n["displayName"]: n for n in done["status"]["nodes"].values()}
        self.assertEqual(nodes[name]["type"], "DAG")
        self.assertEqual(nodes["D"]["outputs"]["parameters"][0]["value"], "a-c-d")
        self.assertEqual(nodes["B"]["type"], "Retry")
        self.assertEqual(nodes["B(1)"]["phase"], "Succeeded")
        self.assertEqual(nodes["B(0)"]["phase"], "Failed")
        self.assertEqual(nodes["E"]["phase"], "Omitted")
        self.assertEqual(set(nodes[name]["children"]), {nodes["A"]["id"]})
        self.assertEqual(set(nodes["A"]["children"]), {nodes["B"]["id"], nodes["C"]["id"]})
        self.assertEqual(nodes["A"]["boundaryID"], nodes[name]["id"])
        self.assertTrue(nodes["A"]["id"].startswith(name + "-"))
        # a failing leaf fails the DAG
        wf = self.submit(self.wf([{"name": "main", "dag": {"tasks": [
            {"name": "X", "template": "boom"}]}},
            {"name": "boom", "container": {"image": "x", "command": ["sh", "-c", "exit 4"]}}]))
        done, _ = self.until_done(wf["metadata"]["name"])
        self.assertEqual(done["status"]["phase"], "Failed")
        x = [n for n in done["status"]["nodes"].values() if n["displayName"] == "X"][0]
        self.assertEqual(x["message"], "Error (exit code 4)")

    def test_steps_with_items_when_and_exit_handler(self):
        say = {"name": "say", "inputs": {"parameters": [{"name": "m"}]},
               "container": {"image": "x", "command": ["echo", "{{inputs.parameters.m}}"]}}
        main = {"name": "main", "steps": [
            [{"name": "fan", "template": "say", "withItems": ["a", "b"],
              "arguments": {"parameters": [{"name": "m", "value": "item-{{item}}"}]}}],
            [{"name": "yes", "template": "say", "when": "{{steps.fan.status}} == Succeeded",
              "arguments": {"parameters": [{"name": "m", "value": "{{steps.fan.outputs.result}}"}
                                           ]}},
             {"name": "no", "template": "say", "when": "'a' == 'b'",
              "arguments": {"parameters": [{"name": "m", "value": "never"}]}}]]}
        bye = {"name": "bye", "container": {"image": "x", "command": [
            "echo", "exit {{workflow.status}}"]}}
        wf = self.submit(self.wf([main, say, bye], onExit="bye"))
        name = wf["metadata"]["name"]
        done, _ = self.until_done(name)
        self.assertEqual(done["status"]["phase"], "Succeeded",
                         json.dumps(done["status"], indent=1))
        nodes = {n["displayName"]: n for n in done["status"]["nodes"].values()}
        self.assertEqual(nodes["fan(0:a)"]["outputs"]["result"], "item-a")
        self.assertEqual(nodes["fan"]["type"], "TaskGroup")
        self.assertEqual(nodes["yes"]["outputs"]["result"], '["item-a","item-b"]')
        self.assertEqual(nodes["no"]["phase"], "Skipped")
        self.assertEqual(nodes[f"{name}.onExit"]["outputs"]["result"], "exit Succeeded")

    def test_workflow_through_the_crd(self):
        wf = {"apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow",
              "metadata": {"name": "via-crd"},
              "spec": {"entrypoint": "main", "templates": [{"name": "main", "container": {
                  "image": "x", "command": ["echo", "crd"]}}]}}
        path = f"/apis/argoproj.io/v1alpha1/namespaces/{self.ns()}/workflows"
        self.create(path, wf)
        done, _ = self.until_done("via-crd")
        self.assertEqual(done["status"]["phase"], "Succeeded")


class ArgoOnlyModeTest(FakeTestCase):
    mode = "argo"

    def test_kubernetes_paths_are_not_served(self):
        r = self.c.get("/apis/batch/v1/namespaces/default/jobs")
        self.assertEqual(r.status, 404)
        r = self.c.get("/api/v1/workflows/default")
        self.assertEqual(r.status, 200)


def make_certs(d):
    """A CA, a server certificate for 127.0.0.1 and a client certificate, with openssl."""
    def run(*args):
        subprocess.run(["openssl"] + list(args), cwd=d, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out",
        "ca.crt", "-days", "1", "-subj", "/CN=fake-ca")
    for name, cn in (("server", "127.0.0.1"), ("client", "dagd-client")):
        run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out",
            f"{name}.csr", "-subj", f"/CN={cn}")
        ext = os.path.join(d, f"{name}.ext")
        with open(ext, "w") as f:
            f.write("subjectAltName=IP:127.0.0.1\n" if name == "server" else
                    "extendedKeyUsage=clientAuth\n")
        run("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
            "-CAcreateserial", "-out", f"{name}.crt", "-days", "1", "-extfile", ext)


@unittest.skipUnless(shutil.which("openssl"), "needs openssl")
class TlsTest(unittest.TestCase):
    def test_https_with_client_certificates(self):
        d = tempfile.mkdtemp(prefix="fake-tls-")
        make_certs(d)
        fake = FakeProcess(extra_args=["--tls-cert", f"{d}/server.crt", "--tls-key",
                                       f"{d}/server.key", "--tls-client-ca", f"{d}/ca.crt",
                                       "--kubeconfig-out", f"{d}/kubeconfig"],
                           schemas=SCHEMAS)
        try:
            ctx = ssl.create_default_context(cafile=f"{d}/ca.crt")
            with self.assertRaises((ssl.SSLError, ConnectionError, OSError)):
                fake.client(ssl_context=ctx).get("/api/v1/namespaces/default/pods")
            ctx.load_cert_chain(f"{d}/client.crt", f"{d}/client.key")
            r = fake.client(ssl_context=ctx, token=None).get("/api/v1/namespaces/default/pods")
            self.assertEqual(r.status, 200, r)  # x509 authentication, no token needed
            with open(f"{d}/kubeconfig") as f:
                cfg = json.load(f)
            self.assertEqual(cfg["clusters"][0]["cluster"]["server"],
                             f"https://127.0.0.1:{fake.port}")
        finally:
            self.assertEqual(fake.stop(), 0, fake.output())
            fake.cleanup()
            shutil.rmtree(d, ignore_errors=True)


@unittest.skipUnless(shutil.which("openssl") and shutil.which("kubectl"), "needs kubectl")
class KubectlTest(unittest.TestCase):
    """A real client against the fake: Debian's kubectl (client-go) over HTTPS with a token.
    (client-go sends bearer tokens over TLS only, hence HTTPS.)"""

    def test_create_logs_wait_delete(self):
        d = tempfile.mkdtemp(prefix="fake-kubectl-")
        make_certs(d)
        fake = FakeProcess(extra_args=FAST + ["--tls-cert", f"{d}/server.crt", "--tls-key",
                                              f"{d}/server.key", "--tls-ca", f"{d}/ca.crt",
                                              "--kubeconfig-out", f"{d}/kubeconfig"],
                           schemas=SCHEMAS)
        env = dict(os.environ, KUBECONFIG=f"{d}/kubeconfig", HOME=d)

        def kubectl(*args, stdin=None):
            p = subprocess.run(["kubectl", "--request-timeout=20s"] + list(args), env=env,
                               input=stdin, capture_output=True, text=True, timeout=60)
            self.assertEqual(p.returncode, 0, f"kubectl {args}: {p.stdout}{p.stderr}")
            return p.stdout
        try:
            body = job("kj", ["sh", "-c", "for i in 1 2 3; do echo tick $i; sleep 0.2; done"])
            self.assertIn("job.batch/kj created",
                          kubectl("create", "--validate=false", "-f", "-",
                                  stdin=json.dumps(body)))
            self.assertIn("condition met", kubectl("wait", "--for=condition=complete", "job/kj",
                                                   "--timeout=30s"))
            self.assertEqual(kubectl("logs", "job/kj"), "tick 1\ntick 2\ntick 3\n")
            self.assertEqual(kubectl("get", "job", "kj", "-o",
                                     "jsonpath={.status.succeeded}"), "1")
            self.assertIn('job.batch "kj" deleted', kubectl("delete", "job", "kj"))
            # discovery-only kinds, by their short names: nothing stored, so nothing listed
            self.assertEqual(kubectl("get", "sts,svc,sa,smon,roles"), "")
            wait_for(lambda: "No resources found" in subprocess.run(
                ["kubectl", "get", "pods"], env=env, capture_output=True, text=True).stderr, 10)
        finally:
            self.assertEqual(fake.stop(), 0, fake.output())
            fake.cleanup()
            shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    if "--schemas" in sys.argv:
        i = sys.argv.index("--schemas")
        SCHEMAS = os.path.abspath(sys.argv[i + 1])
        del sys.argv[i:i + 2]
    unittest.main()
