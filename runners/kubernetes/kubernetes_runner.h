// KubernetesRunner: runs each attempt as a batch/v1 Job (runners/kubernetes/job_spec.h) on a
// Kubernetes cluster through KubeClient (runners/kubernetes/client/).
//
// Threads. Runner methods are called, and AttemptCallbacks delivered, on the scheduler's
// io_context thread, as for every runner (runners/runner.h); nothing there blocks. API calls run
// elsewhere: a small worker pool (creating and deleting objects, reading a finished pod), one
// thread that list-then-watches dagd's Jobs in the namespace (never one watch per Job:
// resourceVersion, bookmarks, a 410 Gone → list again, a broken stream → list again after a
// backoff), and one thread per running attempt that follows its pod's log. They post what they
// learn back onto the io_context.
//
// An attempt:
//   Start    builds the Job (and ConfigMap) at once — a template the runner cannot run is an
//            error from Start() — then creates them from the pool; an existing Job of that name
//            is this attempt's (dagd restarted after committing the intent): it is adopted, not
//            created twice. An API failure ends the attempt in Error, naming the API server.
//   running  the pod's log is followed into on_log; for ansible, the callback plugin's lines
//            (kEventLinePrefix) go to on_event instead (PodLogDemux).
//   ending   from the watch: the Job's Complete condition → Succeeded; Failed → Failed with
//            the reason (DeadlineExceeded: the template's timeout; otherwise the container's
//            exit code, and for ansible the classification of runners/local/ansible_output.h).
//            on_finished follows once the log has been read to its end (or drain_timeout_ms
//            passed). Outputs: ansible's set_stats (result and valueFrom.stats) from the events;
//            a container's or script's result is the tail of its log; valueFrom.path outputs
//            cannot be read from a finished pod, so they end the attempt in Error saying so.
//   Cancel   deletes the Job (propagationPolicy Background); on_finished follows (posted, never
//            inside Cancel()) with phase Failed and the message.
//   Reattach a Job dagd started before a restart is looked up by its deterministic name and
//            followed as above; a Job that is gone ends the attempt in Error.
//   KillAll  (dagd stopping) stops following; the Jobs keep running, for Reattach.
#ifndef DAGD_RUNNERS_KUBERNETES_KUBERNETES_RUNNER_H_
#define DAGD_RUNNERS_KUBERNETES_KUBERNETES_RUNNER_H_

#include <boost/asio/io_context.hpp>
#include <map>
#include <memory>
#include <string>

#include "runners/kubernetes/job_spec.h"
#include "runners/runner.h"

namespace dagd::runners::kubernetes {

class KubeClient;

struct KubernetesRunnerOptions {
  JobSpecOptions job;
  // How long a finished attempt waits for the rest of its pod's log.
  int64_t drain_timeout_ms = 5000;
  // Between a broken or refused watch and the next list, doubling up to max_backoff_ms.
  int64_t initial_backoff_ms = 200;
  int64_t max_backoff_ms = 10000;
  // The result of a container or script keeps the last this many bytes of its log (as Argo).
  size_t max_result_bytes = 256 * 1024;
};

class KubernetesRunner : public Runner {
 public:
  // `io` must outlive the runner; `client` is shared with whoever else talks to the cluster.
  // Starts the watch of dagd's Jobs in options.job.namespace_name.
  KubernetesRunner(boost::asio::io_context& io, std::shared_ptr<KubeClient> client,
                   KubernetesRunnerOptions options);
  ~KubernetesRunner() override;
  KubernetesRunner(const KubernetesRunner&) = delete;
  KubernetesRunner& operator=(const KubernetesRunner&) = delete;

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

}  // namespace dagd::runners::kubernetes

#endif  // DAGD_RUNNERS_KUBERNETES_KUBERNETES_RUNNER_H_
