// RetryRun and ResubmitRun through the real dagd and dagctl: a run that failed runs again from
// where it failed (retry, same id; resubmit --memoized, a new run), and only what did not
// succeed runs again — checked by what the steps record on the host.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <string>

#include "tests/integration/daemon.h"

namespace dagd::testing {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

class RetryTest : public ::testing::Test {
 protected:
  void SetUp() override { dagd_.Start(); }

  // `dagctl ARGS`, expecting `exit_code`; returns the output.
  std::string Dagctl(const std::vector<std::string>& args, int exit_code) {
    CommandResult result = RunDagctl(dagd_.address(), args);
    EXPECT_EQ(result.exit_code, exit_code) << result.output;
    return result.output;
  }

  // The run id in "run ID submitted…".
  static std::string RunId(const std::string& output) {
    std::smatch match;
    EXPECT_TRUE(std::regex_search(output, match, std::regex("run (\\S+) submitted"))) << output;
    return match.size() > 1 ? match[1].str() : "";
  }

  std::vector<std::string> Ran() {
    std::vector<std::string> steps = ReadLines(records_.path() + "/ran");
    std::sort(steps.begin(), steps.end());
    return steps;
  }
  void Fix() { std::ofstream(records_.path() + "/fixed") << "yes\n"; }
  void Unfix() { std::filesystem::remove(records_.path() + "/fixed"); }

  const std::string file_ = SourcePath("tests/integration/testdata/retry-diamond.yaml");
  TempDir data_;
  TempDir records_;
  Daemon dagd_{data_.path()};
};

TEST_F(RetryTest, RetryRunsWhatFailedUnderTheSameId) {
  const std::string submitted =
      Dagctl({"submit", "-f", file_, "-p", "record_dir=" + records_.path(), "--watch"}, 1);
  const std::string run = RunId(submitted);
  EXPECT_THAT(Ran(), ElementsAre("A", "B", "C"));  // D omitted

  // Still failing: the run fails again, and A and C are not run again.
  Dagctl({"retry", run, "--watch"}, 1);
  EXPECT_THAT(Ran(), ElementsAre("A", "B", "B", "C"));

  Fix();
  const std::string retried = Dagctl({"retry", run, "--watch"}, 0);
  EXPECT_THAT(retried, HasSubstr("run " + run + " retried"));
  EXPECT_THAT(Ran(), ElementsAre("A", "B", "B", "B", "C", "D"));

  // A succeeded run is retried only for the nodes named; refusals name the reason.
  EXPECT_THAT(Dagctl({"retry", run}, 1), HasSubstr("succeeded: there is nothing to retry"));
  EXPECT_THAT(Dagctl({"retry", run, "--restart", "nope"}, 1), HasSubstr("nope"));
  Dagctl({"retry", run, "--restart", "C", "--watch"}, 0);
  EXPECT_THAT(Ran(), ElementsAre("A", "B", "B", "B", "C", "C", "D"));

  // The history keeps the retries.
  const std::string events = Dagctl({"runs", "get", run, "-o", "json"}, 0);
  EXPECT_THAT(events, HasSubstr("\"phase\": \"PHASE_SUCCEEDED\""));
}

TEST_F(RetryTest, ResubmitStartsANewRunMemoizedFromTheFailedOne) {
  const std::string first =
      RunId(Dagctl({"submit", "-f", file_, "-p", "record_dir=" + records_.path(), "--watch"}, 1));
  // A plain resubmit runs everything again.
  const std::string again = RunId(Dagctl({"resubmit", first, "--watch"}, 1));
  EXPECT_NE(again, first);
  EXPECT_THAT(Ran(), ElementsAre("A", "A", "B", "B", "C", "C"));

  Fix();
  const std::string output = Dagctl({"resubmit", again, "--memoized", "--watch"}, 0);
  const std::string memoized = RunId(output);
  EXPECT_THAT(output, HasSubstr("resubmit of " + again + ", memoized"));
  EXPECT_THAT(Ran(), ElementsAre("A", "A", "B", "B", "B", "C", "C", "D"));
  // A memoized resubmit of a run that succeeded would run nothing: refused.
  EXPECT_THAT(Dagctl({"resubmit", memoized, "--memoized"}, 1),
              HasSubstr("succeeded: a memoized resubmit would run nothing"));
  EXPECT_THAT(Dagctl({"resubmit", "no-such-run"}, 1), HasSubstr("no-such-run"));
}

}  // namespace
}  // namespace dagd::testing
