#!/usr/bin/python3
"""deploy/kubernetes/ through Debian's kubectl: `kubectl apply --dry-run=client` of the whole
directory against the Kubernetes API fake (../fakes/), which serves the discovery kubectl needs
to map every kind. kubectl must accept every manifest and name every object in it.

--validate=false: client-side validation needs the server's OpenAPI documents, which the fake
does not serve; manifests_test.py checks the objects against the official schemas instead.
`apply` (not `create`) because it also looks each object up by its REST path, as on a cluster;
both work with Debian 12's kubectl 1.20 (kubernetes-client) and with kubectl 1.32.

Usage: kubectl_dry_run_test.py --deploy DIR [--schemas DIR]   (CTest: deploy_kubectl_dry_run)"""
import argparse
import glob
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

import yaml

sys.dont_write_bytecode = True  # keep __pycache__ out of the source tree
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fakes"))

from fakeclient import FakeProcess  # noqa: E402

ARGS = None

def manifests(directory):
    """(file, object) of every YAML document in directory/*.yaml."""
    docs = []
    for path in sorted(glob.glob(os.path.join(directory, "*.yaml"))):
        with open(path) as f:
            for doc in yaml.safe_load_all(f):
                if doc:
                    docs.append((os.path.basename(path), doc))
    return docs


def printed_name(doc):
    """What `kubectl ... -o name` prints for an object: kind.group/name, lower-case."""
    group = doc["apiVersion"].rpartition("/")[0]
    kind = doc["kind"].lower()
    return f"{kind}.{group}/{doc['metadata']['name']}" if group else \
        f"{kind}/{doc['metadata']['name']}"


def rest_path(doc):
    """The path kubectl GETs for an object (plural = kind + s; a ClusterRoleBinding, the one
    cluster-scoped kind here, has no namespace)."""
    api = doc["apiVersion"]
    prefix = f"/apis/{api}" if "/" in api else f"/api/{api}"
    plural = doc["kind"].lower() + "s"
    if "namespace" not in doc["metadata"]:
        return f"{prefix}/{plural}/{doc['metadata']['name']}"
    return f"{prefix}/namespaces/{doc['metadata']['namespace']}/{plural}/" \
           f"{doc['metadata']['name']}"


class KubectlDryRunTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.kubectl = shutil.which("kubectl")
        if cls.kubectl is None:
            raise AssertionError("kubectl is not on PATH: run scripts/setup.sh (it installs "
                                 "Debian's kubernetes-client when no kubectl is installed)")
        cls.dir = tempfile.mkdtemp(prefix="deploy-kubectl-")
        cls.kubeconfig = os.path.join(cls.dir, "kubeconfig")
        # No authentication, so plain HTTP: client-go sends bearer tokens over TLS only, and
        # certificates would need openssl. What is checked here is the manifests, not auth.
        cls.fake = FakeProcess(token=None, schemas=ARGS.schemas,
                               extra_args=["--kubeconfig-out", cls.kubeconfig])

    @classmethod
    def tearDownClass(cls):
        code = cls.fake.stop()
        output = cls.fake.output()
        cls.fake.cleanup()
        shutil.rmtree(cls.dir, ignore_errors=True)
        if code != 0:
            raise AssertionError(f"the fake exited {code} (3: schema violations):\n{output}")

    def apply(self, path):
        """kubectl apply --dry-run=client -f path -o name: (exit code, stdout, stderr)."""
        env = dict(os.environ, HOME=self.dir)
        env.pop("KUBECONFIG", None)
        p = subprocess.run(
            [self.kubectl, "--kubeconfig", self.kubeconfig,
             "--cache-dir", os.path.join(self.dir, "cache"), "--request-timeout=20s",
             "apply", "--dry-run=client", "--validate=false", "-f", path, "-o", "name"],
            env=env, capture_output=True, text=True, timeout=120)
        return p.returncode, p.stdout, p.stderr

    def copy_of_manifests(self, name):
        d = os.path.join(self.dir, name)
        shutil.copytree(ARGS.deploy, d)
        return d

    def test_every_manifest_is_accepted_and_every_object_named(self):
        docs = manifests(ARGS.deploy)
        self.assertGreaterEqual(len(docs), 7)
        first = len(self.fake.control.get("/fake/requests").json["requests"])
        code, out, err = self.apply(ARGS.deploy)
        self.assertEqual(code, 0, f"kubectl failed:\n{out}{err}")
        self.assertEqual(sorted(out.split()), sorted(printed_name(d) for _, d in docs),
                         f"kubectl's output:\n{out}{err}")
        # it mapped each kind through the fake's discovery and looked each object up
        requests = self.fake.control.get("/fake/requests").json["requests"][first:]
        gets = {(r["path"], r["status"]) for r in requests if r["method"] == "GET"}
        for file, doc in docs:
            self.assertIn((rest_path(doc), 404), gets, file)
        self.assertFalse([r for r in requests if r["method"] != "GET"],
                         "a client-side dry run must not write")
        self.assertEqual(self.fake.violations(), [])

    def test_the_servicemonitor_maps_too(self):
        # servicemonitor.yaml: a CRD's kind, mapped through the fake's discovery like the rest
        self.assertIn("servicemonitor.monitoring.coreos.com/dagd",
                      [printed_name(d) for _, d in manifests(ARGS.deploy)])
        code, out, err = self.apply(os.path.join(ARGS.deploy, "servicemonitor.yaml"))
        self.assertEqual(code, 0, f"kubectl failed:\n{out}{err}")
        self.assertEqual(out.split(), ["servicemonitor.monitoring.coreos.com/dagd"], err)

    def test_an_unknown_kind_fails(self):
        d = self.copy_of_manifests("unknown-kind")
        path = os.path.join(d, "statefulset.yaml")
        with open(path) as f:
            text = f.read()
        with open(path, "w") as f:
            f.write(text.replace("kind: StatefulSet", "kind: StatefulSett"))
        code, out, err = self.apply(d)
        self.assertNotEqual(code, 0, f"kubectl accepted an unknown kind:\n{out}{err}")
        self.assertIn('no matches for kind "StatefulSett"', err)
        self.assertNotIn("statefulset.apps/dagd", out.split())

    def test_broken_yaml_fails(self):
        d = self.copy_of_manifests("broken-yaml")
        with open(os.path.join(d, "service.yaml"), "a") as f:
            f.write("  ports: [ {name: grpc\n")
        code, out, err = self.apply(d)
        self.assertNotEqual(code, 0, f"kubectl accepted broken YAML:\n{out}{err}")
        self.assertIn("service.yaml", err)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--deploy", required=True)
    parser.add_argument("--schemas", help="for the fake (default: its own, ../shared/schemas)")
    ARGS, rest = parser.parse_known_args()
    ARGS.deploy = os.path.abspath(ARGS.deploy)
    unittest.main(argv=[sys.argv[0]] + rest)
