// Hooks through the real dagd and dagctl: hooks of steps and of the workflow run when their
// expressions hold — a `running` hook while its step runs — and show in the run's history under
// Argo's node names; `dagctl stop` still runs exit hooks, `dagctl terminate` does not.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <regex>
#include <string>
#include <thread>

#include "tests/integration/daemon.h"

namespace dagd::testing {
namespace {

using ::testing::ElementsAre;

TEST(HooksTest, StepAndWorkflowHooksRunWhenTheirExpressionsHold) {
  TempDir data;
  TempDir records;
  Daemon dagd(data.path());
  dagd.Start();
  CommandResult submitted =
      RunDagctl(dagd.address(),
                {"submit", "-f", SourcePath("tests/integration/testdata/lifecycle-hooks.yaml"),
                 "-p", "record_dir=" + records.path(), "--watch"});
  ASSERT_EQ(submitted.exit_code, 0) << submitted.output;
  std::smatch match;
  ASSERT_TRUE(std::regex_search(submitted.output, match, std::regex("run (\\S+) submitted")));
  const std::string run_id = match[1].str();

  std::vector<std::string> lines = ReadLines(records.path() + "/hooks");
  // The exit hook comes last; the others in the order they became due, which for the two
  // `running` hooks is not fixed.
  ASSERT_EQ(lines.size(), 4u) << submitted.output;
  EXPECT_EQ(lines.back(), "workflow exit Succeeded");
  std::vector<std::string> others(lines.begin(), lines.end() - 1);
  std::sort(others.begin(), others.end());
  EXPECT_THAT(others, ElementsAre("build running", "test Succeeded", "workflow running"));

  v1::GetRunRequest get;
  get.set_run_id(run_id);
  v1::Run run;
  grpc::ClientContext context;
  ASSERT_TRUE(dagd.runs()->GetRun(&context, get, &run).ok());
  EXPECT_EQ(run.phase(), v1::PHASE_SUCCEEDED) << run.message();
  const v1::Node* build_hook = FindNode(run, "build.hooks.running");
  ASSERT_NE(build_hook, nullptr);
  EXPECT_EQ(build_hook->name(), run_id + "[0].build.hooks.running");
  EXPECT_EQ(build_hook->parent(), run_id + "[0].build");
  EXPECT_EQ(build_hook->phase(), v1::PHASE_SUCCEEDED);
  ASSERT_NE(FindNode(run, "test.hooks.success"), nullptr);
  EXPECT_EQ(FindNode(run, "build.hooks.failed"), nullptr);  // its expression never held
  const v1::Node* workflow_hook = FindNode(run, run_id + ".hooks.running");
  ASSERT_NE(workflow_hook, nullptr);
  EXPECT_EQ(workflow_hook->parent(), "");
  ASSERT_NE(FindNode(run, run_id + ".onExit"), nullptr);
}

// `dagctl stop` (Argo's stop) ends the running step but still runs its exit hook and the
// workflow's; `dagctl terminate` runs neither.
void StopOrTerminate(const std::string& verb, size_t hooks_expected) {
  TempDir data;
  TempDir records;
  Daemon dagd(data.path());
  dagd.Start();
  CommandResult submitted = RunDagctl(
      dagd.address(), {"submit", "-f", SourcePath("tests/integration/testdata/stop-exit-hook.yaml"),
                       "-p", "record_dir=" + records.path()});
  ASSERT_EQ(submitted.exit_code, 0) << submitted.output;
  std::smatch match;
  ASSERT_TRUE(std::regex_search(submitted.output, match, std::regex("run (\\S+) submitted")));
  const std::string run_id = match[1].str();
  for (int i = 0; i < 200 && !std::filesystem::exists(records.path() + "/started"); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_TRUE(std::filesystem::exists(records.path() + "/started"));

  CommandResult stopped = RunDagctl(dagd.address(), {verb, run_id});
  ASSERT_EQ(stopped.exit_code, 0) << stopped.output;
  std::vector<v1::RunEvent> events = WatchToEnd(dagd.runs(), run_id);
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events.back().phase(), v1::PHASE_FAILED);
  // The step's hook sees the run still running; the workflow's its end.
  std::vector<std::string> expected = {"Running", "Failed"};
  expected.resize(hooks_expected);
  EXPECT_EQ(ReadLines(records.path() + "/hooks"), expected) << verb;
}

TEST(HooksTest, StopStillRunsExitHooks) { StopOrTerminate("stop", 2); }

TEST(HooksTest, TerminateRunsNoExitHook) { StopOrTerminate("terminate", 0); }

}  // namespace
}  // namespace dagd::testing
