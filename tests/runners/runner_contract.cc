#include "tests/runners/runner_contract.h"

#include <gmock/gmock.h>

#include <chrono>
#include <optional>
#include <vector>

namespace dagd::runners::testing {
namespace {

using engine::NodePhase;
using std::chrono::milliseconds;

constexpr milliseconds kTimeout = std::chrono::seconds(30);
// How long the loop keeps running to show that no further callback comes. Not a wait for
// something to happen: a callback that is due is already queued by then.
constexpr milliseconds kQuiet = milliseconds(300);

// Records every callback of one attempt, in order, and whether one ran inside Start().
struct Trace {
  AttemptCallbacks Callbacks() {
    AttemptCallbacks callbacks;
    callbacks.on_log = [this](std::string_view stream, std::string_view data) {
      if (in_start) ++inside_start;
      if (result.has_value()) ++log_after_finished;
      entries.push_back("log");
      (stream == "stdout" ? out : err).append(data);
    };
    callbacks.on_finished = [this](engine::AttemptResult r) {
      if (in_start) ++inside_start;
      entries.push_back("finished");
      ++finished_calls;
      result = std::move(r);
    };
    return callbacks;
  }
  bool finished() const { return result.has_value(); }

  bool in_start = false;
  int inside_start = 0;
  int log_after_finished = 0;
  int finished_calls = 0;
  std::vector<std::string> entries;
  std::string out;
  std::string err;
  std::optional<engine::AttemptResult> result;
};

// Starts `spec` with `trace`'s callbacks, noting any callback made inside Start().
absl::Status StartTraced(Runner& runner, const AttemptSpec& spec, Trace& trace) {
  trace.in_start = true;
  absl::Status status = runner.Start(spec, trace.Callbacks());
  trace.in_start = false;
  return status;
}

// Keeps the loop running for kQuiet (or until it runs out of work).
void RunQuietly(boost::asio::io_context& io) {
  io.restart();
  io.run_for(kQuiet);
}

}  // namespace

std::string RunnerFactoryName(const ::testing::TestParamInfo<RunnerFactory>& info) {
  return info.param.name;
}

void PrintTo(const RunnerFactory& factory, std::ostream* os) { *os << factory.name; }

void RunnerContractTest::SetUp() { runner_ = GetParam().make(io_); }

void RunnerContractTest::TearDown() {
  if (runner_) runner_->KillAll();
  runner_.reset();
}

AttemptSpec RunnerContractTest::Spec(const std::string& template_name) {
  engine::Template t;
  if (template_name == "echo") {
    t = ContainerTemplate("echo", {"sh", "-c", "echo hi"});
  } else if (template_name == "fail") {
    t = ContainerTemplate("fail", {"sh", "-c", "exit 3"});
  } else if (template_name == "sleep") {
    t = ContainerTemplate("sleep", {"sleep", "30"});
  } else {
    t = ContainerTemplate(template_name, {"dagd-contract-no-such-program"});
  }
  const std::string name = "contract-" + template_name + "-" + std::to_string(++next_);
  AttemptSpec spec = MakeSpec(std::move(t), name, dir_.Subdir(name));
  spec.grace_period_ms = 1000;
  return spec;
}

TEST_P(RunnerContractTest, NoCallbackRunsInsideStart) {
  Trace trace;
  ASSERT_TRUE(StartTraced(*runner_, Spec("echo"), trace).ok());
  EXPECT_TRUE(trace.entries.empty());
  ASSERT_TRUE(RunUntil(
      io_, [&] { return trace.finished(); }, kTimeout));
  EXPECT_EQ(trace.inside_start, 0);
}

TEST_P(RunnerContractTest, SucceededAttemptLogsThenFinishesExactlyOnce) {
  Trace trace;
  ASSERT_TRUE(StartTraced(*runner_, Spec("echo"), trace).ok());
  ASSERT_TRUE(RunUntil(
      io_, [&] { return trace.finished(); }, kTimeout));
  RunQuietly(io_);
  EXPECT_EQ(trace.finished_calls, 1);
  ASSERT_FALSE(trace.entries.empty());
  EXPECT_EQ(trace.entries.back(), "finished");
  EXPECT_EQ(trace.log_after_finished, 0);
  EXPECT_EQ(trace.out, "hi\n");
  EXPECT_EQ(trace.result->phase, NodePhase::kSucceeded) << trace.result->message;
  EXPECT_EQ(trace.result->exit_code, 0);
  EXPECT_EQ(trace.result->result, "hi");
}

TEST_P(RunnerContractTest, FailingAttemptFinishesFailedWithItsExitCode) {
  Trace trace;
  ASSERT_TRUE(StartTraced(*runner_, Spec("fail"), trace).ok());
  ASSERT_TRUE(RunUntil(
      io_, [&] { return trace.finished(); }, kTimeout));
  RunQuietly(io_);
  EXPECT_EQ(trace.finished_calls, 1);
  EXPECT_EQ(trace.result->phase, NodePhase::kFailed);
  EXPECT_EQ(trace.result->exit_code, 3);
}

TEST_P(RunnerContractTest, CancelOfARunningAttemptFinishesItFailedWithTheMessage) {
  Trace trace;
  AttemptSpec spec = Spec("sleep");
  ASSERT_TRUE(StartTraced(*runner_, spec, trace).ok());
  io_.restart();
  io_.poll();  // let it get going
  EXPECT_FALSE(trace.finished());
  runner_->Cancel(spec.external_name, "stopped by the contract test");
  EXPECT_FALSE(trace.finished()) << "on_finished ran inside Cancel()";
  ASSERT_TRUE(RunUntil(
      io_, [&] { return trace.finished(); }, kTimeout));
  RunQuietly(io_);
  EXPECT_EQ(trace.finished_calls, 1);
  EXPECT_EQ(trace.entries.back(), "finished");
  EXPECT_EQ(trace.result->phase, NodePhase::kFailed);
  EXPECT_EQ(trace.result->message, "stopped by the contract test");
}

TEST_P(RunnerContractTest, SecondCancelChangesNothing) {
  Trace trace;
  AttemptSpec spec = Spec("sleep");
  ASSERT_TRUE(StartTraced(*runner_, spec, trace).ok());
  runner_->Cancel(spec.external_name, "first");
  runner_->Cancel(spec.external_name, "second");
  ASSERT_TRUE(RunUntil(
      io_, [&] { return trace.finished(); }, kTimeout));
  RunQuietly(io_);
  EXPECT_EQ(trace.finished_calls, 1);
  EXPECT_EQ(trace.result->message, "first");
}

TEST_P(RunnerContractTest, CancelOfAnUnknownAttemptIsIgnored) {
  Trace trace;
  AttemptSpec spec = Spec("sleep");
  ASSERT_TRUE(StartTraced(*runner_, spec, trace).ok());
  runner_->Cancel("contract-no-such-attempt", "nothing to cancel");
  RunQuietly(io_);
  EXPECT_FALSE(trace.finished()) << "cancelling another name ended this attempt";
  runner_->Cancel(spec.external_name, "done");
  ASSERT_TRUE(RunUntil(
      io_, [&] { return trace.finished(); }, kTimeout));
}

TEST_P(RunnerContractTest, CancelOfAFinishedAttemptIsIgnored) {
  Trace trace;
  AttemptSpec spec = Spec("echo");
  ASSERT_TRUE(StartTraced(*runner_, spec, trace).ok());
  ASSERT_TRUE(RunUntil(
      io_, [&] { return trace.finished(); }, kTimeout));
  runner_->Cancel(spec.external_name, "too late");
  RunQuietly(io_);
  EXPECT_EQ(trace.finished_calls, 1);
  EXPECT_EQ(trace.result->phase, NodePhase::kSucceeded);
}

TEST_P(RunnerContractTest, KillAllEndsEveryAttemptWithoutCallbacks) {
  Trace sleeping;
  Trace echoing;
  ASSERT_TRUE(StartTraced(*runner_, Spec("sleep"), sleeping).ok());
  ASSERT_TRUE(StartTraced(*runner_, Spec("echo"), echoing).ok());
  runner_->KillAll();
  RunQuietly(io_);
  EXPECT_TRUE(sleeping.entries.empty());
  EXPECT_TRUE(echoing.entries.empty());
}

TEST_P(RunnerContractTest, KillAllAfterTheAttemptRanGivesNoFurtherCallbacks) {
  Trace trace;
  AttemptSpec spec = Spec("sleep");
  ASSERT_TRUE(StartTraced(*runner_, spec, trace).ok());
  io_.restart();
  io_.poll();
  runner_->KillAll();
  RunQuietly(io_);
  EXPECT_EQ(trace.finished_calls, 0);
  runner_->Cancel(spec.external_name, "after KillAll");  // no longer known: ignored
  RunQuietly(io_);
  EXPECT_EQ(trace.finished_calls, 0);
}

TEST_P(RunnerContractTest, StartErrorIsReturnedAndNoCallbackFollows) {
  Trace trace;
  absl::Status status = StartTraced(*runner_, Spec("missing"), trace);
  EXPECT_FALSE(status.ok());
  RunQuietly(io_);
  EXPECT_TRUE(trace.entries.empty());
}

TEST_P(RunnerContractTest, AttemptsAreIndependent) {
  Trace sleeping;
  Trace echoing;
  AttemptSpec sleep = Spec("sleep");
  ASSERT_TRUE(StartTraced(*runner_, sleep, sleeping).ok());
  ASSERT_TRUE(StartTraced(*runner_, Spec("echo"), echoing).ok());
  ASSERT_TRUE(RunUntil(
      io_, [&] { return echoing.finished(); }, kTimeout));
  EXPECT_EQ(echoing.result->phase, NodePhase::kSucceeded);
  EXPECT_FALSE(sleeping.finished());
  runner_->Cancel(sleep.external_name, "bye");
  ASSERT_TRUE(RunUntil(
      io_, [&] { return sleeping.finished(); }, kTimeout));
  EXPECT_EQ(sleeping.result->phase, NodePhase::kFailed);
  EXPECT_EQ(echoing.finished_calls, 1);
}

}  // namespace dagd::runners::testing
