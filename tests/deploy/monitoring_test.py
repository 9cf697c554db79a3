#!/usr/bin/python3
"""deploy/monitoring/: Prometheus accepts the scrape configuration and the alerting rules
(`promtool check config`, `promtool check rules`), the alerts' unit tests pass
(`promtool test rules`) and cover every alert both firing and quiet, the Grafana dashboard is
well-formed, and every metric that a dashboard query or an alert names is one of
docs/metrics.md (histograms with their _bucket, _sum, _count series), grouped and matched by
labels that metric has. Each check is also shown to fail: a made-up metric name, a broken rules
file, an alert that no longer fires.

promtool comes with Debian's `prometheus` package (scripts/debian-packages.txt); without it the
test fails, it does not skip.

Usage: monitoring_test.py --monitoring DIR --metrics-doc FILE   (CTest: deploy_monitoring)"""
import argparse
import copy
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

import yaml

ARGS = None

ALERTS = {"DagdDown", "DagdRunsFailing", "DagdNodeStuckPastDeadline", "DagdStorageErrors",
          "DagdNotReady"}

# Series Prometheus itself adds to every target; the alerts may use them, the dashboard not.
SCRAPE_SERIES = {"up": set()}
# Labels Prometheus attaches to every scraped series.
TARGET_LABELS = {"job", "instance"}

PROMQL_FUNCTIONS = {
    # aggregations
    "sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values",
    "bottomk", "topk", "quantile",
    # functions (Prometheus 2.42)
    "abs", "absent", "absent_over_time", "ceil", "changes", "clamp", "clamp_max", "clamp_min",
    "day_of_month", "day_of_week", "day_of_year", "days_in_month", "delta", "deriv", "exp",
    "floor", "histogram_count", "histogram_sum", "histogram_fraction", "histogram_quantile",
    "holt_winters", "hour", "idelta", "increase", "irate", "label_join", "label_replace", "ln",
    "log2", "log10", "minute", "month", "predict_linear", "rate", "resets", "round", "scalar",
    "sgn", "sort", "sort_desc", "sqrt", "time", "timestamp", "vector", "year",
    "avg_over_time", "min_over_time", "max_over_time", "sum_over_time", "count_over_time",
    "quantile_over_time", "stddev_over_time", "stdvar_over_time", "last_over_time",
    "present_over_time", "acos", "acosh", "asin", "asinh", "atan", "atanh", "cos", "cosh",
    "sin", "sinh", "tan", "tanh", "deg", "pi", "rad", "start", "end",
}
PROMQL_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool",
                   "and", "or", "unless", "atan2", "offset", "inf", "nan"}


def documented_metrics(path):
    """{name: (type, {labels})} from the rows of docs/metrics.md's `| name | type | labels |`
    table."""
    metrics = {}
    in_table = False
    with open(path) as f:
        for line in f:
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if not line.startswith("|"):
                in_table = False
            elif cells[:3] == ["name", "type", "labels"]:
                in_table = True
            elif in_table and not set(cells[0]) <= set("-: "):
                name = cells[0].strip("`")
                labels = {l.strip().strip("`") for l in cells[2].split(",") if l.strip()}
                metrics[name] = (cells[1], labels)
    return metrics


def series_names(metrics):
    """{series name: family name}: a histogram's family is exposed as _bucket, _sum, _count."""
    names = {}
    for name, (kind, _) in metrics.items():
        names[name] = name
        if kind == "histogram":
            for suffix in ("_bucket", "_sum", "_count"):
                names[name + suffix] = name
    return names


def grafana_to_promql(expr):
    """Grafana's variables replaced by something PromQL parses: intervals by 5m, the others
    (which sit in label matchers) by a plain value."""
    expr = re.sub(r"\$\{?__(rate_interval|interval|range)\}?", "5m", expr)
    return re.sub(r"\$\{?\w+\}?", "dagd", expr)


def parse_promql(expr):
    """What a PromQL expression names: ({metric: {matcher labels}}, {grouping labels},
    {functions}). A small scanner, not a parser: enough for the expressions of dashboards and
    alerts."""
    e = grafana_to_promql(expr)
    e = re.sub(r"#[^\n]*", " ", e)
    e = re.sub(r'"(\\.|[^"\\])*"|\'(\\.|[^\'\\])*\'|`[^`]*`', '""', e)
    metrics = {}
    grouping = set()

    def selector(m):
        labels = set(re.findall(r"([A-Za-z_]\w*)\s*(?:=~|!~|!=|=)", m.group(2)))
        if m.group(1):
            metrics.setdefault(m.group(1), set()).update(labels)
        else:
            metrics.setdefault("", set()).update(labels)  # {__name__=...}: no name to check
        return " __selector__ "

    e = re.sub(r"([A-Za-z_:][\w:]*)?\s*\{([^}]*)\}", selector, e)

    def group(m):
        grouping.update(l.strip() for l in m.group(2).split(",") if l.strip())
        return " "

    e = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)", group, e)
    e = re.sub(r"\[[^\]]*\]", " ", e)
    e = re.sub(r"(?<![\w:.])[0-9.][\w.]*", " ", e)
    functions = set()
    for m in re.finditer(r"([A-Za-z_:][\w:]*)(\s*\()?", e):
        word, call = m.group(1), m.group(2)
        if word == "__selector__" or word.lower() in PROMQL_KEYWORDS:
            continue
        if call:
            functions.add(word)
        else:
            metrics.setdefault(word, set())
    metrics.pop("", None)
    return metrics, grouping, functions


def expr_problems(expr, documented, extra_series=None):
    """Why expr does not fit docs/metrics.md: an unknown metric, a label its metric does not
    have, an unknown function, no metric at all. [] when it fits."""
    extra_series = extra_series or {}
    known = series_names(documented)
    all_labels = set().union(*(labels for _, labels in documented.values()),
                             *extra_series.values()) | TARGET_LABELS | {"le"}
    problems = []
    metrics, grouping, functions = parse_promql(expr)
    if not metrics:
        problems.append(f"names no metric: {expr}")
    for name, labels in metrics.items():
        if name in extra_series:
            has = extra_series[name] | TARGET_LABELS
        elif name in known:
            family = known[name]
            has = documented[family][1] | TARGET_LABELS | ({"le"} if name.endswith("_bucket")
                                                           and name != family else set())
        else:
            problems.append(f"{name}: not a metric of docs/metrics.md: {expr}")
            continue
        for label in sorted(labels - has):
            problems.append(f"{name}: has no label {label}: {expr}")
    for label in sorted(grouping - all_labels):
        problems.append(f"by/on ({label}): no metric has that label: {expr}")
    for function in sorted(functions - PROMQL_FUNCTIONS):
        problems.append(f"{function}(): not a PromQL function: {expr}")
    return problems


def walk_panels(panels):
    for panel in panels:
        yield panel
        yield from walk_panels(panel.get("panels", []))


def dashboard_exprs(dashboard):
    """(where, expr, legend) of every query of every panel."""
    for panel in walk_panels(dashboard.get("panels", [])):
        for target in panel.get("targets", []):
            if "expr" in target:
                yield (f"panel {panel.get('id')} {panel.get('title')!r} "
                       f"{target.get('refId')}", target["expr"], target.get("legendFormat", ""))


def dashboard_problems(dashboard, documented):
    all_labels = set().union(*(labels for _, labels in documented.values())) | TARGET_LABELS
    problems = []
    for where, expr, legend in dashboard_exprs(dashboard):
        problems += [f"{where}: {p}" for p in expr_problems(expr, documented)]
        for label in sorted(set(re.findall(r"\{\{\s*(\w+)\s*\}\}", legend)) - all_labels):
            problems.append(f"{where}: legend names label {label}, which no metric has")
    for var in dashboard.get("templating", {}).get("list", []):
        if var.get("type") != "query":
            continue
        query = var["query"]["query"] if isinstance(var["query"], dict) else var["query"]
        m = re.fullmatch(r"\s*label_values\((.*),\s*(\w+)\)\s*", query)
        if m:
            query = f"sum by ({m.group(2)}) ({m.group(1)})"
        problems += [f"variable {var['name']}: {p}" for p in expr_problems(query, documented)]
    return problems


def rules_problems(rules, documented):
    problems = []
    for group in rules["groups"]:
        for rule in group["rules"]:
            name = rule.get("alert") or rule.get("record")
            problems += [f"{name}: {p}"
                         for p in expr_problems(rule["expr"], documented, SCRAPE_SERIES)]
            all_labels = set().union(*(labels for _, labels in documented.values())) | \
                TARGET_LABELS
            for text in rule.get("annotations", {}).values():
                for label in sorted(set(re.findall(r"\$labels\.(\w+)", text)) - all_labels):
                    problems.append(f"{name}: an annotation names label {label}, which no "
                                    "metric has")
    return problems


def path(name):
    return os.path.join(ARGS.monitoring, name)


def load_yaml(name, directory=None):
    with open(os.path.join(directory or ARGS.monitoring, name)) as f:
        return yaml.safe_load(f)


def load_dashboard():
    with open(path("grafana-dashboard.json")) as f:
        return json.load(f)


class MonitoringTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.promtool = shutil.which("promtool")
        if cls.promtool is None:
            raise AssertionError("promtool is not on PATH: install Debian's prometheus "
                                 "(scripts/setup.sh, scripts/debian-packages.txt)")
        cls.documented = documented_metrics(ARGS.metrics_doc)
        cls.dir = tempfile.mkdtemp(prefix="deploy-monitoring-")

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dir, ignore_errors=True)

    def promtool_run(self, *args, cwd=None):
        p = subprocess.run([self.promtool, *args], capture_output=True, text=True, timeout=60,
                           cwd=cwd)
        return p.returncode, p.stdout + p.stderr

    def copy_of_monitoring(self, name):
        d = os.path.join(self.dir, name)
        shutil.copytree(ARGS.monitoring, d)
        return d

    def edit(self, file, old, new):
        with open(file) as f:
            text = f.read()
        self.assertIn(old, text, f"{file}: the edit that breaks it no longer applies")
        with open(file, "w") as f:
            f.write(text.replace(old, new))

    # docs/metrics.md, the contract

    def test_the_metrics_doc_is_read(self):
        doc = self.documented
        self.assertGreaterEqual(len(doc), 20, sorted(doc))
        self.assertEqual(doc["dagd_runs_finished_total"], ("counter", {"workflow", "phase"}))
        self.assertEqual(doc["dagd_storage_commit_duration_seconds"], ("histogram", set()))
        self.assertIn("process_start_time_seconds", doc)
        # the label table and the endpoint table are not metrics
        self.assertNotIn("workflow", doc)
        self.assertNotIn("/metrics", doc)
        for name, (kind, _) in doc.items():
            self.assertRegex(name, r"^[a-z_:][a-z0-9_:]*$")
            self.assertIn(kind, {"counter", "gauge", "histogram"}, name)

    # prometheus.yml

    def test_promtool_accepts_the_scrape_config_and_its_rule_file(self):
        code, out = self.promtool_run("check", "config", path("prometheus.yml"))
        self.assertEqual(code, 0, out)
        self.assertIn("dagd-alerts.yml", out)  # it followed rule_files
        self.assertIn("SUCCESS: 5 rules found", out)

    def test_the_scrape_config_scrapes_dagd(self):
        config = load_yaml("prometheus.yml")
        self.assertEqual(config["rule_files"], ["dagd-alerts.yml"])
        jobs = {job["job_name"]: job for job in config["scrape_configs"]}
        dagd = jobs["dagd"]
        self.assertEqual(dagd.get("scrape_interval", config["global"]["scrape_interval"]), "15s")
        self.assertEqual(dagd.get("metrics_path", "/metrics"), "/metrics")
        self.assertEqual([t for c in dagd["static_configs"] for t in c["targets"]],
                         ["127.0.0.1:7234"])

    def test_a_missing_rule_file_fails_check_config(self):
        d = self.copy_of_monitoring("no-rules")
        os.remove(os.path.join(d, "dagd-alerts.yml"))
        code, out = self.promtool_run("check", "config", os.path.join(d, "prometheus.yml"))
        self.assertNotEqual(code, 0, out)

    # dagd-alerts.yml

    def test_promtool_accepts_the_rules(self):
        code, out = self.promtool_run("check", "rules", path("dagd-alerts.yml"))
        self.assertEqual(code, 0, out)
        self.assertIn("SUCCESS: 5 rules found", out)

    def test_every_alert_is_there_with_a_runbook(self):
        rules = [r for g in load_yaml("dagd-alerts.yml")["groups"] for r in g["rules"]]
        self.assertEqual({r.get("alert") for r in rules}, ALERTS)
        for rule in rules:
            self.assertIn("for", rule, rule["alert"])
            self.assertIn(rule["labels"]["severity"], {"warning", "critical"}, rule["alert"])
            self.assertTrue(rule["annotations"].get("summary"), rule["alert"])
            self.assertRegex(rule["annotations"].get("description", ""), r"\bCheck\b",
                             f"{rule['alert']}: the description says what to check")

    def test_a_broken_rules_file_is_rejected(self):
        d = self.copy_of_monitoring("broken-rules")
        rules = os.path.join(d, "dagd-alerts.yml")
        self.edit(rules, 'expr: dagd_ready{job="dagd"} == 0', 'expr: (dagd_ready{job="dagd"} == 0')
        code, out = self.promtool_run("check", "rules", rules)
        self.assertNotEqual(code, 0, out)
        code, out = self.promtool_run("check", "config", os.path.join(d, "prometheus.yml"))
        self.assertNotEqual(code, 0, out)

    def test_a_rules_file_that_is_no_yaml_is_rejected(self):
        d = self.copy_of_monitoring("not-yaml")
        rules = os.path.join(d, "dagd-alerts.yml")
        self.edit(rules, "      - alert: DagdNotReady", "      - alert: [DagdNotReady")
        code, out = self.promtool_run("check", "rules", rules)
        self.assertNotEqual(code, 0, out)

    # dagd-alerts.test.yml

    def test_the_alerts_pass_their_unit_tests(self):
        code, out = self.promtool_run("test", "rules", path("dagd-alerts.test.yml"))
        self.assertEqual(code, 0, out)
        self.assertIn("SUCCESS", out)

    def test_every_alert_is_tested_firing_and_quiet(self):
        tests = load_yaml("dagd-alerts.test.yml")
        self.assertEqual(tests["rule_files"], ["dagd-alerts.yml"])
        firing, quiet = set(), set()
        for case in tests["tests"]:
            for check in case.get("alert_rule_test", []):
                (firing if check.get("exp_alerts") else quiet).add(check["alertname"])
        self.assertEqual(firing, ALERTS, "alerts with no test that they fire")
        self.assertEqual(quiet, ALERTS, "alerts with no test that they stay quiet")

    def test_an_alert_that_changed_fails_its_unit_tests(self):
        # Each edit makes one alert fire too late, too early or never: promtool must notice.
        edits = [
            ("> 0.2\n", "> 0.5\n"),                          # DagdRunsFailing: 33% passes
            ("dagd_nodes_past_deadline{job=\"dagd\"} > 0",
             "dagd_nodes_past_deadline{job=\"dagd\"} > 2"),   # never fires on 2
            (" or absent(up{job=\"dagd\"})", ""),             # no target: silence
            ("        for: 3m\n", "        for: 1m\n"),       # DagdDown fires early
        ]
        for i, (old, new) in enumerate(edits):
            d = self.copy_of_monitoring(f"changed-{i}")
            self.edit(os.path.join(d, "dagd-alerts.yml"), old, new)
            code, out = self.promtool_run("check", "rules", os.path.join(d, "dagd-alerts.yml"))
            self.assertEqual(code, 0, f"{old!r}: the edit must still be a valid rule\n{out}")
            code, out = self.promtool_run("test", "rules",
                                          os.path.join(d, "dagd-alerts.test.yml"))
            self.assertNotEqual(code, 0, f"{old!r} -> {new!r}: the unit tests still pass")

    def test_every_metric_of_the_alerts_is_documented(self):
        rules = load_yaml("dagd-alerts.yml")
        self.assertEqual(rules_problems(rules, self.documented), [])

    def test_an_alert_on_a_made_up_metric_is_caught(self):
        rules = load_yaml("dagd-alerts.yml")
        broken = copy.deepcopy(rules)
        broken["groups"][0]["rules"][-1]["expr"] = 'dagd_is_ready{job="dagd"} == 0'
        self.assertTrue(rules_problems(broken, self.documented))
        broken = copy.deepcopy(rules)
        broken["groups"][0]["rules"][-1]["annotations"]["summary"] = "{{ $labels.node }}"
        self.assertTrue(rules_problems(broken, self.documented))

    # grafana-dashboard.json

    def test_the_dashboard_is_well_formed(self):
        dashboard = load_dashboard()
        self.assertGreaterEqual(dashboard["schemaVersion"], 36)
        self.assertTrue(dashboard["title"])
        panels = list(walk_panels(dashboard["panels"]))
        ids = [p["id"] for p in panels]
        self.assertEqual(len(ids), len(set(ids)), f"duplicate panel ids: {sorted(ids)}")
        self.assertGreaterEqual(len(panels), 20)
        variables = {v["name"]: v for v in dashboard["templating"]["list"]}
        self.assertEqual((variables["DS_PROMETHEUS"]["type"], variables["DS_PROMETHEUS"]["query"]),
                         ("datasource", "prometheus"))
        for panel in panels:
            self.assertIn("gridPos", panel, panel["title"])
            if panel["type"] == "row":
                continue
            self.assertTrue(panel.get("targets"), f"{panel['title']}: no query")
            for source in [panel["datasource"]] + [t["datasource"] for t in panel["targets"]]:
                self.assertEqual(source, {"type": "prometheus", "uid": "${DS_PROMETHEUS}"},
                                 panel["title"])
            self.assertEqual(len({t["refId"] for t in panel["targets"]}), len(panel["targets"]),
                             f"{panel['title']}: duplicate refIds")

    def test_every_metric_of_the_dashboard_is_documented(self):
        self.assertEqual(dashboard_problems(load_dashboard(), self.documented), [])

    def test_the_dashboard_shows_every_documented_metric(self):
        shown = set()
        known = series_names(self.documented)
        for _, expr, _ in dashboard_exprs(load_dashboard()):
            shown |= {known.get(m) for m in parse_promql(expr)[0]}
        self.assertEqual(set(self.documented) - shown, set(),
                         "metrics of docs/metrics.md no panel shows")

    def test_the_dashboard_queries_are_promql(self):
        # promtool parses each query (Grafana's variables replaced) as a recording rule.
        exprs = [grafana_to_promql(e) for _, e, _ in dashboard_exprs(load_dashboard())]
        self.assertGreaterEqual(len(exprs), 20)
        rules = os.path.join(self.dir, "dashboard-rules.yml")

        def check(exprs):
            with open(rules, "w") as f:
                yaml.safe_dump({"groups": [{"name": "dashboard", "rules": [
                    {"record": f"dashboard:query{i}", "expr": e}
                    for i, e in enumerate(exprs)]}]}, f)
            return self.promtool_run("check", "rules", rules)

        code, out = check(exprs)
        self.assertEqual(code, 0, out)
        code, out = check(exprs + ["sum by (phase (rate(dagd_runs_finished_total[5m]))"])
        self.assertNotEqual(code, 0, "promtool accepted a broken query")

    def test_a_panel_on_a_made_up_metric_is_caught(self):
        dashboard = load_dashboard()
        panel = next(p for p in walk_panels(dashboard["panels"]) if p.get("targets"))
        panel["targets"][0]["expr"] = "sum(rate(dagd_runs_totl[$__rate_interval]))"
        problems = dashboard_problems(dashboard, self.documented)
        self.assertEqual(len(problems), 1, problems)
        self.assertIn("dagd_runs_totl", problems[0])

    def test_the_checker_catches_what_does_not_fit(self):
        doc = self.documented
        fits = [
            "histogram_quantile(0.95, sum by (le, runner) "
            "(rate(dagd_node_attempt_duration_seconds_bucket{runner=\"local\"}[5m])))",
            "sum(rate(dagd_grpc_request_duration_seconds_sum[5m])) / "
            "sum(rate(dagd_grpc_request_duration_seconds_count[5m]))",
            "sum without (instance) (dagd_runs_active offset 1h)",
            'dagd_build_info{job=~"$job", version!=""}',
        ]
        for expr in fits:
            self.assertEqual(expr_problems(expr, doc), [], expr)
        self.assertEqual(expr_problems('up{job="dagd"} == 0', doc, SCRAPE_SERIES), [])
        does_not_fit = {
            "sum(rate(dagd_runs_totl[5m]))": "dagd_runs_totl",       # made-up name
            "dagd_runs_active_bucket": "dagd_runs_active_bucket",    # a gauge has no buckets
            "dagd_ready_queue_depth_total": "dagd_ready_queue_depth_total",
            'dagd_runs_active{workflow="x"}': "no label workflow",  # label it does not have
            "sum by (node) (dagd_nodes_running)": "(node)",          # a label no metric has
            "histogram_quantil(0.5, sum by (le) "
            "(rate(dagd_storage_commit_duration_seconds_bucket[5m])))": "histogram_quantil",
            "vector(1)": "names no metric",
            'up{job="dagd"} == 0': "up",                            # only the alerts may
        }
        for expr, why in does_not_fit.items():
            problems = expr_problems(expr, doc)
            self.assertTrue(any(why in p for p in problems), f"{expr}: {problems}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--monitoring", required=True, help="deploy/monitoring")
    parser.add_argument("--metrics-doc", required=True, help="docs/metrics.md")
    ARGS, rest = parser.parse_known_args()
    ARGS.monitoring = os.path.abspath(ARGS.monitoring)
    unittest.main(argv=[sys.argv[0]] + rest)
