// What FakeRunner adds beyond the Runner contract (runner_contract_test.cc): script lookup,
// holding and releasing, and the records tests read.
#include "tests/runners/fake_runner.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <string>
#include <vector>

#include "tests/runners/runner_test_util.h"

namespace dagd::runners::testing {
namespace {

using engine::NodePhase;
using ::testing::ElementsAre;

constexpr std::chrono::milliseconds kTimeout = std::chrono::seconds(10);

class FakeRunnerTest : public ::testing::Test {
 protected:
  AttemptSpec Spec(const std::string& node_name, int attempt = 1) {
    AttemptSpec spec;
    spec.run_id = "run";
    spec.node_name = node_name;
    spec.attempt = attempt;
    spec.external_name = node_name + "-" + std::to_string(attempt);
    return spec;
  }

  // Starts `spec` and runs the loop until it finishes; the result, or Error "timed out".
  engine::AttemptResult Run(const AttemptSpec& spec) {
    Recorder recorder;
    absl::Status status = fake_.Start(spec, recorder.Callbacks());
    EXPECT_TRUE(status.ok()) << status;
    if (!RunUntil(
            io_, [&] { return recorder.finished(); }, kTimeout)) {
      engine::AttemptResult timed_out;
      timed_out.phase = NodePhase::kError;
      timed_out.message = "timed out";
      return timed_out;
    }
    return *recorder.result;
  }

  boost::asio::io_context io_;
  FakeRunner fake_{io_};
};

TEST_F(FakeRunnerTest, UnscriptedAttemptsSucceed) {
  engine::AttemptResult r = Run(Spec("run.A"));
  EXPECT_EQ(r.phase, NodePhase::kSucceeded);
  EXPECT_EQ(r.exit_code, 0);
}

TEST_F(FakeRunnerTest, DefaultAppliesToUnscriptedAttempts) {
  fake_.SetDefault(FakeAttempt::Fail(2, "exit code 2"));
  EXPECT_EQ(Run(Spec("run.A")).phase, NodePhase::kFailed);
}

TEST_F(FakeRunnerTest, ScriptsMatchDisplayNameOrFullNameAndAttempt) {
  fake_.Script("B", FakeAttempt::Fail(1, "any attempt of B"));
  fake_.Script("B", 2, FakeAttempt::Succeed("second of B"));
  fake_.Script("run.outer.B", 3, FakeAttempt::Error("full name, third"));
  fake_.Script("outer.B", 3, FakeAttempt::Fail(9, "suffix, third"));

  EXPECT_EQ(Run(Spec("run.B", 1)).message, "any attempt of B");
  EXPECT_EQ(Run(Spec("run.B", 2)).result, "second of B");
  EXPECT_EQ(Run(Spec("run.outer.B", 3)).message, "full name, third");
  EXPECT_EQ(Run(Spec("run.other.B", 3)).message, "any attempt of B");
  // A suffix must start at a dot: "xB" is not "B".
  EXPECT_EQ(Run(Spec("run.xB", 1)).phase, NodePhase::kSucceeded);
}

TEST_F(FakeRunnerTest, ScriptedOutputsAndLogsAreDelivered) {
  FakeAttempt a = FakeAttempt::Succeed("the result");
  a.parameters = {{"p", "v"}};
  a.logs = {{"stdout", "one\n"}, {"stderr", "two\n"}};
  fake_.Script("A", a);
  Recorder recorder;
  ASSERT_TRUE(fake_.Start(Spec("run.A"), recorder.Callbacks()).ok());
  ASSERT_TRUE(RunUntil(
      io_, [&] { return recorder.finished(); }, kTimeout));
  EXPECT_EQ(recorder.stdout_text, "one\n");
  EXPECT_EQ(recorder.stderr_text, "two\n");
  EXPECT_EQ(recorder.result->result, "the result");
  EXPECT_EQ(recorder.result->parameters.at("p"), "v");
  EXPECT_EQ(recorder.callback_calls, 3);
}

TEST_F(FakeRunnerTest, HeldAttemptRunsUntilReleased) {
  fake_.Script("A", FakeAttempt::Hold());
  Recorder recorder;
  AttemptSpec spec = Spec("run.A");
  ASSERT_TRUE(fake_.Start(spec, recorder.Callbacks()).ok());
  io_.poll();
  EXPECT_FALSE(recorder.finished());
  EXPECT_TRUE(fake_.Held("A"));
  EXPECT_THAT(fake_.Running(), ElementsAre(spec.external_name));

  EXPECT_TRUE(fake_.ReleaseNode("A"));
  EXPECT_FALSE(fake_.Held("A"));
  EXPECT_FALSE(fake_.Release(spec.external_name)) << "released twice";
  EXPECT_FALSE(recorder.finished()) << "on_finished ran inside Release()";
  ASSERT_TRUE(RunUntil(
      io_, [&] { return recorder.finished(); }, kTimeout));
  EXPECT_EQ(recorder.result->phase, NodePhase::kSucceeded);
  EXPECT_TRUE(fake_.Running().empty());
  EXPECT_EQ(fake_.finished(), 1);
}

TEST_F(FakeRunnerTest, HeldAttemptLogsWhileItRuns) {
  FakeAttempt a = FakeAttempt::Hold();
  a.logs = {{"stdout", "working\n"}};
  fake_.Script("A", a);
  Recorder recorder;
  AttemptSpec spec = Spec("run.A");
  ASSERT_TRUE(fake_.Start(spec, recorder.Callbacks()).ok());
  EXPECT_EQ(recorder.callback_calls, 0);
  ASSERT_TRUE(RunUntil(
      io_, [&] { return !recorder.stdout_text.empty(); }, kTimeout));
  EXPECT_EQ(recorder.stdout_text, "working\n");
  EXPECT_FALSE(recorder.finished());
  EXPECT_TRUE(fake_.Release(spec.external_name));
  ASSERT_TRUE(RunUntil(
      io_, [&] { return recorder.finished(); }, kTimeout));
  EXPECT_EQ(recorder.stdout_text, "working\n");  // not again
}

TEST_F(FakeRunnerTest, ReleaseWithAGivenResult) {
  fake_.Script("A", FakeAttempt::Hold());
  Recorder recorder;
  AttemptSpec spec = Spec("run.A");
  ASSERT_TRUE(fake_.Start(spec, recorder.Callbacks()).ok());
  engine::AttemptResult result;
  result.phase = NodePhase::kError;
  result.message = "given";
  EXPECT_TRUE(fake_.Release(spec.external_name, result));
  ASSERT_TRUE(RunUntil(
      io_, [&] { return recorder.finished(); }, kTimeout));
  EXPECT_EQ(recorder.result->phase, NodePhase::kError);
  EXPECT_EQ(recorder.result->message, "given");
}

TEST_F(FakeRunnerTest, RecordsStartsCancelsAndKillAlls) {
  fake_.Script("B", FakeAttempt::Hold());
  Recorder a, b;
  AttemptSpec spec_a = Spec("run.A");
  AttemptSpec spec_b = Spec("run.B");
  spec_b.inputs = {{"x", "1"}};
  ASSERT_TRUE(fake_.Start(spec_a, a.Callbacks()).ok());
  ASSERT_TRUE(fake_.Start(spec_b, b.Callbacks()).ok());
  EXPECT_EQ(fake_.max_running(), 2);
  fake_.Cancel("nobody", "x");
  fake_.Cancel(spec_b.external_name, "stop");
  ASSERT_TRUE(RunUntil(
      io_, [&] { return a.finished() && b.finished(); }, kTimeout));
  fake_.KillAll();

  ASSERT_EQ(fake_.starts().size(), 2u);
  EXPECT_EQ(fake_.starts()[1].spec.inputs.at("x"), "1");
  EXPECT_LE(fake_.starts()[0].at, fake_.starts()[1].at);
  ASSERT_EQ(fake_.StartsOf("B").size(), 1u);
  EXPECT_TRUE(fake_.Started("A"));
  EXPECT_FALSE(fake_.Started("C"));
  ASSERT_EQ(fake_.cancels().size(), 2u);
  EXPECT_FALSE(fake_.cancels()[0].was_running);
  EXPECT_EQ(fake_.cancels()[1].message, "stop");
  EXPECT_TRUE(fake_.cancels()[1].was_running);
  EXPECT_EQ(fake_.kill_alls(), 1);
}

TEST_F(FakeRunnerTest, IgnoreCancelKeepsTheAttemptRunningUntilReleased) {
  FakeAttempt stubborn = FakeAttempt::Hold();
  stubborn.ignore_cancel = true;
  fake_.Script("A", stubborn);
  Recorder recorder;
  AttemptSpec spec = Spec("run.A");
  ASSERT_TRUE(fake_.Start(spec, recorder.Callbacks()).ok());
  fake_.Cancel(spec.external_name, "please stop");
  io_.poll();
  EXPECT_FALSE(recorder.finished());
  EXPECT_TRUE(fake_.Held("A"));
  ASSERT_EQ(fake_.cancels().size(), 1u);
  EXPECT_TRUE(fake_.cancels()[0].was_running);
  EXPECT_TRUE(fake_.Release(spec.external_name));
  ASSERT_TRUE(RunUntil(
      io_, [&] { return recorder.finished(); }, kTimeout));
  EXPECT_EQ(recorder.result->phase, NodePhase::kSucceeded);
}

TEST_F(FakeRunnerTest, StartHookRunsInsideStartBeforeAnyCallback) {
  Recorder recorder;
  std::vector<std::string> hooked;
  fake_.SetStartHook([&](const AttemptSpec& spec) {
    EXPECT_FALSE(recorder.finished());
    hooked.push_back(spec.node_name);
  });
  ASSERT_TRUE(fake_.Start(Spec("run.A"), recorder.Callbacks()).ok());
  EXPECT_THAT(hooked, ElementsAre("run.A"));
  ASSERT_TRUE(RunUntil(
      io_, [&] { return recorder.finished(); }, kTimeout));
}

TEST_F(FakeRunnerTest, DuplicateExternalNameIsRefused) {
  fake_.Script("A", FakeAttempt::Hold());
  Recorder first, second;
  ASSERT_TRUE(fake_.Start(Spec("run.A"), first.Callbacks()).ok());
  EXPECT_EQ(fake_.Start(Spec("run.A"), second.Callbacks()).code(),
            absl::StatusCode::kAlreadyExists);
}

TEST_F(FakeRunnerTest, HandlersQueuedWhenTheRunnerIsGoneDoNothing) {
  Recorder recorder;
  {
    FakeRunner short_lived(io_);
    ASSERT_TRUE(short_lived.Start(Spec("run.A"), recorder.Callbacks()).ok());
  }
  io_.poll();
  EXPECT_EQ(recorder.callback_calls, 0);
}

}  // namespace
}  // namespace dagd::runners::testing
