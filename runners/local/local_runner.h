// LocalRunner: runs container, script and ansible attempts as processes on the dagd host.
//
// Each attempt is a process group under a tiny supervisor (runners/local/spawn.h), so that
// Cancel() reaches every process of the attempt and nothing outlives dagd, even `kill -9`.
// The template is turned into a command line by BuildCommand() (runners/local/command.h).
//
// Event loop: built on the io_context passed in, which must outlive the runner. Every method is
// called on the thread that runs that io_context (the scheduler runs it on one thread), and
// every AttemptCallbacks call is made from a completion handler on it — never inside Start().
// Per attempt, stdout and stderr are read through pipes and delivered to on_log as they arrive;
// for ansible, a third pipe carries one JSON event per line from dagd's callback plugin
// (runners/local/ansible_events.h), each complete line delivered to on_event;
// the supervisor's exit is seen through a pidfd. on_finished follows once all pipes reached EOF
// (or the drain timeout passed) AND the supervisor was reaped.
//
// Credentials (runners/local/credentials.h): their values are masked (secret_mask.h) in every
// on_log piece and on_event line and in the AttemptResult, before anything else sees them; their
// copies in <work_dir>/.dagd/credentials are removed before on_finished, when Start() fails, and
// in KillAll().
//
// Artifacts (runners/local/artifacts.h), in options.artifact_dir by key: before the process
// starts, every input artifact with a key is placed at its path (in the pod's filesystem, or on
// the host with PodFilesystemMode::kHost; relative paths in the working directory), raw ones
// written there; a missing stored artifact fails the start unless the input is optional. After
// a successful exit every output artifact is saved from its path under its key (tgz unless
// `archive: none`) and reported in AttemptResult::artifacts; a path the command did not leave
// makes the attempt an Error unless the output is optional.
//
// Outcomes (AttemptResult):
//   exit 0            → Succeeded; result = stdout without one trailing newline (last
//                       max_result_bytes, as Argo) — for ansible, the playbook's run-wide
//                       set_stats data as a JSON object ("{}" if none); parameters from
//                       outputs.parameters[].valueFrom.path (relative to work_dir, or absolute),
//                       one trailing newline trimmed, or valueFrom.stats (a set_stats key: a
//                       string as it is, anything else as JSON); a missing file or key uses
//                       valueFrom.default, else phase Error.
//   exit N ≠ 0        → Failed, "exit code N"; ansible-playbook is classified by
//                       AnsibleOutputScanner::Classify(): failed task → Failed naming task, host
//                       and message; unreachable hosts, Ansible ERROR!s and bad options → Error
//                       (so OnError / OnTransientError retries apply).
//   killed by signal  → Failed, "terminated by signal N", exit_code 128+N.
//   Cancel()          → Failed with the cancel message.
//   chdir/exec failed → Error, naming the program and the reason.
//
// A callback may call Start(), Cancel() or KillAll(); it must not destroy the runner.
// The runner must not be destroyed inside a callback. Destroying it ends every attempt like
// KillAll(). Handlers still queued on the io_context after that do nothing.
#ifndef DAGD_RUNNERS_LOCAL_LOCAL_RUNNER_H_
#define DAGD_RUNNERS_LOCAL_LOCAL_RUNNER_H_

#include <sys/types.h>

#include <boost/asio/io_context.hpp>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "runners/local/options.h"
#include "runners/runner.h"

namespace spdlog {
class logger;
}

namespace dagd::runners::local {

class LocalRunner : public Runner {
 public:
  // `io` must outlive this runner. The child environment starts from dagd's environment as it
  // is now.
  LocalRunner(boost::asio::io_context& io, LocalRunnerOptions options);
  ~LocalRunner() override;

  LocalRunner(const LocalRunner&) = delete;
  LocalRunner& operator=(const LocalRunner&) = delete;

  // Writes the attempt's files into spec.work_dir (an existing directory) and starts its
  // process. Errors, with no callback to follow: AlreadyExists (external_name in use),
  // InvalidArgument / FailedPrecondition from BuildCommand() (bad template, program not on this
  // host), FailedPrecondition (work_dir missing), Unavailable (fork, pipes, files).
  absl::Status Start(const AttemptSpec& spec, AttemptCallbacks callbacks) override;

  // SIGTERM to the attempt's process group, SIGKILL after spec.grace_period_ms; on_finished
  // follows with phase Failed and `message`. Unknown, finished or already cancelled: ignored.
  void Cancel(const std::string& external_name, const std::string& message) override;

  // SIGKILLs every attempt's process group and reaps it (blocking, briefly); no callbacks follow.
  void KillAll() override;

  // The process group of a running attempt (its supervisor's pid), or -1 if there is none.
  // For tests and diagnostics.
  pid_t ProcessGroup(const std::string& external_name) const;

  // Attempts started and not yet finished.
  size_t running() const { return attempts_.size(); }

 private:
  struct Attempt;
  enum class Pipe { kStdout, kStderr };

  void ReadOutput(std::shared_ptr<Attempt> attempt, Pipe which);
  void ReadReport(std::shared_ptr<Attempt> attempt);
  void ReadEvents(std::shared_ptr<Attempt> attempt);
  void WaitForExit(std::shared_ptr<Attempt> attempt);
  void OnReaped(const std::shared_ptr<Attempt>& attempt, int status);
  void MaybeFinish(const std::shared_ptr<Attempt>& attempt);
  engine::AttemptResult Outcome(Attempt& attempt) const;
  void CollectOutputs(const Attempt& attempt, engine::AttemptResult* result) const;

  boost::asio::io_context& io_;
  const LocalRunnerOptions options_;
  const std::vector<std::string> base_env_;
  std::shared_ptr<spdlog::logger> logger_;
  std::map<std::string, std::shared_ptr<Attempt>> attempts_;  // by external name
};

}  // namespace dagd::runners::local

#endif  // DAGD_RUNNERS_LOCAL_LOCAL_RUNNER_H_
