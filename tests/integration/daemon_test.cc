// End-to-end tests of the real dagd binary: real gRPC over loopback, real SQLite files, real
// ansible-playbook, and the real dagctl.
#include "tests/integration/daemon.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "tests/fakes/fake_kube_process.h"
#include "tests/integration/sshd.h"

namespace dagd::testing {
namespace {

namespace fs = std::filesystem;
using std::chrono::seconds;

const std::string kTestdata = SourcePath("tests/integration/testdata");

v1::SubmitRunRequest SubmitRequest(const std::string& file,
                                   std::map<std::string, std::string> parameters) {
  v1::SubmitRunRequest request;
  request.set_spec_yaml(ReadFile(kTestdata + "/" + file));
  request.set_file_name(file);
  *request.mutable_bundle() = ReadBundle(kTestdata);
  for (const auto& [k, v] : parameters) (*request.mutable_parameters())[k] = v;
  return request;
}

v1::Run Submit(Daemon& dagd, const v1::SubmitRunRequest& request) {
  grpc::ClientContext context;
  v1::Run run;
  grpc::Status status = dagd.runs()->SubmitRun(&context, request, &run);
  EXPECT_TRUE(status.ok()) << status.error_message();
  return run;
}

v1::Run GetRun(Daemon& dagd, const std::string& run_id) {
  grpc::ClientContext context;
  v1::GetRunRequest request;
  request.set_run_id(run_id);
  v1::Run run;
  grpc::Status status = dagd.runs()->GetRun(&context, request, &run);
  EXPECT_TRUE(status.ok()) << status.error_message();
  return run;
}

std::string NodeLogs(Daemon& dagd, const std::string& run_id, const std::string& node) {
  grpc::ClientContext context;
  v1::GetNodeLogsRequest request;
  request.set_run_id(run_id);
  request.set_node(node);
  auto reader = dagd.runs()->GetNodeLogs(&context, request);
  std::string text;
  v1::LogChunk chunk;
  while (reader->Read(&chunk)) text += chunk.data();
  grpc::Status status = reader->Finish();
  EXPECT_TRUE(status.ok()) << status.error_message();
  return text;
}

std::vector<v1::Phase> AttemptPhases(const v1::Node& node) {
  std::vector<v1::Phase> phases;
  for (const auto& a : node.attempts()) phases.push_back(a.phase());
  return phases;
}

int Count(const std::vector<std::string>& lines, const std::string& value) {
  return static_cast<int>(std::count(lines.begin(), lines.end(), value));
}

// Processes whose working directory is inside `dir` (attempt processes of a test's dagd).
std::vector<int> ProcessesIn(const std::string& dir) {
  std::vector<int> pids;
  for (const auto& entry : fs::directory_iterator("/proc")) {
    const std::string name = entry.path().filename();
    if (name.empty() || !std::isdigit(static_cast<unsigned char>(name[0]))) continue;
    std::error_code ec;
    fs::path cwd = fs::read_symlink(entry.path() / "cwd", ec);
    if (!ec && cwd.string().rfind(dir, 0) == 0) pids.push_back(std::stoi(name));
  }
  return pids;
}

// Polls `condition` until it holds or `limit` passes.
template <typename Condition>
bool Eventually(Condition condition, seconds limit = seconds(60)) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    if (condition()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return condition();
}

class DaemonTest : public ::testing::Test {
 protected:
  void SetUp() override {
    fs::create_directories(records_);
    dagd_.Start();
  }

  TempDir tmp_;
  std::string data_dir_ = tmp_.path() + "/data";
  std::string records_ = tmp_.path() + "/records";
  Daemon dagd_{data_dir_};
};

// (a) A diamond of four real playbooks; B fails once and succeeds on its retry. Watched to
// Succeeded; phases, attempts and logs read back from history, and again after a restart.
TEST_F(DaemonTest, DiamondWithRetrySucceedsAndHistorySurvivesRestart) {
  v1::Run submitted =
      Submit(dagd_, SubmitRequest("diamond-retry.yaml", {{"record_dir", records_}}));
  ASSERT_FALSE(submitted.id().empty());

  std::vector<v1::RunEvent> events = WatchToEnd(dagd_.runs(), submitted.id());
  ASSERT_FALSE(events.empty());
  EXPECT_TRUE(events.back().final());
  EXPECT_EQ(events.back().phase(), v1::PHASE_SUCCEEDED);
  for (size_t i = 1; i < events.size(); ++i) {
    EXPECT_EQ(events[i].sequence(), events[i - 1].sequence() + 1) << "no gaps, no repeats";
  }

  // D starts only after B and C both succeeded.
  auto position = [&](const std::string& node_suffix, const std::string& type, v1::Phase phase) {
    for (size_t i = 0; i < events.size(); ++i) {
      const auto& e = events[i];
      if (e.type() == type && e.phase() == phase && e.node_name().size() >= node_suffix.size() &&
          e.node_name().compare(e.node_name().size() - node_suffix.size(), node_suffix.size(),
                                node_suffix) == 0) {
        return static_cast<int>(i);
      }
    }
    return -1;
  };
  const int b_done = position(".B", "NodePhase", v1::PHASE_SUCCEEDED);
  const int c_done = position(".C", "NodePhase", v1::PHASE_SUCCEEDED);
  const int d_start = position(".D", "AttemptStarted", v1::PHASE_RUNNING);
  ASSERT_GE(b_done, 0);
  ASSERT_GE(c_done, 0);
  ASSERT_GE(d_start, 0);
  EXPECT_GT(d_start, b_done);
  EXPECT_GT(d_start, c_done);

  auto check_history = [&](const v1::Run& run) {
    EXPECT_EQ(run.phase(), v1::PHASE_SUCCEEDED);
    for (const char* name : {"A", "B", "C", "D"}) {
      const v1::Node* node = FindNode(run, name);
      ASSERT_NE(node, nullptr) << name;
      EXPECT_EQ(node->phase(), v1::PHASE_SUCCEEDED) << name;
      EXPECT_TRUE(node->has_start_time() && node->has_finish_time()) << name;
    }
    EXPECT_EQ(AttemptPhases(*FindNode(run, "B")),
              (std::vector<v1::Phase>{v1::PHASE_FAILED, v1::PHASE_SUCCEEDED}));
    for (const char* name : {"A", "C", "D"}) {
      EXPECT_EQ(AttemptPhases(*FindNode(run, name)), (std::vector<v1::Phase>{v1::PHASE_SUCCEEDED}))
          << name;
    }
    std::string b_logs = NodeLogs(dagd_, run.id(), "B");
    EXPECT_NE(b_logs.find("B fails on its first attempt"), std::string::npos) << b_logs;
    EXPECT_NE(b_logs.find("step B done"), std::string::npos) << b_logs;
    // As Argo shows retries: B is a Retry node whose children B(0), B(1) are its attempts.
    const v1::Node& b = *FindNode(run, "B");
    EXPECT_EQ(b.type(), v1::NODE_TYPE_RETRY);
    ASSERT_GE(b.children_size(), 2);
    EXPECT_EQ(b.children(0), b.name() + "(0)");
    EXPECT_EQ(b.children(1), b.name() + "(1)");
    const v1::Node* b0 = FindNode(run, "B(0)");
    const v1::Node* b1 = FindNode(run, "B(1)");
    ASSERT_TRUE(b0 != nullptr && b1 != nullptr);
    EXPECT_EQ(b0->parent(), b.name());
    EXPECT_EQ(b0->type(), v1::NODE_TYPE_POD);
    EXPECT_EQ(b0->phase(), v1::PHASE_FAILED);
    EXPECT_EQ(b1->phase(), v1::PHASE_SUCCEEDED);
    EXPECT_EQ(FindNode(run, "B(2)"), nullptr);
    std::string first = NodeLogs(dagd_, run.id(), "B(0)");
    EXPECT_NE(first.find("B fails on its first attempt"), std::string::npos) << first;
    EXPECT_EQ(first.find("step B done"), std::string::npos) << first;
    EXPECT_NE(NodeLogs(dagd_, run.id(), "B(1)").find("step B done"), std::string::npos);
    EXPECT_NE(NodeLogs(dagd_, run.id(), "D").find("step D done"), std::string::npos);
  };
  check_history(GetRun(dagd_, submitted.id()));

  std::vector<std::string> ran = ReadLines(records_ + "/runs.log");
  EXPECT_EQ(Count(ran, "A"), 1);
  EXPECT_EQ(Count(ran, "B"), 2);
  EXPECT_EQ(Count(ran, "C"), 1);
  EXPECT_EQ(Count(ran, "D"), 1);
  ASSERT_EQ(ran.size(), 5u);
  EXPECT_EQ(ran.front(), "A");
  EXPECT_EQ(ran.back(), "D");

  ASSERT_EQ(dagd_.Terminate(), 0) << ReadFile(data_dir_ + "/dagd.log");
  dagd_.Start();
  check_history(GetRun(dagd_, submitted.id()));
  EXPECT_EQ(WatchToEnd(dagd_.runs(), submitted.id()).size(), events.size());

  CommandResult get = RunDagctl(dagd_.address(), {"runs", "get", submitted.id()});
  EXPECT_EQ(get.exit_code, 0) << get.output;
  EXPECT_NE(get.output.find("Succeeded"), std::string::npos) << get.output;
  CommandResult logs = RunDagctl(dagd_.address(), {"logs", submitted.id(), "B"});
  EXPECT_EQ(logs.exit_code, 0) << logs.output;
  EXPECT_NE(logs.output.find("step B done"), std::string::npos) << logs.output;
}

// (b) A failing node: its dependents end Omitted and the run Failed.
TEST_F(DaemonTest, FailedNodeOmitsDependentsAndFailsRun) {
  v1::Run submitted = Submit(dagd_, SubmitRequest("fail-omits.yaml", {{"record_dir", records_}}));
  std::vector<v1::RunEvent> events = WatchToEnd(dagd_.runs(), submitted.id());
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events.back().phase(), v1::PHASE_FAILED);

  v1::Run run = GetRun(dagd_, submitted.id());
  EXPECT_EQ(run.phase(), v1::PHASE_FAILED);
  ASSERT_NE(FindNode(run, "A"), nullptr);
  EXPECT_EQ(FindNode(run, "A")->phase(), v1::PHASE_FAILED);
  for (const char* name : {"B", "C"}) {
    const v1::Node* node = FindNode(run, name);
    ASSERT_NE(node, nullptr) << name;
    EXPECT_EQ(node->phase(), v1::PHASE_OMITTED) << name;
    EXPECT_EQ(node->attempts_size(), 0) << name;
  }
  EXPECT_EQ(ReadLines(records_ + "/runs.log"), std::vector<std::string>{"A"});
  EXPECT_NE(NodeLogs(dagd_, run.id(), "A").find("A always fails"), std::string::npos);
}

// (c) kill -9 of dagd while a node runs: its processes die with dagd, and after a restart the
// run finishes with every node run the right number of times.
TEST_F(DaemonTest, KillNineMidRunResumesAfterRestart) {
  v1::Run submitted = Submit(dagd_, SubmitRequest("crash-resume.yaml", {{"record_dir", records_},
                                                                        {"sleep_seconds", "300"}}));
  ASSERT_TRUE(Eventually([&] { return fs::exists(records_ + "/B.slept"); }))
      << ReadFile(data_dir_ + "/dagd.log");
  ASSERT_FALSE(ProcessesIn(data_dir_).empty()) << "B's playbook should be running";

  dagd_.Kill();
  EXPECT_TRUE(Eventually([&] { return ProcessesIn(data_dir_).empty(); }, seconds(15)))
      << "attempt processes outlived dagd";

  dagd_.Start();
  std::vector<v1::RunEvent> events = WatchToEnd(dagd_.runs(), submitted.id());
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events.back().phase(), v1::PHASE_SUCCEEDED);

  v1::Run run = GetRun(dagd_, submitted.id());
  EXPECT_EQ(run.phase(), v1::PHASE_SUCCEEDED);
  EXPECT_EQ(AttemptPhases(*FindNode(run, "A")), (std::vector<v1::Phase>{v1::PHASE_SUCCEEDED}));
  EXPECT_EQ(AttemptPhases(*FindNode(run, "B")),
            (std::vector<v1::Phase>{v1::PHASE_ERROR, v1::PHASE_SUCCEEDED}));
  EXPECT_EQ(AttemptPhases(*FindNode(run, "C")), (std::vector<v1::Phase>{v1::PHASE_SUCCEEDED}));
  std::vector<std::string> ran = ReadLines(records_ + "/runs.log");
  EXPECT_EQ(ran, (std::vector<std::string>{"A", "B", "B", "C"}));
}

// StopRun ends the running attempt (its whole process group) and starts nothing new.
TEST_F(DaemonTest, StopEndsRunningAttemptAndStartsNothingNew) {
  v1::Run submitted = Submit(dagd_, SubmitRequest("crash-resume.yaml", {{"record_dir", records_},
                                                                        {"sleep_seconds", "300"}}));
  ASSERT_TRUE(Eventually([&] { return fs::exists(records_ + "/B.slept"); }));

  CommandResult stop = RunDagctl(dagd_.address(), {"stop", submitted.id()});
  EXPECT_EQ(stop.exit_code, 0) << stop.output;
  std::vector<v1::RunEvent> events = WatchToEnd(dagd_.runs(), submitted.id());
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events.back().phase(), v1::PHASE_FAILED);
  EXPECT_TRUE(Eventually([&] { return ProcessesIn(data_dir_).empty(); }, seconds(15)));

  v1::Run run = GetRun(dagd_, submitted.id());
  EXPECT_EQ(run.phase(), v1::PHASE_FAILED);
  EXPECT_EQ(FindNode(run, "B")->attempts_size(), 1) << "a stopped node is not retried";
  const v1::Node* c = FindNode(run, "C");
  EXPECT_TRUE(c == nullptr || c->attempts_size() == 0) << "nothing new starts after a stop";
  EXPECT_EQ(ReadLines(records_ + "/runs.log"), (std::vector<std::string>{"A", "B"}));

  CommandResult again = RunDagctl(dagd_.address(), {"terminate", submitted.id()});
  EXPECT_NE(again.exit_code, 0) << "terminating a finished run is refused: " << again.output;
}

// Submitting twice with one request id gives one run.
TEST_F(DaemonTest, RequestIdMakesSubmissionIdempotent) {
  v1::SubmitRunRequest request = SubmitRequest("fail-omits.yaml", {{"record_dir", records_}});
  request.set_request_id("deploy-2026-11-26-1");
  v1::Run first = Submit(dagd_, request);
  v1::Run second = Submit(dagd_, request);
  EXPECT_EQ(first.id(), second.id());
  WatchToEnd(dagd_.runs(), first.id());
  v1::Run third = Submit(dagd_, request);
  EXPECT_EQ(first.id(), third.id());

  grpc::ClientContext context;
  v1::ListRunsRequest list;
  v1::ListRunsResponse runs;
  ASSERT_TRUE(dagd_.runs()->ListRuns(&context, list, &runs).ok());
  EXPECT_EQ(runs.runs_size(), 1);
}

// (d) Malformed workflows: each is rejected with a message naming its line and field — by
// `dagctl lint`, by SubmitRun and by CreateWorkflow — and nothing is stored.
TEST_F(DaemonTest, MalformedWorkflowsAreRejectedAndNothingIsStored) {
  const std::regex expect_line(R"(^# expect: (\d+): (.+)$)");
  int files = 0;
  for (const auto& entry : fs::directory_iterator(SourcePath("tests/testdata/malformed"))) {
    const std::string path = entry.path().string();
    const std::string text = ReadFile(path);
    std::smatch m;
    const std::string first_line = text.substr(0, text.find('\n'));
    ASSERT_TRUE(std::regex_match(first_line, m, expect_line)) << path;
    const std::string where = ":" + m[1].str() + ":";
    const std::string what = m[2].str();
    ++files;

    CommandResult lint = RunDagctl(dagd_.address(), {"lint", path});
    EXPECT_EQ(lint.exit_code, 1) << path << "\n" << lint.output;
    EXPECT_NE(lint.output.find(where), std::string::npos) << path << "\n" << lint.output;
    EXPECT_NE(lint.output.find(what), std::string::npos) << path << "\n" << lint.output;

    {
      grpc::ClientContext context;
      v1::SubmitRunRequest request;
      request.set_spec_yaml(text);
      request.set_file_name(entry.path().filename().string());
      v1::Run run;
      grpc::Status status = dagd_.runs()->SubmitRun(&context, request, &run);
      EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << path;
      EXPECT_NE(status.error_message().find(where), std::string::npos)
          << path << ": " << status.error_message();
      EXPECT_NE(status.error_message().find(what), std::string::npos)
          << path << ": " << status.error_message();
    }
    {
      grpc::ClientContext context;
      v1::CreateWorkflowRequest request;
      request.set_yaml(text);
      request.set_file_name(entry.path().filename().string());
      v1::CreateWorkflowResponse response;
      grpc::Status status = dagd_.workflows()->CreateWorkflow(&context, request, &response);
      EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << path;
    }
  }
  EXPECT_GE(files, 10);

  grpc::ClientContext runs_context;
  v1::ListRunsResponse runs;
  ASSERT_TRUE(dagd_.runs()->ListRuns(&runs_context, v1::ListRunsRequest(), &runs).ok());
  EXPECT_EQ(runs.runs_size(), 0);
  grpc::ClientContext workflows_context;
  v1::ListWorkflowsResponse workflows;
  ASSERT_TRUE(dagd_.workflows()
                  ->ListWorkflows(&workflows_context, v1::ListWorkflowsRequest(), &workflows)
                  .ok());
  EXPECT_EQ(workflows.workflows_size(), 0);
}

// An oversized spec and a workflow with a missing parameter: clear errors, nothing stored.
TEST_F(DaemonTest, OversizedAndMissingParameterSubmissionsAreRejected) {
  {
    grpc::ClientContext context;
    v1::SubmitRunRequest request;
    request.set_spec_yaml(std::string(5 << 20, '#'));
    v1::Run run;
    grpc::Status status = dagd_.runs()->SubmitRun(&context, request, &run);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << status.error_message();
    EXPECT_NE(status.error_message().find("limit"), std::string::npos);
  }
  {
    grpc::ClientContext context;
    v1::Run run;
    grpc::Status status =
        dagd_.runs()->SubmitRun(&context, SubmitRequest("fail-omits.yaml", {}), &run);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_NE(status.error_message().find("record_dir"), std::string::npos)
        << status.error_message();
  }
  grpc::ClientContext context;
  v1::ListRunsResponse runs;
  ASSERT_TRUE(dagd_.runs()->ListRuns(&context, v1::ListRunsRequest(), &runs).ok());
  EXPECT_EQ(runs.runs_size(), 0);
}

// Stored workflows get a new version only when the spec changes; runs by name use the latest.
TEST_F(DaemonTest, ApplyVersionsWorkflowsAndSubmitByName) {
  std::string yaml = ReadFile(kTestdata + "/fail-omits.yaml");
  yaml.replace(yaml.find("generateName: fail-omits-"), 25, "name: fail-omits");
  {
    std::ofstream out(tmp_.path() + "/wf.yaml");
    out << yaml;
  }
  CommandResult first =
      RunDagctl(dagd_.address(), {"apply", "-f", tmp_.path() + "/wf.yaml", "--bundle", kTestdata});
  EXPECT_EQ(first.exit_code, 0) << first.output;
  CommandResult again =
      RunDagctl(dagd_.address(), {"apply", "-f", tmp_.path() + "/wf.yaml", "--bundle", kTestdata});
  EXPECT_EQ(again.exit_code, 0) << again.output;
  EXPECT_NE(again.output.find("unchanged"), std::string::npos) << again.output;
  {
    std::ofstream out(tmp_.path() + "/wf.yaml");
    out << yaml << "\n# a comment changes the spec text\n";
  }
  CommandResult second =
      RunDagctl(dagd_.address(), {"apply", "-f", tmp_.path() + "/wf.yaml", "--bundle", kTestdata});
  EXPECT_EQ(second.exit_code, 0) << second.output;

  grpc::ClientContext context;
  v1::GetWorkflowRequest get;
  get.set_name("fail-omits");
  v1::Workflow latest;
  ASSERT_TRUE(dagd_.workflows()->GetWorkflow(&context, get, &latest).ok());
  EXPECT_EQ(latest.version(), 2);
}

}  // namespace
}  // namespace dagd::testing

namespace dagd::testing {
namespace {

// `dagctl submit -f … --watch` follows the run to its end; its exit status is the outcome, and
// `runs list` filters by phase and workflow.
TEST_F(DaemonTest, DagctlSubmitWatchExitStatusAndRunsListFilters) {
  CommandResult ok =
      RunDagctl(dagd_.address(), {"submit", "-f", kTestdata + "/diamond-retry.yaml", "--bundle",
                                  kTestdata, "-p", "record_dir=" + records_, "--watch"});
  EXPECT_EQ(ok.exit_code, 0) << ok.output;
  EXPECT_NE(ok.output.find("Succeeded"), std::string::npos) << ok.output;

  CommandResult failed =
      RunDagctl(dagd_.address(), {"submit", "-f", kTestdata + "/fail-omits.yaml", "--bundle",
                                  kTestdata, "-p", "record_dir=" + records_, "--watch"});
  EXPECT_EQ(failed.exit_code, 1) << failed.output;
  EXPECT_NE(failed.output.find("Omitted"), std::string::npos) << failed.output;

  CommandResult bad_parameter =
      RunDagctl(dagd_.address(), {"submit", "-f", kTestdata + "/fail-omits.yaml", "-p", "nope"});
  EXPECT_EQ(bad_parameter.exit_code, 2) << bad_parameter.output;

  CommandResult failed_runs =
      RunDagctl(dagd_.address(), {"runs", "list", "--phase", "Failed", "-o", "json"});
  EXPECT_EQ(failed_runs.exit_code, 0) << failed_runs.output;
  EXPECT_NE(failed_runs.output.find("fail-omits-"), std::string::npos) << failed_runs.output;
  EXPECT_EQ(failed_runs.output.find("diamond-retry-"), std::string::npos) << failed_runs.output;

  CommandResult by_workflow = RunDagctl(dagd_.address(), {"runs", "list", "--workflow", "nothing"});
  EXPECT_EQ(by_workflow.exit_code, 0) << by_workflow.output;
  EXPECT_EQ(by_workflow.output.find("fail-omits-"), std::string::npos) << by_workflow.output;
}

// TerminateRun, like StopRun, ends the running attempt's process group and starts nothing new.
TEST_F(DaemonTest, TerminateEndsRunningAttempt) {
  v1::Run submitted = Submit(dagd_, SubmitRequest("crash-resume.yaml", {{"record_dir", records_},
                                                                        {"sleep_seconds", "300"}}));
  ASSERT_TRUE(Eventually([&] { return fs::exists(records_ + "/B.slept"); }));
  CommandResult terminate =
      RunDagctl(dagd_.address(), {"terminate", submitted.id(), "--message", "maintenance"});
  EXPECT_EQ(terminate.exit_code, 0) << terminate.output;
  std::vector<v1::RunEvent> events = WatchToEnd(dagd_.runs(), submitted.id());
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events.back().phase(), v1::PHASE_FAILED);
  EXPECT_TRUE(Eventually([&] { return ProcessesIn(data_dir_).empty(); }, seconds(15)));
  v1::Run run = GetRun(dagd_, submitted.id());
  EXPECT_NE(run.message().find("maintenance"), std::string::npos) << run.message();
  EXPECT_EQ(ReadLines(records_ + "/runs.log"), (std::vector<std::string>{"A", "B"}));
}

// dagd reads its flags from --config, and a usage error exits 2.
TEST(DaemonConfigTest, ConfigFileAndUsageErrors) {
  TempDir tmp;
  const std::string data_dir = tmp.path() + "/data";
  const std::string config = tmp.path() + "/dagd.toml";
  {
    std::ofstream out(config);
    out << "listen = \"127.0.0.1:0\"\n"
        << "data-dir = \"" << data_dir << "\"\n"
        << "port-file = \"" << data_dir << "/port\"\n"
        << "metrics-listen = \"127.0.0.1:0\"\n"
        << "log-level = \"warn\"\n";
  }
  Daemon dagd(data_dir);
  dagd.UseConfigFile(config);
  dagd.Start();
  CommandResult list = RunDagctl(dagd.address(), {"runs", "list"});
  EXPECT_EQ(list.exit_code, 0) << list.output;
  EXPECT_TRUE(fs::exists(data_dir + "/dagd.db"));
  EXPECT_EQ(dagd.Terminate(), 0);

  const std::string usage = BinaryPath("cmd/dagd/dagd") + " --no-such-flag >/dev/null 2>&1";
  const int status = std::system(usage.c_str());
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 2) << status;

  CommandResult unreachable = RunDagctl("127.0.0.1:1", {"runs", "list"});
  EXPECT_EQ(unreachable.exit_code, 1) << "no server there: " << unreachable.output;
  EXPECT_NE(unreachable.output.find("127.0.0.1:1"), std::string::npos) << unreachable.output;
}

}  // namespace
}  // namespace dagd::testing

namespace dagd::testing {
namespace {

// A playbook over real SSH against an sshd on a loopback port; a host whose port has nothing
// listening is unreachable, which is an Error (so OnError retries apply), naming the host.
TEST_F(DaemonTest, PlaybookOverRealSshAndAnUnreachableHost) {
  Sshd sshd(tmp_.path());
  sshd.Start();
  v1::Run submitted =
      Submit(dagd_, SubmitRequest("ssh-hosts.yaml", {{"record_dir", records_},
                                                     {"ssh_port", std::to_string(sshd.port())},
                                                     {"closed_port", std::to_string(FreePort())},
                                                     {"ssh_key", sshd.client_key()}}));
  WatchToEnd(dagd_.runs(), submitted.id());
  v1::Run run = GetRun(dagd_, submitted.id());

  const v1::Node* reachable = FindNode(run, "reachable");
  ASSERT_NE(reachable, nullptr);
  EXPECT_EQ(reachable->phase(), v1::PHASE_SUCCEEDED) << reachable->message();
  EXPECT_EQ(ReadFile(records_ + "/ssh-sshhost.txt"), "over-ssh on sshhost as root\n");
  EXPECT_NE(NodeLogs(dagd_, run.id(), "reachable").find("over-ssh on sshhost as root"),
            std::string::npos);

  const v1::Node* unreachable = FindNode(run, "unreachable");
  ASSERT_NE(unreachable, nullptr);
  EXPECT_EQ(unreachable->phase(), v1::PHASE_ERROR) << unreachable->message();
  EXPECT_NE(unreachable->message().find("sshhost"), std::string::npos) << unreachable->message();
  EXPECT_NE(unreachable->message().find("unreachable"), std::string::npos)
      << unreachable->message();
}

// Every Ansible event on record: which task changed which host, in which attempt, read back with
// `dagctl events` (issue 3, point 1), streamed by WatchAnsibleEvents, and each node's recap in
// `dagctl runs get` (point 10).
TEST_F(DaemonTest, DagctlEventsShowsWhichTaskChangedWhichHostInWhichAttempt) {
  v1::Run submitted =
      Submit(dagd_, SubmitRequest("diamond-retry.yaml", {{"record_dir", records_}}));
  ASSERT_FALSE(submitted.id().empty());
  ASSERT_EQ(WatchToEnd(dagd_.runs(), submitted.id()).back().phase(), v1::PHASE_SUCCEEDED);

  CommandResult changed = RunDagctl(dagd_.address(), {"events", submitted.id(), "--changed"});
  ASSERT_EQ(changed.exit_code, 0) << changed.output;
  auto has_row = [](const std::string& output, const std::string& pattern) {
    return std::regex_search(output, std::regex(pattern));
  };
  EXPECT_TRUE(has_row(changed.output, R"(\bA#1\s+localhost\s+record that A ran\s+changed)"))
      << changed.output;
  EXPECT_TRUE(has_row(changed.output, R"(\bB#1\s+localhost\s+leave the marker\s+changed)"))
      << changed.output;
  EXPECT_TRUE(has_row(changed.output, R"(\bB#2\s+localhost\s+record that B ran\s+changed)"))
      << changed.output;
  EXPECT_FALSE(has_row(changed.output, R"(\s(ok|failed|skipped)\s*\n)")) << changed.output;

  CommandResult failed = RunDagctl(dagd_.address(), {"events", submitted.id(), "B", "--failed"});
  ASSERT_EQ(failed.exit_code, 0) << failed.output;
  EXPECT_TRUE(has_row(failed.output, R"(\bB#1\s+localhost\s+fail\s+failed)")) << failed.output;
  EXPECT_FALSE(has_row(failed.output, R"(\b[ACD]#\d)")) << failed.output;

  CommandResult json =
      RunDagctl(dagd_.address(), {"events", submitted.id(), "--host", "localhost", "-o", "json"});
  ASSERT_EQ(json.exit_code, 0) << json.output;
  nlohmann::json parsed = nlohmann::json::parse(json.output, nullptr, false);
  ASSERT_TRUE(parsed.is_object()) << json.output;
  ASSERT_FALSE(parsed["events"].empty());
  for (const auto& event : parsed["events"]) EXPECT_EQ(event["host"], "localhost") << event;

  // The live stream carries the same events and ends with the finished run.
  grpc::ClientContext context;
  v1::WatchAnsibleEventsRequest watch;
  watch.set_run_id(submitted.id());
  auto reader = dagd_.runs()->WatchAnsibleEvents(&context, watch);
  v1::AnsibleEvent event;
  int64_t streamed = 0;
  std::map<std::string, int> stats_per_node;
  while (reader->Read(&event)) {
    EXPECT_EQ(event.sequence(), ++streamed);
    if (event.kind() == "stats") ++stats_per_node[event.node_name()];
  }
  ASSERT_TRUE(reader->Finish().ok());
  EXPECT_GE(streamed, static_cast<int64_t>(parsed["events"].size()));
  EXPECT_EQ(stats_per_node.size(), 4u);  // A, B (both attempts report), C, D

  // WatchRun carries them too, between the state changes, each Ansible event inside its
  // attempt's AttemptStarted .. AttemptFinished.
  grpc::ClientContext merged_context;
  v1::WatchRunRequest merged_request;
  merged_request.set_run_id(submitted.id());
  merged_request.set_ansible_events(true);
  auto merged = dagd_.runs()->WatchRun(&merged_context, merged_request);
  v1::RunEvent run_event;
  int64_t ansible_seen = 0;
  int64_t state_seen = 0;
  std::set<std::string> open_attempts;
  bool ended_final = false;
  while (merged->Read(&run_event)) {
    const std::string attempt = absl::StrCat(run_event.node_name(), "#", run_event.attempt());
    if (run_event.has_ansible_event()) {
      EXPECT_EQ(run_event.type(), "AnsibleEvent");
      EXPECT_EQ(run_event.ansible_event().sequence(), ++ansible_seen);
      EXPECT_TRUE(open_attempts.count(attempt))
          << attempt << " " << run_event.ansible_event().kind();
      continue;
    }
    EXPECT_EQ(run_event.sequence(), ++state_seen);
    if (run_event.type() == "AttemptStarted") open_attempts.insert(attempt);
    if (run_event.type() == "AttemptFinished") open_attempts.erase(attempt);
    ended_final = run_event.final();
  }
  ASSERT_TRUE(merged->Finish().ok());
  EXPECT_TRUE(ended_final);
  EXPECT_EQ(ansible_seen, streamed);

  CommandResult follow =
      RunDagctl(dagd_.address(), {"events", submitted.id(), "B", "--follow", "--failed"});
  ASSERT_EQ(follow.exit_code, 0) << follow.output;
  EXPECT_TRUE(has_row(follow.output, R"(\bB#1 localhost failed fail\b)")) << follow.output;
  EXPECT_FALSE(has_row(follow.output, R"(\b[ACD]#\d)")) << follow.output;
  CommandResult watched = RunDagctl(dagd_.address(), {"watch", submitted.id(), "--ansible"});
  EXPECT_EQ(watched.exit_code, 0) << watched.output;
  EXPECT_TRUE(has_row(watched.output, R"(\bA#1 localhost changed record that A ran\b)"))
      << watched.output;
  EXPECT_TRUE(has_row(watched.output, R"(\bD#1 localhost changed record that D ran\b)"))
      << watched.output;

  v1::Run run = GetRun(dagd_, submitted.id());
  const v1::Node* b = FindNode(run, "B");
  ASSERT_NE(b, nullptr);
  ASSERT_TRUE(b->has_ansible_recap());
  EXPECT_EQ(b->ansible_recap().attempt(), 2);
  EXPECT_EQ(b->ansible_recap().failed(), 0);
  EXPECT_GE(b->ansible_recap().changed(), 1);
  CommandResult get = RunDagctl(dagd_.address(), {"runs", "get", submitted.id()});
  ASSERT_EQ(get.exit_code, 0) << get.output;
  EXPECT_TRUE(has_row(get.output, R"(\bB\s+Succeeded.*ok=\d+ changed=\d+ failed=0)")) << get.output;
}

// Outputs as messages: set_stats data flows to downstream nodes as parameters, fan-out items,
// structured extra vars and a dynamic inventory; oversized module results are capped in events.
TEST_F(DaemonTest, SetStatsOutputsFeedDownstreamVarsFanOutAndInventory) {
  v1::Run submitted = Submit(dagd_, SubmitRequest("outputs-as-messages.yaml", {}));
  ASSERT_FALSE(submitted.id().empty());
  ASSERT_EQ(WatchToEnd(dagd_.runs(), submitted.id()).back().phase(), v1::PHASE_SUCCEEDED)
      << NodeLogs(dagd_, submitted.id(), "deploy") << NodeLogs(dagd_, submitted.id(), "discover");

  v1::Run run = GetRun(dagd_, submitted.id());
  const v1::Node* discover = FindNode(run, "discover");
  ASSERT_NE(discover, nullptr);
  EXPECT_EQ(discover->output_parameters().at("hosts"), R"(["web1","web2"])");
  nlohmann::json result = nlohmann::json::parse(discover->result(), nullptr, false);
  ASSERT_TRUE(result.is_object()) << discover->result();
  EXPECT_EQ(result["region"], "eu-west");
  EXPECT_EQ(result["hosts"], nlohmann::json({"web1", "web2"}));

  // The fan-out ran once per host; deploy ran on both hosts of the discovered inventory.
  EXPECT_NE(FindNode(run, "configure(0:web1)"), nullptr);
  EXPECT_NE(FindNode(run, "configure(1:web2)"), nullptr);
  CommandResult deploy = RunDagctl(dagd_.address(), {"events", submitted.id(), "deploy"});
  ASSERT_EQ(deploy.exit_code, 0) << deploy.output;
  for (const char* host : {"web1", "web2"}) {
    EXPECT_TRUE(
        std::regex_search(deploy.output, std::regex(std::string(R"(\bdeploy#1\s+)") + host +
                                                    R"(\s+deploy to a discovered host\s+ok)")))
        << deploy.output;
  }

  // The 200 kB command result is stored as a note of its size, not as itself.
  CommandResult json =
      RunDagctl(dagd_.address(), {"events", submitted.id(), "discover", "-o", "json"});
  ASSERT_EQ(json.exit_code, 0) << json.output;
  nlohmann::json events = nlohmann::json::parse(json.output, nullptr, false);
  ASSERT_TRUE(events.is_object()) << json.output.substr(0, 2000);
  bool capped = false;
  for (const auto& event : events["events"]) {
    EXPECT_LE(event["result_json"].get<std::string>().size(), 64u * 1024) << event["task"];
    if (event["kind"] == "runner_on_ok" &&
        event["task"] == "a module result far beyond the event size cap") {
      nlohmann::json payload = nlohmann::json::parse(event["result_json"].get<std::string>());
      EXPECT_EQ(payload["result"]["truncated"], true) << payload.dump();
      EXPECT_GT(payload["result"]["bytes"].get<int64_t>(), 200000) << payload.dump();
      EXPECT_TRUE(event["changed"].get<bool>());
      capped = true;
    }
  }
  EXPECT_TRUE(capped) << json.output.substr(0, 2000);
}

// A malformed inventory handed on by an upstream output fails the node before Ansible runs,
// saying what is wrong (Ansible itself would run on an empty inventory).
TEST_F(DaemonTest, MalformedInventoryFromAnOutputIsAClearError) {
  v1::SubmitRunRequest request = SubmitRequest("outputs-as-messages.yaml", {});
  std::string spec = request.spec_yaml();
  const std::string from = "web: {hosts: [web1, web2]}";
  ASSERT_NE(spec.find(from), std::string::npos);
  spec.replace(spec.find(from), from.size(), "web: {hostz: [web1, web2]}");
  request.set_spec_yaml(spec);
  v1::Run submitted = Submit(dagd_, request);
  ASSERT_FALSE(submitted.id().empty());
  // The node's Error decides the DAG's phase, and so the run's (Argo's rule).
  ASSERT_EQ(WatchToEnd(dagd_.runs(), submitted.id()).back().phase(), v1::PHASE_ERROR);
  const v1::Run run = GetRun(dagd_, submitted.id());
  const v1::Node* deploy = FindNode(run, "deploy");
  ASSERT_NE(deploy, nullptr);
  EXPECT_EQ(deploy->phase(), v1::PHASE_ERROR);
  EXPECT_THAT(deploy->message(), ::testing::HasSubstr("template \"deploy\""));
  EXPECT_THAT(deploy->message(), ::testing::HasSubstr("inventory (JSON) is malformed"));
  EXPECT_THAT(deploy->message(), ::testing::HasSubstr("group \"web\" has \"hostz\""));
}

}  // namespace
}  // namespace dagd::testing

namespace dagd::testing {
namespace {

// A template timeout ends a playbook that would sleep for minutes: the node fails saying so,
// and no process of the attempt is left.
TEST_F(DaemonTest, TimeoutEndsTheWholeAttempt) {
  v1::Run submitted = Submit(dagd_, SubmitRequest("timeout.yaml", {{"record_dir", records_}}));
  WatchToEnd(dagd_.runs(), submitted.id());
  v1::Run run = GetRun(dagd_, submitted.id());
  EXPECT_EQ(run.phase(), v1::PHASE_FAILED);
  const v1::Node* slow = FindNode(run, "slow");
  ASSERT_NE(slow, nullptr);
  EXPECT_EQ(slow->phase(), v1::PHASE_FAILED);
  ASSERT_EQ(slow->attempts_size(), 1);
  EXPECT_NE(slow->attempts(0).message().find("timeout"), std::string::npos)
      << slow->attempts(0).message();
  EXPECT_TRUE(fs::exists(records_ + "/slow.slept")) << "the sleep had started";
  EXPECT_TRUE(Eventually([&] { return ProcessesIn(data_dir_).empty(); }, seconds(15)));
}

}  // namespace
}  // namespace dagd::testing

namespace dagd::testing {
namespace {

std::string RandomHex(size_t length) {
  std::random_device device;
  std::mt19937_64 rng(device());
  std::string out;
  while (out.size() < length) out += "0123456789abcdef"[rng() % 16];
  return out;
}

// Credentials (issue 3, point 7): a vault password and an API token planted in dagd's
// credentials directory reach the playbooks, and afterwards neither is anywhere: not in the
// database files, dagd's log, the node logs (gRPC and dagctl), the Ansible events (listed,
// streamed and through dagctl), the run's history, nor any file of the attempt directories —
// where no credential copy is left either. The mask shows where they were printed.
TEST_F(DaemonTest, CredentialsReachThePlaybookAndAreStoredNowhere) {
  const std::string password = "vaultpw-" + RandomHex(32);
  const std::string token = "apitoken-" + RandomHex(32);
  const std::string vaulted = "opened-" + RandomHex(8);

  // dagd created its default credentials directory, private, at start-up.
  const std::string creds = data_dir_ + "/credentials";
  ASSERT_TRUE(fs::is_directory(creds));
  EXPECT_EQ(fs::status(creds).permissions() & fs::perms::all, fs::perms::owner_all);
  auto plant = [&](const std::string& name, const std::string& content) {
    const std::string path = creds + "/" + name;
    std::ofstream(path) << content;
    fs::permissions(path, fs::perms::owner_read | fs::perms::owner_write);
  };
  plant("vault-pass", password + "\n");
  plant("api-env", "# the API of the test\nAPI_TOKEN=" + token + "\n");

  // A vars file encrypted by the real ansible-vault, its password in a file outside dagd.
  const std::string vault_dir = tmp_.path() + "/vault";
  fs::create_directories(vault_dir);
  const std::string password_file = vault_dir + "/password";
  std::ofstream(password_file) << password << "\n";
  const std::string vault_file = vault_dir + "/secrets.yml";
  std::ofstream(vault_file) << "vault_var: " << vaulted << "\n";
  const std::string encrypt = "ansible-vault encrypt --vault-password-file " + password_file + " " +
                              vault_file + " > " + vault_dir + "/encrypt.log 2>&1";
  ASSERT_EQ(std::system(encrypt.c_str()), 0) << ReadFile(vault_dir + "/encrypt.log");
  ASSERT_EQ(ReadFile(vault_file).rfind("$ANSIBLE_VAULT;", 0), 0u);
  fs::remove(password_file);

  v1::Run submitted =
      Submit(dagd_, SubmitRequest("credentials.yaml", {{"vault_file", vault_file}}));
  ASSERT_FALSE(submitted.id().empty());
  const std::vector<v1::RunEvent> history = WatchToEnd(dagd_.runs(), submitted.id());
  v1::Run run = GetRun(dagd_, submitted.id());
  EXPECT_EQ(run.phase(), v1::PHASE_FAILED);  // `reject` fails on purpose

  // Everything a client can read back, and then dagd's own files.
  std::map<std::string, std::string> places;
  const v1::Node* deploy = FindNode(run, "deploy");
  const v1::Node* reject = FindNode(run, "reject");
  ASSERT_NE(deploy, nullptr);
  ASSERT_NE(reject, nullptr);
  EXPECT_EQ(deploy->phase(), v1::PHASE_SUCCEEDED) << deploy->message();
  EXPECT_EQ(reject->phase(), v1::PHASE_FAILED) << reject->message();
  EXPECT_NE(reject->message().find("token ******** was rejected"), std::string::npos)
      << reject->message();
  places["GetRun"] = run.DebugString();
  for (const v1::RunEvent& event : history) places["WatchRun"] += event.DebugString();

  const std::string deploy_log = NodeLogs(dagd_, run.id(), "deploy");
  EXPECT_NE(deploy_log.find("vault says " + vaulted), std::string::npos) << deploy_log;
  EXPECT_NE(deploy_log.find("token=********"), std::string::npos) << deploy_log;
  EXPECT_NE(deploy_log.find("pw=********"), std::string::npos) << deploy_log;
  places["GetNodeLogs deploy"] = deploy_log;
  places["GetNodeLogs reject"] = NodeLogs(dagd_, run.id(), "reject");
  CommandResult logs = RunDagctl(dagd_.address(), {"logs", run.id(), "deploy"});
  EXPECT_EQ(logs.exit_code, 0) << logs.output;
  EXPECT_NE(logs.output.find("token=********"), std::string::npos) << logs.output;
  places["dagctl logs"] = logs.output;

  {
    grpc::ClientContext context;
    v1::ListAnsibleEventsRequest request;
    request.set_run_id(run.id());
    v1::ListAnsibleEventsResponse response;
    ASSERT_TRUE(dagd_.runs()->ListAnsibleEvents(&context, request, &response).ok());
    ASSERT_GT(response.events_size(), 0);
    EXPECT_TRUE(response.next_page_token().empty());
    for (const v1::AnsibleEvent& event : response.events()) {
      places["ListAnsibleEvents"] += event.DebugString();
    }
  }
  {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + seconds(60));
    v1::WatchAnsibleEventsRequest request;
    request.set_run_id(run.id());
    auto reader = dagd_.runs()->WatchAnsibleEvents(&context, request);
    v1::AnsibleEvent event;
    while (reader->Read(&event)) places["WatchAnsibleEvents"] += event.DebugString();
    ASSERT_TRUE(reader->Finish().ok());
  }
  for (const char* where : {"ListAnsibleEvents", "WatchAnsibleEvents"}) {
    const std::string& events = places[where];
    EXPECT_NE(events.find("token=********"), std::string::npos) << where << ":\n" << events;
    EXPECT_NE(events.find("pw=********"), std::string::npos) << where << ":\n" << events;
    EXPECT_NE(events.find("Echo the token from a command"), std::string::npos) << where;
  }
  CommandResult events = RunDagctl(dagd_.address(), {"events", run.id(), "-o", "json"});
  EXPECT_EQ(events.exit_code, 0) << events.output;
  places["dagctl events"] = events.output;

  // No credential copy is left in any attempt directory (and no file there holds a value).
  EXPECT_TRUE(Eventually([&] { return ProcessesIn(data_dir_).empty(); }, seconds(15)));
  int attempt_files = 0;
  for (const auto& entry : fs::recursive_directory_iterator(data_dir_ + "/attempts")) {
    EXPECT_EQ(entry.path().string().find("/.dagd/credentials"), std::string::npos) << entry.path();
    if (!entry.is_regular_file()) continue;
    ++attempt_files;
    places["file " + entry.path().string()] = ReadFile(entry.path().string());
  }
  EXPECT_GT(attempt_files, 0);

  // The database as it is on disk while dagd runs (the WAL holds the latest commits), then
  // after a clean stop (checkpointed into dagd.db); dagd's log last, with its shutdown.
  auto read_database = [&](const std::string& when) {
    for (const char* suffix : {"", "-wal", "-shm"}) {
      places[when + " dagd.db" + suffix] = ReadFile(data_dir_ + "/dagd.db" + suffix);
    }
  };
  read_database("running");
  EXPECT_FALSE(places["running dagd.db"].empty());
  EXPECT_EQ(dagd_.Terminate(), 0);
  read_database("stopped");
  // The run's log chunks are in the database (so the search above can find what it looks for).
  EXPECT_NE((places["running dagd.db"] + places["running dagd.db-wal"]).find("token=********"),
            std::string::npos);
  places["dagd.log"] = ReadFile(data_dir_ + "/dagd.log");
  EXPECT_FALSE(places["dagd.log"].empty());

  for (const auto& [where, text] : places) {
    for (const std::string& secret : {password, token}) {
      EXPECT_EQ(text.find(secret), std::string::npos)
          << (secret == password ? "the vault password" : "the API token") << " is in " << where;
    }
  }
}

// --credentials-dir from the config file: dagd neither creates that directory nor its default
// one; an attempt that names a credential while the directory is missing ends in Error saying
// how to create it. Credential copies a killed dagd left behind are gone once it serves again.
TEST(DaemonCredentialsTest, ConfiguredDirectoryAndStaleCopies) {
  TempDir tmp;
  const std::string data_dir = tmp.path() + "/data";
  const std::string creds = tmp.path() + "/secrets";
  const std::string config = tmp.path() + "/dagd.toml";
  std::ofstream(config) << "listen = \"127.0.0.1:0\"\n"
                        << "data-dir = \"" << data_dir << "\"\n"
                        << "port-file = \"" << data_dir << "/port\"\n"
                        << "metrics-listen = \"127.0.0.1:0\"\n"
                        << "credentials-dir = \"" << creds << "\"\n";
  const std::string stale = data_dir + "/attempts/run-1/deploy-1234-1/.dagd/credentials";
  fs::create_directories(stale);
  std::ofstream(stale + "/vault-password") << "left-by-a-crash\n";
  std::ofstream(data_dir + "/attempts/run-1/deploy-1234-1/output.txt") << "kept\n";

  Daemon dagd(data_dir);
  dagd.UseConfigFile(config);
  dagd.Start();
  EXPECT_FALSE(fs::exists(stale));
  EXPECT_EQ(ReadFile(data_dir + "/attempts/run-1/deploy-1234-1/output.txt"), "kept\n");
  EXPECT_FALSE(fs::exists(creds));
  EXPECT_FALSE(fs::exists(data_dir + "/credentials"));

  v1::Run submitted = Submit(dagd, SubmitRequest("credentials.yaml", {{"vault_file", "/none"}}));
  ASSERT_FALSE(submitted.id().empty());
  WatchToEnd(dagd.runs(), submitted.id());
  v1::Run run = GetRun(dagd, submitted.id());
  const v1::Node* deploy = FindNode(run, "deploy");
  ASSERT_NE(deploy, nullptr);
  EXPECT_EQ(deploy->phase(), v1::PHASE_ERROR);
  EXPECT_NE(deploy->message().find("the credentials directory " + creds + " does not exist"),
            std::string::npos)
      << deploy->message();
  EXPECT_NE(deploy->message().find("install -d -m 700 " + creds), std::string::npos)
      << deploy->message();
  EXPECT_EQ(dagd.Terminate(), 0);
}

}  // namespace
}  // namespace dagd::testing

namespace dagd::testing {
namespace {

// Bundles (issue 3, point 4): `dagctl apply --bundle DIR` stores the playbooks, roles and files
// with the version; every attempt runs in a fresh copy of exactly that content.

// A project directory: a workflow whose one ansible step runs playbooks/mark.yml, which reads
// vars/message.yml, runs bin/say.sh (it must keep its exec bit) and writes
// "<message> <script output>" to <record_dir>/<tag>.txt.
void WriteProject(const std::string& dir, const std::string& message) {
  fs::create_directories(dir + "/playbooks");
  fs::create_directories(dir + "/vars");
  fs::create_directories(dir + "/bin");
  std::ofstream(dir + "/workflow.yaml") << R"(apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata:
  name: snapshot
spec:
  entrypoint: main
  arguments:
    parameters:
      - name: record_dir
      - name: tag
  templates:
    - name: main
      dag:
        tasks:
          - name: mark
            template: mark
    - name: mark
      ansible:
        playbook: playbooks/mark.yml
        inventory: localhost,
        extraVars:
          record_dir: "{{workflow.parameters.record_dir}}"
          tag: "{{workflow.parameters.tag}}"
)";
  std::ofstream(dir + "/playbooks/mark.yml") << R"(- name: mark
  hosts: localhost
  connection: local
  gather_facts: false
  vars_files:
    - ../vars/message.yml
  tasks:
    - name: run the bundled script
      ansible.builtin.command: "{{ playbook_dir }}/../bin/say.sh"
      register: said
    - name: record which content ran
      ansible.builtin.copy:
        content: "{{ message }} {{ said.stdout }}\n"
        dest: "{{ record_dir }}/{{ tag }}.txt"
)";
  std::ofstream(dir + "/vars/message.yml") << "message: " << message << "\n";
  std::ofstream(dir + "/bin/say.sh") << "#!/bin/sh\necho from-script\n";
  fs::permissions(dir + "/bin/say.sh", fs::perms(0755));
}

TEST_F(DaemonTest, ARunUsesTheBundleStoredWithItsVersionWhateverHappensOnDisk) {
  const std::string project = tmp_.path() + "/project";
  WriteProject(project, "one");
  const std::string workflow_file = project + "/workflow.yaml";
  CommandResult applied =
      RunDagctl(dagd_.address(), {"apply", "-f", workflow_file, "--bundle", project});
  ASSERT_EQ(applied.exit_code, 0) << applied.output;
  EXPECT_NE(applied.output.find("workflow snapshot version 1 created, bundle "), std::string::npos)
      << applied.output;
  EXPECT_NE(applied.output.find("(4 files, "), std::string::npos) << applied.output;

  auto run = [&](const std::string& tag, const std::string& version) {
    CommandResult result =
        RunDagctl(dagd_.address(), {"submit", "snapshot", "--version", version, "-p",
                                    "record_dir=" + records_, "-p", "tag=" + tag, "--watch"});
    EXPECT_EQ(result.exit_code, 0) << result.output;
    return ReadFile(records_ + "/" + tag + ".txt");
  };
  EXPECT_EQ(run("first", "0"), "one from-script\n");

  // Edit every file of the project, then delete the playbook: the stored version is unchanged.
  std::ofstream(project + "/vars/message.yml") << "message: edited\n";
  std::ofstream(project + "/bin/say.sh") << "#!/bin/sh\necho edited-script\n";
  std::ofstream(project + "/playbooks/mark.yml") << "- hosts: localhost\n  tasks: [{fail: {}}]\n";
  fs::remove(project + "/playbooks/mark.yml");
  EXPECT_EQ(run("second", "0"), "one from-script\n");

  CommandResult shown = RunDagctl(dagd_.address(), {"workflows", "get", "snapshot"});
  ASSERT_EQ(shown.exit_code, 0) << shown.output;
  EXPECT_TRUE(std::regex_search(shown.output, std::regex(R"(\nBundle: +[0-9a-f]{64}\n)")))
      << shown.output;
  EXPECT_NE(shown.output.find("Bundle size: 4 files, "), std::string::npos) << shown.output;

  // Applying the directory without its playbook is refused, and stores nothing.
  CommandResult refused =
      RunDagctl(dagd_.address(), {"apply", "-f", workflow_file, "--bundle", project});
  EXPECT_EQ(refused.exit_code, 1) << refused.output;
  EXPECT_NE(refused.output.find(workflow_file +
                                ":19:9: spec.templates[1].ansible.playbook: "
                                "template \"mark\": playbook \"playbooks/mark.yml\" is not in "
                                "the workflow's bundle (3 files); apply with --bundle DIR"),
            std::string::npos)
      << refused.output;

  // The edited project applied again: the same YAML, another bundle — a new version, whose runs
  // use the new content while version 1 keeps its own.
  WriteProject(project, "two");
  CommandResult reapplied =
      RunDagctl(dagd_.address(), {"apply", "-f", workflow_file, "--bundle", project});
  ASSERT_EQ(reapplied.exit_code, 0) << reapplied.output;
  EXPECT_NE(reapplied.output.find("workflow snapshot version 2 created"), std::string::npos)
      << reapplied.output;
  EXPECT_EQ(run("third", "0"), "two from-script\n");
  EXPECT_EQ(run("fourth", "1"), "one from-script\n");

  // Runs of an inline spec get the bundle sent with them, the same way.
  std::ofstream(project + "/vars/message.yml") << "message: inline\n";
  CommandResult inline_run =
      RunDagctl(dagd_.address(), {"submit", "-f", workflow_file, "--bundle", project, "-p",
                                  "record_dir=" + records_, "-p", "tag=fifth", "--watch"});
  EXPECT_EQ(inline_run.exit_code, 0) << inline_run.output;
  EXPECT_EQ(ReadFile(records_ + "/fifth.txt"), "inline from-script\n");
}

// dagd's --max-bundle-bytes (here from its config file) is what the server enforces, whatever
// dagctl lets through.
TEST(DaemonBundleLimitsTest, DagdRefusesABundleOverItsConfiguredLimit) {
  TempDir tmp;
  const std::string data_dir = tmp.path() + "/data";
  const std::string config = tmp.path() + "/dagd.toml";
  {
    std::ofstream out(config);
    out << "listen = \"127.0.0.1:0\"\n"
        << "data-dir = \"" << data_dir << "\"\n"
        << "port-file = \"" << data_dir << "/port\"\n"
        << "metrics-listen = \"127.0.0.1:0\"\n"
        << "max-bundle-bytes = 100\n";
  }
  Daemon dagd(data_dir);
  dagd.UseConfigFile(config);
  dagd.Start();
  const std::string project = tmp.path() + "/project";
  WriteProject(project, "one");  // a few hundred bytes
  CommandResult applied =
      RunDagctl(dagd.address(), {"apply", "-f", project + "/workflow.yaml", "--bundle", project});
  EXPECT_EQ(applied.exit_code, 1) << applied.output;
  EXPECT_NE(applied.output.find("dagctl: INVALID_ARGUMENT: bundle: the bundle holds "),
            std::string::npos)
      << applied.output;
  EXPECT_NE(applied.output.find("bytes; the limit is 100 (dagd --max-bundle-bytes)"),
            std::string::npos)
      << applied.output;
  // dagctl's own check, with the same limit, stops it before sending.
  CommandResult local =
      RunDagctl(dagd.address(), {"--max-bundle-bytes", "100", "apply", "-f",
                                 project + "/workflow.yaml", "--bundle", project});
  EXPECT_EQ(local.exit_code, 1) << local.output;
  EXPECT_NE(local.output.find(project + " holds more than 100 bytes of files"), std::string::npos)
      << local.output;
  EXPECT_EQ(dagd.Terminate(), 0);
}

TEST_F(DaemonTest, AWorkflowWhosePlaybookIsNotInItsBundleIsRefusedWithTheFix) {
  std::string yaml = ReadFile(kTestdata + "/fail-omits.yaml");
  yaml.replace(yaml.find("generateName: fail-omits-"), 25, "name: fail-omits");
  const std::string file = tmp_.path() + "/wf.yaml";
  std::ofstream(file) << yaml;
  const std::string field =
      ":33:9: spec.templates[1].ansible.playbook: template \"step\": playbook "
      "\"playbooks/step.yml\" ";
  ASSERT_NE(ReadLines(file).at(32).find("playbook: playbooks/step.yml"), std::string::npos);

  CommandResult applied = RunDagctl(dagd_.address(), {"apply", "-f", file});
  EXPECT_EQ(applied.exit_code, 1) << applied.output;
  EXPECT_NE(applied.output.find("dagctl: INVALID_ARGUMENT: " + file + field +
                                "is relative, but the workflow has no bundle; apply with "
                                "--bundle DIR, DIR holding playbooks/step.yml"),
            std::string::npos)
      << applied.output;

  CommandResult submitted =
      RunDagctl(dagd_.address(), {"submit", "-f", file, "-p", "record_dir=" + records_});
  EXPECT_EQ(submitted.exit_code, 1) << submitted.output;
  EXPECT_NE(submitted.output.find(file + field +
                                  "is relative, but the workflow has no bundle; "
                                  "submit with --bundle DIR"),
            std::string::npos)
      << submitted.output;

  // A bundle that holds other files only.
  const std::string other = tmp_.path() + "/other";
  fs::create_directories(other + "/playbooks");
  std::ofstream(other + "/playbooks/other.yml") << "- hosts: localhost\n  tasks: []\n";
  CommandResult elsewhere = RunDagctl(dagd_.address(), {"apply", "-f", file, "--bundle", other});
  EXPECT_EQ(elsewhere.exit_code, 1) << elsewhere.output;
  EXPECT_NE(elsewhere.output.find(file + field + "is not in the workflow's bundle (1 files)"),
            std::string::npos)
      << elsewhere.output;

  grpc::ClientContext workflows_context;
  v1::ListWorkflowsResponse workflows;
  ASSERT_TRUE(dagd_.workflows()
                  ->ListWorkflows(&workflows_context, v1::ListWorkflowsRequest(), &workflows)
                  .ok());
  EXPECT_EQ(workflows.workflows_size(), 0);
  grpc::ClientContext runs_context;
  v1::ListRunsResponse runs;
  ASSERT_TRUE(dagd_.runs()->ListRuns(&runs_context, v1::ListRunsRequest(), &runs).ok());
  EXPECT_EQ(runs.runs_size(), 0);
  EXPECT_FALSE(fs::exists(records_ + "/runs.log"));
}

}  // namespace
}  // namespace dagd::testing

namespace dagd::testing {
namespace {

// Empty if `yaml` is one Argo Workflow valid under ../shared/schemas/argo-workflow.schema.json,
// else what is wrong (python3-yaml reads it, tests/runners/kubernetes/validate_schema.py checks).
std::string ArgoSchemaViolations(const std::string& yaml, const std::string& dir) {
  const std::string yaml_file = dir + "/exported.yaml";
  const std::string json_file = dir + "/exported.json";
  std::ofstream(yaml_file) << yaml;
  const std::string command =
      "/usr/bin/python3 -c 'import json, sys, yaml; json.dump(yaml.safe_load(open(sys.argv[1])), "
      "open(sys.argv[2], \"w\"))' " +
      yaml_file + " " + json_file + " && /usr/bin/python3 " +
      SourcePath("tests/runners/kubernetes/validate_schema.py") + " " +
      SourcePath("../shared/schemas/argo-workflow.schema.json") + " " + json_file + " 2>&1";
  std::string output;
  FILE* pipe = popen(command.c_str(), "r");
  char buf[4096];
  size_t n;
  while (pipe != nullptr && (n = fread(buf, 1, sizeof buf, pipe)) > 0) output.append(buf, n);
  const int status = pipe != nullptr ? pclose(pipe) : -1;
  return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? "" : "invalid: " + output;
}

// dagctl export argo FILE and RUN: the same Argo Workflow (a run's is named after it), valid under
// Argo's schema, with the ansible template as a container; bad input is a clear error.
TEST_F(DaemonTest, ExportArgoPrintsTheWorkflowOfAFileAndOfARun) {
  const std::string file = kTestdata + "/diamond-retry.yaml";
  CommandResult from_file = RunDagctl(dagd_.address(), {"export", "argo", file, "--bundle",
                                                        kTestdata, "-p", "record_dir=" + records_});
  ASSERT_EQ(from_file.exit_code, 0) << from_file.output;
  EXPECT_EQ(ArgoSchemaViolations(from_file.output, tmp_.path()), "");
  EXPECT_THAT(from_file.output, ::testing::HasSubstr("generateName: diamond-retry-\n"));
  EXPECT_THAT(from_file.output,
              ::testing::HasSubstr("image: docker.io/library/dagd-ansible:latest\n"));
  EXPECT_THAT(from_file.output, ::testing::Not(::testing::HasSubstr("\n    ansible:\n")));

  v1::Run submitted =
      Submit(dagd_, SubmitRequest("diamond-retry.yaml", {{"record_dir", records_}}));
  ASSERT_EQ(WatchToEnd(dagd_.runs(), submitted.id()).back().phase(), v1::PHASE_SUCCEEDED);
  CommandResult from_run = RunDagctl(dagd_.address(), {"export", "argo", submitted.id()});
  ASSERT_EQ(from_run.exit_code, 0) << from_run.output;
  EXPECT_EQ(ArgoSchemaViolations(from_run.output, tmp_.path()), "");
  EXPECT_THAT(from_run.output, ::testing::HasSubstr("  name: " + submitted.id() + "\n"));
  // Apart from its name, the run's Workflow is the file's with the same parameters.
  const auto spec_of = [](const std::string& yaml) { return yaml.substr(yaml.find("\nspec:\n")); };
  EXPECT_EQ(spec_of(from_run.output), spec_of(from_file.output));

  CommandResult no_run = RunDagctl(dagd_.address(), {"export", "argo", "no-such-run"});
  EXPECT_EQ(no_run.exit_code, 1);
  EXPECT_THAT(no_run.output, ::testing::HasSubstr("no-such-run"));
  CommandResult unknown = RunDagctl(
      dagd_.address(), {"export", "argo", file, "--bundle", kTestdata, "-p", "recrod_dir=/tmp"});
  EXPECT_EQ(unknown.exit_code, 1);
  EXPECT_THAT(unknown.output, ::testing::HasSubstr("parameter \"recrod_dir\" is not one of "
                                                   "spec.arguments.parameters (record_dir)"));
  CommandResult no_bundle = RunDagctl(dagd_.address(), {"export", "argo", file});
  EXPECT_EQ(no_bundle.exit_code, 1);
  EXPECT_THAT(no_bundle.output, ::testing::HasSubstr("playbooks/step.yml"));
}

// The node (annotation dagd.io/node, without its run) of each of dagd's objects in the fake's
// collection at `path` (Jobs, Workflows), in creation order.
std::vector<std::string> NodesOfObjects(const FakeKubeProcess& fake, const std::string& path) {
  nlohmann::json list = nlohmann::json::parse(
      fake.Get(path + "?labelSelector=app.kubernetes.io/managed-by%3Ddagd"), nullptr, false);
  std::vector<std::string> nodes;
  if (!list.is_object()) return nodes;
  for (const auto& object : list["items"]) {
    const std::string node = object["metadata"]["annotations"].value("dagd.io/node", "");
    nodes.push_back(node.substr(node.find('.') + 1));
  }
  return nodes;
}

// The foundation's diamond, unchanged, on cluster runner `runner`: the same outcome and history
// as on local — B fails once and succeeds on its retry —, one cluster object per attempt
// (`objects()`: dagd's objects by node), and the Ansible events back in dagd's store.
void ExpectDiamondAsOnLocal(Daemon& dagd, const std::string& records, const std::string& data_dir,
                            const std::string& runner,
                            const std::function<std::vector<std::string>()>& objects) {
  v1::Run submitted = Submit(dagd, SubmitRequest("diamond-retry.yaml", {{"record_dir", records}}));
  ASSERT_FALSE(submitted.id().empty());
  ASSERT_EQ(WatchToEnd(dagd.runs(), submitted.id()).back().phase(), v1::PHASE_SUCCEEDED)
      << ReadFile(data_dir + "/dagd.log");
  v1::Run run = GetRun(dagd, submitted.id());
  EXPECT_EQ(AttemptPhases(*FindNode(run, "B")),
            (std::vector<v1::Phase>{v1::PHASE_FAILED, v1::PHASE_SUCCEEDED}));
  for (const char* name : {"A", "C", "D"}) {
    EXPECT_EQ(AttemptPhases(*FindNode(run, name)), (std::vector<v1::Phase>{v1::PHASE_SUCCEEDED}))
        << name;
  }
  EXPECT_EQ(FindNode(run, "A")->attempts(0).runner(), runner);
  EXPECT_THAT(FindNode(run, "B")->attempts(0).message(),
              ::testing::HasSubstr("B fails on its first attempt"));
  std::vector<std::string> created = objects();
  std::sort(created.begin(), created.end());
  EXPECT_EQ(created, (std::vector<std::string>{"A", "B", "B", "C", "D"}));
  EXPECT_EQ(ReadLines(records + "/runs.log").size(), 5u);
  CommandResult events = RunDagctl(dagd.address(), {"events", submitted.id(), "--changed"});
  ASSERT_EQ(events.exit_code, 0) << events.output;
  EXPECT_TRUE(std::regex_search(events.output,
                                std::regex(R"(\bB#2\s+localhost\s+record that B ran\s+changed)")))
      << events.output;
}

// kill -9 of dagd while B's cluster object runs: after the restart dagd reattaches to it by
// name — the attempt goes on, no second object is created (`objects()`), the step runs once.
void ExpectKillNineReattaches(Daemon& dagd, const std::string& records, const std::string& data_dir,
                              const std::function<std::vector<std::string>()>& objects) {
  v1::Run submitted = Submit(
      dagd, SubmitRequest("crash-resume.yaml", {{"record_dir", records}, {"sleep_seconds", "4"}}));
  ASSERT_TRUE(Eventually([&] { return fs::exists(records + "/B.slept"); }))
      << ReadFile(data_dir + "/dagd.log");
  dagd.Kill();
  dagd.Start();
  std::vector<v1::RunEvent> events = WatchToEnd(dagd.runs(), submitted.id());
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events.back().phase(), v1::PHASE_SUCCEEDED) << ReadFile(data_dir + "/dagd.log");
  v1::Run run = GetRun(dagd, submitted.id());
  EXPECT_EQ(AttemptPhases(*FindNode(run, "B")), (std::vector<v1::Phase>{v1::PHASE_SUCCEEDED}));
  std::vector<std::string> created = objects();
  EXPECT_EQ(std::count(created.begin(), created.end(), "B"), 1) << "B's object was created twice";
  EXPECT_EQ(ReadLines(records + "/runs.log"), (std::vector<std::string>{"A", "B", "C"}));
}

// The real dagd with its kubernetes runner (the default runner here) on the Kubernetes API fake
// (tests/fakes/): every Job's pod really runs ansible-playbook on this host, and every object
// dagd sends is checked against ../shared/schemas — a violation fails the test at TearDown.
class KubernetesDaemonTest : public ::testing::Test {
 protected:
  void SetUp() override {
    fs::create_directories(records_);
    fs::create_directories(fake_dir_);
    fake_ = std::make_unique<FakeKubeProcess>(fake_dir_);
    std::ofstream(config_) << "listen = \"127.0.0.1:0\"\n"
                           << "data-dir = \"" << data_dir_ << "\"\n"
                           << "port-file = \"" << data_dir_ << "/port\"\n"
                           << "metrics-listen = \"127.0.0.1:0\"\n"
                           << "default-runner = \"kubernetes\"\n"
                           << "kubeconfig = \"" << fake_->kubeconfig() << "\"\n"
                           << "kube-namespace = \"dagd\"\n";
    dagd_.UseConfigFile(config_);
    dagd_.Start();
  }

  void TearDown() override {
    dagd_.Terminate();
    EXPECT_EQ(fake_->Stop(), 0) << "objects that violate the schemas: " << fake_->violations();
  }

  // dagd's Jobs in the fake, by the node they ran, in creation order.
  std::vector<std::string> JobsByNode() {
    return NodesOfObjects(*fake_, "/apis/batch/v1/namespaces/dagd/jobs");
  }

  TempDir tmp_;
  std::string data_dir_ = tmp_.path() + "/data";
  std::string records_ = tmp_.path() + "/records";
  std::string fake_dir_ = tmp_.path() + "/fake";
  std::string config_ = tmp_.path() + "/dagd.toml";
  std::unique_ptr<FakeKubeProcess> fake_;
  Daemon dagd_{data_dir_};
};

// The foundation's diamond, unchanged, on the kubernetes runner: the same outcome and history as
// on local — B fails once and succeeds on its retry — with one Job per attempt.
TEST_F(KubernetesDaemonTest, DiamondRunsUnchangedWithTheSameHistory) {
  ExpectDiamondAsOnLocal(dagd_, records_, data_dir_, "kubernetes", [&] { return JobsByNode(); });
}

// kill -9 of dagd while a Job runs: after the restart dagd reattaches to that Job by name —
// the attempt goes on, no second Job is created, the step runs once.
TEST_F(KubernetesDaemonTest, KillNineMidRunReattachesWithoutASecondJob) {
  ExpectKillNineReattaches(dagd_, records_, data_dir_, [&] { return JobsByNode(); });
}

// StopRun deletes the running attempt's Job.
TEST_F(KubernetesDaemonTest, StopDeletesTheRunningJob) {
  v1::Run submitted = Submit(dagd_, SubmitRequest("crash-resume.yaml", {{"record_dir", records_},
                                                                        {"sleep_seconds", "300"}}));
  ASSERT_TRUE(Eventually([&] { return fs::exists(records_ + "/B.slept"); }));
  CommandResult stop = RunDagctl(dagd_.address(), {"stop", submitted.id()});
  ASSERT_EQ(stop.exit_code, 0) << stop.output;
  EXPECT_EQ(WatchToEnd(dagd_.runs(), submitted.id()).back().phase(), v1::PHASE_FAILED);
  EXPECT_TRUE(Eventually([&] {
    std::vector<std::string> jobs = JobsByNode();
    return std::count(jobs.begin(), jobs.end(), "B") == 0;
  })) << "B's Job is still there";
  EXPECT_EQ(ReadLines(records_ + "/runs.log"), (std::vector<std::string>{"A", "B"}));
}

// An outage of the Kubernetes API: the fake refuses every connection for 3 s. The attempt that
// cannot create its Job ends in Error, naming the API server and what went wrong, and the node
// is retried per its retryStrategy (OnError, 2 s then 4 s) until the API is back; the run
// succeeds with exactly one Job, the one the API accepted.
TEST_F(KubernetesDaemonTest, ApiOutageIsAnErrorAttemptRetriedOnceTheApiIsBack) {
  std::string fault = fake_->Post("/fake/faults", R"({"refuse_connections_for_seconds": 3})");
  ASSERT_NE(fault.find("refusing"), std::string::npos) << fault;
  ASSERT_TRUE(Eventually([&] { return fake_->Get("/version").empty(); }))
      << "the fake still answers";
  v1::Run submitted = Submit(dagd_, SubmitRequest("api-outage.yaml", {{"record_dir", records_}}));
  ASSERT_FALSE(submitted.id().empty());
  EXPECT_EQ(WatchToEnd(dagd_.runs(), submitted.id()).back().phase(), v1::PHASE_SUCCEEDED)
      << ReadFile(data_dir_ + "/dagd.log");
  v1::Run run = GetRun(dagd_, submitted.id());
  std::vector<v1::Phase> phases = AttemptPhases(*FindNode(run, "A"));
  ASSERT_GE(phases.size(), 2u) << "the first attempt should have met the outage";
  EXPECT_EQ(phases.back(), v1::PHASE_SUCCEEDED);
  for (size_t i = 0; i + 1 < phases.size(); ++i) {
    EXPECT_EQ(phases[i], v1::PHASE_ERROR) << "attempt " << i + 1;
  }
  EXPECT_THAT(FindNode(run, "A")->attempts(0).message(),
              ::testing::HasSubstr("kubernetes API " + fake_->server() + ": cannot connect: "));
  EXPECT_THAT(FindNode(run, "A")->attempts(0).message(),
              ::testing::HasSubstr("check that the server is up and reachable from dagd"));
  EXPECT_EQ(JobsByNode(), (std::vector<std::string>{"A"}));
  EXPECT_EQ(ReadLines(records_ + "/runs.log"), (std::vector<std::string>{"A"}));
}

// The real dagd with its argo runner (the default runner here), through the Argo Server API or
// the Workflow resource on the Kubernetes API, on the fake (mode both): each attempt is a
// one-step Workflow whose pod really runs ansible-playbook here; every object is checked against
// ../shared/schemas.
class ArgoDaemonTest : public ::testing::TestWithParam<bool> {
 protected:
  bool on_kubernetes() const { return GetParam(); }

  void SetUp() override {
    fs::create_directories(records_);
    fs::create_directories(fake_dir_);
    fake_ =
        std::make_unique<FakeKubeProcess>(fake_dir_, std::vector<std::string>{"--mode", "both"});
    std::ofstream config(config_);
    config << "listen = \"127.0.0.1:0\"\n"
           << "data-dir = \"" << data_dir_ << "\"\n"
           << "port-file = \"" << data_dir_ << "/port\"\n"
           << "metrics-listen = \"127.0.0.1:0\"\n"
           << "default-runner = \"argo\"\n"
           << "argo-namespace = \"dagd\"\n";
    if (on_kubernetes()) {
      config << "kubeconfig = \"" << fake_->kubeconfig() << "\"\n"
             << "argo-on-kubernetes = true\n";
    } else {
      config << "argo-server = \"" << fake_->server() << "\"\n"
             << "argo-token-file = \"" << fake_->token_file() << "\"\n";
    }
    config.close();
    dagd_.UseConfigFile(config_);
    dagd_.Start();
  }

  void TearDown() override {
    dagd_.Terminate();
    EXPECT_EQ(fake_->Stop(), 0) << "objects that violate the schemas: " << fake_->violations();
  }

  std::vector<std::string> WorkflowsByNode() {
    return NodesOfObjects(*fake_, "/apis/argoproj.io/v1alpha1/namespaces/dagd/workflows");
  }

  TempDir tmp_;
  std::string data_dir_ = tmp_.path() + "/data";
  std::string records_ = tmp_.path() + "/records";
  std::string fake_dir_ = tmp_.path() + "/fake";
  std::string config_ = tmp_.path() + "/dagd.toml";
  std::unique_ptr<FakeKubeProcess> fake_;
  Daemon dagd_{data_dir_};
};

INSTANTIATE_TEST_SUITE_P(Api, ArgoDaemonTest, ::testing::Values(false, true),
                         [](const ::testing::TestParamInfo<bool>& info) {
                           return info.param ? "KubernetesApi" : "ArgoServer";
                         });

// The foundation's diamond, unchanged, on the argo runner: the same outcome and history as on
// local, one Workflow per attempt, and the Ansible events back in dagd's store.
TEST_P(ArgoDaemonTest, DiamondRunsUnchangedWithTheSameHistory) {
  ExpectDiamondAsOnLocal(dagd_, records_, data_dir_, "argo", [&] { return WorkflowsByNode(); });
}

// kill -9 of dagd while a Workflow runs: the restarted dagd finds it by name and follows it to
// its end; the step runs once and no second Workflow is submitted.
TEST_P(ArgoDaemonTest, KillNineMidRunReattachesWithoutASecondWorkflow) {
  ExpectKillNineReattaches(dagd_, records_, data_dir_, [&] { return WorkflowsByNode(); });
}

}  // namespace
}  // namespace dagd::testing

namespace dagd::testing {
namespace {

// The lines of `text` that start with `prefix`.
std::vector<std::string> LinesStartingWith(const std::string& text, const std::string& prefix) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(prefix, 0) == 0) lines.push_back(line);
  }
  return lines;
}

// dagctl for people (issue 5, point 5) against the real dagd, piped (so plain) and as JSON:
// submit with labels and watch, runs list with label / phase filters, sorting and wide columns,
// runs get as a tree, watch of a finished run, graph of a file and of a run, and an unreachable
// server.
TEST_F(DaemonTest, DagctlForPeopleListGetWatchAndGraph) {
  const std::string file = kTestdata + "/labelled-diamond.yaml";
  CommandResult watched = RunDagctl(
      dagd_.address(),
      {"submit", "-f", file, "-p", "record_dir=" + records_, "-l", "ticket=ops-1", "--watch"});
  ASSERT_EQ(watched.exit_code, 0) << watched.output;
  EXPECT_EQ(watched.output.find('\x1b'), std::string::npos) << "piped output is plain";
  const std::string run_id = watched.output.substr(4, watched.output.find(" submitted") - 4);
  ASSERT_EQ(run_id.rfind("labelled-diamond-", 0), 0u) << watched.output;
  // One progress line per finished node, the last one with all four.
  const std::vector<std::string> progress = LinesStartingWith(watched.output, "progress: ");
  ASSERT_EQ(progress.size(), 4u) << watched.output;
  EXPECT_THAT(progress.back(),
              ::testing::MatchesRegex("progress: (Running|Succeeded)  4/4 nodes done  elapsed .*"));
  EXPECT_THAT(watched.output, ::testing::HasSubstr("\n\nRun:         " + run_id + "\n"));
  EXPECT_THAT(watched.output,
              ::testing::HasSubstr("Labels:      team=web,ticket=ops-1,tier=demo\n"));
  EXPECT_EQ(ReadLines(records_ + "/labelled-diamond").size(), 4u);

  CommandResult plain =
      RunDagctl(dagd_.address(), {"submit", "-f", file, "-p", "record_dir=" + records_, "--watch"});
  ASSERT_EQ(plain.exit_code, 0) << plain.output;
  CommandResult failed =
      RunDagctl(dagd_.address(), {"submit", "-f", kTestdata + "/fail-omits.yaml", "--bundle",
                                  kTestdata, "-p", "record_dir=" + records_, "--watch"});
  EXPECT_EQ(failed.exit_code, 1) << failed.output;
  EXPECT_THAT(failed.output, ::testing::HasSubstr("\nprogress: "));

  // runs list: label selectors, phases, order, wide.
  const auto listed_ids = [this](std::vector<std::string> args) {
    args.insert(args.begin(), {"runs", "list"});
    args.insert(args.end(), {"-o", "json"});
    CommandResult listed = RunDagctl(dagd_.address(), args);
    EXPECT_EQ(listed.exit_code, 0) << listed.output;
    std::vector<std::string> ids;
    nlohmann::json json = nlohmann::json::parse(listed.output, nullptr, false);
    EXPECT_FALSE(json.is_discarded()) << listed.output;
    if (json.is_discarded()) return ids;
    for (const auto& run : json["runs"]) ids.push_back(run["id"]);
    return ids;
  };
  const std::string failed_id = listed_ids({"--phase", "Failed"}).at(0);
  const std::string plain_id = listed_ids({"-l", "team=web", "-l", "ticket!=ops-1"}).at(0);
  EXPECT_EQ(listed_ids({"-l", "ticket=ops-1"}), (std::vector<std::string>{run_id}));
  EXPECT_EQ(listed_ids({"-l", "team=web"}), (std::vector<std::string>{plain_id, run_id}));
  EXPECT_EQ(listed_ids({"-l", "team"}), (std::vector<std::string>{plain_id, run_id}));
  EXPECT_EQ(listed_ids({"--sort", "created"}),
            (std::vector<std::string>{run_id, plain_id, failed_id}));
  EXPECT_EQ(listed_ids({"--since", "1h", "--limit", "2"}),
            (std::vector<std::string>{failed_id, plain_id}));
  EXPECT_TRUE(listed_ids({"--until", "2000-01-01T00:00:00Z"}).empty());
  CommandResult bad_selector = RunDagctl(dagd_.address(), {"runs", "list", "-l", "a=b=c"});
  EXPECT_EQ(bad_selector.exit_code, 1) << bad_selector.output;
  EXPECT_THAT(bad_selector.output,
              ::testing::HasSubstr("dagctl: INVALID_ARGUMENT: label_selector"));

  CommandResult wide = RunDagctl(dagd_.address(), {"runs", "list", "-o", "wide", "-l", "ticket"});
  ASSERT_EQ(wide.exit_code, 0) << wide.output;
  EXPECT_THAT(wide.output, ::testing::StartsWith("RUN "));
  EXPECT_THAT(wide.output, ::testing::HasSubstr("  LABELS  "));
  EXPECT_THAT(wide.output, ::testing::HasSubstr("  inline  "));
  EXPECT_THAT(wide.output, ::testing::HasSubstr("  team=web,ticket=ops-1,tier=demo"));

  // runs get: the tree, plain when piped; JSON is the Run message.
  CommandResult got = RunDagctl(dagd_.address(), {"runs", "get", run_id});
  ASSERT_EQ(got.exit_code, 0) << got.output;
  EXPECT_EQ(got.output.find('\x1b'), std::string::npos);
  EXPECT_THAT(got.output, ::testing::HasSubstr("\nNAME "));
  for (const char* row : {"├─ A ", "├─ B ", "├─ C ", "└─ D "}) {
    EXPECT_THAT(got.output, ::testing::HasSubstr(row)) << row;
  }
  EXPECT_EQ(LinesStartingWith(got.output, "├─").size() + LinesStartingWith(got.output, "└─").size(),
            4u)
      << got.output;
  CommandResult got_wide = RunDagctl(dagd_.address(), {"runs", "get", run_id, "-o", "wide"});
  ASSERT_EQ(got_wide.exit_code, 0) << got_wide.output;
  EXPECT_THAT(got_wide.output, ::testing::HasSubstr("  TEMPLATE  RUNNER  "));
  EXPECT_THAT(got_wide.output, ::testing::HasSubstr("  step      local"));
  CommandResult got_json = RunDagctl(dagd_.address(), {"runs", "get", run_id, "-o", "json"});
  ASSERT_EQ(got_json.exit_code, 0) << got_json.output;
  const nlohmann::json run = nlohmann::json::parse(got_json.output, nullptr, false);
  ASSERT_FALSE(run.is_discarded()) << got_json.output;
  EXPECT_EQ(run["phase"], "PHASE_SUCCEEDED");
  EXPECT_EQ(run["labels"]["ticket"], "ops-1");
  EXPECT_EQ(run["nodes"].size(), 5u);

  // watch of a finished run: every event, the progress lines, the final tree; exit 0. As JSON:
  // one document per line, the run last.
  CommandResult rewatch = RunDagctl(dagd_.address(), {"watch", run_id});
  EXPECT_EQ(rewatch.exit_code, 0) << rewatch.output;
  EXPECT_EQ(LinesStartingWith(rewatch.output, "progress: ").size(), 4u) << rewatch.output;
  EXPECT_THAT(rewatch.output, ::testing::HasSubstr("└─ D "));
  CommandResult watch_json = RunDagctl(dagd_.address(), {"watch", run_id, "-o", "json"});
  EXPECT_EQ(watch_json.exit_code, 0) << watch_json.output;
  std::vector<nlohmann::json> documents;
  std::istringstream lines(watch_json.output);
  for (std::string line; std::getline(lines, line);) {
    documents.push_back(nlohmann::json::parse(line, nullptr, false));
    EXPECT_FALSE(documents.back().is_discarded()) << line;
  }
  ASSERT_GE(documents.size(), 2u);
  EXPECT_EQ(documents.back()["id"], run_id);
  EXPECT_EQ(documents[documents.size() - 2]["final"], true);
  CommandResult watch_failed = RunDagctl(dagd_.address(), {"watch", failed_id});
  EXPECT_EQ(watch_failed.exit_code, 1) << watch_failed.output;

  // graph: a file without phases, a run with them; JSON; PNG through dot.
  CommandResult file_graph = RunDagctl(dagd_.address(), {"graph", file});
  ASSERT_EQ(file_graph.exit_code, 0) << file_graph.output;
  EXPECT_THAT(file_graph.output, ::testing::StartsWith("digraph G {\n"));
  EXPECT_THAT(
      file_graph.output,
      ::testing::HasSubstr("3[label=\"D\", tooltip=\"template step\", fillcolor=\"white\"]"));
  for (const char* edge : {"0->1 ;", "0->2 ;", "1->3 ;", "2->3 ;"}) {
    EXPECT_THAT(file_graph.output, ::testing::HasSubstr(edge));
  }
  CommandResult run_graph = RunDagctl(dagd_.address(), {"graph", run_id});
  ASSERT_EQ(run_graph.exit_code, 0) << run_graph.output;
  EXPECT_THAT(run_graph.output, ::testing::HasSubstr("label=\"" + run_id + "\";"));
  EXPECT_THAT(run_graph.output, ::testing::HasSubstr("3[label=\"D\\nSucceeded\""));
  CommandResult failed_graph = RunDagctl(dagd_.address(), {"graph", failed_id, "-o", "json"});
  ASSERT_EQ(failed_graph.exit_code, 0) << failed_graph.output;
  const nlohmann::json graph = nlohmann::json::parse(failed_graph.output, nullptr, false);
  ASSERT_FALSE(graph.is_discarded()) << failed_graph.output;
  EXPECT_EQ(graph["nodes"][0]["task"], "A");
  EXPECT_EQ(graph["nodes"][0]["phase"], "Failed");
  const std::string png = tmp_.path() + "/run.png";
  CommandResult png_graph = RunDagctl(dagd_.address(), {"graph", run_id, "--png", png});
  EXPECT_EQ(png_graph.exit_code, 0) << png_graph.output;
  EXPECT_EQ(ReadFile(png).substr(0, 4), "\x89PNG");

  // Nothing listens: the address and what to do, exit 1.
  const std::string nowhere = "127.0.0.1:" + std::to_string(FreeLoopbackPort());
  CommandResult unreachable = RunDagctl(nowhere, {"runs", "list"});
  EXPECT_EQ(unreachable.exit_code, 1);
  EXPECT_EQ(unreachable.output, "dagctl: cannot reach dagd at " + nowhere +
                                    " (connection refused); is dagd running? set --server "
                                    "HOST:PORT or DAGD_SERVER\n");
}

}  // namespace
}  // namespace dagd::testing
