#!/usr/bin/python3
"""A protocol-faithful fake of the Kubernetes API server (and, with --mode argo|both, of the
Argo Server) on loopback, for dagd's tests. See tests/fakes/README.md.

  fake_kube.py --schemas ../shared/schemas --token-file T --port-file P [--mode kube|argo|both]

Exits 0 on SIGTERM/SIGINT, or 3 if any received object violated its schema.
"""

import argparse
import json
import os
import shlex
import shutil
import signal
import sys
import tempfile
import threading

sys.dont_write_bytecode = True  # keep __pycache__ out of the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from fakecluster import httpserver  # noqa: E402
from fakecluster.app import App  # noqa: E402
from fakecluster.cluster import Cluster, Options  # noqa: E402

DEFAULT_SCHEMAS = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                "..", "..", "..", "shared", "schemas"))


def _write_atomic(path, text):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def parse_args(argv, default_mode="kube"):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--mode", choices=("kube", "argo", "both"), default=default_mode,
                   help="kube: Kubernetes API (with the argoproj.io Workflow CRD); argo: the "
                        "Argo Server API only; both: both on one port")
    p.add_argument("--schemas", default=DEFAULT_SCHEMAS,
                   help="directory of *.schema.json (default: %(default)s)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0, help="0 = a free port")
    p.add_argument("--port-file", help="write the chosen port here once listening")
    p.add_argument("--control-port-file",
                   help="also serve /fake/... on a second port, never subject to faults, and "
                        "write that port here")
    p.add_argument("--token-file", help="bearer tokens, one per line, re-read on every request "
                                        "(no file: no authentication)")
    p.add_argument("--service-account-tokens", metavar="FILE",
                   help="the service account tokens TokenReview authenticates: a JSON object "
                        "{token: {\"namespace\": NS, \"name\": SA, \"audiences\": [...]}} "
                        "(audiences optional), re-read on every review")
    p.add_argument("--tls-cert")
    p.add_argument("--tls-key")
    p.add_argument("--tls-client-ca", help="require client certificates signed by this CA")
    p.add_argument("--tls-ca", help="the CA that signed --tls-cert, for --kubeconfig-out and "
                                    "pods' ca.crt (default: --tls-cert itself, self-signed)")
    p.add_argument("--work-dir", help="pod roots live here (default: a temporary directory, "
                                      "removed at exit)")
    p.add_argument("--history-limit", type=int, default=10000,
                   help="watch events kept; older resourceVersions get 410 (default %(default)s)")
    p.add_argument("--bookmark-interval", type=float, default=5.0,
                   help="seconds between BOOKMARK events on watches that allow them")
    p.add_argument("--watch-timeout", type=float, default=1800.0,
                   help="watch length when the client gives no timeoutSeconds")
    p.add_argument("--pod-start-delay", type=float, default=0.2,
                   help="seconds a pod stays Pending/ContainerCreating before it runs")
    p.add_argument("--crash-backoff", type=float, default=1.0,
                   help="seconds before a restartPolicy OnFailure/Always container restarts")
    p.add_argument("--job-backoff", type=float, default=10.0,
                   help="the Job controller's pod-failure backoff base (real: 10s, doubling)")
    p.add_argument("--image-entrypoint", action="append", default=[], metavar="IMAGE=COMMAND",
                   help="what a container without `command` runs for IMAGE (shell words)")
    p.add_argument("--pod-env", action="append", default=[], metavar="NAME=VALUE",
                   help="extra environment for every pod (as if the image set it)")
    p.add_argument("--violations-file", help="append each schema violation here (JSON lines)")
    p.add_argument("--literal-argo-schema", action="store_true",
                   help="validate Workflows against argo-workflow.schema.json exactly as written "
                        "(IntOrString as string only; see README.md)")
    p.add_argument("--self-check", action="store_true",
                   help="also validate every object the fake writes itself")
    p.add_argument("--faults", default="{}", help="fault switches at start-up (JSON, the body "
                                                 "of POST /fake/faults)")
    p.add_argument("--kubeconfig-out", help="write a kubeconfig for this server here")
    p.add_argument("--verbose", action="store_true")
    a = p.parse_args(argv)
    if bool(a.tls_cert) != bool(a.tls_key):
        p.error("--tls-cert and --tls-key go together")
    if a.tls_client_ca and not a.tls_cert:
        p.error("--tls-client-ca needs --tls-cert/--tls-key")
    return a


def write_kubeconfig(path, port, opts, tokens):
    scheme = "https" if opts.tls_cert else "http"
    cluster = {"server": f"{scheme}://127.0.0.1:{port}"}
    if opts.tls_cert:
        cluster["certificate-authority"] = os.path.abspath(opts.tls_ca or opts.tls_cert)
    user = {"token": tokens[0]} if tokens else {}
    cfg = {"apiVersion": "v1", "kind": "Config", "current-context": "fake",
           "clusters": [{"name": "fake", "cluster": cluster}],
           "users": [{"name": "fake", "user": user}],
           "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "fake",
                                                     "namespace": "default"}}]}
    _write_atomic(path, json.dumps(cfg, indent=1) + "\n")  # JSON is YAML


def main(argv=None, default_mode="kube"):
    a = parse_args(sys.argv[1:] if argv is None else argv, default_mode)
    work_dir = a.work_dir
    temp = None
    if not work_dir:
        temp = work_dir = tempfile.mkdtemp(prefix="dagd-fake-")
    entry = {}
    for item in a.image_entrypoint:
        image, _, cmd = item.partition("=")
        entry[image] = shlex.split(cmd)
    env = {}
    for item in a.pod_env:
        k, _, v = item.partition("=")
        env[k] = v
    opts = Options(mode=a.mode, host=a.host, port=a.port, schemas_dir=a.schemas,
                   token_file=a.token_file,
                   service_account_tokens=a.service_account_tokens, tls_cert=a.tls_cert, tls_key=a.tls_key,
                   tls_client_ca=a.tls_client_ca, tls_ca=a.tls_ca, work_dir=work_dir,
                   history_limit=a.history_limit, bookmark_interval=a.bookmark_interval,
                   watch_timeout=a.watch_timeout, pod_start_delay=a.pod_start_delay,
                   crash_backoff=a.crash_backoff, job_backoff=a.job_backoff,
                   image_entrypoints=entry, pod_env=env, violations_file=a.violations_file,
                   self_check=a.self_check, verbose=a.verbose,
                   literal_argo_schema=a.literal_argo_schema,
                   faults=json.loads(a.faults))
    cluster = Cluster(opts)
    cluster.schemas.preload(["k8s-job-batch-v1", "k8s-pod-v1", "k8s-configmap-v1",
                             "k8s-secret-v1", "argo-workflow",
                             "k8s-tokenreview-authentication-v1"])
    ctx = httpserver.make_ssl_context(a.tls_cert, a.tls_key, a.tls_client_ca) \
        if a.tls_cert else None
    server = httpserver.Server(App(cluster), a.host, a.port, ctx, a.verbose, name="api")
    cluster.api_server = server
    cluster.port = server.port
    control = None
    if a.control_port_file:
        control = httpserver.Server(App(cluster, control_only=True), a.host, 0, None,
                                    a.verbose, name="control")
    if opts.faults:
        cluster.faults.apply(opts.faults)
    server.start()
    if control:
        control.start()
        _write_atomic(a.control_port_file, f"{control.port}\n")
    if a.kubeconfig_out:
        write_kubeconfig(a.kubeconfig_out, server.port, opts, cluster.auth.current_tokens())
    if a.port_file:
        _write_atomic(a.port_file, f"{server.port}\n")
    print(f"fake ({a.mode}) listening on {'https' if ctx else 'http'}://{a.host}:{server.port}"
          f"{f', control on {control.port}' if control else ''}; work dir {work_dir}",
          file=sys.stderr, flush=True)

    done = threading.Event()

    def on_signal(signum, frame):
        done.set()
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    while not done.wait(0.5):
        pass
    server.stop()
    if control:
        control.stop()
    cluster.kubelet.kill_everything()
    if temp:
        shutil.rmtree(temp, ignore_errors=True)
    violations = cluster.violations.list()
    if violations:
        print(f"fake: {len(violations)} SCHEMA VIOLATION(S) received; exiting 3",
              file=sys.stderr, flush=True)
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
