"""The Job controller, the TTL-after-finished controller and the garbage collector.

Each Job gets one reconcile loop (a thread) that wakes on every store write, like a controller
woken by its informers: it creates pods from the template, counts finished pods, writes the Job
status, enforces backoffLimit and activeDeadlineSeconds, and, once the Job is finished, deletes
it ttlSecondsAfterFinished later (with Foreground propagation, as the TTL controller does).
"""

import threading
import time

from . import util

JOB_TRACKING_FINALIZER = "batch.kubernetes.io/job-tracking"


def owned_by(obj, uid):
    return any(r.get("uid") == uid for r in obj["metadata"].get("ownerReferences") or [])


def default_container(c):
    c.setdefault("terminationMessagePath", "/dev/termination-log")
    c.setdefault("terminationMessagePolicy", "File")
    image = c.get("image") or ""
    tagged = ":" in image.rsplit("/", 1)[-1] or "@" in image
    c.setdefault("imagePullPolicy", "IfNotPresent" if tagged and not image.endswith(":latest")
                 else "Always")
    c.setdefault("resources", {})


def default_pod_spec(spec):
    """The API server's defaulting of a PodSpec (the fields a client reads back)."""
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("securityContext", {})
    spec.setdefault("schedulerName", "default-scheduler")
    spec.setdefault("enableServiceLinks", True)
    spec.setdefault("preemptionPolicy", "PreemptLowerPriority")
    spec.setdefault("priority", 0)
    if spec.get("serviceAccountName") is None:
        spec["serviceAccountName"] = spec.get("serviceAccount") or "default"
    spec.setdefault("serviceAccount", spec["serviceAccountName"])
    for c in spec.get("containers") or []:
        default_container(c)
    for c in spec.get("initContainers") or []:
        default_container(c)
    for v in spec.get("volumes") or []:
        for kind in ("configMap", "secret"):
            if v.get(kind) is not None:
                v[kind].setdefault("defaultMode", 0o644)
        if v.get("projected") is not None:
            v["projected"].setdefault("defaultMode", 0o644)
    return spec


class GarbageCollector:
    def __init__(self, cluster):
        self.cluster = cluster
        threading.Thread(target=self._sweep, name="gc", daemon=True).start()

    def dependents(self, uid):
        out = []
        for plural in ("pods", "jobs", "configmaps", "secrets", "workflows"):
            items, _ = self.cluster.store.list(plural, lambda o: owned_by(o, uid))
            out += [(plural, o) for o in items]
        return out

    def delete(self, plural, ns, name, policy=None, grace=None):
        """Deletes an object with the given propagation policy.
        Returns (finished_now, object) where object is the last state."""
        store = self.cluster.store
        if plural == "pods":
            return self.cluster.kubelet.delete_pod(ns, name, grace)
        if policy is None:
            policy = "Orphan" if plural == "jobs" else "Background"
        with store.lock:
            obj = store.get(plural, ns, name)
            if obj is None:
                return True, None
            uid = obj["metadata"]["uid"]
            if policy == "Background" or not self.dependents(uid):
                last = store.remove(plural, ns, name)
                threading.Thread(target=self._delete_dependents, args=(uid,),
                                 daemon=True).start()
                return True, last
            finalizer = "foregroundDeletion" if policy == "Foreground" else "orphan"

            def mark(o):
                m = o["metadata"]
                changed = False
                if not m.get("deletionTimestamp"):
                    m["deletionTimestamp"] = util.now_rfc3339()
                    m["deletionGracePeriodSeconds"] = 0
                    changed = True
                if finalizer not in (m.get("finalizers") or []):
                    m["finalizers"] = (m.get("finalizers") or []) + [finalizer]
                    changed = True
                return changed
            marked = store.mutate(plural, ns, name, mark)
        target = self._foreground if policy == "Foreground" else self._orphan
        threading.Thread(target=target, args=(plural, ns, name, uid), daemon=True).start()
        return False, marked

    def _delete_dependents(self, uid):
        for plural, dep in self.dependents(uid):
            m = dep["metadata"]
            self.delete(plural, m["namespace"], m["name"], "Background")

    def _foreground(self, plural, ns, name, uid):
        self._delete_dependents(uid)
        store = self.cluster.store
        with store.lock:
            while self.dependents(uid):
                store.cond.wait(0.5)
            obj = store.get(plural, ns, name)
            if obj is not None and obj["metadata"]["uid"] == uid:
                store.remove(plural, ns, name)

    def _orphan(self, plural, ns, name, uid):
        time.sleep(0.05)
        store = self.cluster.store
        with store.lock:
            for dplural, dep in self.dependents(uid):
                def strip(o):
                    o["metadata"]["ownerReferences"] = [
                        r for r in o["metadata"].get("ownerReferences") or []
                        if r.get("uid") != uid]
                    if not o["metadata"]["ownerReferences"]:
                        del o["metadata"]["ownerReferences"]
                    return True
                store.mutate(dplural, dep["metadata"]["namespace"], dep["metadata"]["name"],
                             strip)
            obj = store.get(plural, ns, name)
            if obj is not None and obj["metadata"]["uid"] == uid:
                store.remove(plural, ns, name)

    def _sweep(self):
        """Objects whose owner is gone are deleted, as the real GC does eventually."""
        store = self.cluster.store
        while True:
            time.sleep(0.5)
            with store.lock:
                live = {o["metadata"]["uid"] for o in store.objects.values()}
                doomed = []
                for (plural, ns, name), o in store.objects.items():
                    refs = o["metadata"].get("ownerReferences") or []
                    if refs and not o["metadata"].get("deletionTimestamp") and \
                            all(r.get("uid") not in live for r in refs):
                        doomed.append((plural, ns, name))
            for plural, ns, name in doomed:
                self.delete(plural, ns, name, "Background")


class _JobState:
    def __init__(self):
        self.counted = set()  # uids of finished pods already counted
        self.seen_active = set()  # uids of pods seen not finished
        self.succeeded = 0
        self.failed = 0
        self.next_pod_at = 0.0
        self.started = None
        self.killed = set()  # uids of pods this controller has deleted


def _condition(ctype, reason, message):
    now = util.now_rfc3339()
    return {"type": ctype, "status": "True", "lastProbeTime": now, "lastTransitionTime": now,
            "reason": reason, "message": message}


class JobController:
    def __init__(self, cluster):
        self.cluster = cluster
        cluster.store.observers.append(self._observe)

    def _observe(self, ev):
        if ev.resource == "jobs" and ev.type == "ADDED":
            m = ev.obj["metadata"]
            threading.Thread(target=self._loop, args=(m["namespace"], m["name"], m["uid"]),
                             name=f"job-{m['name']}", daemon=True).start()

    def _loop(self, ns, name, uid):
        store = self.cluster.store
        st = _JobState()
        finished_at = None
        with store.lock:
            while True:
                job = store.get("jobs", ns, name)
                if job is None or job["metadata"]["uid"] != uid \
                        or job["metadata"].get("deletionTimestamp"):
                    return
                finished_at = self._reconcile(job, st)
                if finished_at is not None:
                    break
                store.cond.wait(0.25)
        ttl = job["spec"].get("ttlSecondsAfterFinished")
        if ttl is None:
            return
        end = finished_at + ttl
        while time.time() < end:
            time.sleep(min(0.1, max(0.0, end - time.time())))
        cur = store.get("jobs", ns, name)
        if cur is not None and cur["metadata"]["uid"] == uid:
            self.cluster.gc.delete("jobs", ns, name, "Foreground")

    def _create_pod(self, job):
        tmpl = job["spec"]["template"]
        meta = tmpl.get("metadata") or {}
        jm = job["metadata"]
        pod = {
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {
                "generateName": jm["name"] + "-",
                "namespace": jm["namespace"],
                "labels": dict(meta.get("labels") or {}),
                "ownerReferences": [{"apiVersion": "batch/v1", "kind": "Job",
                                     "name": jm["name"], "uid": jm["uid"],
                                     "controller": True, "blockOwnerDeletion": True}],
                "finalizers": [JOB_TRACKING_FINALIZER],
            },
            "spec": util.deep(tmpl["spec"]),
            "status": {"phase": "Pending", "qosClass": "BestEffort"},
        }
        if meta.get("annotations"):
            pod["metadata"]["annotations"] = dict(meta["annotations"])
        default_pod_spec(pod["spec"])
        store = self.cluster.store
        while True:
            pod["metadata"]["name"] = util.generate_name(jm["name"] + "-")
            if store.get("pods", jm["namespace"], pod["metadata"]["name"]) is None:
                break
        return store.create("pods", pod)

    def _reconcile(self, job, st):
        """One sync. REQUIRES: store lock held. Returns the finish time once the Job is done."""
        store = self.cluster.store
        spec = job["spec"]
        status = util.deep(job.get("status") or {})
        uid = job["metadata"]["uid"]
        now = time.time()
        if st.started is None:
            st.started = now
        if not spec.get("suspend"):
            status.setdefault("startTime", util.now_rfc3339())
        pods, _ = store.list("pods", lambda o: owned_by(o, uid))
        by_uid = {p["metadata"]["uid"]: p for p in pods}
        # pods that vanished while running count as failed (job tracking with finalizers)
        for puid in list(st.seen_active):
            if puid not in by_uid and puid not in st.counted:
                st.counted.add(puid)
                st.failed += 1
                st.next_pod_at = now + self._backoff(st.failed)
                st.seen_active.discard(puid)
        active, terminating, ready = [], [], 0
        for p in pods:
            phase = (p.get("status") or {}).get("phase")
            puid = p["metadata"]["uid"]
            if phase in ("Succeeded", "Failed"):
                if puid not in st.counted:
                    st.counted.add(puid)
                    st.seen_active.discard(puid)
                    if phase == "Succeeded":
                        st.succeeded += 1
                    else:
                        st.failed += 1
                        st.next_pod_at = now + self._backoff(st.failed)
                if JOB_TRACKING_FINALIZER in (p["metadata"].get("finalizers") or []):
                    def unfinalize(o):
                        o["metadata"]["finalizers"] = [
                            f for f in o["metadata"].get("finalizers") or []
                            if f != JOB_TRACKING_FINALIZER]
                        if not o["metadata"]["finalizers"]:
                            del o["metadata"]["finalizers"]
                        return True
                    store.mutate("pods", p["metadata"]["namespace"], p["metadata"]["name"],
                                 unfinalize)
            elif p["metadata"].get("deletionTimestamp"):
                terminating.append(p)
            else:
                st.seen_active.add(puid)
                active.append(p)
                cs = (p.get("status") or {}).get("containerStatuses") or []
                if cs and all(c.get("ready") for c in cs):
                    ready += 1
        completions = spec.get("completions", 1)
        parallelism = spec.get("parallelism", 1)
        backoff_limit = spec.get("backoffLimit", 6)
        deadline = spec.get("activeDeadlineSeconds")
        conds = status.get("conditions") or []
        ctypes = {c["type"] for c in conds}
        finish = None
        if "Complete" in ctypes or "Failed" in ctypes:
            finish = "done"
        elif "FailureTarget" in ctypes:
            finish = "failing"
        elif "SuccessCriteriaMet" in ctypes:
            finish = "succeeding"
        elif completions is not None and st.succeeded >= completions or \
                completions is None and st.succeeded > 0:
            conds.append(_condition("SuccessCriteriaMet", "CompletionsReached",
                                    "Reached expected number of succeeded pods"))
            finish = "succeeding"
        elif st.failed > backoff_limit:
            conds.append(_condition("FailureTarget", "BackoffLimitExceeded",
                                    "Job has reached the specified backoff limit"))
            finish = "failing"
        elif deadline is not None and now - st.started >= deadline:
            conds.append(_condition("FailureTarget", "DeadlineExceeded",
                                    "Job was active longer than specified deadline"))
            finish = "failing"
        if finish in ("failing", "succeeding"):
            for p in active:  # the rest of a finished Job's pods are deleted
                if p["metadata"]["uid"] in st.killed:
                    continue
                st.killed.add(p["metadata"]["uid"])
                threading.Thread(target=self.cluster.kubelet.delete_pod,
                                 args=(p["metadata"]["namespace"], p["metadata"]["name"]),
                                 daemon=True).start()
            if not active and not terminating:
                target = next(c for c in conds if c["type"] in ("FailureTarget",
                                                                 "SuccessCriteriaMet"))
                final = "Failed" if target["type"] == "FailureTarget" else "Complete"
                conds.append(_condition(final, target["reason"], target["message"]))
                if final == "Complete":
                    status["completionTime"] = util.now_rfc3339()
                finish = "done"
        elif finish is None and spec.get("suspend"):
            for p in active:  # suspending a Job deletes its active pods
                if p["metadata"]["uid"] not in st.killed:
                    st.killed.add(p["metadata"]["uid"])
                    threading.Thread(target=self.cluster.kubelet.delete_pod,
                                     args=(p["metadata"]["namespace"], p["metadata"]["name"]),
                                     daemon=True).start()
            if not any(c["type"] == "Suspended" and c["status"] == "True" for c in conds):
                conds = [c for c in conds if c["type"] != "Suspended"]
                conds.append(_condition("Suspended", "JobSuspended", "Job suspended"))
            st.started = now  # activeDeadlineSeconds counts from the resume
        elif finish is None:
            for c in conds:
                if c["type"] == "Suspended" and c["status"] == "True":
                    c.update(status="False", reason="JobResumed", message="Job resumed",
                             lastTransitionTime=util.now_rfc3339())
            want = min(parallelism, (completions or 1) - st.succeeded) - len(active)
            if want > 0 and now >= st.next_pod_at:
                for _ in range(want):
                    p = self._create_pod(job)
                    st.seen_active.add(p["metadata"]["uid"])
                    active.append(p)
        status["active"] = len(active) if finish != "done" else 0
        status["ready"] = ready if finish != "done" else 0
        status["terminating"] = len(terminating)
        status["uncountedTerminatedPods"] = {}
        if st.succeeded:
            status["succeeded"] = st.succeeded
        if st.failed:
            status["failed"] = st.failed
        if status.get("active") == 0:
            status.pop("active")
        if conds:
            status["conditions"] = conds
        if status != (job.get("status") or {}):
            def write(o):
                o["status"] = status
                return True
            store.mutate("jobs", job["metadata"]["namespace"], job["metadata"]["name"], write)
        if finish == "done":
            return time.time()
        return None

    def _backoff(self, failures):
        base = self.cluster.opts.job_backoff
        return min(base * (2 ** max(0, failures - 1)), 360.0)
