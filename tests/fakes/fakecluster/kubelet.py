"""The fake kubelet: runs every Pod that appears in the store on this host.

For each pod: wait `pod_start_delay` (the pod is Pending/ContainerCreating meanwhile), materialise
its volumes under a per-pod root directory, resolve its environment, then run the first
container's command + args in a new process group (the image is ignored) and capture stdout and
stderr, interleaved, as the container log. The pod goes Pending -> Running -> Succeeded/Failed
with containerStatuses as kubelet reports them. Deleting a pod sends SIGTERM to the process
group, then SIGKILL after the grace period. When the container's main process exits, the rest of
its process group is killed, as when a container's PID namespace goes away.

Path mapping: the fake cannot mount volumes at the container's mountPath, so each volume mount
appears at <pod root><mountPath> (a symlink to the volume's directory) and every occurrence of a
mountPath as a path in command, args, env values, workingDir (and Argo script sources) is
rewritten to <pod root><mountPath>. $DAGD_FAKE_POD_ROOT holds the pod root. See README.md.
"""

import base64
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import threading
import time

from . import util

SA_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"


class Spawner:
    """Forks from one long-lived thread, so that PR_SET_PDEATHSIG (set by util-linux's setpriv)
    fires when the fake process dies, not when some short-lived request thread ends."""

    def __init__(self):
        self._q = queue.Queue()
        self._setpriv = shutil.which("setpriv")
        threading.Thread(target=self._run, name="spawner", daemon=True).start()

    def _run(self):
        while True:
            fn, box, done = self._q.get()
            try:
                box.append((True, fn()))
            except BaseException as e:  # noqa: B036 - handed back to the caller
                box.append((False, e))
            done.set()

    def popen(self, argv, **kw):
        if self._setpriv:
            argv = [self._setpriv, "--pdeathsig", "KILL", "--"] + list(argv)
        box, done = [], threading.Event()
        self._q.put((lambda: subprocess.Popen(argv, **kw), box, done))
        done.wait()
        ok, val = box[0]
        if not ok:
            raise val
        return val


class ConfigError(Exception):
    """CreateContainerConfigError / FailedMount: the pod waits and kubelet retries."""

    def __init__(self, reason, message):
        super().__init__(message)
        self.reason = reason


def _expand_vars(text, env):
    """Kubernetes $(VAR) expansion in command, args and env values; $$ escapes."""
    out, i = [], 0
    while i < len(text):
        if text.startswith("$$", i):
            out.append("$")
            i += 2
        elif text.startswith("$(", i):
            j = text.find(")", i)
            name = text[i + 2:j] if j > 0 else None
            if name is not None and name in env:
                out.append(env[name])
                i = j + 1
            else:
                out.append(text[i])
                i += 1
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def map_paths(text, mapping):
    """Rewrites container paths to host paths where they appear as a path in `text`: at the
    start or after a character that cannot be part of a path (space, quote, '=', '@', ':', ...),
    and followed by '/', the end, or such a character."""
    if not isinstance(text, str):
        return text
    for cpath, hpath in mapping:
        pat = re.compile(r"(?<![\w./-])" + re.escape(cpath.rstrip("/"))
                         + r"(?=$|[/\s'\"`;:,)|&<>=])")
        text = pat.sub(lambda _m, h=hpath: h, text)
    return text


class ContainerLog:
    """One container run's output: (timestamp, bytes) lines of stdout and stderr in arrival
    order; followers wait on `cond`. `stdout` keeps stdout alone (Argo's outputs.result)."""

    def __init__(self):
        self.lines = []
        self.stdout = bytearray()
        self.done = False
        self.cond = threading.Condition()

    def append(self, data, is_stdout=True):
        with self.cond:
            self.lines.append((time.time(), data))
            if is_stdout:
                self.stdout += data
            self.cond.notify_all()

    def finish(self):
        with self.cond:
            self.done = True
            self.cond.notify_all()


class PodWorker:
    def __init__(self, kubelet, pod):
        self.k = kubelet
        self.cluster = kubelet.cluster
        self.ns = pod["metadata"]["namespace"]
        self.name = pod["metadata"]["name"]
        self.uid = pod["metadata"]["uid"]
        self.runs = []  # ContainerLog per container start (restarts add more)
        self.proc = None
        self.deleting = False
        self.grace = 30
        self.deadline_hit = False
        self.finished = False
        self.lock = threading.Lock()
        self.wake = threading.Event()
        self.root = os.path.join(kubelet.pods_dir, f"{self.ns}_{self.name}_{self.uid[:8]}")
        self.mapping = []
        self.extra_mapping = []  # set by the Argo controller (output and artifact paths)
        self.script = None  # (path in container, source) for Argo script templates
        self.files = []  # (path in container, bytes, mode): Argo raw input artifacts
        # one pipe keeps stdout/stderr order exact (Jobs); Argo wants stdout alone for
        # outputs.result, so its pods read two pipes (order between them then approximate)
        self.separate_stderr = False
        self.on_exit = None  # callback(worker, exit_code) before the final status write

    # --- status writes ------------------------------------------------------------------------

    def _mutate(self, fn):
        return self.cluster.store.mutate("pods", self.ns, self.name, fn)

    def _container(self, pod):
        return pod["spec"]["containers"][0]

    def _set_waiting(self, reason, message=None):
        def fn(pod):
            cs = pod["status"]["containerStatuses"][0]
            state = {"waiting": {"reason": reason}}
            if message:
                state["waiting"]["message"] = message
            if cs.get("state") == state:
                return False
            cs["state"] = state
            return True
        self._mutate(fn)

    def _initial_status(self, pod):
        now = util.now_rfc3339()
        c = self._container(pod)
        pod["status"] = {
            "phase": "Pending",
            "conditions": [
                {"type": "PodReadyToStartContainers", "status": "False",
                 "lastProbeTime": None, "lastTransitionTime": now},
                {"type": "Initialized", "status": "True", "lastProbeTime": None,
                 "lastTransitionTime": now},
                {"type": "Ready", "status": "False", "lastProbeTime": None,
                 "lastTransitionTime": now, "reason": "ContainersNotReady",
                 "message": f"containers with unready status: [{c['name']}]"},
                {"type": "ContainersReady", "status": "False", "lastProbeTime": None,
                 "lastTransitionTime": now, "reason": "ContainersNotReady",
                 "message": f"containers with unready status: [{c['name']}]"},
                {"type": "PodScheduled", "status": "True", "lastProbeTime": None,
                 "lastTransitionTime": now},
            ],
            "hostIP": "127.0.0.1",
            "hostIPs": [{"ip": "127.0.0.1"}],
            "podIP": "127.0.0.1",
            "podIPs": [{"ip": "127.0.0.1"}],
            "startTime": now,
            "qosClass": "BestEffort",
            "containerStatuses": [{
                "name": c["name"], "image": c.get("image", ""), "imageID": "",
                "ready": False, "restartCount": 0, "started": False,
                "state": {"waiting": {"reason": "ContainerCreating"}}, "lastState": {},
            }],
        }
        pod["spec"].setdefault("nodeName", self.k.node_name)
        return True

    def _set_cond(self, pod, ctype, status, reason=None, message=None):
        now = util.now_rfc3339()
        for c in pod["status"]["conditions"]:
            if c["type"] == ctype:
                if c["status"] != status:
                    c["lastTransitionTime"] = now
                c["status"] = status
                c.pop("reason", None)
                c.pop("message", None)
                if reason:
                    c["reason"] = reason
                if message:
                    c["message"] = message

    def _set_running(self, started_at):
        def fn(pod):
            cs = pod["status"]["containerStatuses"][0]
            cs["state"] = {"running": {"startedAt": started_at}}
            cs["ready"] = True
            cs["started"] = True
            cs["containerID"] = f"containerd://{self.uid.replace('-', '')}{len(self.runs):04d}"
            pod["status"]["phase"] = "Running"
            self._set_cond(pod, "PodReadyToStartContainers", "True")
            self._set_cond(pod, "Ready", "True")
            self._set_cond(pod, "ContainersReady", "True")
            return True
        self._mutate(fn)

    def _terminated_state(self, code, started_at, reason=None, message=None):
        st = {"exitCode": code, "reason": reason or ("Completed" if code == 0 else "Error"),
              "startedAt": started_at, "finishedAt": util.now_rfc3339(),
              "containerID": f"containerd://{self.uid.replace('-', '')}{len(self.runs):04d}"}
        if message:
            st["message"] = message
        return st

    def _set_terminated(self, term, phase, pod_reason=None, pod_message=None, restarting=False):
        def fn(pod):
            cs = pod["status"]["containerStatuses"][0]
            cs["ready"] = False
            cs["started"] = False
            if restarting:
                cs["lastState"] = {"terminated": term}
                cs["restartCount"] = cs.get("restartCount", 0) + 1
                cs["state"] = {"waiting": {"reason": "CrashLoopBackOff",
                                           "message": f"back-off restarting failed container "
                                                      f"{cs['name']} in pod {self.name}"}}
            else:
                cs["state"] = {"terminated": term}
                pod["status"]["phase"] = phase
                if pod_reason:
                    pod["status"]["reason"] = pod_reason
                if pod_message:
                    pod["status"]["message"] = pod_message
            self._set_cond(pod, "Ready", "False",
                           "PodCompleted" if phase == "Succeeded" else "PodFailed")
            self._set_cond(pod, "ContainersReady", "False",
                           "PodCompleted" if phase == "Succeeded" else "PodFailed")
            self._set_cond(pod, "PodReadyToStartContainers", "False")
            return True
        self._mutate(fn)

    # --- preparation --------------------------------------------------------------------------

    def _get(self, plural, name):
        return self.cluster.store.get(plural, self.ns, name)

    def _source_data(self, kind, name, optional):
        """The key -> bytes map of a ConfigMap or Secret, or raise ConfigError."""
        plural = "configmaps" if kind == "configMap" else "secrets"
        obj = self._get(plural, name)
        if obj is None:
            if optional:
                return None
            raise ConfigError("ContainerCreating" if kind else "CreateContainerConfigError",
                              f'{"configmap" if plural == "configmaps" else "secret"} '
                              f'"{name}" not found')
        data = {}
        if plural == "configmaps":
            for k, v in (obj.get("data") or {}).items():
                data[k] = v.encode()
            for k, v in (obj.get("binaryData") or {}).items():
                data[k] = base64.b64decode(v)
        else:
            for k, v in (obj.get("data") or {}).items():
                data[k] = base64.b64decode(v)
        return data

    def _field_ref(self, pod, path):
        meta = pod["metadata"]
        m = re.fullmatch(r"metadata\.(labels|annotations)\['(.+)'\]", path)
        if m:
            return (meta.get(m.group(1)) or {}).get(m.group(2), "")
        return {
            "metadata.name": meta["name"], "metadata.namespace": meta["namespace"],
            "metadata.uid": meta["uid"], "spec.nodeName": self.k.node_name,
            "spec.serviceAccountName": pod["spec"].get("serviceAccountName", "default"),
            "status.hostIP": "127.0.0.1", "status.podIP": "127.0.0.1",
            "status.hostIPs": "127.0.0.1", "status.podIPs": "127.0.0.1",
        }.get(path, "")

    def _write_atomic_dir(self, vdir, files, default_mode):
        """kubelet's AtomicWriter layout: files in ..<timestamp>/, ..data -> it, and a symlink
        per top-level entry pointing into ..data."""
        os.makedirs(vdir, exist_ok=True)
        ts = time.strftime("..%Y_%m_%d_%H_%M_%S.") + str(time.time_ns() % 1000000000)
        tsdir = os.path.join(vdir, ts)
        os.makedirs(tsdir)
        tops = set()
        for rel, (data, mode) in files.items():
            path = os.path.join(tsdir, rel)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "wb") as f:
                f.write(data)
            os.chmod(path, mode if mode is not None else default_mode)
            tops.add(rel.split("/")[0])
        os.symlink(ts, os.path.join(vdir, "..data"))
        for top in tops:
            os.symlink(os.path.join("..data", top), os.path.join(vdir, top))

    def _items(self, data, items, default_mode, what):
        files = {}
        if items:
            for it in items:
                if it["key"] not in data:
                    raise ConfigError("ContainerCreating",
                                      f'configmap references non-existent config key: '
                                      f'{it["key"]}' if what == "configMap" else
                                      f'references non-existent secret key: {it["key"]}')
                files[it["path"]] = (data[it["key"]], it.get("mode"))
        else:
            for k, v in data.items():
                files[k] = (v, None)
        return files

    def _volumes(self, pod):
        vols = {}
        spec = pod["spec"]
        for v in spec.get("volumes") or []:
            vdir = os.path.join(self.root, "volumes", v["name"])
            if v.get("hostPath"):
                vols[v["name"]] = v["hostPath"]["path"]
                continue
            if os.path.exists(vdir):
                shutil.rmtree(vdir)
            if v.get("configMap") is not None or v.get("secret") is not None:
                kind = "configMap" if v.get("configMap") is not None else "secret"
                src = v[kind]
                name = src.get("name") if kind == "configMap" else src.get("secretName")
                data = self._source_data(kind, name, src.get("optional"))
                mode = src.get("defaultMode", 0o644)
                files = self._items(data or {}, src.get("items"), mode, kind)
                self._write_atomic_dir(vdir, files, mode)
            elif v.get("projected") is not None:
                files = {}
                mode = v["projected"].get("defaultMode", 0o644)
                for s in v["projected"].get("sources") or []:
                    if s.get("configMap") is not None or s.get("secret") is not None:
                        kind = "configMap" if s.get("configMap") is not None else "secret"
                        data = self._source_data(kind, s[kind]["name"], s[kind].get("optional"))
                        files.update(self._items(data or {}, s[kind].get("items"), mode, kind))
                    elif s.get("serviceAccountToken") is not None:
                        files[s["serviceAccountToken"]["path"]] = (self.k.token().encode(), None)
                    elif s.get("downwardAPI") is not None:
                        for it in s["downwardAPI"].get("items") or []:
                            if it.get("fieldRef"):
                                files[it["path"]] = (
                                    self._field_ref(pod, it["fieldRef"]["fieldPath"]).encode(),
                                    it.get("mode"))
                self._write_atomic_dir(vdir, files, mode)
            elif v.get("downwardAPI") is not None:
                files = {}
                for it in v["downwardAPI"].get("items") or []:
                    if it.get("fieldRef"):
                        files[it["path"]] = (self._field_ref(
                            pod, it["fieldRef"]["fieldPath"]).encode(), it.get("mode"))
                self._write_atomic_dir(vdir, files, v["downwardAPI"].get("defaultMode", 0o644))
            else:  # emptyDir, and every volume type the fake cannot provide: an empty directory
                os.makedirs(vdir, exist_ok=True)
            vols[v["name"]] = vdir
        return vols

    def _link(self, cpath, target):
        link = os.path.join(self.root, cpath.lstrip("/"))
        os.makedirs(os.path.dirname(link), exist_ok=True)
        if os.path.islink(link) or os.path.isfile(link):
            os.unlink(link)
        elif os.path.isdir(link):
            shutil.rmtree(link)
        os.symlink(target, link)
        return link

    def _mounts(self, pod, container, vols):
        mapping = []
        for m in container.get("volumeMounts") or []:
            target = vols.get(m["name"])
            if target is None:
                continue
            if m.get("subPath"):
                target = os.path.join(target, m["subPath"])
                if not os.path.exists(target):
                    os.makedirs(target, exist_ok=True)
                target = os.path.realpath(target)
            mapping.append((m["mountPath"].rstrip("/") or "/",
                            self._link(m["mountPath"], target)))
        if pod["spec"].get("automountServiceAccountToken", True) and not any(
                c == SA_DIR or SA_DIR.startswith(c + "/") for c, _ in mapping):
            sadir = os.path.join(self.root, "volumes", "kube-api-access")
            if os.path.exists(sadir):
                shutil.rmtree(sadir)
            files = {"token": (self.k.token().encode(), None),
                     "namespace": (self.ns.encode(), None)}
            if self.k.ca_file:
                with open(self.k.ca_file, "rb") as f:
                    files["ca.crt"] = (f.read(), None)
            self._write_atomic_dir(sadir, files, 0o644)
            mapping.append((SA_DIR, self._link(SA_DIR, sadir)))
        mapping.sort(key=lambda p: -len(p[0]))
        return mapping

    def _env(self, pod, container):
        env = {
            "PATH": os.environ.get("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:"
                                           "/sbin:/bin"),
            "HOSTNAME": pod["metadata"]["name"][:63],
            "HOME": os.path.join(self.root, "root"),
            "LANG": "C.UTF-8",
            "KUBERNETES_SERVICE_HOST": "127.0.0.1",
            "KUBERNETES_SERVICE_PORT": str(self.k.api_port()),
            "KUBERNETES_SERVICE_PORT_HTTPS": str(self.k.api_port()),
            "KUBERNETES_PORT": f"tcp://127.0.0.1:{self.k.api_port()}",
        }
        env.update(self.k.extra_env)
        os.makedirs(env["HOME"], exist_ok=True)
        for src in container.get("envFrom") or []:
            prefix = src.get("prefix", "")
            for kind in ("configMapRef", "secretRef"):
                ref = src.get(kind)
                if ref is None:
                    continue
                data = self._source_data("", ref["name"], ref.get("optional")) \
                    if kind == "secretRef" else self._cm_env(ref)
                for k, v in (data or {}).items():
                    env[prefix + k] = v.decode(errors="replace")
        for e in container.get("env") or []:
            if e.get("valueFrom"):
                vf = e["valueFrom"]
                if vf.get("configMapKeyRef") or vf.get("secretKeyRef"):
                    kind = "configMapKeyRef" if vf.get("configMapKeyRef") else "secretKeyRef"
                    ref = vf[kind]
                    data = self._cm_env(ref) if kind == "configMapKeyRef" else \
                        self._source_data("", ref["name"], ref.get("optional"))
                    if data is None:
                        continue
                    if ref["key"] not in data:
                        if ref.get("optional"):
                            continue
                        what = "ConfigMap" if kind == "configMapKeyRef" else "Secret"
                        raise ConfigError("CreateContainerConfigError",
                                          f'couldn\'t find key {ref["key"]} in {what} '
                                          f'{self.ns}/{ref["name"]}')
                    env[e["name"]] = data[ref["key"]].decode(errors="replace")
                elif vf.get("fieldRef"):
                    env[e["name"]] = self._field_ref(pod, vf["fieldRef"]["fieldPath"])
                else:  # resourceFieldRef: no limits on this host
                    env[e["name"]] = "0"
            else:
                env[e["name"]] = _expand_vars(e.get("value", ""), env)
        return env

    def _cm_env(self, ref):
        obj = self._get("configmaps", ref["name"])
        if obj is None:
            if ref.get("optional"):
                return None
            raise ConfigError("CreateContainerConfigError", f'configmap "{ref["name"]}" not found')
        return {k: v.encode() for k, v in (obj.get("data") or {}).items()}

    def _argv(self, container, env):
        cmd = [_expand_vars(a, env) for a in container.get("command") or []]
        args = [_expand_vars(a, env) for a in container.get("args") or []]
        if not cmd:
            entry = self.k.image_entrypoints.get(container.get("image", ""))
            if entry is None:
                return None
            cmd = list(entry)
        return cmd + args

    # --- the pod's life -----------------------------------------------------------------------

    def run(self):
        try:
            self._run()
        except Exception as e:  # a bug in the fake: make it visible, fail the pod
            import traceback
            traceback.print_exc()
            print(f"fake kubelet: pod {self.ns}/{self.name}: {e}", file=sys.stderr)
            try:
                self._set_terminated(self._terminated_state(128, util.now_rfc3339(),
                                                            "StartError", f"fake: {e}"),
                                     "Failed")
            except Exception:
                pass
        finally:
            self.finished = True
            self.k.pod_finished(self)

    def _sleep(self, seconds):
        end = time.monotonic() + seconds
        while not self.deleting and time.monotonic() < end:
            self.wake.wait(min(0.05, max(0.0, end - time.monotonic())))
            self.wake.clear()

    def _run(self):
        if self.cluster.store.mutate("pods", self.ns, self.name, self._initial_status) is None:
            return
        self._sleep(self.k.pod_start_delay)
        pod = None
        while not self.deleting:
            pod = self._get("pods", self.name)
            if pod is None or pod["metadata"]["uid"] != self.uid:
                return
            try:
                container = self._container(pod)
                os.makedirs(self.root, exist_ok=True)
                for _, host in self.extra_mapping:
                    os.makedirs(os.path.dirname(host), exist_ok=True)
                for cpath, data, mode in self.files:
                    host = os.path.join(self.root, cpath.lstrip("/"))
                    os.makedirs(os.path.dirname(host), exist_ok=True)
                    with open(host, "wb") as f:
                        f.write(data)
                    os.chmod(host, mode)
                vols = self._volumes(pod)
                self.mapping = sorted(self._mounts(pod, container, vols) + self.extra_mapping,
                                      key=lambda p: -len(p[0]))
                env = self._env(pod, container)
                break
            except ConfigError as e:
                self._set_waiting(e.reason, str(e))
                self._sleep(1.0)
        if self.deleting or pod is None:
            return
        env = {k: map_paths(v, self.mapping) for k, v in env.items()}
        env["DAGD_FAKE_POD_ROOT"] = self.root
        restart_policy = pod["spec"].get("restartPolicy", "Always")
        deadline = pod["spec"].get("activeDeadlineSeconds")
        pod_started = time.monotonic()
        while True:
            code, started_at, term = self._run_container(pod, env, deadline, pod_started)
            failed = code != 0
            again = not self.deleting and not self.deadline_hit and (
                restart_policy == "Always" or (restart_policy == "OnFailure" and failed))
            if again:
                self._set_terminated(term, None, restarting=True)
                self._sleep(self.k.crash_backoff)
                if self.deleting:
                    break
                continue
            if self.on_exit is not None:
                self.on_exit(self, code)
            if self.deadline_hit:
                self._set_terminated(term, "Failed", "DeadlineExceeded",
                                     "Pod was active on the node longer than the specified "
                                     "deadline")
            else:
                self._set_terminated(term, "Failed" if failed else "Succeeded")
            break

    def _run_container(self, pod, env, deadline, pod_started):
        container = self._container(pod)
        log = ContainerLog()
        self.runs.append(log)
        started_at = util.now_rfc3339()
        argv = self._argv(container, env)
        if argv is None:
            log.finish()
            return 128, started_at, self._terminated_state(
                128, started_at, "StartError",
                f"failed to create containerd task: the fake cannot run image "
                f"{container.get('image')!r} without a command (use --image-entrypoint)")
        if self.script is not None:
            spath, source = self.script
            host = os.path.join(self.root, spath.lstrip("/"))
            os.makedirs(os.path.dirname(host), exist_ok=True)
            with open(host, "w") as f:
                f.write(map_paths(source, self.mapping))
            os.chmod(host, 0o755)
        argv = [map_paths(a, self.mapping) for a in argv]
        cwd = container.get("workingDir")
        if cwd:
            mapped = map_paths(cwd, self.mapping)
            if mapped == cwd and not os.path.isdir(cwd):
                mapped = os.path.join(self.root, cwd.lstrip("/"))
            cwd = mapped
        else:
            cwd = self.root
        os.makedirs(cwd, exist_ok=True)
        env = dict(env, PWD=cwd)  # so that a shell's pwd shows the mapped working directory
        exe = argv[0]
        found = (os.access(exe, os.X_OK) and not os.path.isdir(exe)) if "/" in exe else \
            shutil.which(exe, path=env.get("PATH"))
        if not found:
            log.finish()
            return 128, started_at, self._terminated_state(
                128, started_at, "StartError",
                f'failed to create containerd task: failed to create shim task: OCI runtime '
                f'create failed: runc create failed: unable to start container process: exec: '
                f'"{exe}": executable file not found in $PATH: unknown')
        with self.lock:
            if self.deleting:
                log.finish()
                return 137, started_at, self._terminated_state(137, started_at)
            try:
                self.proc = self.k.spawner.popen(
                    argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE if self.separate_stderr else subprocess.STDOUT,
                    start_new_session=True, close_fds=True)
            except OSError as e:
                log.finish()
                return 128, started_at, self._terminated_state(
                    128, started_at, "StartError",
                    f"failed to create containerd task: exec: {e}")
        self._set_running(started_at)
        readers = [threading.Thread(target=self._read, args=(pipe, log, is_out), daemon=True,
                                    name=f"log-{self.name}")
                   for pipe, is_out in ((self.proc.stdout, True), (self.proc.stderr, False))
                   if pipe is not None]
        for r in readers:
            r.start()
        while True:
            try:
                self.proc.wait(timeout=0.1)
                break
            except subprocess.TimeoutExpired:
                pass
            if deadline is not None and not self.deadline_hit and \
                    time.monotonic() - pod_started > deadline:
                self.deadline_hit = True
                threading.Thread(target=self._kill, args=(self.grace_for(pod),),
                                 daemon=True).start()
        code = self.proc.returncode
        self._killpg(signal.SIGKILL)  # the container is gone: so is everything it started
        for r in readers:
            r.join(5)
        log.finish()
        if code < 0:
            code = 128 - code
        return code, started_at, self._terminated_state(code, started_at)

    def grace_for(self, pod):
        g = pod["spec"].get("terminationGracePeriodSeconds")
        return 30 if g is None else g

    def _read(self, pipe, log, is_stdout):
        try:
            for line in iter(pipe.readline, b""):
                log.append(line, is_stdout)
        except (OSError, ValueError):
            pass
        finally:
            try:
                pipe.close()
            except OSError:
                pass

    def _killpg(self, sig):
        p = self.proc
        if p is None:
            return
        try:
            os.killpg(p.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass

    def _kill(self, grace):
        self._killpg(signal.SIGTERM)
        end = time.monotonic() + grace
        while time.monotonic() < end:
            p = self.proc
            if p is None or p.poll() is not None:
                break
            time.sleep(0.05)
        self._killpg(signal.SIGKILL)

    def kill_container(self, grace):
        """SIGTERM, then SIGKILL after `grace`, without deleting the pod (Argo's stop)."""
        threading.Thread(target=self._kill, args=(grace,), daemon=True).start()

    def terminate(self, grace):
        """Graceful deletion: SIGTERM now, SIGKILL after `grace` seconds."""
        with self.lock:
            already = self.deleting
            self.deleting = True
            self.grace = grace
        self.wake.set()
        if not already:
            threading.Thread(target=self._kill, args=(grace,), daemon=True).start()


class Kubelet:
    def __init__(self, cluster):
        self.cluster = cluster
        o = cluster.opts
        self.node_name = "fake-node"
        self.pods_dir = os.path.join(o.work_dir, "pods")
        os.makedirs(self.pods_dir, exist_ok=True)
        self.pod_start_delay = o.pod_start_delay
        self.crash_backoff = o.crash_backoff
        self.image_entrypoints = o.image_entrypoints
        self.extra_env = o.pod_env
        self.ca_file = o.tls_ca or o.tls_cert
        self.spawner = Spawner()
        self.workers = {}  # pod uid -> PodWorker
        self.lock = threading.Lock()
        self.prepare = []  # callbacks(worker, pod) before a worker starts (Argo controller)
        cluster.store.observers.append(self._observe)

    def token(self):
        return self.cluster.auth.current_tokens()[0] if self.cluster.auth.current_tokens() \
            else ""

    def api_port(self):
        return self.cluster.port

    def _observe(self, ev):
        if ev.resource == "pods" and ev.type == "ADDED":
            w = PodWorker(self, ev.obj)
            for prep in self.prepare:
                prep(w, ev.obj)
            with self.lock:
                self.workers[w.uid] = w
            threading.Thread(target=w.run, name=f"pod-{w.name}", daemon=True).start()

    def worker(self, uid):
        with self.lock:
            return self.workers.get(uid)

    def pod_finished(self, w):
        """The container will not run again; a pending deletion completes now."""
        if w.deleting:
            self._remove(w)

    def _remove(self, w):
        store = self.cluster.store
        with store.lock:
            pod = store.get("pods", w.ns, w.name)
            if pod is not None and pod["metadata"]["uid"] == w.uid:
                store.remove("pods", w.ns, w.name)

    def delete_pod(self, ns, name, grace=None):
        """Graceful pod deletion as the API server + kubelet do it. Returns (deleted_now, obj)."""
        store = self.cluster.store
        with store.lock:
            pod = store.get("pods", ns, name)
            if pod is None:
                return True, None
            w = self.worker(pod["metadata"]["uid"])
            if grace is None:
                grace = pod["spec"].get("terminationGracePeriodSeconds", 30)
            if w is None or w.finished or grace == 0:
                if w is not None:
                    w.terminate(0)
                return True, store.remove("pods", ns, name)

            def mark(p):
                if p["metadata"].get("deletionTimestamp"):
                    return False
                p["metadata"]["deletionTimestamp"] = util.now_rfc3339()
                p["metadata"]["deletionGracePeriodSeconds"] = grace
                return True
            obj = store.mutate("pods", ns, name, mark)
        w.terminate(grace)
        if w.finished:
            self._remove(w)
        return False, obj

    def kill_everything(self):
        with self.lock:
            workers = list(self.workers.values())
        for w in workers:
            w.deleting = True
            w._killpg(signal.SIGKILL)
