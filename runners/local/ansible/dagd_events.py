# dagd_events: dagd's Ansible callback plugin. Writes one JSON object per line for every
# playbook, play, task and host result event, and the final stats, to the file descriptor named
# by DAGD_EVENTS_FD (a pipe the local runner reads, runners/local/local_runner.h). stdout is
# left to whatever stdout callback the user has. With DAGD_EVENTS_PREFIX set (cluster runners,
# where the only channel is the container log), each line starts with that prefix, after a
# newline so that it never continues a line of Ansible's.
#
# dagd enables it per attempt through ANSIBLE_CALLBACK_PLUGINS and ANSIBLE_CALLBACKS_ENABLED, so
# it does not depend on any ansible.cfg. The text of this file is compiled into dagd
# (runners/local/ansible/CMakeLists) and written next to each attempt; edit it here.
#
# Each line is an object with "kind" (the callback's name without "v2_" / "v2_playbook_on_"),
# "time" (seconds since the epoch), and, as they apply: "playbook", "play", "task",
# "task_uuid", "action", "host", "changed", "failed", "ignore_errors", "item", "result",
# "stats", "custom_stats". Results of no_log tasks are replaced by {"censored": …} as Ansible
# itself does, and internal "_ansible_*" keys are dropped.
from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = """
    name: dagd_events
    type: notification
    short_description: one JSON line per event to dagd
    description:
      - Writes every playbook, play, task and host result event, and the final stats, as one
        JSON object per line to the file descriptor in the DAGD_EVENTS_FD environment variable.
    requirements:
      - enabled by dagd through ANSIBLE_CALLBACKS_ENABLED
"""

import json
import os
import sys
import time

from ansible.plugins.callback import CallbackBase

_CENSORED = {
    "censored": "the output has been hidden due to the fact that 'no_log: true' was "
                "specified for this result"
}


def _clean(value):
    """A JSON-safe copy of a module result, with no_log parts censored."""
    if isinstance(value, dict):
        if value.get("_ansible_no_log"):
            return dict(_CENSORED)
        return {str(k): _clean(v) for k, v in value.items() if not str(k).startswith("_ansible_")}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "notification"
    CALLBACK_NAME = "dagd_events"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self, *args, **kwargs):
        super(CallbackModule, self).__init__(*args, **kwargs)
        self._fd = None
        fd = os.environ.get("DAGD_EVENTS_FD", "")
        if fd.isdigit():
            self._fd = int(fd)
        # In a pod there is no pipe of dagd's: the cluster runners set DAGD_EVENTS_FD=2 and this
        # prefix, and pick the lines that start with it out of the container's log.
        self._prefix = os.environ.get("DAGD_EVENTS_PREFIX", "")
        self._play = ""

    def _emit(self, kind, **fields):
        if self._fd is None:
            return
        fields["kind"] = kind
        fields["time"] = time.time()
        line = self._prefix + json.dumps(fields, default=str, ensure_ascii=False) + "\n"
        data = line.encode("utf-8", "replace")
        if self._prefix:
            # Shared with Ansible's own output: finish its pending text first, so that the event
            # starts a line of its own.
            for stream in (sys.stdout, sys.stderr):
                try:
                    stream.flush()
                except Exception:
                    pass
            data = b"\n" + data
        try:
            while data:
                data = data[os.write(self._fd, data):]
        except OSError:
            self._fd = None  # dagd went away; the playbook goes on

    def _task(self, kind, task):
        self._emit(kind, play=self._play, task=task.get_name().strip(),
                   task_uuid=task._uuid, action=task.action)

    def _result(self, kind, result, **extra):
        res = result._result
        no_log = bool(res.get("_ansible_no_log"))
        fields = dict(
            play=self._play,
            task=result._task.get_name().strip(),
            task_uuid=result._task._uuid,
            action=result._task.action,
            host=result._host.get_name(),
            changed=bool(res.get("changed", False)),
            result=_clean(res),
        )
        loop_var = res.get("ansible_loop_var", "item")
        if loop_var in res:
            fields["item"] = "(censored due to no_log)" if no_log else _clean(res[loop_var])
        fields.update(extra)
        self._emit(kind, **fields)

    def v2_playbook_on_start(self, playbook):
        self._emit("playbook_start", playbook=playbook._file_name)

    def v2_playbook_on_play_start(self, play):
        self._play = play.get_name().strip()
        self._emit("play_start", play=self._play)

    def v2_playbook_on_task_start(self, task, is_conditional):
        self._task("task_start", task)

    def v2_playbook_on_handler_task_start(self, task):
        self._task("handler_task_start", task)

    def v2_runner_on_ok(self, result):
        self._result("runner_on_ok", result)

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._result("runner_on_failed", result, failed=True, ignore_errors=bool(ignore_errors))

    def v2_runner_on_unreachable(self, result):
        self._result("runner_on_unreachable", result, failed=True)

    def v2_runner_on_skipped(self, result):
        self._result("runner_on_skipped", result)

    def v2_runner_item_on_ok(self, result):
        self._result("runner_item_on_ok", result)

    def v2_runner_item_on_failed(self, result):
        self._result("runner_item_on_failed", result, failed=True)

    def v2_runner_item_on_skipped(self, result):
        self._result("runner_item_on_skipped", result)

    def v2_playbook_on_stats(self, stats):
        hosts = sorted(stats.processed.keys())
        summary = {h: stats.summarize(h) for h in hosts}
        custom = _clean(stats.custom) if getattr(stats, "custom", None) else {}
        self._emit("stats", play=self._play, stats=summary, custom_stats=custom)
        self._write_stats_files(custom.get("_run", {}))

    def _write_stats_files(self, run_stats):
        """With DAGD_STATS_DIR set (the argo runner, which reads outputs from files), writes each
        run-wide set_stats key to a file of that name: a string as it is, anything else as
        JSON, as the local runner's valueFrom.stats does."""
        directory = os.environ.get("DAGD_STATS_DIR", "")
        if not directory or not isinstance(run_stats, dict):
            return
        try:
            os.makedirs(directory, exist_ok=True)
            with open(os.path.join(directory, "_all.json"), "w") as f:
                json.dump(run_stats, f, separators=(",", ":"), ensure_ascii=False)
            for key, value in run_stats.items():
                if "/" in key or key in ("", ".", ".."):
                    continue
                text = value if isinstance(value, str) else json.dumps(
                    value, separators=(",", ":"), ensure_ascii=False)
                with open(os.path.join(directory, key), "w") as f:
                    f.write(text)
        except OSError:
            pass  # a missing output then fails the node, which names it
