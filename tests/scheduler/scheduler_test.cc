// Scheduler tests: the real SQLite store on a temporary file, a FakeRunner registered as "local",
// the system clock, and the io_context driven on the test thread until a condition holds or a
// deadline passes (never a fixed sleep as synchronisation).
#include "scheduler/scheduler.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <sys/stat.h>

#include <algorithm>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "storage/sqlite/sqlite_store.h"
#include "tests/runners/fake_runner.h"
#include "tests/storage/sqlite_test_util.h"
#include "tests/storage/status_test_macros.h"
#include "tests/storage/temp_dir.h"

namespace dagd::scheduler {
namespace {

namespace asio = boost::asio;
using engine::NodePhase;
using engine::NodeState;
using runners::AttemptSpec;
using runners::testing::FakeAttempt;
using runners::testing::FakeRunner;
using storage::EventRecord;
using storage::RunRecord;
using ::testing::HasSubstr;
using ::testing::StartsWith;

constexpr std::chrono::milliseconds kTimeout = std::chrono::seconds(20);

// One task line of the entrypoint DAG; every task calls the template `step`.
std::string Task(const std::string& name, const std::string& depends = "") {
  std::string line = absl::StrCat("      - {name: ", name, ", template: step");
  if (!depends.empty()) absl::StrAppend(&line, ", depends: \"", depends, "\"");
  return line + "}\n";
}

// A workflow whose entrypoint is a DAG of `tasks` (Task() lines). `spec_extra` holds lines under
// spec (two spaces of indent), `step_extra` lines of the `step` template (four spaces).
std::string Workflow(const std::string& tasks, const std::string& spec_extra = "",
                     const std::string& step_extra = "") {
  return absl::StrCat(
      "apiVersion: argoproj.io/v1alpha1\n"
      "kind: Workflow\n"
      "metadata:\n"
      "  generateName: sched-\n"
      "spec:\n"
      "  entrypoint: main\n",
      spec_extra,
      "  templates:\n"
      "  - name: main\n"
      "    dag:\n"
      "      tasks:\n",
      tasks,
      "  - name: step\n"
      "    container:\n"
      "      image: alpine:3.18\n"
      "      command: [x]\n",
      step_extra);
}

// An answer that may arrive on another thread (Scheduler's callbacks may run on the store's
// writer thread).
template <typename T>
class Answer {
 public:
  std::function<void(T)> Callback() {
    return [this](T value) {
      std::lock_guard<std::mutex> lock(mu_);
      value_.emplace(std::move(value));
    };
  }
  bool ready() {
    std::lock_guard<std::mutex> lock(mu_);
    return value_.has_value();
  }
  T get() {
    std::lock_guard<std::mutex> lock(mu_);
    return *value_;
  }

 private:
  std::mutex mu_;
  std::optional<T> value_;
};

using RunAnswer = Answer<absl::StatusOr<RunRecord>>;

// Reads the store after every commit the scheduler announces.
class RecordingListener : public RunListener {
 public:
  explicit RecordingListener(storage::Store* store) : store_(store) {}

  void OnRunCommitted(const std::string& run_id) override {
    Snapshot s;
    s.thread = std::this_thread::get_id();
    auto run = store_->GetRun(run_id);
    s.run_stored = run.ok();
    if (run.ok()) {
      s.last_sequence = run->last_sequence;
      s.phase = run->phase;
    }
    auto nodes = store_->GetNodes(run_id);
    if (nodes.ok()) {
      for (const NodeState& n : *nodes) s.node_phases[n.name] = n.phase;
    }
    snapshots[run_id].push_back(std::move(s));
  }

  struct Snapshot {
    std::thread::id thread;
    bool run_stored = false;
    int64_t last_sequence = 0;
    NodePhase phase = NodePhase::kPending;
    std::map<std::string, NodePhase> node_phases;
  };
  std::map<std::string, std::vector<Snapshot>> snapshots;

 private:
  storage::Store* store_;
};

class SchedulerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    OpenStore();
    StartScheduler();
  }

  void TearDown() override { StopEverything(); }

  void OpenStore() {
    store_ = storage::testing::OpenOrDie(dir_.File("dagd.db"));
    ASSERT_NE(store_, nullptr);
  }

  // A fresh io_context, registry, FakeRunner ("local") and Scheduler on store_.
  void StartScheduler() {
    io_ = std::make_unique<asio::io_context>();
    work_ = std::make_unique<asio::executor_work_guard<asio::io_context::executor_type>>(
        io_->get_executor());
    registry_ = std::make_unique<runners::RunnerRegistry>();
    auto fake = std::make_unique<FakeRunner>(*io_);
    fake_ = fake.get();
    ASSERT_TRUE(registry_->Register("local", std::move(fake)).ok());
    SchedulerOptions options;
    options.data_dir = dir_.path();
    options.log_flush_interval_ms = 20;
    options.metrics = metrics_.get();
    scheduler_ =
        std::make_unique<Scheduler>(*io_, store_.get(), registry_.get(), SystemClock(), options);
  }

  // Drops the scheduler the way a crash would leave things: attempts killed without callbacks,
  // memory gone, only what the store committed survives (the store is closed too, so a new one
  // reads the file). The store goes before the io_context: its last callbacks post onto it.
  void StopEverything() {
    if (scheduler_) scheduler_->Shutdown();
    store_.reset();
    scheduler_.reset();
    fake_ = nullptr;
    registry_.reset();
    work_.reset();
    io_.reset();
  }

  // Runs the io_context until `done()` holds or `timeout` passes; returns done().
  bool RunUntil(const std::function<bool()>& done, std::chrono::milliseconds timeout = kTimeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!done()) {
      const auto now = std::chrono::steady_clock::now();
      if (now >= deadline) return false;
      io_->run_one_for(std::min<std::chrono::steady_clock::duration>(
          deadline - now, std::chrono::milliseconds(50)));
    }
    return true;
  }

  SubmitRequest Request(const std::string& yaml, const std::string& request_id = "") {
    SubmitRequest request;
    request.workflow_yaml = yaml;
    request.file_name = "test.yaml";
    request.request_id = request_id;
    return request;
  }

  absl::StatusOr<RunRecord> Submit(const std::string& yaml, const std::string& request_id = "") {
    RunAnswer answer;
    scheduler_->Submit(Request(yaml, request_id), answer.Callback());
    if (!RunUntil([&] { return answer.ready(); })) {
      return absl::DeadlineExceededError("Submit gave no answer");
    }
    return answer.get();
  }

  absl::StatusOr<RunRecord> Stop(const std::string& run_id, const std::string& message,
                                 bool terminate = false) {
    RunAnswer answer;
    scheduler_->Stop(run_id, message, terminate, answer.Callback());
    if (!RunUntil([&] { return answer.ready(); })) {
      return absl::DeadlineExceededError("Stop gave no answer");
    }
    return answer.get();
  }

  // Waits until the stored run is final and the scheduler has let it go; returns the record.
  RunRecord WaitFinished(const std::string& run_id) {
    RunRecord record;
    bool finished = RunUntil([&] {
      auto run = store_->GetRun(run_id);
      if (!run.ok() || !engine::IsFinal(run->phase)) return false;
      record = *run;
      return scheduler_->active_runs() == 0;
    });
    EXPECT_TRUE(finished) << "run " << run_id << " did not finish";
    return record;
  }

  // The stored node whose display name is `display`; a node in phase Pending named "?" if none.
  NodeState StoredNode(const std::string& run_id, const std::string& display) {
    auto nodes = store_->GetNodes(run_id);
    EXPECT_TRUE(nodes.ok()) << nodes.status();
    if (nodes.ok()) {
      for (const NodeState& n : *nodes) {
        if (n.display_name == display) return n;
      }
    }
    NodeState missing;
    missing.name = "?";
    return missing;
  }

  std::vector<EventRecord> Events(const std::string& run_id) {
    auto events = store_->GetEvents(run_id, 0, 100000);
    EXPECT_TRUE(events.ok()) << events.status();
    return events.ok() ? *events : std::vector<EventRecord>{};
  }

  int StoredRunCount() {
    storage::RunFilter filter;
    filter.limit = 1000;
    auto page = store_->ListRuns(filter);
    EXPECT_TRUE(page.ok()) << page.status();
    return page.ok() ? static_cast<int>(page->runs.size()) : -1;
  }

  // Checks the event log of a run: sequences 1, 2, … without gaps or repeats, ending at the run
  // record's last_sequence, and one NodePhase event per phase change of each node.
  void ExpectWellFormedEvents(const std::string& run_id) {
    std::vector<EventRecord> events = Events(run_id);
    ASSERT_FALSE(events.empty());
    for (size_t i = 0; i < events.size(); ++i) {
      EXPECT_EQ(events[i].sequence, static_cast<int64_t>(i + 1)) << "event " << i;
    }
    auto run = store_->GetRun(run_id);
    ASSERT_TRUE(run.ok());
    EXPECT_EQ(run->last_sequence, static_cast<int64_t>(events.size()));
    EXPECT_EQ(events.front().type, "RunCreated");

    std::map<std::string, std::vector<NodePhase>> node_phases;
    std::map<std::string, int> attempt_started, attempt_finished;
    for (const EventRecord& e : events) {
      if (e.type == "NodePhase") node_phases[e.node_name].push_back(e.phase);
      if (e.type == "AttemptStarted") ++attempt_started[e.node_name];
      if (e.type == "AttemptFinished") ++attempt_finished[e.node_name];
    }
    auto nodes = store_->GetNodes(run_id);
    ASSERT_TRUE(nodes.ok());
    for (const NodeState& node : *nodes) {
      const std::vector<NodePhase>& phases = node_phases[node.name];
      ASSERT_FALSE(phases.empty()) << node.name << " has no NodePhase event";
      EXPECT_EQ(phases.back(), node.phase) << node.name;
      for (size_t i = 1; i < phases.size(); ++i) {
        EXPECT_NE(phases[i], phases[i - 1]) << node.name << ": two events for one phase";
      }
      EXPECT_EQ(attempt_started[node.name], static_cast<int>(node.attempts.size())) << node.name;
      int finished = 0;
      for (const auto& a : node.attempts) finished += engine::IsFinal(a.phase) ? 1 : 0;
      EXPECT_EQ(attempt_finished[node.name], finished) << node.name;
    }
  }

  storage::testing::TempDir dir_;
  // Set before StartScheduler() to give the scheduler metrics (one scheduler per registry).
  std::unique_ptr<metrics::Registry> metrics_;
  std::unique_ptr<storage::sqlite::SqliteStore> store_;
  std::unique_ptr<asio::io_context> io_;
  std::unique_ptr<asio::executor_work_guard<asio::io_context::executor_type>> work_;
  std::unique_ptr<runners::RunnerRegistry> registry_;
  FakeRunner* fake_ = nullptr;  // owned by registry_
  std::unique_ptr<Scheduler> scheduler_;
};

// --- durability before acknowledgement and launch ----------------------------------------------

TEST_F(SchedulerTest, RunIsCommittedBeforeItIsAcknowledgedOrLaunched) {
  int hook_calls = 0;
  fake_->SetStartHook([&](const AttemptSpec& spec) {
    ++hook_calls;
    auto run = store_->GetRun(spec.run_id);
    ASSERT_TRUE(run.ok()) << "started before the run was stored: " << run.status();
    auto nodes = store_->GetNodes(spec.run_id);
    ASSERT_TRUE(nodes.ok());
    const NodeState* node = nullptr;
    for (const NodeState& n : *nodes) {
      if (n.name == spec.node_name) node = &n;
    }
    ASSERT_NE(node, nullptr) << spec.node_name << " started before its node was stored";
    EXPECT_EQ(node->phase, NodePhase::kRunning);
    ASSERT_GE(node->attempts.size(), static_cast<size_t>(spec.attempt));
    const engine::AttemptRecord& a = node->attempts[spec.attempt - 1];
    EXPECT_EQ(a.phase, NodePhase::kRunning);
    EXPECT_EQ(a.external_name, spec.external_name);
    EXPECT_EQ(a.runner, "local");
    bool start_event = false;
    for (const EventRecord& e : Events(spec.run_id)) {
      start_event |=
          e.type == "AttemptStarted" && e.node_name == spec.node_name && e.attempt == spec.attempt;
    }
    EXPECT_TRUE(start_event) << "no AttemptStarted event stored for " << spec.external_name;
  });

  RunAnswer answer;
  bool checked_at_ack = false;
  scheduler_->Submit(Request(Workflow(Task("A") + Task("B", "A"))),
                     [&](absl::StatusOr<RunRecord> run) {
                       ASSERT_TRUE(run.ok()) << run.status();
                       EXPECT_TRUE(fake_->starts().empty()) << "launched before acknowledged";
                       auto stored = store_->GetRun(run->id);
                       ASSERT_TRUE(stored.ok()) << "acknowledged before stored";
                       EXPECT_EQ(stored->workflow_yaml, run->workflow_yaml);
                       auto nodes = store_->GetNodes(run->id);
                       ASSERT_TRUE(nodes.ok());
                       EXPECT_FALSE(nodes->empty());
                       std::vector<EventRecord> events = Events(run->id);
                       ASSERT_FALSE(events.empty());
                       EXPECT_EQ(events[0].type, "RunCreated");
                       EXPECT_EQ(events[0].sequence, 1);
                       checked_at_ack = true;
                       answer.Callback()(std::move(run));
                     });
  ASSERT_TRUE(RunUntil([&] { return answer.ready(); }));
  EXPECT_TRUE(checked_at_ack);
  ASSERT_TRUE(answer.get().ok());
  RunRecord done = WaitFinished(answer.get()->id);
  EXPECT_EQ(done.phase, NodePhase::kSucceeded) << done.message;
  EXPECT_EQ(hook_calls, 2);
}

TEST_F(SchedulerTest, DependentsStartOnlyAfterTheirDependenciesAreCommitted) {
  const std::map<std::string, std::vector<std::string>> deps = {
      {"A", {}}, {"B", {"A"}}, {"C", {"A"}}, {"D", {"B", "C"}}};
  std::set<std::string> started;
  fake_->SetStartHook([&](const AttemptSpec& spec) {
    const std::string task = spec.node_name.substr(spec.node_name.rfind('.') + 1);
    started.insert(task);
    for (const std::string& dep : deps.at(task)) {
      NodeState stored = StoredNode(spec.run_id, dep);
      EXPECT_EQ(stored.phase, NodePhase::kSucceeded)
          << task << " started while the store still has " << dep << " "
          << engine::NodePhaseName(stored.phase);
    }
  });
  auto run = Submit(Workflow(Task("A") + Task("B", "A") + Task("C", "A") + Task("D", "B && C")));
  ASSERT_TRUE(run.ok()) << run.status();
  RunRecord done = WaitFinished(run->id);
  EXPECT_EQ(done.phase, NodePhase::kSucceeded);
  EXPECT_EQ(started, (std::set<std::string>{"A", "B", "C", "D"}));
}

// --- dispatch --------------------------------------------------------------------------------

TEST_F(SchedulerTest, DispatchesTheMomentDependenciesAllowNotInWaves) {
  fake_->Script("B", FakeAttempt::Hold());
  auto run = Submit(Workflow(Task("A") + Task("B", "A") + Task("C", "A") + Task("D", "C")));
  ASSERT_TRUE(run.ok()) << run.status();
  // D needs only C: it starts, and even finishes, while B is still running.
  ASSERT_TRUE(RunUntil([&] { return StoredNode(run->id, "D").phase == NodePhase::kSucceeded; }))
      << "D did not finish while B was held";
  EXPECT_TRUE(fake_->Held("B"));
  EXPECT_EQ(StoredNode(run->id, "B").phase, NodePhase::kRunning);
  EXPECT_EQ(store_->GetRun(run->id)->phase, NodePhase::kRunning);

  ASSERT_TRUE(fake_->ReleaseNode("B"));
  RunRecord done = WaitFinished(run->id);
  EXPECT_EQ(done.phase, NodePhase::kSucceeded);
  EXPECT_EQ(fake_->max_running(), 2);  // B alongside C, then alongside D
}

TEST_F(SchedulerTest, WorkflowParallelismOneSerialisesPods) {
  auto run = Submit(Workflow(Task("A") + Task("B") + Task("C") + Task("D"), "  parallelism: 1\n"));
  ASSERT_TRUE(run.ok()) << run.status();
  RunRecord done = WaitFinished(run->id);
  EXPECT_EQ(done.phase, NodePhase::kSucceeded);
  EXPECT_EQ(fake_->starts().size(), 4u);
  EXPECT_EQ(fake_->max_running(), 1);
}

TEST_F(SchedulerTest, WorkflowParallelismHoldsTheNextPodUntilASlotFrees) {
  fake_->SetDefault(FakeAttempt::Hold());
  auto run = Submit(Workflow(Task("A") + Task("B") + Task("C"), "  parallelism: 1\n"));
  ASSERT_TRUE(run.ok()) << run.status();
  for (size_t n = 1; n <= 3; ++n) {
    ASSERT_TRUE(RunUntil([&] { return fake_->starts().size() == n; }));
    EXPECT_EQ(fake_->Running().size(), 1u);
    // Give the scheduler every chance to start another one: run what is queued.
    io_->poll();
    EXPECT_EQ(fake_->starts().size(), n);
    ASSERT_TRUE(fake_->Release(fake_->starts().back().spec.external_name));
  }
  EXPECT_EQ(WaitFinished(run->id).phase, NodePhase::kSucceeded);
  EXPECT_EQ(fake_->max_running(), 1);
}

// --- retries ---------------------------------------------------------------------------------

TEST_F(SchedulerTest, RetryStartsAfterTheBackoff) {
  constexpr int64_t kBackoffMs = 1000;
  fake_->Script("A", 1, FakeAttempt::Fail(1, "exit code 1"));
  auto run = Submit(Workflow(Task("A"), "",
                             "    retryStrategy:\n"
                             "      limit: 2\n"
                             "      backoff: {duration: \"1s\"}\n"));
  ASSERT_TRUE(run.ok()) << run.status();
  RunRecord done = WaitFinished(run->id);
  EXPECT_EQ(done.phase, NodePhase::kSucceeded) << done.message;

  NodeState a = StoredNode(run->id, "A");
  ASSERT_EQ(a.attempts.size(), 2u);
  EXPECT_EQ(a.attempts[0].phase, NodePhase::kFailed);
  EXPECT_EQ(a.attempts[1].phase, NodePhase::kSucceeded);
  EXPECT_GE(a.attempts[1].started_at_ms - a.attempts[0].finished_at_ms, kBackoffMs);
  // The timer, measured on the steady clock by the runner itself (slack for clock differences).
  auto starts = fake_->StartsOf("A");
  ASSERT_EQ(starts.size(), 2u);
  EXPECT_GE(starts[1].at - starts[0].at, std::chrono::milliseconds(kBackoffMs - 50));
  ExpectWellFormedEvents(run->id);
}

// --- stop --------------------------------------------------------------------------------------

TEST_F(SchedulerTest, StopCancelsRunningAttemptsAndStartsNothingNew) {
  fake_->Script("A", FakeAttempt::Hold());
  auto run = Submit(Workflow(Task("A") + Task("B", "A")));
  ASSERT_TRUE(run.ok()) << run.status();
  ASSERT_TRUE(RunUntil([&] { return fake_->Held("A"); }));

  auto stopped = Stop(run->id, "stopped by the test");
  ASSERT_TRUE(stopped.ok()) << stopped.status();
  EXPECT_EQ(stopped->stop, engine::StopStrategy::kStop);
  ASSERT_EQ(fake_->cancels().size(), 1u);
  EXPECT_EQ(fake_->cancels()[0].external_name, fake_->StartsOf("A")[0].spec.external_name);
  EXPECT_EQ(fake_->cancels()[0].message, "stopped by the test");

  RunRecord done = WaitFinished(run->id);
  EXPECT_EQ(done.phase, NodePhase::kFailed);
  EXPECT_EQ(done.stop, engine::StopStrategy::kStop);
  EXPECT_THAT(done.message, HasSubstr("stopped by the test"));
  EXPECT_FALSE(fake_->Started("B"));
  EXPECT_EQ(fake_->starts().size(), 1u);
  NodeState a = StoredNode(run->id, "A");
  EXPECT_EQ(a.phase, NodePhase::kFailed);
  ASSERT_EQ(a.attempts.size(), 1u);
  EXPECT_EQ(a.attempts[0].message, "stopped by the test");

  bool stop_event = false;
  for (const EventRecord& e : Events(run->id)) stop_event |= e.type == "RunStopRequested";
  EXPECT_TRUE(stop_event);
  ExpectWellFormedEvents(run->id);
}

// Argo's stop still runs exit hooks (of the workflow, and of tasks that ran); a terminate after it
// ends the one that runs.
TEST_F(SchedulerTest, StopStillRunsExitHooksAndATerminateEndsThem) {
  fake_->Script("A", FakeAttempt::Hold());
  fake_->Script("A.onExit", FakeAttempt::Hold());
  auto run = Submit(Workflow(
      "      - {name: A, template: step, hooks: {exit: {template: step}}}\n" + Task("B", "A"),
      "  onExit: step\n"));
  ASSERT_TRUE(run.ok()) << run.status();
  ASSERT_TRUE(RunUntil([&] { return fake_->Held("A"); }));

  ASSERT_TRUE(Stop(run->id, "stopped by the test").ok());
  ASSERT_TRUE(RunUntil([&] { return fake_->Held("A.onExit"); }));  // A's hook, after A ended
  EXPECT_EQ(fake_->cancels().size(), 1u);                          // A only
  auto terminated = Stop(run->id, "", /*terminate=*/true);
  ASSERT_TRUE(terminated.ok()) << terminated.status();
  EXPECT_EQ(terminated->stop, engine::StopStrategy::kTerminate);
  RunRecord done = WaitFinished(run->id);
  EXPECT_EQ(done.phase, NodePhase::kFailed);
  EXPECT_EQ(fake_->cancels().size(), 2u);  // and then A's hook
  EXPECT_FALSE(fake_->Started("B"));
  EXPECT_EQ(fake_->starts().size(), 2u);  // the workflow's exit hook never started
  EXPECT_EQ(StoredNode(run->id, "A.onExit").phase, NodePhase::kFailed);
  ExpectWellFormedEvents(run->id);
}

TEST_F(SchedulerTest, StopRunsTheWorkflowsExitHook) {
  fake_->Script("A", FakeAttempt::Hold());
  auto run = Submit(Workflow(Task("A") + Task("B", "A"), "  onExit: step\n"));
  ASSERT_TRUE(run.ok()) << run.status();
  ASSERT_TRUE(RunUntil([&] { return fake_->Held("A"); }));
  ASSERT_TRUE(Stop(run->id, "stopped by the test").ok());
  RunRecord done = WaitFinished(run->id);
  EXPECT_EQ(done.phase, NodePhase::kFailed);
  EXPECT_THAT(done.message, HasSubstr("stopped by the test"));
  EXPECT_TRUE(fake_->Started(run->id + ".onExit"));
  EXPECT_EQ(StoredNode(run->id, run->id + ".onExit").phase, NodePhase::kSucceeded);
  EXPECT_FALSE(fake_->Started("B"));
}

TEST_F(SchedulerTest, TerminateUsesItsDefaultMessage) {
  fake_->Script("A", FakeAttempt::Hold());
  auto run = Submit(Workflow(Task("A")));
  ASSERT_TRUE(run.ok()) << run.status();
  ASSERT_TRUE(RunUntil([&] { return fake_->Held("A"); }));
  auto stopped = Stop(run->id, "", /*terminate=*/true);
  ASSERT_TRUE(stopped.ok()) << stopped.status();
  RunRecord done = WaitFinished(run->id);
  EXPECT_EQ(done.phase, NodePhase::kFailed);
  EXPECT_THAT(done.message, HasSubstr("Terminate"));
  bool terminate_event = false;
  for (const EventRecord& e : Events(run->id)) terminate_event |= e.type == "RunTerminateRequested";
  EXPECT_TRUE(terminate_event);
}

// A template `timeout` cancels the attempt once it has run that long; the node fails with a
// message that says so. A timeout that is not a duration ends the attempt in Error.
TEST_F(SchedulerTest, TimeoutCancelsTheAttempt) {
  fake_->Script("A", FakeAttempt::Hold());
  auto run = Submit(Workflow(Task("A") + Task("B", "A"), "", "    timeout: 200ms\n"));
  ASSERT_TRUE(run.ok()) << run.status();
  RunRecord done = WaitFinished(run->id);
  EXPECT_EQ(done.phase, NodePhase::kFailed);
  ASSERT_EQ(fake_->cancels().size(), 1u);
  EXPECT_EQ(fake_->cancels()[0].message, "timeout: the attempt ran longer than 200ms");
  NodeState a = StoredNode(run->id, "A");
  EXPECT_EQ(a.phase, NodePhase::kFailed);
  ASSERT_EQ(a.attempts.size(), 1u);
  EXPECT_THAT(a.attempts[0].message, HasSubstr("timeout"));
  EXPECT_FALSE(fake_->Started("B"));
}

// spec.activeDeadlineSeconds stops the run once it has run that long: running attempts are
// cancelled, nothing new starts, and the run fails saying why.
TEST_F(SchedulerTest, WorkflowDeadlineStopsTheRun) {
  fake_->Script("A", FakeAttempt::Hold());
  auto run = Submit(Workflow(Task("A") + Task("B", "A"), "  activeDeadlineSeconds: 1\n"));
  ASSERT_TRUE(run.ok()) << run.status();
  RunRecord done = WaitFinished(run->id);
  EXPECT_EQ(done.phase, NodePhase::kFailed);
  EXPECT_EQ(done.message, "Workflow exceeded its deadline (activeDeadlineSeconds 1)");
  ASSERT_EQ(fake_->cancels().size(), 1u);
  EXPECT_EQ(fake_->cancels()[0].message, done.message);
  EXPECT_GE(done.finished_at_ms - done.created_at_ms, 1000);
  EXPECT_FALSE(fake_->Started("B"));
}

TEST_F(SchedulerTest, TimeoutThatIsNotADurationIsAnError) {
  auto run = Submit(Workflow(Task("A"), "", "    timeout: soon\n"));
  ASSERT_TRUE(run.ok()) << run.status();
  RunRecord done = WaitFinished(run->id);
  EXPECT_EQ(done.phase, NodePhase::kError);
  NodeState a = StoredNode(run->id, "A");
  ASSERT_EQ(a.attempts.size(), 1u);
  EXPECT_THAT(a.attempts[0].message, HasSubstr("timeout: "));
  EXPECT_THAT(a.attempts[0].message, HasSubstr("soon"));
  EXPECT_FALSE(fake_->Started("A"));
}

TEST_F(SchedulerTest, StopDuringARetryBackoffEndsTheRunWithoutTheRetry) {
  fake_->Script("A", 1, FakeAttempt::Fail(1, "exit code 1"));
  auto run = Submit(Workflow(Task("A"), "",
                             "    retryStrategy:\n"
                             "      limit: 2\n"
                             "      backoff: {duration: \"30s\"}\n"));
  ASSERT_TRUE(run.ok()) << run.status();
  ASSERT_TRUE(RunUntil([&] { return StoredNode(run->id, "A").retry_at_ms > 0; }));
  auto stopped = Stop(run->id, "no more retries");
  ASSERT_TRUE(stopped.ok()) << stopped.status();
  RunRecord done = WaitFinished(run->id);
  EXPECT_EQ(done.phase, NodePhase::kFailed);
  NodeState a = StoredNode(run->id, "A");
  EXPECT_EQ(a.phase, NodePhase::kFailed);
  EXPECT_EQ(a.attempts.size(), 1u);
  EXPECT_EQ(fake_->starts().size(), 1u);
  ExpectWellFormedEvents(run->id);
}

TEST_F(SchedulerTest, StopWhileALaunchWaitsForItsCommitCancelsTheLaunchedAttempt) {
  fake_->Script("A", FakeAttempt::Hold());
  fake_->Script("B", FakeAttempt::Hold());
  auto run = Submit(Workflow(Task("A") + Task("B", "A")));
  ASSERT_TRUE(run.ok()) << run.status();
  ASSERT_TRUE(RunUntil([&] { return fake_->Held("A"); }));
  RunAnswer answer;
  {
    // A's end and B's dispatch are decided, but their commit waits behind the gate.
    storage::testing::WriterGate gate(*store_);
    ASSERT_TRUE(fake_->ReleaseNode("A"));
    io_->poll();
    EXPECT_FALSE(fake_->Started("B")) << "launched before its commit";
    scheduler_->Stop(run->id, "stopped mid-launch", false, answer.Callback());
    io_->poll();
  }
  ASSERT_TRUE(RunUntil([&] { return answer.ready(); }));
  ASSERT_TRUE(answer.get().ok()) << answer.get().status();
  RunRecord done = WaitFinished(run->id);
  EXPECT_EQ(done.phase, NodePhase::kFailed);
  // B was committed as Running before the stop: it is launched, then cancelled at once.
  ASSERT_EQ(fake_->cancels().size(), 1u);
  EXPECT_EQ(fake_->cancels()[0].message, "stopped mid-launch");
  EXPECT_TRUE(fake_->cancels()[0].was_running);
  EXPECT_EQ(StoredNode(run->id, "B").phase, NodePhase::kFailed);
  EXPECT_EQ(StoredNode(run->id, "A").phase, NodePhase::kSucceeded);
  ExpectWellFormedEvents(run->id);
}

TEST_F(SchedulerTest, StopOfAFinishedRunIsFailedPrecondition) {
  auto run = Submit(Workflow(Task("A")));
  ASSERT_TRUE(run.ok()) << run.status();
  WaitFinished(run->id);
  DAGD_EXPECT_CODE(Stop(run->id, "too late"), kFailedPrecondition);
  EXPECT_TRUE(fake_->cancels().empty());
}

TEST_F(SchedulerTest, StopOfAnUnknownRunIsNotFound) {
  DAGD_EXPECT_CODE(Stop("no-such-run", "x"), kNotFound);
}

// --- submission ------------------------------------------------------------------------------

TEST_F(SchedulerTest, SameRequestIdGivesTheSameRun) {
  const std::string yaml = Workflow(Task("A"));
  auto first = Submit(yaml, "request-1");
  ASSERT_TRUE(first.ok()) << first.status();
  WaitFinished(first->id);
  auto second = Submit(yaml, "request-1");
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(second->id, first->id);
  EXPECT_EQ(StoredRunCount(), 1);
  EXPECT_EQ(fake_->starts().size(), 1u);
}

TEST_F(SchedulerTest, SameRequestIdSubmittedConcurrentlyGivesOneRun) {
  const std::string yaml = Workflow(Task("A"));
  RunAnswer first, second;
  scheduler_->Submit(Request(yaml, "request-2"), first.Callback());
  scheduler_->Submit(Request(yaml, "request-2"), second.Callback());
  ASSERT_TRUE(RunUntil([&] { return first.ready() && second.ready(); }));
  ASSERT_TRUE(first.get().ok()) << first.get().status();
  ASSERT_TRUE(second.get().ok()) << second.get().status();
  EXPECT_EQ(first.get()->id, second.get()->id);
  WaitFinished(first.get()->id);
  EXPECT_EQ(StoredRunCount(), 1);
  EXPECT_EQ(fake_->starts().size(), 1u);
}

TEST_F(SchedulerTest, InvalidSpecIsRejectedAndNothingIsStored) {
  const int64_t commits = store_->commits();
  // A cycle, a task calling an unknown template, and text that is not a workflow.
  DAGD_EXPECT_CODE(Submit(Workflow(Task("A", "B") + Task("B", "A"))), kInvalidArgument);
  DAGD_EXPECT_CODE(Submit(absl::StrCat(Workflow(Task("A")),
                                       "  - name: extra\n    dag:\n      tasks:\n"
                                       "      - {name: X, template: nowhere}\n")),
                   kInvalidArgument);
  DAGD_EXPECT_CODE(Submit("just: [text\n"), kInvalidArgument);
  // A workflow parameter without a value and none given.
  DAGD_EXPECT_CODE(Submit(Workflow(Task("A"), "  arguments:\n    parameters:\n    - name: p\n")),
                   kInvalidArgument);
  EXPECT_EQ(StoredRunCount(), 0);
  EXPECT_EQ(store_->commits(), commits);
  EXPECT_TRUE(fake_->starts().empty());
  EXPECT_EQ(scheduler_->active_runs(), 0);
}

// --- bundles -----------------------------------------------------------------------------------

// What an attempt's working directory held when the runner was asked to start it.
struct WorkDirSnapshot {
  std::string work_dir;
  std::string bundle_dir;
  std::map<std::string, std::pair<std::string, unsigned>> files;  // path -> (content, mode)
};

WorkDirSnapshot Snapshot(const AttemptSpec& spec) {
  WorkDirSnapshot snapshot{spec.work_dir, spec.bundle_dir, {}};
  for (const auto& entry : std::filesystem::recursive_directory_iterator(spec.work_dir)) {
    if (!entry.is_regular_file()) continue;
    std::ifstream in(entry.path(), std::ios::binary);
    std::stringstream content;
    content << in.rdbuf();
    struct stat st;
    EXPECT_EQ(stat(entry.path().c_str(), &st), 0);
    snapshot.files[std::filesystem::relative(entry.path(), spec.work_dir).string()] = {
        content.str(), st.st_mode & 07777};
  }
  return snapshot;
}

TEST_F(SchedulerTest, EachAttemptGetsAFreshCopyOfTheBundleWithItsModes) {
  std::vector<WorkDirSnapshot> seen;
  fake_->SetStartHook([&](const AttemptSpec& spec) {
    seen.push_back(Snapshot(spec));
    // What an attempt leaves behind or changes must not reach the next one.
    std::ofstream(spec.work_dir + "/scratch") << "left by attempt " << spec.attempt;
    std::ofstream(spec.work_dir + "/site.yml") << "overwritten";
  });
  fake_->Script("A", 1, FakeAttempt::Fail(1, "exit code 1"));
  SubmitRequest request = Request(Workflow(Task("A"), "", "    retryStrategy: {limit: 1}\n"));
  request.bundle = {
      storage::BundleFile{.path = "site.yml", .mode = 0644, .content = "- hosts: all\n"},
      storage::BundleFile{.path = "bin/run.sh", .mode = 0755, .content = "#!/bin/sh\n"},
      storage::BundleFile{.path = "roles/web/files/key", .mode = 0600, .content = "secret"}};
  RunAnswer answer;
  scheduler_->Submit(std::move(request), answer.Callback());
  ASSERT_TRUE(RunUntil([&] { return answer.ready(); }));
  absl::StatusOr<RunRecord> run = answer.get();
  ASSERT_TRUE(run.ok()) << run.status();
  ASSERT_EQ(run->bundle_digest.size(), 64u);
  RunRecord done = WaitFinished(run->id);
  EXPECT_EQ(done.phase, NodePhase::kSucceeded) << done.message;
  EXPECT_EQ(done.bundle_digest, run->bundle_digest);

  const std::map<std::string, std::pair<std::string, unsigned>> want = {
      {"site.yml", {"- hosts: all\n", 0644}},
      {"bin/run.sh", {"#!/bin/sh\n", 0755}},
      {"roles/web/files/key", {"secret", 0600}}};
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_NE(seen[0].work_dir, seen[1].work_dir);
  for (const WorkDirSnapshot& attempt : seen) {
    EXPECT_EQ(attempt.bundle_dir, attempt.work_dir);
    EXPECT_EQ(attempt.files, want) << attempt.work_dir;
  }
  absl::StatusOr<std::vector<storage::BundleFile>> stored = store_->GetBundle(run->bundle_digest);
  ASSERT_TRUE(stored.ok()) << stored.status();
  EXPECT_EQ(stored->size(), 3u);
}

TEST_F(SchedulerTest, ARunWithoutABundleHasNoBundleDir) {
  std::vector<AttemptSpec> specs;
  fake_->SetStartHook([&](const AttemptSpec& spec) { specs.push_back(spec); });
  auto run = Submit(Workflow(Task("A")));
  ASSERT_TRUE(run.ok()) << run.status();
  WaitFinished(run->id);
  ASSERT_EQ(specs.size(), 1u);
  EXPECT_EQ(specs[0].bundle_dir, "");
  EXPECT_TRUE(std::filesystem::is_empty(specs[0].work_dir));
}

TEST_F(SchedulerTest, AFailedCheckOrABadBundleStoresNothing) {
  const int64_t commits = store_->commits();
  const std::vector<storage::BundleFile> files = {
      storage::BundleFile{.path = "site.yml", .content = "- hosts: all\n"}};
  std::vector<storage::BundleFile> normalized = files;
  storage::NormalizeBundleFiles(&normalized);
  const std::string digest = storage::HashBundle(normalized).info.digest;

  SubmitRequest checked = Request(Workflow(Task("A")));
  checked.bundle = files;
  bool check_saw_the_workflow = false;
  checked.check = [&](const engine::Workflow& workflow) {
    check_saw_the_workflow = workflow.entrypoint == "main";
    return absl::InvalidArgumentError("test.yaml:9:7: not in the bundle");
  };
  RunAnswer refused;
  scheduler_->Submit(std::move(checked), refused.Callback());
  ASSERT_TRUE(RunUntil([&] { return refused.ready(); }));
  DAGD_EXPECT_CODE(refused.get(), kInvalidArgument);
  EXPECT_TRUE(check_saw_the_workflow);

  SubmitRequest bad = Request(Workflow(Task("A")));
  bad.bundle = {storage::BundleFile{.path = "../escape.yml", .content = "x"}};
  RunAnswer invalid;
  scheduler_->Submit(std::move(bad), invalid.Callback());
  ASSERT_TRUE(RunUntil([&] { return invalid.ready(); }));
  DAGD_EXPECT_CODE(invalid.get(), kInvalidArgument);

  EXPECT_EQ(StoredRunCount(), 0);
  EXPECT_EQ(store_->commits(), commits);
  DAGD_EXPECT_CODE(store_->GetBundle(digest), kNotFound);
  EXPECT_TRUE(fake_->starts().empty());
}

TEST_F(SchedulerTest, ABundleThatCannotBeReadEndsTheAttemptInError) {
  absl::StatusOr<storage::BundleInfo> bundle =
      store_->PutBundle({storage::BundleFile{.path = "site.yml", .content = "- hosts: all\n"}}, 1);
  ASSERT_TRUE(bundle.ok()) << bundle.status();
  // Damage the stored content behind the store's back.
  {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(dir_.File("dagd.db").c_str(), &db), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(db, "UPDATE blobs SET content = CAST('tampered' AS BLOB)", nullptr,
                           nullptr, nullptr),
              SQLITE_OK);
    sqlite3_close(db);
  }
  SubmitRequest request = Request(Workflow(Task("A")));
  request.bundle_digest = bundle->digest;
  RunAnswer answer;
  scheduler_->Submit(std::move(request), answer.Callback());
  ASSERT_TRUE(RunUntil([&] { return answer.ready(); }));
  absl::StatusOr<RunRecord> run = answer.get();
  ASSERT_TRUE(run.ok()) << run.status();
  WaitFinished(run->id);
  NodeState a = StoredNode(run->id, "A");
  EXPECT_EQ(a.phase, NodePhase::kError);
  ASSERT_EQ(a.attempts.size(), 1u);
  EXPECT_EQ(a.attempts[0].phase, NodePhase::kError);
  EXPECT_THAT(a.attempts[0].message, HasSubstr("cannot read the run's bundle " + bundle->digest));
  EXPECT_THAT(a.attempts[0].message, HasSubstr("site.yml"));
  EXPECT_TRUE(fake_->starts().empty());
  ExpectWellFormedEvents(run->id);
}

TEST_F(SchedulerTest, ARunCannotNameABundleThatIsNotStored) {
  SubmitRequest request = Request(Workflow(Task("A")));
  request.bundle_digest = storage::Sha256Hex("not a stored bundle");
  RunAnswer answer;
  scheduler_->Submit(std::move(request), answer.Callback());
  ASSERT_TRUE(RunUntil([&] { return answer.ready(); }));
  DAGD_EXPECT_CODE(answer.get(), kFailedPrecondition);
  EXPECT_EQ(StoredRunCount(), 0);
  EXPECT_TRUE(fake_->starts().empty());
}

TEST_F(SchedulerTest, UnknownRunnerEndsTheAttemptInErrorNamingIt) {
  auto run = Submit(Workflow(Task("A"), "", "    runner: no-such-runner\n"));
  ASSERT_TRUE(run.ok()) << run.status();
  RunRecord done = WaitFinished(run->id);
  EXPECT_NE(done.phase, NodePhase::kSucceeded);
  NodeState a = StoredNode(run->id, "A");
  EXPECT_EQ(a.phase, NodePhase::kError);
  ASSERT_EQ(a.attempts.size(), 1u);
  EXPECT_EQ(a.attempts[0].phase, NodePhase::kError);
  EXPECT_THAT(a.attempts[0].message, HasSubstr("\"no-such-runner\""));
  EXPECT_TRUE(fake_->starts().empty());
  ExpectWellFormedEvents(run->id);
}

TEST_F(SchedulerTest, StartErrorOfTheRunnerEndsTheAttemptInError) {
  FakeAttempt refused;
  refused.start_error = absl::FailedPreconditionError("program \"x\" not found on PATH");
  fake_->Script("A", refused);
  auto run = Submit(Workflow(Task("A")));
  ASSERT_TRUE(run.ok()) << run.status();
  WaitFinished(run->id);
  NodeState a = StoredNode(run->id, "A");
  EXPECT_EQ(a.phase, NodePhase::kError);
  ASSERT_EQ(a.attempts.size(), 1u);
  EXPECT_THAT(a.attempts[0].message, HasSubstr("not found on PATH"));
}

TEST_F(SchedulerTest, LogsAndOutputsAreStored) {
  FakeAttempt a = FakeAttempt::Succeed("result of A");
  a.logs = {{"stdout", "line one\n"}, {"stderr", "line two\n"}};
  fake_->Script("A", a);
  auto run = Submit(Workflow(Task("A")));
  ASSERT_TRUE(run.ok()) << run.status();
  WaitFinished(run->id);
  EXPECT_EQ(StoredNode(run->id, "A").outputs.result, "result of A");
  auto logs = store_->GetLogs(run->id, "", 0, 0, 100);
  ASSERT_TRUE(logs.ok()) << logs.status();
  std::string text;
  for (const auto& chunk : *logs) text += chunk.data;
  EXPECT_EQ(text, "line one\nline two\n");
}

TEST_F(SchedulerTest, AnsibleEventsAreStoredAndGarbageIsDropped) {
  FakeAttempt a = FakeAttempt::Succeed();
  a.events = {R"({"kind": "task_start", "play": "web", "task": "Install"})", "not json at all",
              R"({"no_kind": true})",
              R"({"kind": "runner_item_on_ok", "play": "web", "task": "Install", "host": "h1",)"
              R"( "changed": true, "item": {"name": "nginx"}, "result": {"changed": true}})",
              R"({"kind": "runner_on_unreachable", "task": "Install", "host": "h2"})"};
  fake_->Script("A", a);
  auto run = Submit(Workflow(Task("A")));
  ASSERT_TRUE(run.ok()) << run.status();
  WaitFinished(run->id);
  auto events = store_->GetAnsibleEvents(run->id, {}, 0, 100);
  ASSERT_TRUE(events.ok()) << events.status();
  ASSERT_EQ(events->size(), 3u);
  const storage::AnsibleEventRecord& start = (*events)[0];
  EXPECT_EQ(start.kind, "task_start");
  EXPECT_EQ(start.node_name, run->id + ".A");
  EXPECT_EQ(start.attempt, 1);
  EXPECT_GT(start.time_ms, 0);
  EXPECT_EQ(start.play, "web");
  const storage::AnsibleEventRecord& item = (*events)[1];
  EXPECT_EQ(item.sequence, 2);
  EXPECT_EQ(item.host, "h1");
  EXPECT_TRUE(item.changed);
  EXPECT_FALSE(item.failed);
  EXPECT_EQ(item.item, R"({"name":"nginx"})");
  EXPECT_THAT(item.payload, HasSubstr(R"("result":{"changed":true})"));
  EXPECT_TRUE((*events)[2].failed);  // unreachable counts as failed
}

TEST_F(SchedulerTest, AnsibleEventsOfARunningAttemptAreCommittedBeforeItEnds) {
  FakeAttempt a = FakeAttempt::Hold();
  a.events = {R"({"kind": "play_start", "play": "web"})"};
  fake_->Script("A", a);
  auto run = Submit(Workflow(Task("A")));
  ASSERT_TRUE(run.ok()) << run.status();
  ASSERT_TRUE(RunUntil([&] {
    auto events = store_->GetAnsibleEvents(run->id, {}, 0, 100);
    return events.ok() && !events->empty();
  })) << "the flush timer never committed the event";
  EXPECT_TRUE(fake_->Held("A"));
  ASSERT_TRUE(fake_->ReleaseNode("A"));
  EXPECT_EQ(WaitFinished(run->id).phase, NodePhase::kSucceeded);
}

TEST_F(SchedulerTest, LogsOfARunningAttemptAreCommittedBeforeItEnds) {
  FakeAttempt a = FakeAttempt::Hold();
  a.logs = {{"stdout", "still working\n"}};
  fake_->Script("A", a);
  auto run = Submit(Workflow(Task("A")));
  ASSERT_TRUE(run.ok()) << run.status();
  ASSERT_TRUE(RunUntil([&] {
    auto logs = store_->GetLogs(run->id, "", 0, 0, 100);
    return logs.ok() && !logs->empty();
  })) << "the log flush timer never committed the output";
  EXPECT_TRUE(fake_->Held("A"));
  auto logs = store_->GetLogs(run->id, "", 0, 0, 100);
  ASSERT_TRUE(logs.ok());
  EXPECT_EQ((*logs)[0].data, "still working\n");
  EXPECT_EQ((*logs)[0].stream, "stdout");
  EXPECT_EQ((*logs)[0].attempt, 1);
  ASSERT_TRUE(fake_->ReleaseNode("A"));
  EXPECT_EQ(WaitFinished(run->id).phase, NodePhase::kSucceeded);
}

TEST_F(SchedulerTest, OutputParametersReachDependents) {
  const std::string yaml = R"(apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata:
  generateName: outputs-
spec:
  entrypoint: main
  templates:
  - name: main
    dag:
      tasks:
      - {name: A, template: produce}
      - name: B
        depends: A
        template: consume
        arguments:
          parameters:
          - {name: x, value: "{{tasks.A.outputs.parameters.p}}"}
          - {name: y, value: "{{tasks.A.outputs.result}}"}
  - name: produce
    outputs:
      parameters:
      - name: p
        valueFrom: {path: /tmp/p}
    container: {image: alpine:3.18, command: [x]}
  - name: consume
    inputs:
      parameters:
      - name: x
      - name: y
    container: {image: alpine:3.18, command: [x]}
)";
  FakeAttempt a = FakeAttempt::Succeed("the result");
  a.parameters = {{"p", "the parameter"}};
  fake_->Script("A", a);
  auto run = Submit(yaml);
  ASSERT_TRUE(run.ok()) << run.status();
  EXPECT_EQ(WaitFinished(run->id).phase, NodePhase::kSucceeded);
  auto b = fake_->StartsOf("B");
  ASSERT_EQ(b.size(), 1u);
  EXPECT_EQ(b[0].spec.inputs["x"], "the parameter");
  EXPECT_EQ(b[0].spec.inputs["y"], "the result");
  EXPECT_EQ(StoredNode(run->id, "A").outputs.parameters["p"], "the parameter");
}

TEST_F(SchedulerTest, FanOutStartsOneAttemptPerItem) {
  const std::string yaml = R"(apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata:
  generateName: fanout-
spec:
  entrypoint: main
  templates:
  - name: main
    dag:
      tasks:
      - name: A
        template: step
        arguments: {parameters: [{name: item, value: "{{item}}"}]}
        withItems: [a, b, c]
      - {name: B, template: last, depends: A}
  - name: step
    inputs: {parameters: [{name: item}]}
    container: {image: alpine:3.18, command: [x]}
  - name: last
    container: {image: alpine:3.18, command: [x]}
)";
  fake_->Script("A(1:b)", FakeAttempt::Hold());
  auto run = Submit(yaml);
  ASSERT_TRUE(run.ok()) << run.status();
  ASSERT_TRUE(RunUntil([&] { return fake_->starts().size() == 3 && fake_->Held("A(1:b)"); }));
  EXPECT_FALSE(fake_->Started("B")) << "the fan-in started before every item ended";
  ASSERT_TRUE(fake_->ReleaseNode("A(1:b)"));
  EXPECT_EQ(WaitFinished(run->id).phase, NodePhase::kSucceeded);
  EXPECT_TRUE(fake_->Started("B"));
  std::set<std::string> items;
  for (const auto& s : fake_->starts()) {
    if (s.spec.inputs.count("item")) items.insert(s.spec.inputs.at("item"));
  }
  EXPECT_EQ(items, (std::set<std::string>{"a", "b", "c"}));
  ExpectWellFormedEvents(run->id);
}

// --- recovery ----------------------------------------------------------------------------------

TEST_F(SchedulerTest, RecoverRetriesTheAttemptThatDiedWithDagd) {
  const std::string yaml = Workflow(Task("A") + Task("B", "A") + Task("C", "B"), "",
                                    "    retryStrategy: {limit: 1, retryPolicy: Always}\n");
  fake_->Script("B", 1, FakeAttempt::Hold());
  auto run = Submit(yaml);
  ASSERT_TRUE(run.ok()) << run.status();
  ASSERT_TRUE(RunUntil([&] { return fake_->Held("B"); }));
  const std::string held_name = fake_->StartsOf("B")[0].spec.external_name;
  const int64_t sequence_before = store_->GetRun(run->id)->last_sequence;

  StopEverything();  // dagd dies with B running
  OpenStore();
  StartScheduler();
  ASSERT_TRUE(scheduler_->Recover().ok());
  RunRecord done = WaitFinished(run->id);
  EXPECT_EQ(done.phase, NodePhase::kSucceeded) << done.message;
  EXPECT_GT(done.last_sequence, sequence_before);

  NodeState b = StoredNode(run->id, "B");
  ASSERT_EQ(b.attempts.size(), 2u);
  EXPECT_EQ(b.attempts[0].phase, NodePhase::kError);
  EXPECT_EQ(b.attempts[0].external_name, held_name);
  EXPECT_THAT(b.attempts[0].message, StartsWith("dagd restarted"));
  EXPECT_EQ(b.attempts[1].phase, NodePhase::kSucceeded);
  EXPECT_EQ(StoredNode(run->id, "C").phase, NodePhase::kSucceeded);
  // Only what had not finished runs again.
  EXPECT_FALSE(fake_->Started("A"));
  ASSERT_EQ(fake_->StartsOf("B").size(), 1u);
  EXPECT_EQ(fake_->StartsOf("B")[0].spec.attempt, 2);
  EXPECT_NE(fake_->StartsOf("B")[0].spec.external_name, held_name);
  EXPECT_TRUE(fake_->Started("C"));
  ExpectWellFormedEvents(run->id);
}

// A runner that can reattach (kubernetes, argo) gets its running attempts back by name: the
// same attempt goes on, nothing is launched twice (DESIGN.md §3, rule 2).
TEST_F(SchedulerTest, RecoverReattachesInsteadOfRelaunching) {
  const std::string yaml = Workflow(Task("A") + Task("B", "A") + Task("C", "B"), "",
                                    "    retryStrategy: {limit: 1, retryPolicy: Always}\n");
  fake_->Script("B", 1, FakeAttempt::Hold());
  auto run = Submit(yaml);
  ASSERT_TRUE(run.ok()) << run.status();
  ASSERT_TRUE(RunUntil([&] { return fake_->Held("B"); }));
  const runners::AttemptSpec launched = fake_->StartsOf("B")[0].spec;

  StopEverything();  // dagd dies with B running on the cluster
  OpenStore();
  StartScheduler();
  fake_->SetCanReattach(true);
  fake_->Script("B", 1, FakeAttempt::Hold());
  ASSERT_TRUE(scheduler_->Recover().ok());
  ASSERT_TRUE(RunUntil([&] { return fake_->Held("B"); }));
  ASSERT_EQ(fake_->reattaches().size(), 1u);
  const runners::AttemptSpec& again = fake_->reattaches()[0].spec;
  EXPECT_EQ(again.external_name, launched.external_name);
  EXPECT_EQ(again.attempt, 1);
  EXPECT_EQ(again.work_dir, launched.work_dir);
  EXPECT_EQ(again.resolved.name, launched.resolved.name);
  EXPECT_FALSE(fake_->Started("B"));  // not launched twice
  ASSERT_TRUE(fake_->ReleaseNode("B"));
  RunRecord done = WaitFinished(run->id);
  EXPECT_EQ(done.phase, NodePhase::kSucceeded) << done.message;
  NodeState b = StoredNode(run->id, "B");
  ASSERT_EQ(b.attempts.size(), 1u);
  EXPECT_EQ(b.attempts[0].phase, NodePhase::kSucceeded);
  EXPECT_TRUE(fake_->Started("C"));
  ExpectWellFormedEvents(run->id);
}

TEST_F(SchedulerTest, RecoverWithoutRetriesEndsTheRunInError) {
  fake_->Script("A", FakeAttempt::Hold());
  auto run = Submit(Workflow(Task("A") + Task("B", "A")));
  ASSERT_TRUE(run.ok()) << run.status();
  ASSERT_TRUE(RunUntil([&] { return fake_->Held("A"); }));
  StopEverything();
  OpenStore();
  StartScheduler();
  ASSERT_TRUE(scheduler_->Recover().ok());
  RunRecord done = WaitFinished(run->id);
  EXPECT_EQ(done.phase, NodePhase::kError) << done.message;
  EXPECT_EQ(StoredNode(run->id, "A").phase, NodePhase::kError);
  EXPECT_TRUE(fake_->starts().empty());
  ExpectWellFormedEvents(run->id);
}

TEST_F(SchedulerTest, RecoverOfAStoppingRunFinishesTheStop) {
  FakeAttempt slow_to_die = FakeAttempt::Hold();
  slow_to_die.ignore_cancel = true;
  fake_->Script("A", slow_to_die);
  auto run = Submit(Workflow(Task("A") + Task("B", "A"), "",
                             "    retryStrategy: {limit: 3, retryPolicy: Always}\n"));
  ASSERT_TRUE(run.ok()) << run.status();
  ASSERT_TRUE(RunUntil([&] { return fake_->Held("A"); }));
  // Stored as stopping, but dagd dies before the cancelled attempt reports back.
  RunAnswer answer;
  scheduler_->Stop(run->id, "stop before the crash", false, answer.Callback());
  ASSERT_TRUE(RunUntil([&] { return answer.ready(); }));
  ASSERT_TRUE(answer.get().ok());
  ASSERT_EQ(fake_->cancels().size(), 1u);
  auto stored = store_->GetRun(run->id);
  ASSERT_TRUE(stored.ok());
  ASSERT_EQ(stored->stop, engine::StopStrategy::kStop);
  ASSERT_EQ(stored->phase, NodePhase::kRunning);  // A has not reported back
  StopEverything();
  OpenStore();
  StartScheduler();
  ASSERT_TRUE(scheduler_->Recover().ok());
  RunRecord done = WaitFinished(run->id);
  EXPECT_EQ(done.phase, NodePhase::kFailed) << done.message;
  EXPECT_EQ(done.stop, engine::StopStrategy::kStop);
  EXPECT_THAT(done.message, HasSubstr("stop before the crash"));
  EXPECT_TRUE(fake_->starts().empty()) << "a stopping run retried after a restart";
  NodeState a = StoredNode(run->id, "A");
  ASSERT_EQ(a.attempts.size(), 1u);
  EXPECT_THAT(a.attempts[0].message, StartsWith("dagd restarted"));
  EXPECT_TRUE(engine::IsFinal(a.phase));
  ExpectWellFormedEvents(run->id);
}

TEST_F(SchedulerTest, ShutdownRightAfterRecoverLeavesNothingToRunLater) {
  fake_->Script("A", FakeAttempt::Hold());
  auto run = Submit(Workflow(Task("A")));
  ASSERT_TRUE(run.ok()) << run.status();
  ASSERT_TRUE(RunUntil([&] { return fake_->Held("A"); }));
  StopEverything();
  OpenStore();
  StartScheduler();
  ASSERT_TRUE(scheduler_->Recover().ok());
  // Shut down before the loop ran what Recover() queued; the loop keeps serving other work.
  scheduler_->Shutdown();
  io_->poll();
  EXPECT_TRUE(fake_->starts().empty());
  EXPECT_EQ(scheduler_->active_runs(), 0);
}

// --- group commit and events -------------------------------------------------------------------

TEST_F(SchedulerTest, ManyRunsSubmittedAtOnceShareTransactions) {
  constexpr int kRuns = 20;
  // Held, so that no run's end is committed while the submissions are counted.
  fake_->SetDefault(FakeAttempt::Hold());
  std::vector<std::unique_ptr<RunAnswer>> answers;
  int64_t commits_before = 0;
  {
    // Hold the writer so that every submission queues up behind it.
    storage::testing::WriterGate gate(*store_);
    commits_before = store_->commits();
    for (int i = 0; i < kRuns; ++i) {
      answers.push_back(std::make_unique<RunAnswer>());
      scheduler_->Submit(Request(Workflow(Task("A"))), answers.back()->Callback());
    }
    io_->poll();  // every submission reaches the store
  }
  ASSERT_TRUE(RunUntil([&] {
    for (auto& a : answers) {
      if (!a->ready()) return false;
    }
    return true;
  }));
  // All of the submissions, one transaction.
  EXPECT_EQ(store_->commits() - commits_before, 1);

  ASSERT_TRUE(RunUntil([&] { return fake_->Running().size() == kRuns; }));
  for (const std::string& name : fake_->Running()) EXPECT_TRUE(fake_->Release(name));
  for (auto& a : answers) {
    ASSERT_TRUE(a->get().ok()) << a->get().status();
    WaitFinished(a->get()->id);
  }
  // Each run needs at least two batches (its submission, its end).
  EXPECT_LT(store_->commits() - commits_before, 2 * kRuns);
  EXPECT_EQ(StoredRunCount(), kRuns);
}

TEST_F(SchedulerTest, EventSequencesAreDenseAndEachPhaseChangeIsOneEvent) {
  RecordingListener listener(store_.get());
  scheduler_->AddListener(&listener);
  fake_->Script("B", 1, FakeAttempt::Fail(1, "exit code 1"));
  fake_->Script("C", FakeAttempt::Fail(2, "exit code 2"));
  auto run = Submit(Workflow(Task("A") + Task("B", "A") + Task("C", "A") +
                                 Task("D", "B && (C.Succeeded || C.Failed)") + Task("E", "C"),
                             "", "    retryStrategy: {limit: 1}\n"));
  ASSERT_TRUE(run.ok()) << run.status();
  WaitFinished(run->id);
  EXPECT_EQ(StoredNode(run->id, "E").phase, NodePhase::kOmitted);
  ExpectWellFormedEvents(run->id);

  // Every phase a node was seen in after a commit has its event, in that order.
  std::map<std::string, std::vector<NodePhase>> events_by_node;
  for (const EventRecord& e : Events(run->id)) {
    if (e.type == "NodePhase") events_by_node[e.node_name].push_back(e.phase);
  }
  std::map<std::string, std::vector<NodePhase>> seen_by_node;
  for (const auto& snapshot : listener.snapshots[run->id]) {
    for (const auto& [node, phase] : snapshot.node_phases) {
      auto& seen = seen_by_node[node];
      if (seen.empty() || seen.back() != phase) seen.push_back(phase);
    }
  }
  for (const auto& [node, seen] : seen_by_node) {
    const auto& events = events_by_node[node];
    auto it = events.begin();
    for (NodePhase phase : seen) {
      it = std::find(it, events.end(), phase);
      ASSERT_NE(it, events.end()) << node << " was stored " << engine::NodePhaseName(phase)
                                  << " without its event, in order";
    }
  }
}

TEST_F(SchedulerTest, ListenersAreToldAfterCommits) {
  RecordingListener listener(store_.get());
  scheduler_->AddListener(&listener);
  const std::thread::id test_thread = std::this_thread::get_id();
  auto run = Submit(Workflow(Task("A") + Task("B", "A")));
  ASSERT_TRUE(run.ok()) << run.status();
  RunRecord done = WaitFinished(run->id);
  const auto& snapshots = listener.snapshots[run->id];
  ASSERT_FALSE(snapshots.empty());
  int64_t last = 0;
  for (const auto& s : snapshots) {
    EXPECT_TRUE(s.run_stored) << "told before the run was stored";
    EXPECT_EQ(s.thread, test_thread) << "told off the io_context thread";
    EXPECT_GE(s.last_sequence, last);
    last = s.last_sequence;
  }
  // The last word is the committed end of the run.
  EXPECT_EQ(snapshots.back().last_sequence, done.last_sequence);
  EXPECT_EQ(snapshots.back().phase, NodePhase::kSucceeded);
}

// --- metrics -------------------------------------------------------------------------------

// Scheduler tests with a metrics registry; Sample() renders it on the test thread, which is the
// io_context's thread while RunUntil runs it, so the gauges are sampled through a post.
class SchedulerMetricsTest : public SchedulerTest {
 protected:
  void SetUp() override {
    metrics_ = std::make_unique<metrics::Registry>();
    SchedulerTest::SetUp();
  }

  // The value of the sample `series` ("name{labels}") in a fresh rendering; -1 if absent.
  double Sample(const std::string& series) {
    std::future<std::string> text =
        std::async(std::launch::async, [this] { return metrics_->Render(); });
    // The collect hook posts onto the io_context: run it until the rendering is done.
    RunUntil([&] { return text.wait_for(std::chrono::seconds(0)) == std::future_status::ready; });
    const std::string body = text.get();
    const std::string prefix = "\n" + series + " ";
    const size_t at = body.find(prefix);
    if (at == std::string::npos) return -1;
    return std::stod(body.substr(at + prefix.size()));
  }
};

TEST_F(SchedulerMetricsTest, CountsRunsAttemptsRetriesAndAnsibleResultsOnceCommitted) {
  fake_->Script("A", 1, FakeAttempt::Fail(1, "exit code 1"));
  FakeAttempt b = FakeAttempt::Succeed();
  b.events = {R"({"kind": "task_start", "task": "t"})",
              R"({"kind": "runner_on_ok", "task": "t", "host": "h1", "changed": true})",
              R"({"kind": "runner_on_ok", "task": "t", "host": "h2"})",
              R"({"kind": "runner_on_failed", "task": "t", "host": "h3"})",
              R"({"kind": "runner_on_unreachable", "task": "t", "host": "h4"})",
              R"({"kind": "runner_on_skipped", "task": "t", "host": "h5"})",
              R"({"kind": "runner_item_on_ok", "task": "t", "host": "h1", "changed": true})"};
  fake_->Script("B", b);
  auto run = Submit(Workflow(Task("A") + Task("B", "A"), "",
                             "    retryStrategy:\n"
                             "      limit: 1\n"));
  ASSERT_TRUE(run.ok()) << run.status();
  EXPECT_EQ(WaitFinished(run->id).phase, NodePhase::kSucceeded);

  EXPECT_EQ(Sample("dagd_runs_started_total{workflow=\"sched\"}"), 1);
  EXPECT_EQ(Sample("dagd_runs_finished_total{workflow=\"sched\",phase=\"Succeeded\"}"), 1);
  EXPECT_EQ(Sample("dagd_runs_finished_total{workflow=\"sched\",phase=\"Failed\"}"), 0);
  EXPECT_EQ(Sample("dagd_node_attempts_total{runner=\"local\",template=\"step\",phase=\"Failed\"}"),
            1);
  EXPECT_EQ(
      Sample("dagd_node_attempts_total{runner=\"local\",template=\"step\",phase=\"Succeeded\"}"),
      2);
  EXPECT_EQ(Sample("dagd_node_retries_total{runner=\"local\",template=\"step\"}"), 1);
  EXPECT_EQ(
      Sample("dagd_node_attempt_duration_seconds_count{runner=\"local\",phase=\"Succeeded\"}"), 2);
  EXPECT_EQ(Sample("dagd_node_queue_wait_seconds_count{runner=\"local\"}"), 2);
  EXPECT_EQ(Sample("dagd_ansible_task_results_total{status=\"changed\"}"), 1);
  EXPECT_EQ(Sample("dagd_ansible_task_results_total{status=\"ok\"}"), 1);
  EXPECT_EQ(Sample("dagd_ansible_task_results_total{status=\"failed\"}"), 1);
  EXPECT_EQ(Sample("dagd_ansible_task_results_total{status=\"unreachable\"}"), 1);
  EXPECT_EQ(Sample("dagd_ansible_task_results_total{status=\"skipped\"}"), 1);
  EXPECT_EQ(Sample("dagd_runs_active"), 0);
  EXPECT_EQ(Sample("dagd_nodes_running{runner=\"local\"}"), 0);
}

TEST_F(SchedulerMetricsTest, GaugesShowRunningAttemptsTheReadyQueueAndWaitingRetries) {
  fake_->SetDefault(FakeAttempt::Hold());
  auto run = Submit(Workflow(Task("A") + Task("B") + Task("C"), "  parallelism: 1\n"));
  ASSERT_TRUE(run.ok()) << run.status();
  ASSERT_TRUE(RunUntil([&] { return fake_->starts().size() == 1; }));
  EXPECT_EQ(Sample("dagd_runs_active"), 1);
  EXPECT_EQ(Sample("dagd_nodes_running{runner=\"local\"}"), 1);
  EXPECT_EQ(Sample("dagd_ready_queue_depth"), 2);  // parallelism 1 holds two of three
  EXPECT_EQ(Sample("dagd_nodes_waiting_retry"), 0);
  ASSERT_TRUE(fake_->Release(fake_->starts().back().spec.external_name));
  ASSERT_TRUE(RunUntil([&] { return fake_->starts().size() == 2; }));
  EXPECT_EQ(Sample("dagd_ready_queue_depth"), 1);
  Stop(run->id, "enough").IgnoreError();
  WaitFinished(run->id);
  EXPECT_EQ(Sample("dagd_runs_active"), 0);
  EXPECT_EQ(Sample("dagd_ready_queue_depth"), 0);
}

TEST_F(SchedulerMetricsTest, ARetryBackoffIsAWaitingNode) {
  fake_->Script("A", 1, FakeAttempt::Fail(1, "exit code 1"));
  auto run = Submit(Workflow(Task("A"), "",
                             "    retryStrategy:\n"
                             "      limit: 1\n"
                             "      backoff: {duration: \"1h\"}\n"));
  ASSERT_TRUE(run.ok()) << run.status();
  ASSERT_TRUE(RunUntil([&] { return StoredNode(run->id, "A").retry_at_ms > 0; }));
  EXPECT_EQ(Sample("dagd_nodes_waiting_retry"), 1);
  EXPECT_EQ(Sample("dagd_nodes_running{runner=\"local\"}"), 0);
  Stop(run->id, "enough").IgnoreError();
  WaitFinished(run->id);
  EXPECT_EQ(Sample("dagd_nodes_waiting_retry"), 0);
}

TEST_F(SchedulerMetricsTest, AnAttemptThatOutlivesItsTimeoutIsPastDeadline) {
  FakeAttempt stubborn = FakeAttempt::Hold();
  stubborn.ignore_cancel = true;
  fake_->Script("A", stubborn);
  auto run = Submit(Workflow(Task("A"), "", "    timeout: 100ms\n"));
  ASSERT_TRUE(run.ok()) << run.status();
  ASSERT_TRUE(RunUntil([&] { return fake_->cancels().size() == 1; }));
  EXPECT_EQ(Sample("dagd_nodes_past_deadline"), 1);
  EXPECT_EQ(Sample("dagd_node_timeouts_total{runner=\"local\"}"), 1);
  ASSERT_TRUE(fake_->ReleaseNode("A"));
  WaitFinished(run->id);
  EXPECT_EQ(Sample("dagd_nodes_past_deadline"), 0);
}

}  // namespace
}  // namespace dagd::scheduler
