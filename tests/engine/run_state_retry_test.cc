// RunState::Retry: Argo's `argo retry` of a finished run.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "engine/run_state.h"
#include "tests/engine/run_state_driver.h"

namespace dagd::engine::test {
namespace {

using ::testing::HasSubstr;
using ::testing::UnorderedElementsAre;

TEST(RunStateRetryTest, OnlyWhatDidNotSucceedRunsAgain) {
  RunState state = MustCreate(Diamond());
  Driver driver(&state);
  driver.Script("B", {Fail()});
  driver.Run();
  ASSERT_EQ(state.phase(), NodePhase::kFailed);
  EXPECT_EQ(NodeOf(state, "run.D").phase, NodePhase::kOmitted);
  state.TakeChangedNodes();

  ASSERT_TRUE(state.Retry({}).ok());
  EXPECT_THAT(state.TakeRemovedNodes(), UnorderedElementsAre("run.B", "run.D"));
  EXPECT_EQ(state.nodes().count("run.B"), 0u);
  EXPECT_EQ(NodeOf(state, "run").phase, NodePhase::kRunning);
  EXPECT_THAT(NodeOf(state, "run").children, UnorderedElementsAre("run.A", "run.C"));
  EXPECT_THAT(state.TakeChangedNodes(), UnorderedElementsAre("run"));

  const std::vector<std::vector<std::string>> batches = driver.Run();
  EXPECT_EQ(batches, (std::vector<std::vector<std::string>>{{"run.B"}, {"run.D"}}));
  EXPECT_EQ(state.phase(), NodePhase::kSucceeded);
  EXPECT_EQ(NodeOf(state, "run.A").attempts.size(), 1u) << "A is not run again";
}

TEST(RunStateRetryTest, RefusesWhatCannotBeRetriedAndChangesNothing) {
  RunState state = MustCreate(Diamond());
  Driver driver(&state);
  driver.Advance();
  EXPECT_THAT(state.Retry({}).message(), HasSubstr("is still running"));
  driver.Run();
  ASSERT_EQ(state.phase(), NodePhase::kSucceeded);
  state.TakeChangedNodes();
  EXPECT_THAT(state.Retry({}).message(), HasSubstr("succeeded: there is nothing to retry"));
  EXPECT_EQ(state.Retry({"run.Z"}).code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(state.TakeChangedNodes().empty());
  EXPECT_TRUE(state.TakeRemovedNodes().empty());

  // Naming succeeded nodes runs them again (Argo's --restart-successful with a selector).
  ASSERT_TRUE(state.Retry({"run.C"}).ok());
  EXPECT_THAT(state.TakeRemovedNodes(), UnorderedElementsAre("run.C"));
  EXPECT_EQ(driver.Run(), (std::vector<std::vector<std::string>>{{"run.C"}}));
  EXPECT_EQ(state.phase(), NodePhase::kSucceeded);
}

TEST(RunStateRetryTest, ARootPodRunsAgainWithItsAttemptsNumberedOn) {
  RunState state = MustCreate(MakeWorkflow({Leaf("only")}));
  Driver driver(&state);
  driver.Script("run", {Fail(), Ok("fine")});
  driver.Run();
  ASSERT_EQ(state.phase(), NodePhase::kFailed);
  ASSERT_TRUE(state.Retry({}).ok());
  EXPECT_EQ(NodeOf(state, "run").phase, NodePhase::kRunning);
  driver.Run();
  EXPECT_EQ(state.phase(), NodePhase::kSucceeded);
  ASSERT_EQ(NodeOf(state, "run").attempts.size(), 2u);
  EXPECT_EQ(NodeOf(state, "run").attempts[1].number, 2);
}

TEST(RunStateRetryTest, AStepGroupThatLostAStepRunsAgainAsAWhole) {
  DagTask fan = Task("fan", "echo");
  fan.with_items = {"a", "b"};
  RunState state =
      MustCreate(MakeWorkflow({Steps("main", {{Task("first", "echo")}, {fan}}), Leaf("echo")}));
  Driver driver(&state);
  driver.Script("fan(1:b)", {Fail()});
  driver.Run();
  ASSERT_EQ(state.phase(), NodePhase::kFailed);
  ASSERT_TRUE(state.Retry({}).ok());
  EXPECT_THAT(state.TakeRemovedNodes(),
              UnorderedElementsAre("run[1]", "run[1].fan(0:a)", "run[1].fan(1:b)"));
  EXPECT_EQ(NodeOf(state, "run[0]").phase, NodePhase::kSucceeded);
  driver.Run();
  EXPECT_EQ(state.phase(), NodePhase::kSucceeded);
  EXPECT_EQ(NodeOf(state, "run[0].first").attempts.size(), 1u);
}

TEST(RunStateRetryTest, ARetriedRunTakesItsWorkflowLocksAgain) {
  Workflow locked = *Diamond();
  locked.synchronization.emplace();
  locked.synchronization->mutexes = {"deploy"};
  LockTable locks;
  RunState state = MustCreate(std::make_shared<const Workflow>(locked));
  state.SetLockTable(&locks);
  Driver driver(&state);
  driver.Script("B", {Fail()});
  driver.Run();
  ASSERT_EQ(state.phase(), NodePhase::kFailed);
  const std::vector<std::string> mutex = LockKeys({"deploy"}, {});
  EXPECT_EQ(locks.FirstBusy("other", mutex), "") << "an ended run holds no lock";

  ASSERT_TRUE(state.Retry({}).ok());
  driver.Advance();
  EXPECT_EQ(locks.FirstBusy("other", mutex), "mutex/deploy") << "the retried run holds it again";
  driver.Run();
  EXPECT_EQ(state.phase(), NodePhase::kSucceeded);
}

}  // namespace
}  // namespace dagd::engine::test
