// ArgoRunner: runs each attempt as a one-template Argo Workflow (runners/argo/workflow_spec.h),
// submitted either through the Argo Server's REST API or as the Workflow custom resource on the
// Kubernetes API (ArgoRunnerOptions::api), over KubeClient (runners/kubernetes/client/), whose
// server is then the Argo Server or the Kubernetes API server. dagd keeps the control flow: one
// Workflow per attempt, never one per run (DESIGN.md §1).
//
// Threads. As for every runner (runners/runner.h), Runner methods are called, and
// AttemptCallbacks delivered, on the scheduler's io_context thread; nothing there blocks. API
// calls run elsewhere: a small worker pool (submitting, looking up, terminating), one thread that
// follows dagd's Workflows in the namespace (never one watch per Workflow), and one thread per
// running attempt that follows its log. They post what they learn back onto the io_context.
//
//                 Argo Server (kArgoServer)                  Kubernetes API (kKubernetes)
//   submit        POST /api/v1/workflows/NS {"workflow":…}   POST /apis/argoproj.io/v1alpha1/
//                                                               namespaces/NS/workflows
//   follow        list GET /api/v1/workflows/NS, then        list, then watch from the list's
//                 GET /api/v1/workflow-events/NS from its    resourceVersion (bookmarks; 410 Gone
//                 resourceVersion ({"result":{type,object}}) → list again)
//                 — both with labelSelector app.kubernetes.io/managed-by=dagd; a broken stream →
//                 list again after a backoff, so a completion missed meanwhile is in the list
//   log           GET /api/v1/workflows/NS/NAME/log          the pod's log (label
//                 ?logOptions.container=main&…follow=true    workflows.argoproj.io/workflow=NAME,
//                 ({"result":{"content":…}} per line)        container main, follow=true)
//                 — a log stream that breaks, or ends before the Workflow is seen to
//                 complete, is followed again from the start, skipping what was already
//                 delivered (lines per pod, or bytes): nothing is lost or repeated, at the price
//                 of reading the log twice when the stream ends before the watch reports the end
//   cancel        PUT /api/v1/workflows/NS/NAME/terminate    PATCH spec.shutdown: Terminate
//                                                              (merge patch)
//
// An attempt:
//   Start    builds the Workflow at once — a template the runner cannot run is an error from
//            Start() — then submits it from the pool. A Workflow of that name that exists is this
//            attempt's (dagd restarted between committing the intent and submitting): it is
//            adopted, not submitted twice. An API failure ends the attempt in Error, naming the
//            server ("Argo Server https://…" or "kubernetes API https://…").
//   running  the log goes to on_log ("stdout": Argo serves stdout and stderr as one log); for
//            ansible, the callback plugin's lines (kEventLinePrefix) go to on_event instead
//            (PodLogDemux).
//   ending   from status.phase once the Workflow is completed, and its pod node
//            (status.nodes[NAME], type Pod):
//              Succeeded → Succeeded; parameters from the node's outputs.parameters; result: for
//                          ansible the kResultParameter output (the set_stats map, never
//                          reported as a parameter), otherwise outputs.result (the tail of the
//                          log if Argo did not set it);
//              Failed    → Failed "exit code N" (the node's outputs.exitCode; for ansible the
//                          classification of runners/local/ansible_output.h), "timeout: …" when
//                          Argo says a deadline passed, else Argo's own message;
//              Error     → Error with Argo's message (e.g. a missing output file).
//            on_finished follows once the log has been read to its end (or drain_timeout_ms
//            passed).
//   Cancel   terminates the Workflow; on_finished follows at once (posted, never inside
//            Cancel()) with phase Failed and the message. dagd's Cancel serves StopRun,
//            TerminateRun and timeouts alike, and stops exactly one step: Argo's `stop` differs
//            from `terminate` only in running the Workflow's exit handlers, which a dagd node
//            Workflow does not have (dagd runs its own onExit), so terminate — the one that never
//            starts anything new — is used. A Cancel that arrives while the submission is in flight
//            terminates the Workflow once it is submitted.
//   Reattach a Workflow dagd submitted before a restart is looked up by its deterministic name
//            (kubernetes::JobName(external_name)): gone → Error; completed → the outcome at once
//            (its log read first); running → followed as above.
//   KillAll  (dagd stopping) stops following; the Workflows keep running, for Reattach.
#ifndef DAGD_RUNNERS_ARGO_ARGO_RUNNER_H_
#define DAGD_RUNNERS_ARGO_ARGO_RUNNER_H_

#include <boost/asio/io_context.hpp>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "runners/argo/workflow_spec.h"
#include "runners/runner.h"

namespace dagd::runners::kubernetes {
class KubeClient;
}  // namespace dagd::runners::kubernetes

namespace dagd::runners::argo {

// Which API Workflows are submitted and followed through.
enum class ArgoApi {
  kArgoServer,  // the Argo Server REST API (bearer token); the client's server is the Argo Server
  kKubernetes,  // the argoproj.io/v1alpha1 Workflow resource; the client's server is the API server
};

struct ArgoRunnerOptions {
  // The Workflow of an attempt; workflow.namespace_name is where the runner submits and watches.
  WorkflowSpecOptions workflow;
  ArgoApi api = ArgoApi::kArgoServer;
  // How long a finished attempt waits for the rest of its log.
  int64_t drain_timeout_ms = 5000;
  // Between a broken or refused stream (watch or log) and the next try, doubling up to
  // max_backoff_ms.
  int64_t initial_backoff_ms = 200;
  int64_t max_backoff_ms = 10000;
  // When Argo reports no outputs.result for a container or script step, the result is the last
  // this many bytes of its log (as Argo's own cap).
  size_t max_result_bytes = 256 * 1024;
};

class ArgoRunner : public Runner {
 public:
  // `io` must outlive the runner; `client` talks to the Argo Server or the Kubernetes API
  // (options.api) and may be shared. Starts following dagd's Workflows in
  // options.workflow.namespace_name.
  ArgoRunner(boost::asio::io_context& io, std::shared_ptr<kubernetes::KubeClient> client,
             ArgoRunnerOptions options);
  ~ArgoRunner() override;
  ArgoRunner(const ArgoRunner&) = delete;
  ArgoRunner& operator=(const ArgoRunner&) = delete;

  absl::Status Start(const AttemptSpec& spec, AttemptCallbacks callbacks) override;
  void Cancel(const std::string& external_name, const std::string& message) override;
  bool CanReattach() const override { return true; }
  absl::Status Reattach(const AttemptSpec& spec, AttemptCallbacks callbacks) override;
  void KillAll() override;

  // Attempts started (or reattached) and not yet finished.
  size_t running() const;

 private:
  class Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace dagd::runners::argo

#endif  // DAGD_RUNNERS_ARGO_ARGO_RUNNER_H_
