// Ansible event capture for the local runner: dagd's callback plugin (runners/local/ansible/
// dagd_events.py, compiled into dagd as text) and the settings that turn it on.
//
// The plugin writes one JSON object per Ansible event to the inherited descriptor named by
// DAGD_EVENTS_FD — a pipe the local runner reads like stdout (spawn.h, local_runner.h) — so the
// user's stdout callback and ansible.cfg are left alone. Stateless; thread-compatible.
#ifndef DAGD_RUNNERS_LOCAL_ANSIBLE_EVENTS_H_
#define DAGD_RUNNERS_LOCAL_ANSIBLE_EVENTS_H_

#include <map>
#include <string>

#include "absl/status/status.h"

namespace dagd::runners::local {

// Writes the plugin to <work_dir>/.dagd/callback_plugins/dagd_events.py and sets, in `env`:
// ANSIBLE_CALLBACK_PLUGINS (that directory, ahead of any value already in `env`),
// ANSIBLE_CALLBACKS_ENABLED (dagd_events, after any value already in `env`) and DAGD_EVENTS_FD.
// The environment variables override ansible.cfg; plugins a user enables only in ansible.cfg
// are therefore not loaded for dagd attempts (set them in the template's env instead).
// Unavailable if the file cannot be written.
absl::Status EnableEventsPlugin(const std::string& work_dir, int events_fd,
                                std::map<std::string, std::string>* env);

}  // namespace dagd::runners::local

#endif  // DAGD_RUNNERS_LOCAL_ANSIBLE_EVENTS_H_
