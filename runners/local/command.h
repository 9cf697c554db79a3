// Command: what the local runner executes for one attempt, computed entirely before fork().
//
// BuildCommand() turns a resolved leaf template (container, script or ansible) into a program,
// argv and environment, and writes the files the attempt needs into its work_dir (script source,
// inline playbook or inventory, extra vars). It does blocking file I/O but no process work.
// Stateless and thread-compatible.
#ifndef DAGD_RUNNERS_LOCAL_COMMAND_H_
#define DAGD_RUNNERS_LOCAL_COMMAND_H_

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "runners/local/options.h"
#include "runners/local/pod_filesystem.h"
#include "runners/runner.h"

namespace dagd::runners::local {

struct Command {
  std::string program;            // absolute path of the executable
  std::vector<std::string> argv;  // argv[0] as the template wrote it
  std::vector<std::string> env;   // "NAME=value", the complete environment
  std::string work_dir;           // the process's working directory (in the pod, if any)
  // Set when the command runs in its own filesystem (PodFilesystemMode::kOverlay): spawn.h
  // mounts it before chdir(work_dir) and execve(program); `program` is a host path on the root
  // filesystem, which the pod sees as it is.
  std::optional<PodFilesystem> pod;
  bool is_ansible = false;  // output is ansible-playbook's (failure messages name the task)
  // The command gets a pipe at fd kSpawnEventsFd for one JSON event per line (runners/local/
  // spawn.h); set for ansible, whose dagd_events callback plugin writes there.
  bool events_channel = false;
  // The values of the credentials the attempt was given (runners/local/credentials.h), to be
  // masked in everything it prints (secret_mask.h). Never log them.
  std::vector<std::string> secrets;
  // The user the command runs as (LocalRunnerOptions::run_as); unset: dagd's own.
  std::optional<RunAsUser> run_as;
};

// The descriptor number of the events pipe in the command (DAGD_EVENTS_FD).
inline constexpr int kSpawnEventsFd = 4;

// Builds the command for spec.resolved.
//
// `base_env` ("NAME=value" entries, normally dagd's own environment) is the starting point of
// the child's environment; ansible's settings and then the template's `env` override it, and PWD
// is set to the work_dir. Programs without a slash are searched on the resulting PATH.
// dagd's own files go to <work_dir>/.dagd/ (or <work_dir>/.dagd-* where their place matters).
//
// container: command + args; with no command, options.image_entrypoints[image] + args.
// script:    command + args + [work_dir/.dagd/script]; `python` means python3.
// With options.pod_filesystem kOverlay, both run in their own PodFilesystem (created here), in the
// container's workingDir (default "/"), and the script is at /argo/staging/script in the pod, as
// Argo puts it. The container's volumeMounts of hostPath volumes (template `volumes`, then
// spec.volumes) are bind-mounted from the host (readOnly and subPath honoured): that is how a
// pod writes to the host. A hostPath that does not exist is InvalidArgument.
// ansible:   ansible-playbook [-i INVENTORY] [-e @work_dir/.dagd/extra-vars.json] [--limit L]
//            [--check] [--diff] [--tags T] [--skip-tags T] [--forks N] [-v…] [--become]
//            [--become-user U] PLAYBOOK, with ANSIBLE_NOCOLOR, no retry files, its own
//            ANSIBLE_LOCAL_TEMP in work_dir, ANSIBLE_HOST_KEY_CHECKING per the template and an
//            unparsable inventory made fatal. The extra vars are the node's input parameters
//            (JSON objects and lists as structures, so upstream outputs arrive as data) overlaid
//            with `extraVars`; the inventory is prepared by PrepareInventory() (inventory.h); an
//            inline `source` is written to work_dir/.dagd-playbook.yml, beside the bundle.
//            Credentials the template names are staged by ApplyCredentials() (credentials.h):
//            their options go before PLAYBOOK, their envFromRef variables after the template's
//            env, their values into Command::secrets. Its errors (a missing or non-private
//            credential or directory: FailedPrecondition) are returned as they are.
//
// Errors: InvalidArgument for a template the local runner cannot run (no command and an unknown
// image, a script without an interpreter, a missing playbook or inventory file, a dag/steps/
// suspend template, a play whose vars_prompt has no default and no extra var to answer it),
// naming the template and the fix; FailedPrecondition when a program is not
// on this host; Unavailable when a file cannot be written.
absl::StatusOr<Command> BuildCommand(const AttemptSpec& spec, const LocalRunnerOptions& options,
                                     const std::vector<std::string>& base_env);

// The ansible-playbook command of an ansible attempt that runs elsewhere (a Kubernetes pod): the
// same argv and the same files in spec.work_dir as BuildCommand() (the caller ships the
// directory and maps its path), but argv[0] is left as written (not looked up on this host,
// `program` stays empty), the environment holds only Ansible's settings and the template's env
// (nothing of dagd's own), and the callback plugin writes its events to stderr, each line
// starting with `events_prefix`. Errors as BuildCommand(); credentials are refused
// (FailedPrecondition) until the cluster runners take them from Kubernetes Secrets.
absl::StatusOr<Command> BuildPodAnsibleCommand(const AttemptSpec& spec,
                                               const LocalRunnerOptions& options,
                                               const std::string& events_prefix);

// The absolute path of `name`: searched in the ':'-separated `path_env` if it has no slash,
// otherwise taken relative to `work_dir`. NotFound if there is no executable file.
absl::StatusOr<std::string> FindProgram(const std::string& name, const std::string& path_env,
                                        const std::string& work_dir);

}  // namespace dagd::runners::local

#endif  // DAGD_RUNNERS_LOCAL_COMMAND_H_
