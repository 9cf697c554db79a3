#!/usr/bin/python3
"""deploy/kubernetes/: every manifest is valid under the official schema of its kind
(../shared/schemas), and the pieces fit together (names the StatefulSet refers to exist, the
ServiceMonitor selects the Service and one of its ports, the probes and the Service name ports
the container declares, the ports in dagd.toml are the ones declared).

Usage: manifests_test.py --deploy DIR --schemas DIR   (CTest: deploy_manifests)"""
import argparse
import copy
import glob
import json
import os
import re
import sys
import unittest
import warnings

import jsonschema
import yaml

SCHEMAS = {
    "ServiceAccount": "k8s-serviceaccount-v1.schema.json",
    "Role": "k8s-role-rbac-v1.schema.json",
    "RoleBinding": "k8s-rolebinding-rbac-v1.schema.json",
    # ../shared/schemas has no ClusterRoleBinding: it is a RoleBinding without a namespace.
    "ClusterRoleBinding": "k8s-rolebinding-rbac-v1.schema.json",
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


def by_kind(docs):
    kinds = {}
    for _, doc in docs:
        kinds.setdefault(doc["kind"], []).append(doc)
    return kinds


def toml_port(config, key):
    """The port of `key = "HOST:PORT"` in a dagd.toml text, or None."""
    m = re.search(r'^%s\s*=\s*"[^"]*:(\d+)"' % re.escape(key), config, re.M)
    return int(m.group(1)) if m else None


def port_problems(kinds):
    """Where the manifests name a port that is not there: the ServiceMonitor against the
    Service, the Service and the probes against the container, dagd.toml against the container."""
    problems = []
    service = kinds["Service"][0]
    container = kinds["StatefulSet"][0]["spec"]["template"]["spec"]["containers"][0]
    declared = {p["name"]: p["containerPort"] for p in container.get("ports", [])}

    def names_declared(port, where):
        if isinstance(port, int) and port not in declared.values() or \
           isinstance(port, str) and port not in declared:
            problems.append(f"{where}: port {port!r} is not a port of container "
                            f"{container['name']} ({sorted(declared)})")

    for monitor in kinds.get("ServiceMonitor", []):
        selector = monitor["spec"]["selector"]
        labels = service["metadata"].get("labels", {})
        if selector.get("matchExpressions") or not selector.get("matchLabels"):
            problems.append("ServiceMonitor: select the Service by matchLabels only")
        for key, value in selector.get("matchLabels", {}).items():
            if labels.get(key) != value:
                problems.append(f"ServiceMonitor: selects {key}={value}, the Service has "
                                f"{labels}")
        namespaces = monitor["spec"].get("namespaceSelector", {}).get(
            "matchNames", [monitor["metadata"]["namespace"]])
        if service["metadata"]["namespace"] not in namespaces:
            problems.append(f"ServiceMonitor: looks in {namespaces}, the Service is in "
                            f"{service['metadata']['namespace']}")
        service_ports = {p.get("name") for p in service["spec"]["ports"]}
        for endpoint in monitor["spec"]["endpoints"]:
            if endpoint.get("port") not in service_ports:
                problems.append(f"ServiceMonitor: port {endpoint.get('port')!r} is not a port "
                                f"of the Service ({sorted(service_ports)})")
    for port in service["spec"]["ports"]:
        names_declared(port.get("targetPort", port["port"]), f"Service port {port.get('name')}")
    for probe_name in ("readinessProbe", "livenessProbe", "startupProbe"):
        probe = container.get(probe_name)
        if probe is None:
            continue
        for handler in ("httpGet", "tcpSocket", "grpc"):
            if handler in probe:
                names_declared(probe[handler]["port"], f"{probe_name}.{handler}")
    config = kinds["ConfigMap"][0]["data"]["dagd.toml"]
    for key, name in (("listen", "grpc"), ("metrics-listen", "metrics")):
        if toml_port(config, key) != declared.get(name):
            problems.append(f"dagd.toml: {key} port {toml_port(config, key)} is not the "
                            f"container's {name} port {declared.get(name)}")
    return problems


def violations(doc, schema_file):
    with open(os.path.join(ARGS.schemas, schema_file)) as f:
        schema = json.load(f)
    warnings.simplefilter("ignore", DeprecationWarning)
    validator = jsonschema.validators.validator_for(schema)(schema)
    return ["/".join(str(p) for p in e.absolute_path) + ": " + e.message[:200]
            for e in validator.iter_errors(doc)]


class ManifestsTest(unittest.TestCase):
    def test_every_schema_is_there(self):
        for kind, schema_file in SCHEMAS.items():
            self.assertTrue(os.path.isfile(os.path.join(ARGS.schemas, schema_file)),
                            f"{kind}: no {schema_file} in {ARGS.schemas}")

    def test_every_manifest_is_valid_under_its_schema(self):
        docs = load_manifests()
        self.assertGreaterEqual(len(docs), 8)
        self.assertEqual({doc["kind"] for _, doc in docs}, set(SCHEMAS),
                         "one manifest of every kind (ServiceMonitor included)")
        for name, doc in docs:
            kind = doc.get("kind")
            self.assertIn(kind, SCHEMAS, f"{name}: no schema for kind {kind}")
            if kind == "ClusterRoleBinding":  # checked as the RoleBinding it is shaped like
                doc = dict(doc, kind="RoleBinding")
            self.assertEqual(violations(doc, SCHEMAS[kind]), [], name)

    def test_a_broken_manifest_is_caught(self):
        # The check itself can fail: a typo'd field of a container.
        for name, doc in load_manifests():
            if doc["kind"] == "StatefulSet":
                doc["spec"]["template"]["spec"]["containers"][0]["imagee"] = "typo"
                self.assertTrue(violations(doc, SCHEMAS["StatefulSet"]))

    def test_a_broken_servicemonitor_is_caught(self):
        monitor = by_kind(load_manifests())["ServiceMonitor"][0]
        self.assertEqual(violations(monitor, SCHEMAS["ServiceMonitor"]), [])
        # (the schema closes spec but not an endpoint: test_the_ports_fit pins the endpoint)
        broken = copy.deepcopy(monitor)
        broken["spec"]["endpoint"] = broken["spec"].pop("endpoints")
        self.assertTrue(violations(broken, SCHEMAS["ServiceMonitor"]))
        broken = copy.deepcopy(monitor)
        broken["spec"]["endpoints"][0]["interval"] = "15 seconds"
        self.assertTrue(violations(broken, SCHEMAS["ServiceMonitor"]))

    def test_the_pieces_fit(self):
        kinds = by_kind(load_manifests())
        names = lambda kind: {d["metadata"]["name"] for d in kinds.get(kind, [])}
        pod = kinds["StatefulSet"][0]["spec"]["template"]["spec"]
        self.assertIn(pod["serviceAccountName"], names("ServiceAccount"))
        for volume in pod.get("volumes", []):
            if "configMap" in volume:
                self.assertIn(volume["configMap"]["name"], names("ConfigMap"))
        binding = kinds["RoleBinding"][0]
        self.assertIn(binding["roleRef"]["name"], names("Role"))
        self.assertIn(binding["subjects"][0]["name"], names("ServiceAccount"))
        delegator = kinds["ClusterRoleBinding"][0]
        self.assertIn(delegator["subjects"][0]["name"], names("ServiceAccount"))
        self.assertNotIn("namespace", delegator["metadata"])
        config = kinds["ConfigMap"][0]["data"]["dagd.toml"]
        self.assertIn("kube-in-cluster = true", config)
        self.assertIn('data-dir = "/var/lib/dagd"', config)
        mounts = {m["mountPath"] for m in pod["containers"][0]["volumeMounts"]}
        self.assertIn("/var/lib/dagd", mounts)

    def test_the_ports_fit(self):
        kinds = by_kind(load_manifests())
        self.assertEqual(port_problems(kinds), [])
        monitor = kinds["ServiceMonitor"][0]["spec"]
        self.assertEqual(monitor["endpoints"],
                         [{"port": "metrics", "path": "/metrics", "interval": "15s",
                           "scheme": "https",
                           "tlsConfig": {"serverName": "dagd.dagd.svc",
                                         "ca": {"secret": {"name": "dagd-tls",
                                                           "key": "ca.crt"}}}}])
        container = kinds["StatefulSet"][0]["spec"]["template"]["spec"]["containers"][0]
        # dagd serves TLS beyond loopback: the probes speak HTTPS.
        self.assertEqual(container["readinessProbe"]["httpGet"],
                         {"path": "/readyz", "port": "metrics", "scheme": "HTTPS"})
        self.assertEqual(container["livenessProbe"]["httpGet"],
                         {"path": "/healthz", "port": "metrics", "scheme": "HTTPS"})
        # on every interface: the kubelet's probes and Prometheus come from outside the pod
        self.assertIn('metrics-listen = "0.0.0.0:7234"',
                      kinds["ConfigMap"][0]["data"]["dagd.toml"])

    def test_a_port_that_is_not_there_is_caught(self):
        # The check itself can fail, once for each kind of reference it follows.
        def broken(change):
            kinds = copy.deepcopy(by_kind(load_manifests()))
            change(kinds)
            return port_problems(kinds)
        container = lambda k: k["StatefulSet"][0]["spec"]["template"]["spec"]["containers"][0]
        cases = {
            "monitor port": lambda k: k["ServiceMonitor"][0]["spec"]["endpoints"][0].update(
                port="metric"),
            "monitor selector": lambda k: k["ServiceMonitor"][0]["spec"]["selector"].update(
                matchLabels={"app.kubernetes.io/name": "dag"}),
            "monitor namespace": lambda k: k["ServiceMonitor"][0]["metadata"].update(
                namespace="monitoring"),
            "service labels": lambda k: k["Service"][0]["metadata"].update(labels={}),
            "service port gone": lambda k: k["Service"][0]["spec"].update(
                ports=k["Service"][0]["spec"]["ports"][:1]),
            "target port": lambda k: k["Service"][0]["spec"]["ports"][-1].update(
                targetPort="metricz"),
            "readiness port": lambda k: container(k)["readinessProbe"]["httpGet"].update(
                port="http"),
            "liveness port number": lambda k: container(k)["livenessProbe"]["httpGet"].update(
                port=8080),
            "container port gone": lambda k: container(k).update(
                ports=container(k)["ports"][:1]),
            "toml port": lambda k: k["ConfigMap"][0]["data"].update(
                {"dagd.toml": k["ConfigMap"][0]["data"]["dagd.toml"].replace(":7234", ":9090")}),
        }
        for name, change in cases.items():
            self.assertTrue(broken(change), f"{name}: not caught")

    def test_dagd_listens_beyond_loopback_only_with_tls_and_authentication(self):
        kinds = by_kind(load_manifests())
        data = kinds["ConfigMap"][0]["data"]
        config = data["dagd.toml"]
        for key in ("tls-cert-file", "tls-key-file", "auth-policy"):
            self.assertRegex(config, rf'(?m)^{key} = "/', key)
        self.assertIn("auth-tokenreview = true", config)
        self.assertNotIn("insecure-remote", config)
        policy_path = re.search(r'(?m)^auth-policy = "([^"]+)"', config).group(1)
        self.assertEqual(policy_path, "/etc/dagd/policy.yaml")
        policy = yaml.safe_load(data["policy.yaml"])
        for binding in policy["bindings"]:
            self.assertIn(binding["role"], ("viewer", "operator", "admin"))
        pod = kinds["StatefulSet"][0]["spec"]["template"]["spec"]
        secret_volumes = {v["name"]: v["secret"]["secretName"] for v in pod["volumes"]
                          if "secret" in v}
        mounts = {m["name"]: m["mountPath"] for m in pod["containers"][0]["volumeMounts"]}
        self.assertEqual(secret_volumes, {"tls": "dagd-tls"})
        tls_dir = re.search(r'(?m)^tls-cert-file = "(.*)/tls.crt"', config).group(1)
        self.assertEqual(mounts["tls"], tls_dir)

    def test_the_cluster_role_binding_grants_only_token_reviews(self):
        # system:auth-delegator: create tokenreviews (and subjectaccessreviews), nothing else.
        bindings = by_kind(load_manifests())["ClusterRoleBinding"]
        self.assertEqual(len(bindings), 1)
        self.assertEqual(bindings[0]["roleRef"],
                         {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                          "name": "system:auth-delegator"})

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
