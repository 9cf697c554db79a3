// Runner: the seam between the scheduler and whatever executes a leaf node's attempt (a host
// process, a Kubernetes Job, an Argo Workflow), plus the explicit RunnerRegistry.
//
// Threading: every Runner method is called on the scheduler's thread, and a runner delivers
// every AttemptCallbacks call on that same thread (implementations are built on the io_context
// the scheduler runs; see runners/local/local_runner.h). Callbacks never run inside Start().
#ifndef DAGD_RUNNERS_RUNNER_H_
#define DAGD_RUNNERS_RUNNER_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "engine/run_state.h"
#include "engine/workflow.h"

namespace dagd::runners {

// Everything a runner needs to execute one attempt.
struct AttemptSpec {
  std::string run_id;
  std::string node_name;
  int attempt = 1;
  // Deterministic and unique per attempt: "<run_id>-<hash of node name>-<attempt>".
  std::string external_name;
  engine::Template resolved;  // tags already substituted
  std::map<std::string, std::string> inputs;
  // A fresh, empty directory for this attempt (created by the caller): the working directory of
  // the command, where outputs.parameters[].valueFrom.path is read.
  std::string work_dir;
  // Where `ansible.playbook` paths are resolved (the workflow's bundle); may be empty.
  std::string bundle_dir;
  // The workflow spec's Kubernetes-only fields, verbatim (engine::Workflow::kubernetes), for the
  // cluster runners; the template's own are in `resolved`.
  nlohmann::json workflow_kubernetes;
  // Stop: grace period between SIGTERM and SIGKILL (and the equivalent for other runners).
  int64_t grace_period_ms = 10000;
};

struct AttemptCallbacks {
  // A piece of the attempt's output, in order. stream is "stdout" or "stderr".
  std::function<void(std::string_view stream, std::string_view data)> on_log;
  // One structured event of the attempt, in order: a single JSON object (no newline), e.g. one
  // Ansible callback event written by dagd's callback plugin (runners/local/ansible/). Every
  // event is delivered before on_finished. The text comes from the attempt and may be malformed;
  // the receiver validates it. May be empty (then events are dropped).
  std::function<void(std::string_view json_line)> on_event;
  // Exactly once, last. phase is Succeeded, Failed or Error.
  std::function<void(engine::AttemptResult result)> on_finished;
};

class Runner {
 public:
  virtual ~Runner() = default;

  // Launches the attempt. An error (bad template for this runner, a missing program) is returned
  // here and no callback follows; the caller records it as an Error attempt.
  virtual absl::Status Start(const AttemptSpec& spec, AttemptCallbacks callbacks) = 0;

  // Ends a running attempt: the runner signals it (SIGTERM to a local process group, Job delete,
  // …), waits the grace period, then forces it. on_finished follows with phase Failed and
  // `message`. Unknown or finished attempts are ignored.
  virtual void Cancel(const std::string& external_name, const std::string& message) = 0;

  // Whether an attempt that was running when dagd stopped can be picked up again by name. The
  // local runner cannot (its processes die with dagd); cluster runners can.
  virtual bool CanReattach() const { return false; }

  // Follows an attempt a previous dagd started (spec as it was launched, external_name the
  // same), delivering the callbacks as for Start(). Only when CanReattach(); Unimplemented
  // otherwise.
  virtual absl::Status Reattach(const AttemptSpec& spec, AttemptCallbacks callbacks) {
    return absl::UnimplementedError("this runner cannot reattach to attempts");
  }

  // Ends every attempt at once (dagd shutting down); no callbacks follow.
  virtual void KillAll() = 0;
};

// FailedPrecondition naming the template and the fix if its attempt passes artifacts, which only
// the local runner moves (into and out of dagd's artifact store) so far; OK otherwise. For the
// cluster runners' Start().
absl::Status RefuseArtifacts(const AttemptSpec& spec, std::string_view runner_name);

// Runners by name ("local", "kubernetes", "argo"), filled explicitly at start-up.
class RunnerRegistry {
 public:
  // Takes ownership of `runner`. AlreadyExists if `name` is taken, InvalidArgument if `name` is
  // empty or `runner` is null.
  absl::Status Register(const std::string& name, std::unique_ptr<Runner> runner);
  // nullptr if unknown.
  Runner* Find(const std::string& name) const;
  // Registered names, sorted.
  std::vector<std::string> Names() const;
  // Runner::KillAll() on every runner.
  void KillAll();

 private:
  std::map<std::string, std::unique_ptr<Runner>> runners_;
};

}  // namespace dagd::runners

#endif  // DAGD_RUNNERS_RUNNER_H_
