#include "scheduler/scheduler.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <filesystem>
#include <future>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <set>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "engine/duration.h"
#include "engine/parser.h"
#include "engine/status_macros.h"
#include "engine/template_refs.h"
#include "engine/validate.h"
#include "logging/log.h"

namespace dagd::scheduler {
namespace {

namespace asio = boost::asio;
using engine::NodePhase;

std::shared_ptr<spdlog::logger> Log() {
  static std::shared_ptr<spdlog::logger> logger = logging::Get("scheduler");
  return logger;
}

// FNV-1a: a stable, short fingerprint of a node name for file and external names.
std::string ShortHash(const std::string& text) {
  uint64_t h = 1469598103934665603ULL;
  for (unsigned char c : text) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out(8, '0');
  for (int i = 7; i >= 0; --i, h >>= 4) out[i] = kHex[h & 0xf];
  return out;
}

// A file-system-safe rendering of a node's display name.
std::string SafeName(const std::string& name) {
  std::string out;
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_' || c == '.';
    out.push_back(ok ? c : '_');
    if (out.size() >= 48) break;
  }
  return out;
}

// Appends `src` to `dst`: later node states replace earlier ones of the same node.
void MergeBatch(storage::WriteBatch& dst, storage::WriteBatch src) {
  if (!src.runs.empty()) dst.runs = std::move(src.runs);
  if (dst.node_run_id.empty()) dst.node_run_id = src.node_run_id;
  std::map<std::string, size_t> index;
  for (size_t i = 0; i < dst.nodes.size(); ++i) index[dst.nodes[i].name] = i;
  for (engine::NodeState& node : src.nodes) {
    auto it = index.find(node.name);
    if (it != index.end()) {
      dst.nodes[it->second] = std::move(node);
    } else {
      index[node.name] = dst.nodes.size();
      dst.nodes.push_back(std::move(node));
    }
  }
  for (auto& e : src.events) dst.events.push_back(std::move(e));
  for (auto& l : src.logs) dst.logs.push_back(std::move(l));
  for (auto& a : src.ansible_events) dst.ansible_events.push_back(std::move(a));
  for (auto& m : src.memo_entries) dst.memo_entries.push_back(std::move(m));
  for (std::string& removed : src.removed_nodes) {
    // A node removed after it was queued for an upsert: the removal wins.
    std::erase_if(dst.nodes, [&](const engine::NodeState& n) { return n.name == removed; });
    dst.removed_nodes.push_back(std::move(removed));
  }
}

// An Ansible event's stored JSON is capped: a module that returns megabytes (a slurped file, a
// huge command output) must not make every reader of the run's events pay for it. Beyond the
// cap, the module result is replaced by a note of its size and the start of its "msg"; host,
// task, changed and failed stay as they were.
constexpr size_t kMaxAnsibleEventBytes = 64 * 1024;

// The stored form of one line from dagd's Ansible callback plugin (runners/local/ansible/
// dagd_events.py), or nullopt if it is not a JSON object with a string "kind".
std::optional<storage::AnsibleEventRecord> ParseAnsibleEvent(std::string_view line) {
  nlohmann::json event = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (!event.is_object()) return std::nullopt;
  auto text = [&event](const char* key) {
    auto it = event.find(key);
    return it != event.end() && it->is_string() ? it->get<std::string>() : std::string();
  };
  auto flag = [&event](const char* key) {
    auto it = event.find(key);
    return it != event.end() && it->is_boolean() && it->get<bool>();
  };
  storage::AnsibleEventRecord record;
  record.kind = text("kind");
  if (record.kind.empty()) return std::nullopt;
  record.host = text("host");
  record.task = text("task");
  record.play = text("play");
  record.changed = flag("changed");
  record.failed = flag("failed") || record.kind == "runner_on_unreachable";
  if (auto item = event.find("item"); item != event.end()) {
    record.item = item->dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  }
  record.payload = event.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  // The final stats are kept whole: they grow with the number of hosts, not with module output.
  if (record.payload.size() > kMaxAnsibleEventBytes && record.kind != "stats") {
    nlohmann::json note = {{"truncated", true}, {"bytes", record.payload.size()}};
    if (auto result = event.find("result"); result != event.end() && result->is_object()) {
      if (auto msg = result->find("msg"); msg != result->end() && msg->is_string()) {
        note["msg"] = msg->get<std::string>().substr(0, 1024);
      }
    }
    event["result"] = std::move(note);
    if (event.contains("item") && record.item.size() > 1024) event["item"] = "(truncated)";
    if (record.item.size() > 1024) record.item = "\"(truncated)\"";
    record.payload = event.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    if (record.payload.size() > kMaxAnsibleEventBytes) {  // huge names or item: keep the gist
      record.payload =
          nlohmann::json({{"kind", record.kind}, {"truncated", true}, {"bytes", note["bytes"]}})
              .dump();
    }
  }
  return record;
}

struct SeenNode {
  NodePhase phase = NodePhase::kPending;
  std::vector<NodePhase> attempts;
};

// The `workflow` label of a run: its workflow name (the spec's DisplayName for runs stored
// before inline runs had one). Never the run id.
std::string WorkflowLabel(const storage::RunRecord& record, const engine::Workflow& workflow) {
  if (!record.workflow_name.empty()) return record.workflow_name;
  std::string name = workflow.DisplayName();
  return name.empty() ? "(unnamed)" : name;
}

double Seconds(int64_t ms) { return static_cast<double>(std::max<int64_t>(0, ms)) / 1000.0; }

}  // namespace

struct SchedulerMetrics {
  explicit SchedulerMetrics(metrics::Registry* r)
      : runs_started(r->AddCounter("dagd_runs_started_total", "Runs created.", {"workflow"})),
        runs_finished(r->AddCounter("dagd_runs_finished_total", "Runs that reached a final phase.",
                                    {"workflow", "phase"})),
        runs_active(r->AddGauge("dagd_runs_active", "Runs in progress.")),
        nodes_running(r->AddGauge("dagd_nodes_running", "Node attempts running now.", {"runner"})),
        ready_queue(r->AddGauge("dagd_ready_queue_depth",
                                "Pod nodes ready to start, waiting for a launch slot.")),
        waiting_retry(
            r->AddGauge("dagd_nodes_waiting_retry", "Nodes waiting for a retry backoff to end.")),
        past_deadline(r->AddGauge("dagd_nodes_past_deadline",
                                  "Running attempts whose template timeout has passed.")),
        attempts(r->AddCounter("dagd_node_attempts_total", "Node attempts that ended.",
                               {"runner", "template", "phase"})),
        retries(r->AddCounter("dagd_node_retries_total",
                              "Attempts started after the first one of a node.",
                              {"runner", "template"})),
        timeouts(r->AddCounter("dagd_node_timeouts_total",
                               "Attempts cancelled because their timeout passed.", {"runner"})),
        attempt_duration(r->AddHistogram("dagd_node_attempt_duration_seconds",
                                         "From an attempt's start to its end.", {"runner", "phase"},
                                         metrics::DurationBuckets())),
        queue_wait(r->AddHistogram("dagd_node_queue_wait_seconds",
                                   "From a node becoming ready to its first attempt's start.",
                                   {"runner"}, metrics::DurationBuckets())),
        ansible_results(r->AddCounter("dagd_ansible_task_results_total",
                                      "Ansible task results per host, as in the recap.",
                                      {"status"})) {}

  metrics::CounterFamily* runs_started;
  metrics::CounterFamily* runs_finished;
  metrics::GaugeFamily* runs_active;
  metrics::GaugeFamily* nodes_running;
  metrics::GaugeFamily* ready_queue;
  metrics::GaugeFamily* waiting_retry;
  metrics::GaugeFamily* past_deadline;
  metrics::CounterFamily* attempts;
  metrics::CounterFamily* retries;
  metrics::CounterFamily* timeouts;
  metrics::HistogramFamily* attempt_duration;
  metrics::HistogramFamily* queue_wait;
  metrics::CounterFamily* ansible_results;
};

class SystemClockImpl : public Clock {
 public:
  int64_t NowMs() override {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  }
};

Clock* SystemClock() {
  static SystemClockImpl clock;
  return &clock;
}

std::string NewRunId(const engine::Workflow& workflow) {
  std::string base = !workflow.generate_name.empty() ? workflow.generate_name : workflow.name + "-";
  static constexpr char kAlphabet[] = "abcdefghijklmnopqrstuvwxyz0123456789";
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  std::uniform_int_distribution<int> pick(0, sizeof(kAlphabet) - 2);
  for (int i = 0; i < 5; ++i) base.push_back(kAlphabet[pick(rng)]);
  return base;
}

struct Scheduler::ActiveRun {
  explicit ActiveRun(asio::io_context& io) : wakeup(io), log_flush(io), commit_retry(io) {}

  storage::RunRecord record;
  std::shared_ptr<const engine::Workflow> workflow;
  std::optional<engine::RunState> state;
  int64_t next_sequence = 1;
  std::map<std::string, SeenNode> seen;
  std::vector<storage::LogChunkRecord> pending_logs;
  // Output bytes taken per (node, attempt), for SchedulerOptions::max_log_bytes_per_attempt;
  // past the limit once the note that output was dropped is stored.
  std::map<std::pair<std::string, int>, int64_t> log_bytes;
  std::vector<storage::AnsibleEventRecord> pending_ansible_events;  // flushed with the logs
  bool bad_event_logged = false;
  // The bundle's files once an attempt needed them (LoadBundle); shared with other runs.
  std::shared_ptr<const std::vector<storage::BundleFile>> bundle;

  // Attempts handed to a runner and not yet finished: (node, attempt) -> (runner, external name).
  std::map<std::pair<std::string, int>, std::pair<std::string, std::string>> running;
  // A template `timeout` of a running attempt: when it fires, the attempt is cancelled.
  std::map<std::pair<std::string, int>, std::unique_ptr<asio::steady_timer>> timeouts;

  // Commits of one run are applied in order, one at a time; what arrives meanwhile is merged.
  bool commit_in_flight = false;
  storage::WriteBatch queued;
  std::vector<std::function<void()>> queued_after;

  asio::steady_timer wakeup;
  int64_t wakeup_at_ms = 0;
  asio::steady_timer log_flush;
  bool log_flush_armed = false;
  asio::steady_timer commit_retry;
};

Scheduler::Scheduler(asio::io_context& io, storage::Store* store, runners::RunnerRegistry* runners,
                     Clock* clock, SchedulerOptions options)
    : io_(io),
      store_(store),
      runners_(runners),
      clock_(clock),
      options_(std::move(options)),
      alive_(std::make_shared<std::atomic<bool>>(true)),
      locks_(options_.semaphore_limits) {
  if (options_.metrics == nullptr) return;
  metrics_ = std::make_unique<SchedulerMetrics>(options_.metrics);
  // Run state belongs to the io_context thread: sample there, waiting a little when the scrape
  // comes from another thread. A busy loop leaves the gauges at their last values.
  options_.metrics->OnCollect([this, alive = alive_] {
    if (!*alive) return;
    if (io_.get_executor().running_in_this_thread()) return SampleGauges();
    auto sampled = std::make_shared<std::promise<void>>();
    asio::post(io_, [this, alive, sampled] {
      if (*alive) SampleGauges();
      sampled->set_value();
    });
    sampled->get_future().wait_for(std::chrono::seconds(1));
  });
}

Scheduler::~Scheduler() { *alive_ = false; }

void Scheduler::SampleGauges() {
  if (!metrics_) return;
  const int64_t now = clock_->NowMs();
  std::map<std::string, int> running_by_runner;
  for (const std::string& name : runners_->Names()) running_by_runner[name] = 0;
  int queued = 0;
  int waiting = 0;
  int past_deadline = 0;
  for (const auto& [run_id, run] : runs_) {
    for (const auto& [key, who] : run->running) ++running_by_runner[who.first];
    for (const auto& [key, timer] : run->timeouts) {
      if (timer->expiry() <= asio::steady_timer::clock_type::now()) ++past_deadline;
    }
    for (const auto& [name, node] : run->state->nodes()) {
      if (!engine::IsLeaf(node.type)) continue;
      if (node.phase == NodePhase::kPending) ++queued;
      if (node.retry_at_ms > 0 && !engine::IsFinal(node.phase) && node.retry_at_ms > now) {
        ++waiting;
      }
    }
  }
  metrics_->runs_active->Get().Set(static_cast<double>(runs_.size()));
  for (const auto& [runner, n] : running_by_runner)
    metrics_->nodes_running->Labels({runner}).Set(n);
  metrics_->ready_queue->Get().Set(queued);
  metrics_->waiting_retry->Get().Set(waiting);
  metrics_->past_deadline->Get().Set(past_deadline);
}

void Scheduler::CountCommitted(ActiveRun* run, const storage::WriteBatch& batch) {
  if (!metrics_) return;
  const std::string workflow = WorkflowLabel(run->record, *run->workflow);
  const auto& nodes = run->state->nodes();
  for (const storage::EventRecord& event : batch.events) {
    if (event.type == "RunCreated") {
      metrics_->runs_started->Labels({workflow}).Increment();
      // Every final phase has a series from the first run on, so that increase() and rate()
      // see a workflow's first failure (a series that starts at 1 has no increase).
      for (NodePhase phase : {NodePhase::kSucceeded, NodePhase::kFailed, NodePhase::kError}) {
        metrics_->runs_finished->Labels({workflow, engine::NodePhaseName(phase)});
      }
    } else if (event.type == "RunPhase" && engine::IsFinal(event.phase)) {
      metrics_->runs_finished->Labels({workflow, engine::NodePhaseName(event.phase)}).Increment();
    } else if (event.type == "AttemptStarted" || event.type == "AttemptFinished") {
      auto it = nodes.find(event.node_name);
      if (it == nodes.end() || event.attempt < 1 ||
          event.attempt > static_cast<int>(it->second.attempts.size())) {
        continue;
      }
      const engine::NodeState& node = it->second;
      const engine::AttemptRecord& attempt = node.attempts[event.attempt - 1];
      if (event.type == "AttemptStarted") {
        if (attempt.number > 1) {
          metrics_->retries->Labels({attempt.runner, node.template_name}).Increment();
        } else {
          metrics_->queue_wait->Labels({attempt.runner})
              .Observe(Seconds(attempt.started_at_ms - node.started_at_ms));
        }
      } else {
        const char* phase = engine::NodePhaseName(event.phase);
        metrics_->attempts->Labels({attempt.runner, node.template_name, phase}).Increment();
        metrics_->attempt_duration->Labels({attempt.runner, phase})
            .Observe(Seconds(attempt.finished_at_ms - attempt.started_at_ms));
      }
    }
  }
  // Per task and host, as in Ansible's recap: a loop's items are not counted one by one.
  for (const storage::AnsibleEventRecord& event : batch.ansible_events) {
    if (event.kind.rfind("runner_item_", 0) == 0) continue;
    const char* status = storage::AnsibleResultStatus(event);
    if (*status != '\0') metrics_->ansible_results->Labels({status}).Increment();
  }
}

void Scheduler::AddListener(RunListener* listener) {
  std::lock_guard<std::mutex> lock(listeners_mu_);
  listeners_.push_back(listener);
}

void Scheduler::Notify(const std::string& run_id) {
  std::lock_guard<std::mutex> lock(listeners_mu_);
  for (RunListener* l : listeners_) l->OnRunCommitted(run_id);
}

Scheduler::ActiveRun* Scheduler::Find(const std::string& run_id) {
  auto it = runs_.find(run_id);
  return it == runs_.end() ? nullptr : it->second.get();
}

absl::Status Scheduler::Recover() {
  ASSIGN_OR_RETURN(std::vector<storage::MemoRecord> memo_entries, store_->ListMemoEntries());
  for (storage::MemoRecord& entry : memo_entries) {
    memo_.Load(entry.cache, entry.key,
               {std::move(entry.outputs), entry.saved_at_ms, std::move(entry.node)});
  }
  ASSIGN_OR_RETURN(std::vector<storage::RunRecord> unfinished, store_->ListUnfinishedRuns());
  for (storage::RunRecord& record : unfinished) {
    const std::string run_id = record.id;
    absl::StatusOr<std::unique_ptr<ActiveRun>> loaded = LoadRun(std::move(record));
    if (!loaded.ok()) {
      // The spec was valid when the run was stored; a parser that no longer accepts it is a
      // dagd upgrade problem. Keep the run as it is rather than guess.
      if (!absl::IsInternal(loaded.status())) return loaded.status();  // the store failed
      Log()->error("{}{}", logging::RunTag(run_id), loaded.status().ToString());
      continue;
    }
    std::unique_ptr<ActiveRun> run = *std::move(loaded);
    const int64_t now = clock_->NowMs();
    // Cluster runners pick their attempts up again by name (DESIGN.md §3, rule 2); local
    // attempts died with dagd and end in Error, to be retried under their retry strategy.
    std::vector<engine::DispatchRequest> reattach;
    for (const auto& [node_name, attempt] : run->state->RunningAttempts()) {
      const engine::AttemptRecord& record = run->state->nodes().at(node_name).attempts.back();
      runners::Runner* runner = runners_->Find(record.runner);
      engine::AttemptResult lost;
      lost.phase = NodePhase::kError;
      lost.message = "dagd restarted while this attempt was running; its processes ended with dagd";
      if (runner != nullptr && runner->CanReattach()) {
        absl::StatusOr<engine::DispatchRequest> dispatch = run->state->RunningDispatch(node_name);
        if (dispatch.ok()) {
          reattach.push_back(*std::move(dispatch));
          continue;
        }
        lost.message = absl::StrCat("dagd restarted and cannot reattach to this attempt: ",
                                    dispatch.status().message());
      } else if (runner == nullptr) {
        lost.message = absl::StrCat("dagd restarted without runner \"", record.runner,
                                    "\", which ran this attempt");
      }
      run->state->OnAttemptFinished(node_name, attempt, lost, now);
    }
    Log()->info("{}resumed after restart ({} attempt(s) reattached)",
                logging::RunTag(run->record.id), reattach.size());
    ActiveRun* raw = run.get();
    runs_[raw->record.id] = std::move(run);
    active_runs_ = static_cast<int>(runs_.size());
    // By name, not by pointer: a Shutdown() before this runs drops the run.
    asio::post(io_,
               [this, alive = alive_, run_id = raw->record.id, reattach = std::move(reattach)] {
                 if (!*alive) return;
                 ActiveRun* r = Find(run_id);
                 if (!r) return;
                 for (const engine::DispatchRequest& d : reattach) Launch(r, d, /*reattach=*/true);
                 Step(r);
               });
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<Scheduler::ActiveRun>> Scheduler::LoadRun(
    storage::RunRecord record) {
  auto parsed = engine::ParseRunSpec(record.workflow_yaml, record.file_name);
  if (!parsed.ok()) {
    return absl::InternalError(
        absl::StrCat("stored spec no longer parses: ", parsed.status().message()));
  }
  // Semaphores sized by stored ConfigMaps, as they are now (one since removed: its nodes wait
  // with a message naming it).
  if (absl::StatusOr<std::map<std::string, int64_t>> limits =
          SemaphoreLimits(*parsed, record.file_name);
      limits.ok()) {
    for (const auto& [name, limit] : *limits) locks_.SetLimit(name, limit);
  }
  auto workflow = std::make_shared<const engine::Workflow>(std::move(parsed).value());
  ASSIGN_OR_RETURN(std::vector<engine::NodeState> nodes, store_->GetNodes(record.id));
  auto run = std::make_unique<ActiveRun>(io_);
  for (const engine::NodeState& node : nodes) {
    SeenNode seen{node.phase, {}};
    for (const auto& a : node.attempts) seen.attempts.push_back(a.phase);
    run->seen[node.name] = std::move(seen);
  }
  auto state = engine::RunState::Restore(workflow, record.parameters, record.id, std::move(nodes),
                                         record.stop);
  if (!state.ok()) {
    return absl::InternalError(absl::StrCat("cannot restore: ", state.status().message()));
  }
  run->state.emplace(std::move(state).value());
  run->state->SetLockTable(&locks_);
  run->state->SetMemoCache(&memo_);
  run->state->SetLimits(options_.run_limits);
  for (const auto& [holder, keys] : run->state->HeldLocks()) locks_.Hold(holder, keys);
  run->workflow = workflow;
  run->next_sequence = record.last_sequence + 1;
  run->record = std::move(record);
  return run;
}

void Scheduler::Retry(const std::string& run_id, std::set<std::string> restart,
                      const std::string& message,
                      std::function<void(absl::StatusOr<storage::RunRecord>)> done) {
  asio::post(io_, [this, run_id, restart = std::move(restart), message, done = std::move(done)] {
    if (Find(run_id) != nullptr) {
      return done(absl::FailedPreconditionError(
          absl::StrCat("run ", run_id, " is still running; stop it first, or wait for its end")));
    }
    absl::StatusOr<storage::RunRecord> record = store_->GetRun(run_id);
    if (!record.ok()) return done(record.status());
    absl::StatusOr<std::unique_ptr<ActiveRun>> loaded = LoadRun(*std::move(record));
    if (!loaded.ok()) return done(loaded.status());
    std::unique_ptr<ActiveRun> run = *std::move(loaded);
    if (absl::Status retried = run->state->Retry(restart); !retried.ok()) {
      return done(retried);
    }
    ActiveRun* raw = run.get();
    runs_[run_id] = std::move(run);
    active_runs_ = static_cast<int>(runs_.size());
    raw->record.finished_at_ms = 0;
    storage::WriteBatch batch = CollectChanges(raw);
    batch.removed_nodes = raw->state->TakeRemovedNodes();
    for (const std::string& name : batch.removed_nodes) raw->seen.erase(name);
    Log()->info("{}retried ({} node(s) to run again)", logging::RunTag(run_id),
                batch.removed_nodes.size());
    CommitRequest(raw, std::move(batch), "RunRetried", message.empty() ? "retry" : message,
                  /*step_after=*/true, std::move(done));
  });
}

void Scheduler::Resubmit(const std::string& run_id, bool memoized,
                         std::map<std::string, std::string> parameters,
                         const std::string& submitted_by,
                         std::function<void(absl::StatusOr<storage::RunRecord>)> done) {
  absl::StatusOr<storage::RunRecord> old = store_->GetRun(run_id);
  if (!old.ok()) return done(old.status());
  SubmitRequest request;
  request.workflow_yaml = old->workflow_yaml;
  request.file_name = old->file_name;
  request.workflow_name = old->workflow_version > 0 ? old->workflow_name : "";
  request.workflow_version = old->workflow_version;
  request.bundle_digest = old->bundle_digest;
  request.parameters = old->parameters;
  for (auto& [name, value] : parameters) request.parameters[name] = std::move(value);
  request.labels = old->labels;
  request.namespace_name = old->namespace_name;
  request.submitted_by = submitted_by;
  if (memoized) request.memoized_from = run_id;
  Submit(std::move(request), std::move(done));
}

void Scheduler::Submit(SubmitRequest request,
                       std::function<void(absl::StatusOr<storage::RunRecord>)> done) {
  // Parsing and validation need no run state: do them on the caller's thread.
  auto parsed = engine::ParseRunSpec(request.workflow_yaml, request.file_name);
  if (!parsed.ok()) return done(parsed.status());
  // What runs is a Workflow, whatever kind of document it came from: validated as one (its
  // entrypoint and the arguments the entrypoint needs).
  if (parsed->kind == engine::WorkflowKind::kConfigMap) {
    return done(absl::InvalidArgumentError(absl::StrCat(
        request.file_name, ": kind: a ConfigMap is not a workflow; store it with dagctl apply -f ",
        request.file_name, " (semaphores read their sizes from it)")));
  }
  parsed->kind = engine::WorkflowKind::kWorkflow;
  absl::StatusOr<std::map<std::string, int64_t>> semaphore_limits =
      SemaphoreLimits(*parsed, request.file_name);
  if (!semaphore_limits.ok()) return done(semaphore_limits.status());
  if (absl::Status valid = engine::ValidateWorkflow(*parsed); !valid.ok()) return done(valid);
  auto parameters = engine::ResolveWorkflowArguments(*parsed, request.parameters);
  if (!parameters.ok()) return done(parameters.status());
  if (request.check) {
    if (absl::Status checked = request.check(*parsed); !checked.ok()) return done(checked);
  }
  if (!request.bundle.empty()) {
    if (!request.bundle_digest.empty()) {
      return done(absl::InvalidArgumentError("a run has one bundle: a stored one or files"));
    }
    // Stored before the run: the run record's foreign key needs it. Content-addressed, so a
    // submission that fails later leaves at most a bundle that the next equal upload reuses.
    auto stored = store_->PutBundle(std::move(request.bundle), clock_->NowMs());
    if (!stored.ok()) {
      if (absl::IsInvalidArgument(stored.status())) return done(stored.status());
      return done(absl::Status(stored.status().code(), absl::StrCat("could not store the bundle: ",
                                                                    stored.status().message())));
    }
    request.bundle_digest = stored->digest;
    request.bundle.clear();
  }
  auto workflow = std::make_shared<const engine::Workflow>(std::move(parsed).value());

  asio::post(
      io_,
      [this, request = std::move(request), workflow, parameters = std::move(parameters).value(),
       semaphore_limits = *std::move(semaphore_limits), done = std::move(done)]() mutable {
        for (const auto& [name, limit] : semaphore_limits) locks_.SetLimit(name, limit);
        if (!request.request_id.empty()) {
          auto inflight = inflight_request_ids_.find(request.request_id);
          if (inflight != inflight_request_ids_.end()) {
            if (ActiveRun* run = Find(inflight->second)) return done(run->record);
          }
          auto existing = store_->GetRunByRequestId(request.request_id);
          if (existing.ok()) return done(std::move(existing).value());
          if (!absl::IsNotFound(existing.status())) return done(existing.status());
        }
        const int64_t now = clock_->NowMs();
        auto run = std::make_unique<ActiveRun>(io_);
        storage::RunRecord& record = run->record;
        // Run ids are random; a clash with a run in memory or on record would overwrite it.
        do {
          record.id = NewRunId(*workflow);
        } while (Find(record.id) || store_->GetRun(record.id).ok());
        record.workflow_name =
            !request.workflow_name.empty() ? request.workflow_name : workflow->DisplayName();
        record.workflow_version = request.workflow_version;
        record.workflow_yaml = std::move(request.workflow_yaml);
        record.file_name = std::move(request.file_name);
        record.bundle_digest = std::move(request.bundle_digest);
        record.parameters = parameters;
        record.request_id = request.request_id;
        record.labels = workflow->labels;
        for (const auto& [key, value] : request.labels) record.labels[key] = value;
        record.namespace_name = request.namespace_name;
        record.submitted_by = request.submitted_by;
        record.created_at_ms = now;
        record.started_at_ms = now;
        absl::StatusOr<engine::RunState> state;
        if (request.memoized_from.empty()) {
          state = engine::RunState::Create(workflow, parameters, record.id, now);
        } else if (Find(request.memoized_from) != nullptr) {
          return done(absl::FailedPreconditionError(
              absl::StrCat("run ", request.memoized_from,
                           " is still running; a memoized resubmit starts from a finished run")));
        } else {
          absl::StatusOr<std::vector<engine::NodeState>> nodes =
              store_->GetNodes(request.memoized_from);
          if (!nodes.ok()) return done(nodes.status());
          state = engine::RunState::ResubmitFrom(workflow, parameters, record.id,
                                                 request.memoized_from, *std::move(nodes));
        }
        if (!state.ok()) return done(state.status());
        run->state.emplace(std::move(state).value());
        run->state->SetLockTable(&locks_);
        run->state->SetMemoCache(&memo_);
        run->state->SetLimits(options_.run_limits);
        run->workflow = workflow;
        if (!record.request_id.empty()) inflight_request_ids_[record.request_id] = record.id;
        StartRun(std::move(run), std::move(done));
      });
}

void Scheduler::StartRun(std::unique_ptr<ActiveRun> run,
                         std::function<void(absl::StatusOr<storage::RunRecord>)> done) {
  ActiveRun* raw = run.get();
  const std::string run_id = raw->record.id;
  runs_[run_id] = std::move(run);
  active_runs_ = static_cast<int>(runs_.size());

  // The first commit is the submission itself: it must succeed before anything is acknowledged
  // or launched. If it fails the run never existed.
  storage::EventRecord created;
  created.run_id = run_id;
  created.sequence = raw->next_sequence++;
  created.time_ms = raw->record.created_at_ms;
  created.type = "RunCreated";
  created.phase = NodePhase::kPending;
  created.message = "submitted";
  std::vector<engine::DispatchRequest> dispatches = AdvanceAndAssign(raw);
  storage::WriteBatch batch = CollectChanges(raw);
  batch.events.insert(batch.events.begin(), created);

  auto alive = alive_;
  // Kept for the metrics, which count what was committed (only when there are metrics).
  auto committed = std::make_shared<storage::WriteBatch>();
  if (metrics_) *committed = batch;
  store_->Submit(
      std::move(batch), [this, alive, run_id, committed, dispatches = std::move(dispatches),
                         done = std::move(done)](const absl::Status& status) mutable {
        asio::post(io_, [this, alive, run_id, status, committed, dispatches = std::move(dispatches),
                         done = std::move(done)]() mutable {
          if (!*alive) return;
          ActiveRun* run = Find(run_id);
          if (!run) return done(absl::AbortedError("dagd is shutting down"));
          if (!run->record.request_id.empty()) inflight_request_ids_.erase(run->record.request_id);
          if (!status.ok()) {
            healthy_ = false;
            runs_.erase(run_id);
            active_runs_ = static_cast<int>(runs_.size());
            return done(absl::Status(status.code(),
                                     absl::StrCat("could not store the run: ", status.message())));
          }
          healthy_ = true;
          CountCommitted(run, *committed);
          done(run->record);
          for (const auto& d : dispatches) Launch(run, d);
          Notify(run_id);
          ArmWakeup(run);
          if (run->state->Done() && run->running.empty()) Retire(run_id);
        });
      });
}

std::vector<engine::DispatchRequest> Scheduler::AdvanceAndAssign(ActiveRun* run) {
  std::vector<engine::DispatchRequest> dispatches = run->state->Advance(clock_->NowMs());
  for (const auto& d : dispatches) {
    const std::string& runner = !d.resolved.runner.empty()       ? d.resolved.runner
                                : !run->workflow->runner.empty() ? run->workflow->runner
                                                                 : options_.default_runner;
    run->state->SetAttemptRunner(
        d.node_name, d.attempt, runner,
        absl::StrCat(run->record.id, "-", ShortHash(d.node_name), "-", d.attempt));
  }
  return dispatches;
}

storage::WriteBatch Scheduler::CollectChanges(ActiveRun* run) {
  storage::WriteBatch batch;
  batch.node_run_id = run->record.id;
  // Cache entries the run's last step stored: committed with the nodes that produced them.
  for (engine::MemoCache::Write& write : memo_.TakeWrites()) {
    batch.memo_entries.push_back({std::move(write.cache), std::move(write.key),
                                  std::move(write.entry.outputs), write.entry.saved_at_ms,
                                  std::move(write.entry.node)});
  }
  const int64_t now = clock_->NowMs();
  auto add_event = [&](const std::string& node, const std::string& type, NodePhase phase,
                       const std::string& message, int attempt) {
    storage::EventRecord e;
    e.run_id = run->record.id;
    e.sequence = run->next_sequence++;
    e.time_ms = now;
    e.node_name = node;
    e.type = type;
    e.phase = phase;
    e.message = message;
    e.attempt = attempt;
    batch.events.push_back(std::move(e));
  };

  // Events read in causal order: first the nodes that ended, children before parents; then the
  // nodes that started (which the endings made ready), parents before children (a parent's name
  // sorts before its children's).
  std::vector<std::string> changed = run->state->TakeChangedNodes();
  std::sort(changed.begin(), changed.end());
  const auto& nodes = run->state->nodes();
  for (bool ending : {true, false}) {
    auto visit = [&](const std::string& name) {
      auto it = nodes.find(name);
      if (it == nodes.end()) return;
      const engine::NodeState& node = it->second;
      if (engine::IsFinal(node.phase) != ending) return;
      auto [seen_it, inserted] = run->seen.try_emplace(name);
      SeenNode& seen = seen_it->second;
      if (!ending && (inserted || seen.phase != node.phase)) {
        add_event(name, "NodePhase", node.phase, node.message, 0);
        seen.phase = node.phase;
      }
      for (size_t i = 0; i < node.attempts.size(); ++i) {
        const engine::AttemptRecord& a = node.attempts[i];
        if (i >= seen.attempts.size()) {
          add_event(name, "AttemptStarted", NodePhase::kRunning,
                    absl::StrCat("attempt ", a.number, " on runner ", a.runner), a.number);
          seen.attempts.push_back(NodePhase::kRunning);
        }
        if (engine::IsFinal(a.phase) && !engine::IsFinal(seen.attempts[i])) {
          add_event(name, "AttemptFinished", a.phase, a.message, a.number);
          seen.attempts[i] = a.phase;
        }
      }
      if (ending && (inserted || seen.phase != node.phase)) {
        add_event(name, "NodePhase", node.phase, node.message, 0);
        seen.phase = node.phase;
      }
      batch.nodes.push_back(node);
    };
    if (ending) {
      std::for_each(changed.rbegin(), changed.rend(), visit);
    } else {
      std::for_each(changed.begin(), changed.end(), visit);
    }
  }

  storage::RunRecord& record = run->record;
  const NodePhase phase = run->state->phase();
  if (phase != record.phase || run->state->message() != record.message) {
    record.phase = phase;
    record.message = run->state->message();
    if (engine::IsFinal(phase) && record.finished_at_ms == 0) record.finished_at_ms = now;
    add_event("", "RunPhase", phase, record.message, 0);
  }
  record.stop = run->state->stop_strategy();
  batch.logs = std::move(run->pending_logs);
  run->pending_logs.clear();
  batch.ansible_events = std::move(run->pending_ansible_events);
  run->pending_ansible_events.clear();
  if (!batch.events.empty() || !batch.logs.empty()) {
    record.last_sequence = run->next_sequence - 1;
    batch.runs.push_back(record);
  }
  return batch;
}

absl::StatusOr<std::map<std::string, int64_t>> Scheduler::SemaphoreLimits(
    const engine::Workflow& workflow, const std::string& file_name) const {
  std::map<std::string, int64_t> limits;
  auto check = [&](const std::optional<engine::Synchronization>& sync,
                   const std::string& path) -> absl::Status {
    if (!sync) return absl::OkStatus();
    for (const std::string& name : sync->semaphores) {
      if (name.find("{{") != std::string::npos) continue;  // known when the node starts
      if (options_.semaphore_limits.count(name) > 0 || limits.count(name) > 0) continue;
      const size_t slash = name.find('/');
      const std::string config_map = name.substr(0, slash);
      const std::string key = slash == std::string::npos ? "" : name.substr(slash + 1);
      auto fail = [&](const std::string& why) {
        return absl::InvalidArgumentError(absl::StrCat(
            file_name, ": ", path, ": semaphore ", name, ": ", why, "; store a ConfigMap ",
            config_map, " with data ", key,
            ": \"N\" (dagctl apply -f FILE), or start dagd with --semaphore ", name, "=N"));
      };
      absl::StatusOr<storage::WorkflowRecord> stored = store_->GetWorkflow(config_map, 0);
      if (absl::IsNotFound(stored.status()))
        return fail("no ConfigMap " + config_map + " is stored");
      if (!stored.ok()) return stored.status();
      absl::StatusOr<engine::Workflow> parsed = engine::ParseWorkflow(stored->yaml, stored->name);
      if (!parsed.ok() || parsed->kind != engine::WorkflowKind::kConfigMap) {
        return fail("the stored \"" + config_map + "\" is not a ConfigMap");
      }
      auto value = parsed->config_data.find(key);
      int64_t limit = 0;
      if (value == parsed->config_data.end()) {
        return fail("ConfigMap " + config_map + " has no key " + key);
      }
      if (!absl::SimpleAtoi(value->second, &limit) || limit < 1) {
        return fail("ConfigMap " + config_map + " gives " + key + " = \"" + value->second +
                    "\", not a whole number >= 1");
      }
      limits[name] = limit;
    }
    return absl::OkStatus();
  };
  RETURN_IF_ERROR(check(workflow.synchronization, "spec.synchronization"));
  for (size_t i = 0; i < workflow.templates.size(); ++i) {
    RETURN_IF_ERROR(check(workflow.templates[i].synchronization,
                          absl::StrCat("spec.templates[", i, "].synchronization")));
  }
  return limits;
}

void Scheduler::WakeLockWaiters(const std::string& except) {
  if (locks_.releases() == locks_released_seen_) return;
  locks_released_seen_ = locks_.releases();
  for (const auto& [run_id, run] : runs_) {
    if (run_id == except || !run->state || !run->state->waiting_for_locks()) continue;
    asio::post(io_, [this, alive = alive_, id = run_id] {
      if (!*alive) return;
      if (ActiveRun* r = Find(id)) Step(r);
    });
  }
}

void Scheduler::Step(ActiveRun* run) {
  const std::string run_id = run->record.id;
  if (std::optional<int64_t> deadline = run->state->DeadlineMs();
      deadline && clock_->NowMs() >= *deadline && !run->state->stopping() && !run->state->Done()) {
    StopAndCancel(run,
                  absl::StrCat("Workflow exceeded its deadline (activeDeadlineSeconds ",
                               *run->workflow->active_deadline_seconds, ")"),
                  engine::StopStrategy::kTerminate);
  }
  std::vector<engine::DispatchRequest> dispatches = AdvanceAndAssign(run);
  WakeLockWaiters(run_id);
  storage::WriteBatch batch = CollectChanges(run);
  ArmWakeup(run);
  if (batch.empty() && dispatches.empty()) {
    if (run->state->Done() && run->running.empty() && !run->commit_in_flight) Retire(run_id);
    return;
  }
  Commit(run_id, std::move(batch), [this, run_id, dispatches = std::move(dispatches)] {
    ActiveRun* r = Find(run_id);
    if (!r) return;
    for (const auto& d : dispatches) Launch(r, d);
  });
}

void Scheduler::Commit(const std::string& run_id, storage::WriteBatch batch,
                       std::function<void()> after_commit) {
  ActiveRun* run = Find(run_id);
  if (!run) return;
  MergeBatch(run->queued, std::move(batch));
  if (after_commit) run->queued_after.push_back(std::move(after_commit));
  if (run->commit_in_flight) return;

  run->commit_in_flight = true;
  auto batch_ptr = std::make_shared<storage::WriteBatch>(std::move(run->queued));
  auto afters = std::make_shared<std::vector<std::function<void()>>>(std::move(run->queued_after));
  run->queued = storage::WriteBatch{};
  run->queued_after.clear();
  auto alive = alive_;
  storage::WriteBatch copy = *batch_ptr;
  store_->Submit(std::move(copy), [this, alive, run_id, batch_ptr,
                                   afters](const absl::Status& status) {
    asio::post(io_, [this, alive, run_id, batch_ptr, afters, status] {
      if (!*alive) return;
      ActiveRun* run = Find(run_id);
      if (!run) return;
      run->commit_in_flight = false;
      if (!status.ok()) {
        // Nothing of this batch is stored; keep it ahead of what came since and try again.
        // Nothing it decided (launches, acknowledgements) has happened.
        healthy_ = false;
        Log()->error("{}commit failed, retrying in 1s: {}", logging::RunTag(run_id),
                     status.ToString());
        storage::WriteBatch merged = std::move(*batch_ptr);
        MergeBatch(merged, std::move(run->queued));
        run->queued = std::move(merged);
        afters->insert(afters->end(), run->queued_after.begin(), run->queued_after.end());
        run->queued_after = std::move(*afters);
        run->commit_retry.expires_after(std::chrono::seconds(1));
        run->commit_retry.async_wait([this, alive, run_id](const boost::system::error_code& ec) {
          if (ec || !*alive) return;
          Commit(run_id, storage::WriteBatch{}, nullptr);
        });
        return;
      }
      healthy_ = true;
      CountCommitted(run, *batch_ptr);
      for (auto& after : *afters) after();
      Notify(run_id);
      if (!run->queued.empty() || !run->queued_after.empty()) {
        Commit(run_id, storage::WriteBatch{}, nullptr);
      } else if (run->state->Done() && run->running.empty()) {
        Retire(run_id);
      }
    });
  });
}

void Scheduler::Launch(ActiveRun* run, const engine::DispatchRequest& dispatch, bool reattach) {
  const std::string run_id = run->record.id;
  const auto& node = run->state->nodes().at(dispatch.node_name);
  const engine::AttemptRecord& attempt = node.attempts.at(dispatch.attempt - 1);

  auto fail = [&](const std::string& message) {
    engine::AttemptResult result;
    result.phase = NodePhase::kError;
    result.message = message;
    asio::post(io_, [this, alive = alive_, run_id, node_name = dispatch.node_name,
                     n = dispatch.attempt, result] {
      if (*alive) OnAttemptFinished(run_id, node_name, n, result);
    });
  };

  runners::Runner* runner = runners_->Find(attempt.runner);
  if (!runner) {
    std::string known;
    for (const auto& name : runners_->Names()) known += (known.empty() ? "" : ", ") + name;
    return fail(absl::StrCat("unknown runner \"", attempt.runner, "\"; this dagd has: ", known));
  }

  runners::AttemptSpec spec;
  spec.run_id = run_id;
  spec.node_name = dispatch.node_name;
  spec.attempt = dispatch.attempt;
  spec.external_name = attempt.external_name;
  spec.resolved = dispatch.resolved;
  spec.inputs = dispatch.inputs;
  spec.workflow_kubernetes = run->workflow->kubernetes;
  spec.grace_period_ms = options_.grace_period_ms;
  std::optional<int64_t> timeout_ms;
  if (!dispatch.resolved.timeout.empty()) {
    absl::StatusOr<int64_t> parsed = engine::ParseDurationMs(dispatch.resolved.timeout);
    if (!parsed.ok()) return fail(absl::StrCat("timeout: ", parsed.status().message()));
    timeout_ms = *parsed;
  }
  spec.work_dir =
      (std::filesystem::path(options_.data_dir) / "attempts" / run_id /
       absl::StrCat(SafeName(node.display_name), "-", ShortHash(node.name), "-", dispatch.attempt))
          .string();
  std::error_code ec;
  if (!reattach) {
    std::filesystem::remove_all(spec.work_dir, ec);
    std::filesystem::create_directories(spec.work_dir, ec);
  }
  if (ec) {
    return fail(
        absl::StrCat("cannot create the attempt directory ", spec.work_dir, ": ", ec.message()));
  }
  // A fresh copy of exactly the submitted bundle; the runner resolves playbook paths in it.
  // (A reattached attempt has what it was launched with already.)
  if (!reattach && !run->record.bundle_digest.empty()) {
    auto bundle = LoadBundle(run);
    if (!bundle.ok()) {
      return fail(absl::StrCat("cannot read the run's bundle ", run->record.bundle_digest, ": ",
                               bundle.status().message()));
    }
    if (absl::Status written = storage::MaterialiseBundle(**bundle, spec.work_dir); !written.ok()) {
      return fail(absl::StrCat("cannot write the run's bundle into ", spec.work_dir, ": ",
                               written.message()));
    }
    spec.bundle_dir = spec.work_dir;
  }

  runners::AttemptCallbacks callbacks;
  auto alive = alive_;
  callbacks.on_log = [this, alive, run_id, node_name = dispatch.node_name, n = dispatch.attempt](
                         std::string_view stream, std::string_view data) {
    if (*alive) OnAttemptLog(run_id, node_name, n, stream, data);
  };
  callbacks.on_event = [this, alive, run_id, node_name = dispatch.node_name,
                        n = dispatch.attempt](std::string_view json_line) {
    if (*alive) OnAttemptEvent(run_id, node_name, n, json_line);
  };
  callbacks.on_finished = [this, alive, run_id, node_name = dispatch.node_name,
                           n = dispatch.attempt](const engine::AttemptResult& result) {
    if (*alive) OnAttemptFinished(run_id, node_name, n, result);
  };
  run->running[{dispatch.node_name, dispatch.attempt}] = {attempt.runner, attempt.external_name};
  absl::Status started = reattach ? runner->Reattach(spec, std::move(callbacks))
                                  : runner->Start(spec, std::move(callbacks));
  if (!started.ok()) {
    run->running.erase({dispatch.node_name, dispatch.attempt});
    return fail(std::string(started.message()));
  }
  // A stop that arrived while this launch waited for its commit.
  if (run->state->StopHolds(dispatch.node_name)) {
    runner->Cancel(attempt.external_name, run->state->message());
  }
  if (timeout_ms) {
    // A reattached attempt has used part of its time already.
    const int64_t used =
        reattach ? std::max<int64_t>(0, clock_->NowMs() - attempt.started_at_ms) : 0;
    ArmTimeout(run, dispatch, runner, std::max<int64_t>(0, *timeout_ms - used));
  }
}

absl::StatusOr<std::shared_ptr<const std::vector<storage::BundleFile>>> Scheduler::LoadBundle(
    ActiveRun* run) {
  if (run->bundle) return run->bundle;
  const std::string& digest = run->record.bundle_digest;
  auto cached = bundle_cache_.find(digest);
  if (cached != bundle_cache_.end()) run->bundle = cached->second.lock();
  if (!run->bundle) {
    ASSIGN_OR_RETURN(std::vector<storage::BundleFile> files, store_->GetBundle(digest));
    run->bundle = std::make_shared<const std::vector<storage::BundleFile>>(std::move(files));
    std::erase_if(bundle_cache_, [](const auto& entry) { return entry.second.expired(); });
    bundle_cache_[digest] = run->bundle;
  }
  return run->bundle;
}

void Scheduler::ArmTimeout(ActiveRun* run, const engine::DispatchRequest& dispatch,
                           runners::Runner* runner, int64_t timeout_ms) {
  const engine::AttemptRecord& attempt =
      run->state->nodes().at(dispatch.node_name).attempts.at(dispatch.attempt - 1);
  const std::string external_name = attempt.external_name;
  const std::string message =
      absl::StrCat("timeout: the attempt ran longer than ", dispatch.resolved.timeout);
  auto& timer = run->timeouts[{dispatch.node_name, dispatch.attempt}];
  timer = std::make_unique<asio::steady_timer>(io_, std::chrono::milliseconds(timeout_ms));
  metrics::Counter* timeouts = metrics_ ? &metrics_->timeouts->Labels({attempt.runner}) : nullptr;
  // Cancelled (and destroyed) when the attempt ends; the runner outlives the scheduler's loop.
  timer->async_wait(
      [runner, external_name, message, timeouts](const boost::system::error_code& ec) {
        if (ec) return;
        if (timeouts) timeouts->Increment();
        runner->Cancel(external_name, message);
      });
}

void Scheduler::OnAttemptLog(const std::string& run_id, const std::string& node_name, int attempt,
                             std::string_view stream, std::string_view data) {
  ActiveRun* run = Find(run_id);
  if (!run) return;
  const int64_t limit = options_.max_log_bytes_per_attempt;
  int64_t& taken = run->log_bytes[{node_name, attempt}];
  if (limit > 0 && taken > limit) return;  // dropped, and said so already
  auto add = [&](std::string_view chunk_stream, std::string_view chunk_data) {
    storage::LogChunkRecord chunk;
    chunk.run_id = run_id;
    chunk.node_name = node_name;
    chunk.attempt = attempt;
    chunk.stream = std::string(chunk_stream);
    chunk.data = std::string(chunk_data);
    chunk.time_ms = clock_->NowMs();
    run->pending_logs.push_back(std::move(chunk));
  };
  if (limit > 0 && taken + static_cast<int64_t>(data.size()) > limit) {
    add(stream, data.substr(0, static_cast<size_t>(limit - taken)));
    add("stderr", absl::StrCat("\n[dagd: this attempt wrote more than ", limit,
                               " bytes of output; the rest is not stored "
                               "(dagd --max-log-bytes-per-attempt)]\n"));
    taken = limit + 1;
    Log()->warn("{}output over {} bytes; the rest is dropped",
                logging::RunTag(run_id, node_name, attempt), limit);
  } else {
    add(stream, data);
    taken += static_cast<int64_t>(data.size());
  }
  ArmLogFlush(run);
}

void Scheduler::OnAttemptEvent(const std::string& run_id, const std::string& node_name, int attempt,
                               std::string_view json_line) {
  ActiveRun* run = Find(run_id);
  if (!run) return;
  std::optional<storage::AnsibleEventRecord> event = ParseAnsibleEvent(json_line);
  if (!event) {
    if (!run->bad_event_logged) {
      run->bad_event_logged = true;
      Log()->warn(
          "{}sent an event that is not a JSON object with a \"kind\"; such events are dropped",
          logging::RunTag(run_id, node_name, attempt));
    }
    return;
  }
  event->run_id = run_id;
  event->node_name = node_name;
  event->attempt = attempt;
  event->time_ms = clock_->NowMs();
  run->pending_ansible_events.push_back(*std::move(event));
  ArmLogFlush(run);
}

void Scheduler::ArmLogFlush(ActiveRun* run) {
  const std::string& run_id = run->record.id;
  if (run->log_flush_armed) return;
  run->log_flush_armed = true;
  run->log_flush.expires_after(std::chrono::milliseconds(options_.log_flush_interval_ms));
  run->log_flush.async_wait([this, alive = alive_, run_id](const boost::system::error_code& ec) {
    if (ec || !*alive) return;
    if (ActiveRun* r = Find(run_id)) FlushLogs(r);
  });
}

void Scheduler::FlushLogs(ActiveRun* run) {
  run->log_flush_armed = false;
  if (run->pending_logs.empty() && run->pending_ansible_events.empty()) return;
  storage::WriteBatch batch;
  batch.logs = std::move(run->pending_logs);
  run->pending_logs.clear();
  batch.ansible_events = std::move(run->pending_ansible_events);
  run->pending_ansible_events.clear();
  Commit(run->record.id, std::move(batch), nullptr);
}

void Scheduler::OnAttemptFinished(const std::string& run_id, const std::string& node_name,
                                  int attempt, const engine::AttemptResult& result) {
  ActiveRun* run = Find(run_id);
  if (!run) return;
  run->running.erase({node_name, attempt});
  run->timeouts.erase({node_name, attempt});  // destroying the timer cancels it
  // Pending log chunks travel in the same batch as the attempt's end (CollectChanges).
  run->state->OnAttemptFinished(node_name, attempt, result, clock_->NowMs());
  Step(run);
}

void Scheduler::ArmWakeup(ActiveRun* run) {
  std::optional<int64_t> next = run->state->NextWakeup();
  if (!next) return;
  if (run->wakeup_at_ms == *next) return;  // already armed for that time
  run->wakeup_at_ms = *next;
  const int64_t delay = std::max<int64_t>(0, *next - clock_->NowMs());
  run->wakeup.expires_after(std::chrono::milliseconds(delay));
  run->wakeup.async_wait(
      [this, alive = alive_, run_id = run->record.id](const boost::system::error_code& ec) {
        if (ec || !*alive) return;
        ActiveRun* r = Find(run_id);
        if (!r) return;
        r->wakeup_at_ms = 0;
        Step(r);
      });
}

absl::StatusOr<Scheduler::ActiveRun*> Scheduler::FindUnfinished(const std::string& run_id) {
  ActiveRun* run = Find(run_id);
  if (run && run->state->Done()) {
    return absl::FailedPreconditionError(
        absl::StrCat("run ", run_id, " is already ", engine::NodePhaseName(run->state->phase())));
  }
  if (run) return run;
  auto stored = store_->GetRun(run_id);
  if (!stored.ok()) return stored.status();
  return absl::FailedPreconditionError(
      absl::StrCat("run ", run_id, " is already ", engine::NodePhaseName(stored->phase)));
}

void Scheduler::CommitRequest(ActiveRun* run, storage::WriteBatch batch, const std::string& type,
                              const std::string& message, bool step_after,
                              std::function<void(absl::StatusOr<storage::RunRecord>)> done) {
  const std::string run_id = run->record.id;
  batch.runs.clear();
  storage::EventRecord e;
  e.run_id = run_id;
  e.sequence = run->next_sequence++;
  e.time_ms = clock_->NowMs();
  e.type = type;
  e.phase = run->record.phase;
  e.message = message;
  batch.events.push_back(e);
  run->record.last_sequence = run->next_sequence - 1;
  batch.runs.push_back(run->record);
  Commit(run_id, std::move(batch), [this, run_id, step_after, done] {
    ActiveRun* r = Find(run_id);
    if (!r) return done(store_->GetRun(run_id));
    done(r->record);
    // Not from inside the commit's callback, which may still hold queued changes: after it.
    if (step_after) {
      asio::post(io_, [this, alive = alive_, run_id] {
        if (!*alive) return;
        if (ActiveRun* again = Find(run_id)) Step(again);
      });
    }
  });
}

void Scheduler::Stop(const std::string& run_id, const std::string& message, bool terminate,
                     std::function<void(absl::StatusOr<storage::RunRecord>)> done) {
  asio::post(io_, [this, run_id, message, terminate, done = std::move(done)] {
    absl::StatusOr<ActiveRun*> run = FindUnfinished(run_id);
    if (!run.ok()) return done(run.status());
    const std::string reason = !message.empty() ? message
                                                : (terminate ? "Stopped with strategy 'Terminate'"
                                                             : "Stopped with strategy 'Stop'");
    StopAndCancel(*run, reason,
                  terminate ? engine::StopStrategy::kTerminate : engine::StopStrategy::kStop);
    storage::WriteBatch batch = CollectChanges(*run);
    (*run)->record.stop = (*run)->state->stop_strategy();
    // The runners report the cancelled attempts; that moves the run on.
    CommitRequest(*run, std::move(batch), terminate ? "RunTerminateRequested" : "RunStopRequested",
                  reason,
                  /*step_after=*/false, std::move(done));
  });
}

void Scheduler::ChangeSuspended(
    const std::string& run_id, const std::string& event_type, const std::string& message,
    std::function<absl::Status(engine::RunState&, int64_t now_ms)> change,
    std::function<void(absl::StatusOr<storage::RunRecord>)> done) {
  asio::post(
      io_, [this, run_id, event_type, message, change = std::move(change), done = std::move(done)] {
        absl::StatusOr<ActiveRun*> run = FindUnfinished(run_id);
        if (!run.ok()) return done(run.status());
        if (absl::Status changed = change(*(*run)->state, clock_->NowMs()); !changed.ok()) {
          return done(changed);
        }
        CommitRequest(*run, CollectChanges(*run), event_type, message, /*step_after=*/true,
                      std::move(done));
      });
}

void Scheduler::StopAndCancel(ActiveRun* run, const std::string& reason,
                              engine::StopStrategy strategy) {
  run->state->Stop(reason, clock_->NowMs(), strategy);
  for (const auto& [key, who] : run->running) {
    if (!run->state->StopHolds(key.first)) continue;  // an exit hook that Argo's stop lets run
    if (runners::Runner* runner = runners_->Find(who.first)) runner->Cancel(who.second, reason);
  }
}

void Scheduler::Retire(const std::string& run_id) {
  ActiveRun* run = Find(run_id);
  if (!run) return;
  Log()->info("{}{}", logging::RunTag(run_id), engine::NodePhaseName(run->record.phase));
  runs_.erase(run_id);
  active_runs_ = static_cast<int>(runs_.size());
}

void Scheduler::Shutdown() {
  *alive_ = false;
  runners_->KillAll();
  runs_.clear();
  active_runs_ = 0;
}

}  // namespace dagd::scheduler
