#!/usr/bin/python3
"""deploy/kubernetes/: every manifest is valid under the official schema of its kind
(../shared/schemas), and the pieces fit together (names the StatefulSet refers to exist).

Usage: manifests_test.py --deploy DIR --schemas DIR   (CTest: deploy_manifests)"""
import argparse
import glob
import json
import os
import sys
import unittest
import warnings

import jsonschema
import yaml

SCHEMAS = {
    "ServiceAccount": "k8s-serviceaccount-v1.schema.json",
    "Role": "k8s-role-rbac-v1.schema.json",
    "RoleBinding": "k8s-rolebinding-rbac-v1.schema.json",
    "ConfigMap": "k8s-configmap-v1.schema.json",
    "StatefulSet": "k8s-statefulset-apps-v1.schema.json",
    "Service": "k8s-service-v1.schema.json",
    "ServiceMonitor": "k8s-servicemonitor-monitoring-v1.schema.json",
}

ARGS = None


def load_manifests():
    docs = []
    for path in sorted(glob.glob(os.path.join(ARGS.deploy, "*.yaml"))):
        with open(path) as f:
            for doc in yaml.safe_load_all(f):
                if doc:
                    docs.append((os.path.basename(path), doc))
    return docs


def violations(doc, schema_file):
    with open(os.path.join(ARGS.schemas, schema_file)) as f:
        schema = json.load(f)
    warnings.simplefilter("ignore", DeprecationWarning)
    validator = jsonschema.validators.validator_for(schema)(schema)
    return ["/".join(str(p) for p in e.absolute_path) + ": " + e.message[:200]
            for e in validator.iter_errors(doc)]


class ManifestsTest(unittest.TestCase):
    def test_every_manifest_is_valid_under_its_schema(self):
        docs = load_manifests()
        self.assertGreaterEqual(len(docs), 6)
        for name, doc in docs:
            kind = doc.get("kind")
            self.assertIn(kind, SCHEMAS, f"{name}: no schema for kind {kind}")
            self.assertEqual(violations(doc, SCHEMAS[kind]), [], name)

    def test_a_broken_manifest_is_caught(self):
        # The check itself can fail: a typo'd field of a container.
        for name, doc in load_manifests():
            if doc["kind"] == "StatefulSet":
                doc["spec"]["template"]["spec"]["containers"][0]["imagee"] = "typo"
                self.assertTrue(violations(doc, SCHEMAS["StatefulSet"]))

    def test_the_pieces_fit(self):
        by_kind = {}
        for _, doc in load_manifests():
            by_kind.setdefault(doc["kind"], []).append(doc)
        names = lambda kind: {d["metadata"]["name"] for d in by_kind.get(kind, [])}
        pod = by_kind["StatefulSet"][0]["spec"]["template"]["spec"]
        self.assertIn(pod["serviceAccountName"], names("ServiceAccount"))
        for volume in pod.get("volumes", []):
            if "configMap" in volume:
                self.assertIn(volume["configMap"]["name"], names("ConfigMap"))
        binding = by_kind["RoleBinding"][0]
        self.assertIn(binding["roleRef"]["name"], names("Role"))
        self.assertIn(binding["subjects"][0]["name"], names("ServiceAccount"))
        config = by_kind["ConfigMap"][0]["data"]["dagd.toml"]
        self.assertIn("kube-in-cluster = true", config)
        self.assertIn('data-dir = "/var/lib/dagd"', config)
        mounts = {m["mountPath"] for m in pod["containers"][0]["volumeMounts"]}
        self.assertIn("/var/lib/dagd", mounts)

    def test_the_role_grants_only_what_the_runners_use(self):
        used = {  # runners/kubernetes/kubernetes_runner.cc and runners/argo/
            ("batch", "jobs"): {"create", "get", "list", "watch", "delete"},
            ("", "pods"): {"get", "list"},
            ("", "pods/log"): {"get"},
            ("", "configmaps"): {"create", "patch"},
            ("argoproj.io", "workflows"): {"create", "get", "list", "watch", "patch", "delete"},
        }
        role = next(d for _, d in load_manifests() if d["kind"] == "Role")
        for rule in role["rules"]:
            for group in rule["apiGroups"]:
                for resource in rule["resources"]:
                    self.assertIn((group, resource), used)
                    self.assertLessEqual(set(rule["verbs"]), used[(group, resource)],
                                         f"{group}/{resource}: more verbs than dagd uses")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--deploy", required=True)
    parser.add_argument("--schemas", required=True)
    ARGS, rest = parser.parse_known_args()
    unittest.main(argv=[sys.argv[0]] + rest)
