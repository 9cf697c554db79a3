// Lifecycle hooks through the real dagd and dagctl: hooks of steps and of the workflow run when
// their expressions hold — a `running` hook while its step runs — and show in the run's history
// under Argo's node names.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <regex>
#include <string>

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

}  // namespace
}  // namespace dagd::testing
