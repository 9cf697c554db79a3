// LocalRunnerOptions: how the local runner turns templates into host processes.
//
// Plain values, copied into each LocalRunner; safe to share read-only between threads.
#ifndef DAGD_RUNNERS_LOCAL_OPTIONS_H_
#define DAGD_RUNNERS_LOCAL_OPTIONS_H_

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace dagd::runners::local {

// The stand-ins dagd ships for images whose entrypoint Argo examples rely on without writing it
// out: "argoproj/argosay:v2" → a small POSIX sh program with argosay's documented behaviour
// (no arguments or `echo` prints "hello argo"; `echo MSG [FILE]`; `cat F…`; `exit N`;
// `sleep D` with a Go duration; `assert_contains F S`; anything else exits 1).
std::map<std::string, std::vector<std::string>> DefaultImageEntrypoints();
// Where those images keep the program their stand-in replaces: "argoproj/argosay:v2" →
// "/argosay", which some examples name in `command:`.
std::map<std::string, std::string> DefaultImagePrograms();

// How container and script attempts see files (runners/local/pod_filesystem.h). Ansible attempts
// always run on the host's filesystem: they configure hosts.
enum class PodFilesystemMode {
  // The host's filesystem; the working directory is the attempt's work_dir.
  kHost,
  // Their own, as a pod's: an overlay of the host's root filesystem whose writes stay with the
  // attempt, and a private /tmp; the working directory is the container's workingDir, else "/".
  kOverlay,
};

// An unprivileged user attempts run as (ResolveRunAsUser()): its ids and home directory.
struct RunAsUser {
  std::string name;
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<gid_t> groups;  // supplementary groups, the primary one included
  std::string home;
};

// The user `name` from the system's user database. NotFound for an unknown user;
// InvalidArgument for root (uid 0: no privilege would be dropped); FailedPrecondition when dagd
// itself is not root (only root may start processes as another user).
absl::StatusOr<RunAsUser> ResolveRunAsUser(const std::string& name);

struct LocalRunnerOptions {
  // Program run for `ansible` templates; searched on PATH when it has no slash.
  std::string ansible_playbook = "ansible-playbook";
  // Image (exactly as written in the template) → the argv prefix run for a `container` template
  // that gives no `command`. An image not in this table, without a command, is an error.
  std::map<std::string, std::vector<std::string>> image_entrypoints = DefaultImageEntrypoints();
  // Image → the path of its own program inside the image. A `command` that starts with it runs
  // the image's image_entrypoints stand-in instead (`command: [/argosay]` with args [echo, hi]
  // runs the argosay stand-in with echo hi); the host does not have the image's files.
  std::map<std::string, std::string> image_programs = DefaultImagePrograms();
  // outputs.result keeps the last this many bytes of stdout, as Argo does (256 KiB).
  size_t max_result_bytes = 256 * 1024;
  // Once an attempt's process has exited and its group was killed, how long output pipes may
  // stay open (held by a descendant that left the process group) before dagd stops reading.
  int64_t drain_timeout_ms = 2000;
  // Where the credentials ansible templates name live: one file per credential, the directory
  // owned by dagd's user with mode 0700 (runners/local/credentials.h). Empty: none configured,
  // and a template naming a credential fails to start. dagd sets <data_dir>/credentials.
  std::string credentials_dir;
  // dagd's artifact store: artifacts are files and directories here, by key
  // (runners/local/artifacts.h). dagd sets <data_dir>/artifacts; empty: a template with
  // artifacts fails to start.
  std::string artifact_dir;
  // dagd chooses kOverlay where the host allows it (ProbePodFilesystem()).
  PodFilesystemMode pod_filesystem = PodFilesystemMode::kHost;
  // Run every attempt's process as this user (dagd --run-as-user), after its pod filesystem is
  // set up: its attempt directory is handed to the user first (credential copies included);
  // USER and LOGNAME are the user's, HOME a fresh directory in the attempt's. ansible's local
  // connection still keeps its temporary files under the user's home from the user database
  // (~user/.ansible/tmp), so the user needs one it can write. Unset: attempts run as dagd's own
  // user.
  std::optional<RunAsUser> run_as;
};

}  // namespace dagd::runners::local

#endif  // DAGD_RUNNERS_LOCAL_OPTIONS_H_
