#!/usr/bin/python3
"""Argo's own examples on dagd (issue 6): every row of ../shared/conformance/expected.tsv is
submitted to the real dagd through the real dagctl, watched to its end, and its phase compared
with the phase Argo gives it. Prints one line per row and a summary line:

  conformance: P/N pass, F fail, U unsupported (reason n, ...)

A row is "unsupported" only when dagd itself says so (an UNIMPLEMENTED answer or a message that
a feature is not supported yet) or when it needs what cannot run here (a Kubernetes cluster);
the reason is named, never a silent skip. Anything else that differs from Argo is a failure.

Checked per row: the workflow phase (any of the possible ones for rows whose outcome is random)
and, for workflows that declare exit handlers, that a NAME.onExit / NAME.hooks.X node ran. The
other node expectations of expected.tsv are prose and are not checked yet.

The suite is a ratchet: --baseline names the rows that passed when it was last raised. The test
fails if any of them no longer passes; rows that pass and are not in the baseline are listed so
that it can be raised (--update-baseline writes it).

Usage: conformance.py --dagd BIN --dagctl BIN --conformance DIR --baseline FILE
                      [--update-baseline] [--only SUBSTRING] [--jobs N]
"""
import argparse
import concurrent.futures
import datetime
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import yaml

# synchronization-mutex-tmpl-level.yaml runs five 50 s attempts one after the other.
ROW_TIMEOUT_S = 330

# Rows that take minutes by design; they start first, so the others run beside them.
SLOW_ROWS = ["argo-examples/synchronization-mutex-tmpl-level.yaml"]

# The ConfigMap that sizes the semaphores Argo's examples name, as their comments give it; stored
# in dagd (dagctl apply) before any run.
SEMAPHORE_CONFIG_MAP = os.path.join(os.path.dirname(os.path.abspath(__file__)), "my-config.yaml")

# What a row's `requires` column names that cannot run on this machine at all.
NEEDS_A_CLUSTER = [
    ("volumeClaimTemplates", "needs a Kubernetes cluster (PVC)"),
    ("PVC", "needs a Kubernetes cluster (PVC)"),
    ("resourceClaims", "needs a Kubernetes cluster (resource claims)"),
]


class Dagd:
    """The real dagd on loopback with a temporary data directory."""

    def __init__(self, binary, work):
        self.data = os.path.join(work, "data")
        os.makedirs(self.data)
        port_file = os.path.join(self.data, "port")
        self.log = open(os.path.join(work, "dagd.log"), "w")
        # Debian installs cowsay (which some examples' images run) in /usr/games, on a login
        # shell's PATH but not necessarily on the one this test inherits.
        env = dict(os.environ)
        env["PATH"] = env.get("PATH", "/usr/bin:/bin") + ":/usr/games"
        self.process = subprocess.Popen(
            [binary, "--listen", "127.0.0.1:0", "--data-dir", self.data, "--port-file",
             port_file, "--metrics-listen", "", "--grace-period-ms", "1000",
             # Pods of their own, as Argo's examples assume (parallel pods writing /tmp/even);
             # dagd refuses to start if this host cannot give them.
             "--pod-filesystem", "overlay"],
            stdout=self.log, stderr=self.log, env=env)
        deadline = time.time() + 30
        while time.time() < deadline:
            if os.path.exists(port_file) and open(port_file).read().endswith("\n"):
                self.address = "127.0.0.1:" + open(port_file).read().strip()
                return
            if self.process.poll() is not None:
                raise RuntimeError("dagd exited during start-up; see " + self.log.name)
            time.sleep(0.05)
        raise RuntimeError("dagd did not start within 30 s")

    def stop(self):
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()


def read_rows(conformance_dir):
    rows = []
    with open(os.path.join(conformance_dir, "expected.tsv")) as f:
        lines = [line.rstrip("\n") for line in f if not line.startswith("#")]
    header = lines[0].split("\t")
    for line in lines[1:]:
        if not line.strip():
            continue
        cells = line.split("\t") + [""] * len(header)
        rows.append(dict(zip(header, cells)))
    return rows


def accepted_phases(expected):
    """The phases that match the expected_phase column, or None if the row is not a plain run
    (suspend/resume, templates to register, unknown)."""
    text = expected.strip()
    if text in ("Succeeded", "Failed", "Error"):
        return {text}
    if text.startswith("Succeeded (probabilistic") or text.startswith("random"):
        return {"Succeeded", "Failed"}
    if text == "Succeeded (disputed)":
        return {"Succeeded"}
    return None


def phase_name(value):
    """dagctl's JSON phase ("PHASE_SUCCEEDED") as Argo spells it ("Succeeded")."""
    return (value or "").replace("PHASE_", "").capitalize()


def dagctl(args, binary, address, timeout=60):
    result = subprocess.run([binary, "--server", address] + args, capture_output=True, text=True,
                            timeout=timeout)
    return result.returncode, result.stdout, result.stderr


# dagd's own words for a feature it does not have yet.
UNSUPPORTED_PATTERNS = [
    re.compile(r"UNIMPLEMENTED: (.*)"),
    re.compile(r"([^:;\n]*\b(?:is |are )?not supported\b[^;\n]*)"),
    re.compile(r"([^:;\n]*\barrives? in a later issue\b[^;\n]*)"),
]


def unsupported_reason(text):
    for pattern in UNSUPPORTED_PATTERNS:
        m = pattern.search(text)
        if m:
            reason = m.group(1).strip()
            # Names vary by task; keep the feature: "steps templates are not supported yet".
            reason = re.sub(r'"[^"]*"', '"…"', reason)
            return reason[:90]
    return None


def exit_handlers(path):
    """Whether the workflow declares exit handlers (spec.onExit, a task's or step's onExit or
    hooks): Argo then shows a node named NAME.onExit or NAME.hooks.X, which the run must have."""
    with open(path) as f:
        docs = [d for d in yaml.safe_load_all(f) if isinstance(d, dict)]
    for doc in docs:
        spec = doc.get("spec") or {}
        if spec.get("onExit") or spec.get("hooks"):
            return True
        for template in spec.get("templates") or []:
            tasks = list((template.get("dag") or {}).get("tasks") or [])
            for group in template.get("steps") or []:
                tasks.extend(group if isinstance(group, list) else [group])
            if any(isinstance(t, dict) and (t.get("onExit") or t.get("hooks")) for t in tasks):
                return True
    return False


TEMPLATE_LIBRARY = "n/a (template)"
VIA_WORKFLOW_TEMPLATE_REF = "Succeeded when submitted via workflowTemplateRef"


def register_templates(rows, args, address):
    """Applies the rows that are WorkflowTemplate libraries before any run refers to them, in
    file order, retrying once in case one refers to a later one: {file: (status, detail)}. Such
    a row passes when dagd stores every document of it."""
    results = {}
    pending = [r for r in rows if r["expected_phase"].startswith(TEMPLATE_LIBRARY)]
    for _ in range(2):
        for row in pending:
            path = os.path.join(args.conformance, row["file"])
            code, out, err = dagctl(["apply", "-f", path], args.dagctl, address)
            if code == 0:
                results[row["file"]] = ("pass", "stored: " + "; ".join(out.strip().splitlines()))
            else:
                reason = unsupported_reason(err + out)
                results[row["file"]] = ("unsupported", reason) if reason else (
                    "fail", "apply refused: " + (err or out).strip().splitlines()[-1][:200])
        pending = [r for r in pending if results[r["file"]][0] != "pass"]
    return results


def workflow_template_ref_run(path, work):
    """Applies the WorkflowTemplate in `path` and writes a Workflow that runs it through
    spec.workflowTemplateRef, as Argo's `argo submit --from workflowtemplate/NAME` does; returns
    the Workflow's path, or raises with dagctl's message."""
    with open(path) as f:
        name = yaml.safe_load(f)["metadata"]["name"]
    workflow = {"apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow",
                "metadata": {"generateName": name + "-"},
                "spec": {"workflowTemplateRef": {"name": name}}}
    out_path = os.path.join(work, name + "-via-ref.yaml")
    with open(out_path, "w") as f:
        yaml.safe_dump(workflow, f)
    return out_path


AFTER_RESUME = "Succeeded after "


def suspend_templates(path):
    """{template name: its suspend body} of the workflow in `path`."""
    with open(path) as f:
        doc = yaml.safe_load(f)
    return {t["name"]: t.get("suspend") or {} for t in doc["spec"].get("templates") or []
            if "suspend" in t}


def resume_waiting_nodes(run, path, supply, args, address):
    """Plays the operator of a suspend/resume row: every suspended node without a duration gets
    its supplied outputs (when the row says they are supplied) and is resumed, as `argo node
    set` and `argo resume` would. Nodes with a duration resume by themselves."""
    templates = suspend_templates(path)
    for node in run.get("nodes", []):
        if node.get("type") != "NODE_TYPE_SUSPEND" or phase_name(node.get("phase")) != "Running":
            continue
        template = node.get("template_name") or node.get("templateName")
        body = templates.get(template, {})
        if body.get("duration"):
            continue
        if supply:
            with open(path) as f:
                doc = yaml.safe_load(f)
            for t in doc["spec"]["templates"]:
                if t["name"] != template:
                    continue
                for output in (t.get("outputs") or {}).get("parameters") or []:
                    if "supplied" in (output.get("valueFrom") or {}):
                        dagctl(["set", run["id"], node["name"], "--output-parameter",
                                "%s=supplied by the conformance test" % output["name"]],
                               args.dagctl, address)
        dagctl(["resume", run["id"], "--node", node["name"]], args.dagctl, address)


def lock_limits(path):
    """{template name: (lock, limit)} for the templates of `path` with synchronization: a mutex
    admits 1, a semaphore the limit SEMAPHORE_CONFIG_MAP gives it."""
    with open(SEMAPHORE_CONFIG_MAP) as f:
        config_map = yaml.safe_load(f)
    limits = {config_map["metadata"]["name"] + "/" + key: int(value)
              for key, value in config_map["data"].items()}
    with open(path) as f:
        doc = yaml.safe_load(f)
    out = {}
    for t in doc["spec"].get("templates") or []:
        sync = t.get("synchronization") or {}
        for m in sync.get("mutexes") or ([sync["mutex"]] if "mutex" in sync else []):
            out[t["name"]] = ("mutex " + m["name"], 1)
        for s in sync.get("semaphores") or ([sync["semaphore"]] if "semaphore" in sync else []):
            ref = s["configMapKeyRef"]
            name = ref["name"] + "/" + ref["key"]
            out[t["name"]] = ("semaphore " + name, limits[name])
    return out


def lock_overruns(run, path):
    """Messages for every lock of `path`'s templates that more attempts held at once than it
    admits, judged from the attempts' start and finish times."""
    def seconds(stamp):
        return datetime.datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
    problems = []
    for template, (lock, limit) in lock_limits(path).items():
        spans = [(seconds(a["start_time"]), seconds(a["finish_time"]))
                 for n in run.get("nodes", [])
                 if (n.get("template_name") or n.get("templateName")) == template
                 for a in n.get("attempts", []) if a.get("start_time") and a.get("finish_time")]
        events = sorted([(s, 1) for s, _ in spans] + [(f, -1) for _, f in spans],
                        key=lambda e: (e[0], e[1]))
        held = peak = 0
        for _, delta in events:
            held += delta
            peak = max(peak, held)
        if peak > limit:
            problems.append("%s admits %d, %d attempts held it at once" % (lock, limit, peak))
    return problems


def run_row(row, args, address, registered, work):
    """(status, detail): status is pass, fail or unsupported."""
    if row["file"] in registered:
        return registered[row["file"]]
    for needle, reason in NEEDS_A_CLUSTER:
        if needle in row.get("requires", ""):
            return "unsupported", reason
    phases = accepted_phases(row["expected_phase"])
    path = os.path.join(args.conformance, row["file"])
    submit_path = path
    if row["expected_phase"] == VIA_WORKFLOW_TEMPLATE_REF:
        code, out, err = dagctl(["apply", "-f", path], args.dagctl, address)
        if code != 0:
            return "fail", "apply refused: " + (err or out).strip().splitlines()[-1][:200]
        phases = {"Succeeded"}
        submit_path = workflow_template_ref_run(path, work)
    resumes = row["expected_phase"].startswith(AFTER_RESUME)
    if resumes:
        phases = {"Succeeded"}
    if phases is None:
        return "unsupported", "not a plain run: " + row["expected_phase"]
    code, out, err = dagctl(["submit", "-f", submit_path, "-o", "json"], args.dagctl, address)
    if code != 0:
        reason = unsupported_reason(err + out)
        if reason:
            return "unsupported", reason
        return "fail", "submit refused: " + (err or out).strip().splitlines()[-1][:200]
    run_id = json.loads(out)["id"]
    deadline = time.time() + ROW_TIMEOUT_S
    run = None
    while time.time() < deadline:
        code, out, err = dagctl(["runs", "get", run_id, "-o", "json"], args.dagctl, address)
        if code == 0:
            run = json.loads(out)
            if phase_name(run.get("phase")) in ("Succeeded", "Failed", "Error"):
                break
            if resumes:
                resume_waiting_nodes(run, path, "supplied" in row["expected_phase"], args,
                                     address)
        time.sleep(0.2)
    else:
        dagctl(["terminate", run_id], args.dagctl, address)
        return "fail", "did not finish within %d s (run %s)" % (ROW_TIMEOUT_S, run_id)
    phase = phase_name(run.get("phase"))
    names = [n.get("name", "") for n in run.get("nodes", [])]
    if phase in phases and "synchronization" in open(path).read():
        overruns = lock_overruns(run, path)
        if overruns:
            return "fail", "phase %s, but %s (run %s)" % (phase, "; ".join(overruns), run_id)
    if phase in phases and exit_handlers(path) and not any(
            ".onExit" in n or ".hooks." in n for n in names):
        return "fail", "phase %s as in Argo, but no exit handler node ran (run %s)" % (phase, run_id)
    if phase in phases:
        return "pass", phase
    # A node that ended because dagd lacks a feature names it in its message.
    messages = [run.get("message", "")] + [n.get("message", "") for n in run.get("nodes", [])]
    for message in messages:
        reason = unsupported_reason(message)
        if reason:
            return "unsupported", reason
    detail = next((m for m in messages if m), "")
    return "fail", "phase %s, Argo gives %s (run %s%s)" % (
        phase, "/".join(sorted(phases)), run_id, ": " + detail[:160] if detail else "")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--dagd", required=True)
    parser.add_argument("--dagctl", required=True)
    parser.add_argument("--conformance", required=True)
    parser.add_argument("--baseline", required=True)
    parser.add_argument("--update-baseline", action="store_true")
    parser.add_argument("--only", default="")
    # Rows mostly wait (sleeps, locks), so more of them than cores run at once.
    parser.add_argument("--jobs", type=int, default=5)
    args = parser.parse_args()

    rows = [r for r in read_rows(args.conformance) if args.only in r["file"]]
    work = tempfile.mkdtemp(prefix="dagd-conformance-")
    dagd = Dagd(args.dagd, work)
    results = {}
    try:
        code, out, err = dagctl(["apply", "-f", SEMAPHORE_CONFIG_MAP], args.dagctl, dagd.address)
        if code != 0:
            raise RuntimeError("dagctl apply " + SEMAPHORE_CONFIG_MAP + ": " + err + out)
        # Every library, also with --only: the rows that refer to them need them.
        registered = register_templates(read_rows(args.conformance), args, dagd.address)
        with concurrent.futures.ThreadPoolExecutor(max_workers=args.jobs) as pool:
            ordered = sorted(rows, key=lambda r: r["file"] not in SLOW_ROWS)
            futures = {pool.submit(run_row, row, args, dagd.address, registered, work): row
                       for row in ordered}
            for future in concurrent.futures.as_completed(futures):
                row = futures[future]
                try:
                    results[row["file"]] = future.result()
                except Exception as e:  # a harness error is a failure of that row, named
                    results[row["file"]] = ("fail", "harness: %r" % e)
    finally:
        dagd.stop()

    for row in rows:
        status, detail = results[row["file"]]
        print("%-11s %-55s %s" % (status, row["file"].replace("argo-examples/", ""), detail))

    passed = sorted(f for f, (s, _) in results.items() if s == "pass")
    failed = [f for f, (s, _) in results.items() if s == "fail"]
    reasons = {}
    for f, (s, detail) in results.items():
        if s == "unsupported":
            reasons[detail] = reasons.get(detail, 0) + 1
    summary = ", ".join("%s %d" % (r, n) for r, n in sorted(reasons.items(), key=lambda x: -x[1]))
    print("conformance: %d/%d pass, %d fail, %d unsupported (%s)" % (
        len(passed), len(rows), len(failed), sum(reasons.values()), summary))

    baseline = []
    if os.path.exists(args.baseline):
        baseline = [line.strip() for line in open(args.baseline)
                    if line.strip() and not line.startswith("#")]
    if args.update_baseline:
        with open(args.baseline, "w") as f:
            f.write("# Rows of ../shared/conformance/expected.tsv that pass on dagd; the conformance\n"
                    "# test fails if one of them stops passing. Raised with --update-baseline.\n")
            f.write("".join(p + "\n" for p in passed))
        print("baseline: %d rows written to %s" % (len(passed), args.baseline))
    regressed = [b for b in baseline if b in results and results[b][0] != "pass"]
    new = [p for p in passed if p not in baseline]
    if new and not args.update_baseline:
        print("passing but not in the baseline (raise it with --update-baseline): " + ", ".join(new))
    shutil.rmtree(work, ignore_errors=True)
    if regressed:
        print("REGRESSED (in the baseline, no longer passing): " + ", ".join(regressed))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
