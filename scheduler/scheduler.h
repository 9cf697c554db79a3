// Scheduler: the live loop that turns stored runs into launched attempts.
//
// One io_context thread owns all run state (engine::RunState per active run). Every public method
// is thread-safe: it posts onto that thread and answers through a callback, which runs on the
// io_context thread (or, for a spec that does not parse or validate, at once on the caller's
// thread) — callers must not block in it.
//
// Durability (DESIGN.md §3): each step of a run is a WriteBatch (node states, events, the run
// record) submitted to the Store's group commit; only once it is committed does the scheduler
// launch the attempts the step decided, acknowledge a submission, or tell listeners. So a crash
// at any point loses nothing that was acknowledged, and a restart (Recover) continues from the
// last committed step: attempts that were running on a runner that CanReattach() (kubernetes,
// argo) are picked up again by their external name, nothing launched twice; those of the local
// runner died with dagd and count as attempts that ended in Error, retried under their retry
// strategy.
//
// Bundles: a run names its stored bundle (storage/bundle.h) by digest. Each attempt gets a fresh,
// empty working directory <data_dir>/attempts/<run>/<node>-<hash>-<attempt> into which the
// scheduler writes the bundle's files with their modes before the runner starts it; the runner
// resolves playbook paths there (AttemptSpec.bundle_dir = work_dir). So what a run executes is
// exactly what was submitted, whatever happens to the files on the client's disk. Reading the
// bundle from SQLite and writing its files are blocking calls on the io_context thread: an
// accepted exception to "never blocks", bounded by the bundle limits (32 MiB by default). A
// bundle is read once and shared by every active run that uses it; it is dropped when the last
// of them retires. Submit() stores an uploaded bundle on the caller's thread.
#ifndef DAGD_SCHEDULER_SCHEDULER_H_
#define DAGD_SCHEDULER_SCHEDULER_H_

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/memo.h"
#include "engine/run_state.h"
#include "metrics/registry.h"
#include "runners/runner.h"
#include "scheduler/clock.h"
#include "storage/store.h"

namespace dagd::scheduler {

struct SchedulerOptions {
  // Attempt working directories live under <data_dir>/attempts/<run>/.
  std::string data_dir;
  // Runner used when neither the template nor the workflow names one.
  std::string default_runner = "local";
  // Between SIGTERM and SIGKILL when a run is stopped.
  int64_t grace_period_ms = 10000;
  // How long log output may wait before it is committed in one batch.
  int64_t log_flush_interval_ms = 200;
  // Output stored per attempt (stdout and stderr together); what comes after is dropped, and one
  // line on stderr says so (dagd --max-log-bytes-per-attempt). 0: no limit. Counted from the
  // attempt's start in this dagd process (a restart counts a reattached attempt afresh).
  int64_t max_log_bytes_per_attempt = int64_t{64} << 20;
  // How many nodes a run may have and how wide one fan-out may be (engine::RunLimits).
  engine::RunLimits run_limits;
  // Semaphores of `synchronization` (configMapKeyRef "CONFIGMAP/KEY") → how many may hold each
  // at once (`dagd --semaphore CONFIGMAP/KEY=N`). A workflow naming another is refused.
  std::map<std::string, int64_t> semaphore_limits;
  // Where the scheduler declares its metrics (docs/metrics.md: runs, nodes, attempts, queue,
  // Ansible results); null for none. Not owned; must outlive the scheduler.
  metrics::Registry* metrics = nullptr;
};

// Told after a change of a run is committed. Called on the io_context thread; must not block.
class RunListener {
 public:
  virtual ~RunListener() = default;
  virtual void OnRunCommitted(const std::string& run_id) = 0;
};

struct SubmitRequest {
  std::string workflow_yaml;
  std::string file_name;
  std::string workflow_name;     // the stored workflow, or "" for an inline spec
  int64_t workflow_version = 0;  // of the stored workflow; 0 for inline
  // The run's bundle, at most one of: a stored bundle by digest (a stored workflow version's),
  // or the files of an uploaded one, stored (Store::PutBundle) once the spec has passed every
  // check and before the run. Neither: no bundle.
  std::string bundle_digest;
  std::vector<storage::BundleFile> bundle;
  // Optional: a last check of the parsed, validated workflow (parameters resolved), on the
  // caller's thread before anything is stored; an error fails the submission with it.
  std::function<absl::Status(const engine::Workflow&)> check;
  std::map<std::string, std::string> parameters;
  std::string request_id;
  // Added to the spec's metadata.labels, replacing them per key; the run record keeps both.
  std::map<std::string, std::string> labels;
  // ResubmitRun --memoized: the finished run whose succeeded nodes the new run starts from.
  std::string memoized_from;
  // The run's namespace (the server resolved and authorized it) and who submitted it.
  std::string namespace_name = "default";
  std::string submitted_by;
};

// The scheduler's metric families (scheduler.cc declares them; docs/metrics.md describes them).
struct SchedulerMetrics;

class Scheduler {
 public:
  Scheduler(boost::asio::io_context& io, storage::Store* store, runners::RunnerRegistry* runners,
            Clock* clock, SchedulerOptions options);
  ~Scheduler();
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  // Resumes every unfinished run from the store. Call once, before serving.
  absl::Status Recover();

  // Validates and stores a new run (and its uploaded bundle), then starts it. `done` gets the
  // stored run record, or InvalidArgument (bad spec, parameters or bundle, or the request's
  // `check` failed), or the store's error (nothing is started). Blocks while an uploaded bundle
  // is stored. With a
  // request id that names an existing run, `done` gets that run and nothing new is created.
  void Submit(SubmitRequest request, std::function<void(absl::StatusOr<storage::RunRecord>)> done);

  // StopRun / TerminateRun: nothing new starts, running attempts are cancelled, the run ends
  // Failed; after StopRun (Argo's stop) exit hooks still run (engine::RunState::Stop), and a
  // TerminateRun after it ends them too. FailedPrecondition if the run is already finished;
  // NotFound if unknown.
  void Stop(const std::string& run_id, const std::string& message, bool terminate,
            std::function<void(absl::StatusOr<storage::RunRecord>)> done);

  // ResumeRun / SetNode: `change` alters the run's suspended nodes (engine::RunState::Resume or
  // SetSuspendedNode, given the time); the change and an event `event_type` carrying `message`
  // are committed in one batch before `done` gets the run record, then the run moves on.
  // `done` gets change's error unchanged (nothing is committed), FailedPrecondition if the run
  // is finished, NotFound if unknown.
  void ChangeSuspended(const std::string& run_id, const std::string& event_type,
                       const std::string& message,
                       std::function<absl::Status(engine::RunState&, int64_t now_ms)> change,
                       std::function<void(absl::StatusOr<storage::RunRecord>)> done);

  // RetryRun (engine::RunState::Retry): a finished run that did not succeed (or whose `restart`
  // nodes, by name, are named) runs again from where it failed, under its own id. The change and
  // a RunRetried event are committed before `done` gets the run record. FailedPrecondition if
  // the run is still running or succeeded with nothing named; NotFound if unknown.
  void Retry(const std::string& run_id, std::set<std::string> restart, const std::string& message,
             std::function<void(absl::StatusOr<storage::RunRecord>)> done);

  // ResubmitRun: a new run of the stored run's spec, bundle, labels, namespace and parameters
  // (with `parameters` over them), submitted by `submitted_by`, as Submit(); with `memoized` it
  // starts from the old run's succeeded nodes (RunState::ResubmitFrom), which must be finished
  // and not Succeeded.
  void Resubmit(const std::string& run_id, bool memoized,
                std::map<std::string, std::string> parameters, const std::string& submitted_by,
                std::function<void(absl::StatusOr<storage::RunRecord>)> done);

  // Listeners are told of every committed change. Not owned; must outlive the scheduler.
  void AddListener(RunListener* listener);

  // Whether the last commit succeeded (readiness). Thread-safe.
  bool healthy() const { return healthy_.load(); }
  // Runs currently held in memory. Thread-safe.
  int active_runs() const { return active_runs_.load(); }

  // Kills every running attempt (no callbacks) and drops in-memory state. Committed state is
  // kept: a later Recover() continues the runs. Call on the io_context thread or after it stopped.
  void Shutdown();

 private:
  struct ActiveRun;

  void StartRun(std::unique_ptr<ActiveRun> run,
                std::function<void(absl::StatusOr<storage::RunRecord>)> done);
  // Advances `run`, commits the step, then launches what it decided.
  void Step(ActiveRun* run);
  // The files of the run's bundle, read from the store once and shared (bundle_cache_).
  absl::StatusOr<std::shared_ptr<const std::vector<storage::BundleFile>>> LoadBundle(
      ActiveRun* run);
  // RunState::Advance, then records the runner and external name of each attempt to launch.
  std::vector<engine::DispatchRequest> AdvanceAndAssign(ActiveRun* run);
  // Turns changed nodes into a WriteBatch with events; updates the run record.
  storage::WriteBatch CollectChanges(ActiveRun* run);
  // InvalidArgument naming the template when `workflow` uses a semaphore without a limit.
  // The limits of the semaphores `workflow` names that dagd's configuration does not size, from
  // the stored ConfigMaps (data KEY of ConfigMap CONFIGMAP, a whole number >= 1). InvalidArgument
  // naming the semaphore and the fix when one is unknown or its value is no such number; the
  // store's error if it cannot be read. Names with tags are read when their node starts.
  absl::StatusOr<std::map<std::string, int64_t>> SemaphoreLimits(
      const engine::Workflow& workflow, const std::string& file_name) const;
  // Once the lock table has released a lock since the last call, moves on every run (but
  // `except`) that waits for one.
  void WakeLockWaiters(const std::string& except);
  // The run in memory, or why a request to change it cannot be served: FailedPrecondition when
  // it is finished (in memory or stored), the store's NotFound when unknown. Loop thread.
  absl::StatusOr<ActiveRun*> FindUnfinished(const std::string& run_id);
  // Commits `batch` plus an event of `type` with `message`, then answers `done` with the run
  // and, with `step_after`, moves the run on.
  // A stored run rebuilt in memory (spec parsed, nodes restored, tables attached); not yet in
  // runs_.
  absl::StatusOr<std::unique_ptr<ActiveRun>> LoadRun(storage::RunRecord record);
  void CommitRequest(ActiveRun* run, storage::WriteBatch batch, const std::string& type,
                     const std::string& message, bool step_after,
                     std::function<void(absl::StatusOr<storage::RunRecord>)> done);
  void Commit(const std::string& run_id, storage::WriteBatch batch,
              std::function<void()> after_commit);
  // Hands the attempt to its runner: Start(), or with `reattach` (Recover) Reattach() to an
  // attempt a previous dagd launched, keeping its working directory.
  void Launch(ActiveRun* run, const engine::DispatchRequest& dispatch, bool reattach = false);
  // Cancels the attempt through `runner` once the template's `timeout` has passed.
  void ArmTimeout(ActiveRun* run, const engine::DispatchRequest& dispatch, runners::Runner* runner,
                  int64_t timeout_ms);
  void OnAttemptLog(const std::string& run_id, const std::string& node_name, int attempt,
                    std::string_view stream, std::string_view data);
  // A line from the attempt's event channel: parsed into an AnsibleEventRecord and committed
  // with the next log flush (or the attempt's end); garbage is dropped, logged once per run.
  void OnAttemptEvent(const std::string& run_id, const std::string& node_name, int attempt,
                      std::string_view json_line);
  // Commits pending log chunks and Ansible events within log_flush_interval_ms.
  void ArmLogFlush(ActiveRun* run);
  void OnAttemptFinished(const std::string& run_id, const std::string& node_name, int attempt,
                         const engine::AttemptResult& result);
  void FlushLogs(ActiveRun* run);
  void ArmWakeup(ActiveRun* run);
  void Notify(const std::string& run_id);
  void Retire(const std::string& run_id);
  // Stops the run's state machine with `reason` and asks the runners to end its running attempts
  // that the stop holds for (each then reports through the normal attempt-finished path).
  void StopAndCancel(ActiveRun* run, const std::string& reason, engine::StopStrategy strategy);
  // Counts what `batch` committed for `run` (runs started and finished, attempts, retries,
  // durations, queue waits, Ansible results). Called once per committed batch.
  void CountCommitted(ActiveRun* run, const storage::WriteBatch& batch);
  // Sets the gauges read from run state (runs active, attempts running, ready queue, waiting
  // retries, attempts past their deadline). On the io_context thread.
  void SampleGauges();
  ActiveRun* Find(const std::string& run_id);

  boost::asio::io_context& io_;
  storage::Store* store_;
  runners::RunnerRegistry* runners_;
  Clock* clock_;
  SchedulerOptions options_;
  std::map<std::string, std::unique_ptr<ActiveRun>> runs_;   // io thread only
  std::map<std::string, std::string> inflight_request_ids_;  // request id -> run id, io thread
  // Bundles held by active runs, by digest; io thread only.
  std::map<std::string, std::weak_ptr<const std::vector<storage::BundleFile>>> bundle_cache_;
  std::mutex listeners_mu_;
  std::vector<RunListener*> listeners_;
  std::unique_ptr<SchedulerMetrics> metrics_;  // null without SchedulerOptions.metrics
  std::atomic<bool> healthy_{true};
  std::atomic<int> active_runs_{0};
  // Argo's synchronization locks of every run; io thread only. A release wakes the runs waiting
  // for one (Step()).
  engine::LockTable locks_;
  int64_t locks_released_seen_ = 0;
  // Memoization caches of every run (`memoize`); io thread only. Loaded from the store by
  // Recover(); new entries are committed with the nodes that produced them (CollectChanges).
  engine::MemoCache memo_;
  std::shared_ptr<std::atomic<bool>> alive_;  // guards callbacks that outlive the scheduler
};

// The run's name for a workflow: metadata.name, or generateName plus 5 random characters.
std::string NewRunId(const engine::Workflow& workflow);

}  // namespace dagd::scheduler

#endif  // DAGD_SCHEDULER_SCHEDULER_H_
