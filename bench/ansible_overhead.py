#!/usr/bin/env python3
"""What dagd adds on top of ansible-playbook itself, per node.

Runs the same one-task playbook (connection local, no facts) N times each way, alternating:
  plain:  ansible-playbook -i localhost, playbook.yml        (what an operator would type)
  dagd:   `dagctl submit -f one-node.yaml --watch` against a running dagd on a fresh data dir
          (submission, commit, launch, callback plugin, event capture, completion, dagctl)
and prints the median wall time of each, their difference (dagd's overhead per node) and ratio.
It also reads each dagd run's attempt timing from history (dispatch to end, as the scheduler
recorded it) to split the overhead into inside the attempt (supervisor, callback plugin, event
capture) and outside it (dagctl, gRPC, commits, the watch). Timings, not assertions: quote the
medians.

Usage: bench/ansible_overhead.py [--runs N] [--build DIR]
"""
import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

PLAYBOOK = """\
- hosts: localhost
  connection: local
  gather_facts: false
  vars:
    ansible_python_interpreter: "{{ ansible_playbook_python }}"
  tasks:
    - name: one small task
      ansible.builtin.command: "true"
"""

WORKFLOW = """\
apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata:
  generateName: overhead-
spec:
  entrypoint: one
  templates:
    - name: one
      ansible:
        inventory: localhost,
        source: |
%s
""" % "\n".join("          " + line for line in PLAYBOOK.splitlines())


def parse_time(text):
    # RFC 3339 from protobuf JSON, e.g. 2026-11-26T14:02:10.123Z
    from datetime import datetime
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--build", default=os.path.join(os.path.dirname(__file__), "..", "build"))
    args = parser.parse_args()
    dagd = os.path.join(args.build, "cmd", "dagd", "dagd")
    dagctl = os.path.join(args.build, "cmd", "dagctl", "dagctl")
    for binary in (dagd, dagctl):
        if not os.access(binary, os.X_OK):
            sys.exit(f"ansible_overhead: {binary} is missing; build first (scripts/setup.sh)")
    ansible_playbook = shutil.which("ansible-playbook")
    if not ansible_playbook:
        sys.exit("ansible_overhead: ansible-playbook is not installed (scripts/setup.sh)")

    work = tempfile.mkdtemp(prefix="dagd-overhead-")
    playbook = os.path.join(work, "playbook.yml")
    workflow = os.path.join(work, "one-node.yaml")
    with open(playbook, "w") as f:
        f.write(PLAYBOOK)
    with open(workflow, "w") as f:
        f.write(WORKFLOW)
    data_dir = os.path.join(work, "data")
    os.makedirs(data_dir)
    port_file = os.path.join(data_dir, "port")
    log = open(os.path.join(work, "dagd.log"), "w")
    daemon = subprocess.Popen([dagd, "--listen", "127.0.0.1:0", "--data-dir", data_dir,
                               "--port-file", port_file, "--metrics-listen", "127.0.0.1:0"],
                              stdout=log, stderr=log)
    try:
        for _ in range(300):
            if os.path.exists(port_file) and open(port_file).read().strip():
                break
            if daemon.poll() is not None:
                sys.exit(f"ansible_overhead: dagd exited; see {log.name}")
            time.sleep(0.1)
        env = dict(os.environ, DAGD_SERVER="127.0.0.1:" + open(port_file).read().strip())
        plain, through_dagd, inside = [], [], []

        def run_plain():
            start = time.monotonic()
            subprocess.run([ansible_playbook, "-i", "localhost,", playbook], check=True,
                           stdout=subprocess.DEVNULL, env=dict(os.environ, ANSIBLE_NOCOLOR="1"))
            plain.append(time.monotonic() - start)

        def run_dagd():
            start = time.monotonic()
            subprocess.run([dagctl, "submit", "-f", workflow, "--watch"], check=True,
                           stdout=subprocess.DEVNULL, env=env)
            through_dagd.append(time.monotonic() - start)

        # One warm-up each (page cache, Python bytecode), not counted.
        subprocess.run([ansible_playbook, "-i", "localhost,", playbook], check=True,
                       stdout=subprocess.DEVNULL)
        subprocess.run([dagctl, "submit", "-f", workflow, "--watch"], check=True,
                       stdout=subprocess.DEVNULL, env=env)
        for i in range(args.runs):
            if i % 2 == 0:
                run_plain()
                run_dagd()
            else:
                run_dagd()
                run_plain()

        # Split dagd's time using its own history: the attempt's start and end as recorded.
        listed = json.loads(subprocess.run([dagctl, "runs", "list", "-o", "json"], check=True,
                                           capture_output=True, text=True, env=env).stdout)
        runs = sorted(listed.get("runs", []), key=lambda r: r["create_time"])[1:]  # no warm-up
        for run in runs:
            got = json.loads(subprocess.run([dagctl, "runs", "get", run["id"], "-o", "json"],
                                            check=True, capture_output=True, text=True,
                                            env=env).stdout)
            for node in got.get("nodes", []):
                for attempt in node.get("attempts", []):
                    begin = parse_time(attempt["start_time"])
                    end = parse_time(attempt["finish_time"])
                    inside.append(end - begin)
    finally:
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(timeout=30)
        log.close()

    def ms(values):
        return statistics.median(values) * 1000

    print(f"runs: {args.runs} each way, alternating; medians")
    print(f"  ansible-playbook alone:                {ms(plain):8.0f} ms")
    print(f"  dagctl submit --watch through dagd:    {ms(through_dagd):8.0f} ms")
    print(f"  overhead per node (difference):        {ms(through_dagd) - ms(plain):8.0f} ms")
    print(f"  ratio dagd / plain:                    {ms(through_dagd) / ms(plain):8.2f}")
    if inside:
        print(f"  the attempt as dagd recorded it:       {ms(inside):8.0f} ms "
              f"(dispatch to end: launch, ansible-playbook with dagd's callback plugin, outputs)")
        print(f"  so inside the attempt, over plain:     {ms(inside) - ms(plain):8.0f} ms")
        print(f"  and outside it:                        {ms(through_dagd) - ms(inside):8.0f} ms "
              f"(dagctl start, gRPC, commits, the watch stream)")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
