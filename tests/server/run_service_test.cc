// RunService over real gRPC on loopback: the real scheduler, local runner and SQLite store run
// tiny host commands.
#include <gmock/gmock.h>
#include <google/protobuf/util/time_util.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <future>
#include <map>
#include <set>

#include "absl/strings/match.h"
#include "tests/server/server_stack.h"

namespace dagd::server::testing {
namespace {

using google::protobuf::util::TimeUtil;
using std::chrono::seconds;
using ::testing::HasSubstr;

const std::vector<std::string> kEchoHi = {"sh", "-c", "echo hi"};
const std::vector<std::string> kExit3 = {"sh", "-c", "exit 3"};
const std::vector<std::string> kSleep30 = {"sleep", "30"};
const std::vector<std::string> kOneSleepTwo = {"sh", "-c", "echo one; sleep 1; echo two"};

// Fails unless `events` are numbered first, first+1, … and only the last one is final.
void ExpectContiguousToFinal(const std::vector<v1::RunEvent>& events, int64_t first) {
  ASSERT_FALSE(events.empty());
  for (size_t i = 0; i < events.size(); ++i) {
    EXPECT_EQ(events[i].sequence(), first + static_cast<int64_t>(i)) << "event " << i;
    EXPECT_EQ(events[i].final(), i + 1 == events.size()) << "event " << i;
  }
}

class RunServiceTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_NO_FATAL_FAILURE(stack_.Start()); }

  v1::RunService::Stub* runs() { return stack_.runs(); }

  void StoreWorkflow(const std::string& name, const std::vector<std::string>& argv) {
    v1::CreateWorkflowRequest request;
    request.set_yaml(OneTaskWorkflow(name, argv));
    v1::CreateWorkflowResponse response;
    auto context = ContextWithDeadline();
    grpc::Status status = stack_.workflows()->CreateWorkflow(context.get(), request, &response);
    ASSERT_TRUE(status.ok()) << status.error_message();
  }

  grpc::Status Submit(const v1::SubmitRunRequest& request, v1::Run* run) {
    auto context = ContextWithDeadline();
    return runs()->SubmitRun(context.get(), request, run);
  }

  v1::Run SubmitByName(const std::string& name) {
    v1::SubmitRunRequest request;
    request.set_workflow_name(name);
    v1::Run run;
    grpc::Status status = Submit(request, &run);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return run;
  }

  grpc::Status ListRuns(const v1::ListRunsRequest& request, v1::ListRunsResponse* response) {
    auto context = ContextWithDeadline();
    return runs()->ListRuns(context.get(), request, response);
  }

  std::set<std::string> ListedIds(const v1::ListRunsRequest& request) {
    v1::ListRunsResponse response;
    grpc::Status status = ListRuns(request, &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    std::set<std::string> ids;
    for (const auto& run : response.runs()) ids.insert(run.id());
    return ids;
  }

  grpc::Status EndRun(const std::string& run_id, bool terminate, v1::Run* out) {
    v1::EndRunRequest request;
    request.set_run_id(run_id);
    auto context = ContextWithDeadline();
    return terminate ? runs()->TerminateRun(context.get(), request, out)
                     : runs()->StopRun(context.get(), request, out);
  }

  // A `sleep 30` run is stopped (or terminated) while running: it ends Failed well before the
  // sleep would, and ending it again is FailedPrecondition.
  void StopsRunningRun(bool terminate) {
    v1::Run run = SubmitSpec(runs(), OneTaskWorkflow("sleepy", kSleep30, true));
    ASSERT_FALSE(run.id().empty());
    ASSERT_TRUE(WaitForAttemptStarted(runs(), run.id()));

    v1::Run ended;
    grpc::Status status = EndRun(run.id(), terminate, &ended);
    ASSERT_TRUE(status.ok()) << status.error_code() << ": " << status.error_message();
    EXPECT_EQ(ended.id(), run.id());

    WatchResult watched = WatchToEnd(runs(), run.id(), 0, seconds(20));
    ASSERT_TRUE(watched.status.ok()) << watched.status.error_message();
    ExpectContiguousToFinal(watched.events, 1);
    EXPECT_EQ(watched.events.back().phase(), v1::PHASE_FAILED);
    const std::string requested = terminate ? "RunTerminateRequested" : "RunStopRequested";
    EXPECT_TRUE(std::any_of(watched.events.begin(), watched.events.end(),
                            [&](const v1::RunEvent& e) { return e.type() == requested; }));

    v1::Run finished = GetRun(runs(), run.id());
    EXPECT_EQ(finished.phase(), v1::PHASE_FAILED);
    EXPECT_EQ(finished.last_sequence(), watched.events.back().sequence());
    const v1::Node* say = FindNode(finished, "say");
    ASSERT_NE(say, nullptr);
    EXPECT_NE(say->phase(), v1::PHASE_SUCCEEDED);
    EXPECT_NE(say->phase(), v1::PHASE_RUNNING);

    v1::Run again;
    EXPECT_EQ(EndRun(run.id(), terminate, &again).error_code(),
              grpc::StatusCode::FAILED_PRECONDITION);
  }

  ServerStack stack_;
};

// --- SubmitRun and GetRun ---------------------------------------------------------------------

TEST_F(RunServiceTest, SubmitByNameRunsTheStoredWorkflow) {
  ASSERT_NO_FATAL_FAILURE(StoreWorkflow("hello", kEchoHi));
  v1::Run run = SubmitByName("hello");
  ASSERT_FALSE(run.id().empty());
  EXPECT_TRUE(absl::StartsWith(run.id(), "hello-")) << run.id();
  EXPECT_EQ(run.workflow_name(), "hello");
  EXPECT_EQ(run.workflow_version(), 1);
  EXPECT_TRUE(run.has_create_time());

  WatchResult watched = WatchToEnd(runs(), run.id());
  ASSERT_TRUE(watched.status.ok()) << watched.status.error_message();
  ASSERT_FALSE(watched.events.empty());
  EXPECT_EQ(watched.events.back().phase(), v1::PHASE_SUCCEEDED);
}

TEST_F(RunServiceTest, SubmitBySpecRunsIt) {
  v1::Run run = SubmitSpec(runs(), OneTaskWorkflow("inline", kEchoHi, /*generate=*/true));
  ASSERT_FALSE(run.id().empty());
  EXPECT_TRUE(absl::StartsWith(run.id(), "inline-")) << run.id();
  EXPECT_EQ(run.workflow_version(), 0);
  // An inline spec's runs are named after its generateName, so they can be listed by it.
  EXPECT_EQ(run.workflow_name(), "inline");
  {
    v1::ListRunsRequest list;
    list.set_workflow_name("inline");
    v1::ListRunsResponse listed;
    ASSERT_TRUE(runs()->ListRuns(ContextWithDeadline().get(), list, &listed).ok());
    ASSERT_EQ(listed.runs_size(), 1);
    EXPECT_EQ(listed.runs(0).id(), run.id());
  }
  // The run is stored before SubmitRun answers.
  EXPECT_EQ(GetRun(runs(), run.id()).id(), run.id());
  EXPECT_EQ(GetRun(runs(), run.id()).spec_yaml(), OneTaskWorkflow("inline", kEchoHi, true));

  WatchResult watched = WatchToEnd(runs(), run.id());
  ASSERT_TRUE(watched.status.ok()) << watched.status.error_message();
  ASSERT_FALSE(watched.events.empty());
  EXPECT_EQ(watched.events.back().phase(), v1::PHASE_SUCCEEDED);
}

TEST_F(RunServiceTest, SubmitWithTheSameRequestIdReturnsTheSameRun) {
  v1::SubmitRunRequest request;
  request.set_spec_yaml(OneTaskWorkflow("once", kEchoHi, true));
  request.set_request_id("req-1");
  v1::Run first;
  grpc::Status status = Submit(request, &first);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(first.request_id(), "req-1");
  v1::Run second;
  status = Submit(request, &second);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(second.id(), first.id());
  EXPECT_EQ(ListedIds(v1::ListRunsRequest()), (std::set<std::string>{first.id()}));
}

TEST_F(RunServiceTest, SubmitWithUnknownParameterIsInvalidArgument) {
  v1::SubmitRunRequest request;
  request.set_spec_yaml(OneTaskWorkflow("params", kEchoHi, true));
  (*request.mutable_parameters())["colour"] = "red";
  v1::Run run;
  grpc::Status status = Submit(request, &run);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(status.error_message().find("colour"), std::string::npos) << status.error_message();
}

TEST_F(RunServiceTest, SemaphoresAreSizedByDagdsConfigurationOrAStoredConfigMap) {
  v1::SubmitRunRequest request;
  request.set_spec_yaml(R"(apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata: {generateName: sem-}
spec:
  entrypoint: main
  templates:
  - name: main
    synchronization:
      semaphores: [{configMapKeyRef: {name: my-config, key: template}}]
    container: {image: alpine, command: ["true"]}
)");
  request.set_file_name("sem.yaml");
  v1::Run run;
  grpc::Status status = Submit(request, &run);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(status.error_message(),
            "sem.yaml: spec.templates[0].synchronization: semaphore my-config/template: no "
            "ConfigMap my-config is stored; store a ConfigMap my-config with data template: \"N\" "
            "(dagctl apply -f FILE), or start dagd with --semaphore my-config/template=N");

  // A stored ConfigMap sizes it, as a ConfigMap does in Argo; a value that is no count is named.
  auto apply = [&](const std::string& value) {
    v1::CreateWorkflowRequest create;
    create.set_yaml(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: my-config}\ndata:\n"
        "  template: \"" +
        value + "\"\n");
    v1::CreateWorkflowResponse response;
    auto context = ContextWithDeadline();
    return stack_.workflows()->CreateWorkflow(context.get(), create, &response);
  };
  ASSERT_TRUE(apply("many").ok());
  status = Submit(request, &run);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(),
              HasSubstr("ConfigMap my-config gives template = \"many\", not a whole number >= 1"));
  ASSERT_TRUE(apply("2").ok());
  status = Submit(request, &run);
  EXPECT_TRUE(status.ok()) << status.error_message();

  // A ConfigMap is not a run.
  v1::SubmitRunRequest config_map;
  config_map.set_workflow_name("my-config");
  status = Submit(config_map, &run);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), HasSubstr("a ConfigMap is not a workflow"));
}

TEST_F(RunServiceTest, SubmitOfUnknownWorkflowIsNotFound) {
  v1::SubmitRunRequest request;
  request.set_workflow_name("nope");
  v1::Run run;
  EXPECT_EQ(Submit(request, &run).error_code(), grpc::StatusCode::NOT_FOUND);

  ASSERT_NO_FATAL_FAILURE(StoreWorkflow("hello", kEchoHi));
  request.set_workflow_name("hello");
  request.set_workflow_version(9);
  EXPECT_EQ(Submit(request, &run).error_code(), grpc::StatusCode::NOT_FOUND);
}

TEST_F(RunServiceTest, SubmitWithoutSourceIsInvalidArgument) {
  v1::SubmitRunRequest request;
  request.set_request_id("r1");
  v1::Run run;
  grpc::Status status = Submit(request, &run);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(status.error_message().find("spec_yaml"), std::string::npos) << status.error_message();
}

TEST_F(RunServiceTest, SubmitOfMalformedSpecIsInvalidArgumentAndStoresNothing) {
  v1::SubmitRunRequest request;
  request.set_spec_yaml("apiVersion: argoproj.io/v1alpha1\nkind: Workflow\nspec: [\n");
  request.set_file_name("broken.yaml");
  v1::Run run;
  grpc::Status status = Submit(request, &run);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(status.error_message().find("broken.yaml"), std::string::npos)
      << status.error_message();
  EXPECT_TRUE(ListedIds(v1::ListRunsRequest()).empty());
}

// --- bundles ------------------------------------------------------------------------------------

v1::Bundle Greeting(const std::string& text) {
  v1::Bundle bundle;
  v1::BundleFile* file = bundle.add_files();
  file->set_path("data/greeting.txt");
  file->set_content(text);
  return bundle;
}

const std::vector<std::string> kCatGreeting = {"cat", "data/greeting.txt"};

// An ansible workflow (generateName `name-` or, with `stored`, name `name`) whose one template
// runs playbooks/site.yml, named at line 14.
std::string PlaybookWorkflow(const std::string& name, bool stored) {
  return absl::StrCat(
      "apiVersion: argoproj.io/v1alpha1\n"
      "kind: Workflow\n"
      "metadata:\n",
      stored ? "  name: " : "  generateName: ", name, stored ? "\n" : "-\n",
      "spec:\n"
      "  entrypoint: main\n"
      "  templates:\n"
      "  - name: main\n"
      "    dag:\n"
      "      tasks:\n"
      "      - {name: run, template: site}\n"
      "  - name: site\n"
      "    ansible:\n"
      "      playbook: playbooks/site.yml\n");
}

TEST_F(RunServiceTest, SubmitBySpecWithABundleRunsInACopyOfIt) {
  v1::SubmitRunRequest request;
  request.set_spec_yaml(OneTaskWorkflow("greet", kCatGreeting, /*generate=*/true));
  *request.mutable_bundle() = Greeting("hello from the bundle");
  v1::Run run;
  grpc::Status status = Submit(request, &run);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(run.bundle_digest().size(), 64u);
  ASSERT_TRUE(WatchToEnd(runs(), run.id()).status.ok());
  v1::Run finished = GetRun(runs(), run.id());
  EXPECT_EQ(finished.phase(), v1::PHASE_SUCCEEDED);
  EXPECT_EQ(finished.bundle_digest(), run.bundle_digest());
  const v1::Node* say = FindNode(finished, "say");
  ASSERT_NE(say, nullptr);
  EXPECT_EQ(say->result(), "hello from the bundle") << say->message();
}

TEST_F(RunServiceTest, SubmitByNameRunsWithTheBundleOfTheVersion) {
  std::vector<std::string> digests;
  for (const char* text : {"one", "two"}) {
    v1::CreateWorkflowRequest create;
    create.set_yaml(OneTaskWorkflow("greeter", kCatGreeting));
    *create.mutable_bundle() = Greeting(text);
    v1::CreateWorkflowResponse created;
    auto context = ContextWithDeadline();
    grpc::Status status = stack_.workflows()->CreateWorkflow(context.get(), create, &created);
    ASSERT_TRUE(status.ok()) << status.error_message();
    digests.push_back(created.workflow().bundle_digest());
  }
  for (const auto& [version, want] : {std::pair<int64_t, std::string>{1, "one"}, {0, "two"}}) {
    v1::SubmitRunRequest request;
    request.set_workflow_name("greeter");
    request.set_workflow_version(version);
    v1::Run run;
    grpc::Status status = Submit(request, &run);
    ASSERT_TRUE(status.ok()) << status.error_message();
    EXPECT_EQ(run.bundle_digest(), digests[want == "one" ? 0 : 1]);
    ASSERT_TRUE(WatchToEnd(runs(), run.id()).status.ok());
    const v1::Run finished = GetRun(runs(), run.id());
    const v1::Node* say = FindNode(finished, "say");
    ASSERT_NE(say, nullptr);
    EXPECT_EQ(say->result(), want) << "version " << version;
  }

  // A stored workflow brings its own bundle; another one cannot be sent with it.
  v1::SubmitRunRequest both;
  both.set_workflow_name("greeter");
  *both.mutable_bundle() = Greeting("three");
  v1::Run run;
  grpc::Status status = Submit(both, &run);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(status.error_message().find("spec_yaml"), std::string::npos) << status.error_message();
}

TEST_F(RunServiceTest, SubmitOfASpecWhosePlaybookIsNotInItsBundleIsRefused) {
  v1::SubmitRunRequest request;
  request.set_spec_yaml(PlaybookWorkflow("play", /*stored=*/false));
  request.set_file_name("play.yaml");
  *request.mutable_bundle() = Greeting("not a playbook");
  v1::Run run;
  grpc::Status status = Submit(request, &run);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(status.error_message(),
            "play.yaml:14:7: spec.templates[1].ansible.playbook: template \"site\": playbook "
            "\"playbooks/site.yml\" is not in the workflow's bundle (1 files); submit with "
            "--bundle DIR, DIR holding playbooks/site.yml (or fix the path)");
  EXPECT_TRUE(ListedIds(v1::ListRunsRequest()).empty());
}

// A version stored without the playbooks it names — as versions from before bundles were stored
// (schema 3) are — is refused at submission, saying how to fix it.
TEST_F(RunServiceTest, SubmitByNameOfAVersionWithoutItsPlaybookSaysToApplyItAgain) {
  absl::StatusOr<storage::WorkflowRecord> legacy = stack_.store()->PutWorkflow(
      "legacy", PlaybookWorkflow("legacy", /*stored=*/true), "main", {}, 1, nullptr);
  ASSERT_TRUE(legacy.ok()) << legacy.status();
  v1::SubmitRunRequest request;
  request.set_workflow_name("legacy");
  v1::Run run;
  grpc::Status status = Submit(request, &run);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(status.error_message().find("legacy@v1:14:7: spec.templates[1].ansible.playbook"),
            std::string::npos)
      << status.error_message();
  EXPECT_NE(status.error_message().find("apply workflow legacy again with --bundle DIR"),
            std::string::npos)
      << status.error_message();
  EXPECT_TRUE(ListedIds(v1::ListRunsRequest()).empty());
}

TEST_F(RunServiceTest, GetRunReturnsNodesWithAttempts) {
  v1::Run run = RunToEnd(runs(), kEchoHi);
  ASSERT_FALSE(run.id().empty());
  EXPECT_EQ(run.phase(), v1::PHASE_SUCCEEDED);
  EXPECT_TRUE(run.has_finish_time());
  EXPECT_GT(run.last_sequence(), 0);
  ASSERT_GE(run.nodes_size(), 2);

  const v1::Node* say = FindNode(run, "say");
  ASSERT_NE(say, nullptr);
  EXPECT_EQ(say->type(), v1::NODE_TYPE_POD);
  EXPECT_EQ(say->phase(), v1::PHASE_SUCCEEDED);
  ASSERT_EQ(say->attempts_size(), 1);
  const v1::Attempt& attempt = say->attempts(0);
  EXPECT_EQ(attempt.number(), 1);
  EXPECT_EQ(attempt.phase(), v1::PHASE_SUCCEEDED);
  EXPECT_EQ(attempt.runner(), "local");
  EXPECT_EQ(attempt.exit_code(), 0);
  EXPECT_TRUE(attempt.has_start_time());
  EXPECT_TRUE(attempt.has_finish_time());

  const v1::Node* root = nullptr;
  for (const auto& node : run.nodes()) {
    if (node.parent().empty()) root = &node;
  }
  ASSERT_NE(root, nullptr);
  EXPECT_EQ(root->type(), v1::NODE_TYPE_DAG);
  EXPECT_EQ(root->attempts_size(), 0);
  EXPECT_EQ(std::vector<std::string>(root->children().begin(), root->children().end()),
            std::vector<std::string>{say->name()});
}

TEST_F(RunServiceTest, GetRunOfFailedCommandShowsTheExitCode) {
  v1::Run run = RunToEnd(runs(), kExit3);
  EXPECT_EQ(run.phase(), v1::PHASE_FAILED);
  const v1::Node* say = FindNode(run, "say");
  ASSERT_NE(say, nullptr);
  EXPECT_EQ(say->phase(), v1::PHASE_FAILED);
  ASSERT_EQ(say->attempts_size(), 1);
  EXPECT_EQ(say->attempts(0).exit_code(), 3);
}

TEST_F(RunServiceTest, GetRunOfUnknownRunIsNotFound) {
  v1::GetRunRequest request;
  request.set_run_id("nope-12345");
  v1::Run run;
  auto context = ContextWithDeadline();
  EXPECT_EQ(runs()->GetRun(context.get(), request, &run).error_code(), grpc::StatusCode::NOT_FOUND);
}

// --- ListRuns ---------------------------------------------------------------------------------

TEST_F(RunServiceTest, ListRunsFiltersByWorkflow) {
  ASSERT_NO_FATAL_FAILURE(StoreWorkflow("alpha", kEchoHi));
  ASSERT_NO_FATAL_FAILURE(StoreWorkflow("beta", kEchoHi));
  const std::string a1 = SubmitByName("alpha").id();
  const std::string a2 = SubmitByName("alpha").id();
  const std::string b1 = SubmitByName("beta").id();

  v1::ListRunsRequest request;
  request.set_workflow_name("alpha");
  EXPECT_EQ(ListedIds(request), (std::set<std::string>{a1, a2}));
  request.set_workflow_name("beta");
  EXPECT_EQ(ListedIds(request), (std::set<std::string>{b1}));
  request.set_workflow_name("gamma");
  EXPECT_TRUE(ListedIds(request).empty());
  EXPECT_EQ(ListedIds(v1::ListRunsRequest()), (std::set<std::string>{a1, a2, b1}));
}

TEST_F(RunServiceTest, ListRunsFiltersByPhase) {
  const std::string ok = RunToEnd(runs(), kEchoHi).id();
  const std::string failed = RunToEnd(runs(), kExit3).id();
  ASSERT_FALSE(ok.empty());
  ASSERT_FALSE(failed.empty());

  v1::ListRunsRequest request;
  request.add_phases(v1::PHASE_FAILED);
  EXPECT_EQ(ListedIds(request), (std::set<std::string>{failed}));

  request.clear_phases();
  request.add_phases(v1::PHASE_SUCCEEDED);
  EXPECT_EQ(ListedIds(request), (std::set<std::string>{ok}));

  request.add_phases(v1::PHASE_FAILED);
  EXPECT_EQ(ListedIds(request), (std::set<std::string>{ok, failed}));

  request.clear_phases();
  request.add_phases(v1::PHASE_RUNNING);
  EXPECT_TRUE(ListedIds(request).empty());

  request.clear_phases();
  request.add_phases(v1::PHASE_UNSPECIFIED);
  v1::ListRunsResponse response;
  EXPECT_EQ(ListRuns(request, &response).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_F(RunServiceTest, ListRunsFiltersByCreationTime) {
  constexpr int64_t kHourMs = 3600 * 1000;
  const std::string yaml = OneTaskWorkflow("timed", kEchoHi, true);
  v1::Run early = SubmitSpec(runs(), yaml);
  stack_.clock()->Advance(kHourMs);
  v1::Run middle = SubmitSpec(runs(), yaml);
  stack_.clock()->Advance(kHourMs);
  v1::Run late = SubmitSpec(runs(), yaml);
  ASSERT_FALSE(early.id().empty());
  ASSERT_FALSE(middle.id().empty());
  ASSERT_FALSE(late.id().empty());
  const int64_t t0 = TimeUtil::TimestampToMilliseconds(early.create_time());
  EXPECT_GE(TimeUtil::TimestampToMilliseconds(middle.create_time()), t0 + kHourMs);

  v1::ListRunsRequest request;
  *request.mutable_created_after() = TimeUtil::MillisecondsToTimestamp(t0 + kHourMs / 2);
  *request.mutable_created_before() = TimeUtil::MillisecondsToTimestamp(t0 + 3 * kHourMs / 2);
  EXPECT_EQ(ListedIds(request), (std::set<std::string>{middle.id()}));

  request.clear_created_before();
  EXPECT_EQ(ListedIds(request), (std::set<std::string>{middle.id(), late.id()}));

  request.clear_created_after();
  *request.mutable_created_before() = TimeUtil::MillisecondsToTimestamp(t0 + kHourMs / 2);
  EXPECT_EQ(ListedIds(request), (std::set<std::string>{early.id()}));

  // At or after, and strictly before, a run's exact creation time.
  request.clear_created_before();
  *request.mutable_created_after() = middle.create_time();
  EXPECT_EQ(ListedIds(request), (std::set<std::string>{middle.id(), late.id()}));
  request.clear_created_after();
  *request.mutable_created_before() = middle.create_time();
  EXPECT_EQ(ListedIds(request), (std::set<std::string>{early.id()}));
}

TEST_F(RunServiceTest, ListRunsPagesNewestFirstWithoutDuplicates) {
  std::vector<std::string> submitted;
  for (int i = 0; i < 3; ++i) {
    submitted.push_back(SubmitSpec(runs(), OneTaskWorkflow("paged", kEchoHi, true)).id());
    ASSERT_FALSE(submitted.back().empty());
    stack_.clock()->Advance(1000);  // distinct creation times, so the order is defined
  }
  std::vector<std::string> listed;
  std::string token;
  for (int page = 0; page < 10; ++page) {
    v1::ListRunsRequest request;
    request.set_page_size(1);
    request.set_page_token(token);
    v1::ListRunsResponse response;
    grpc::Status status = ListRuns(request, &response);
    ASSERT_TRUE(status.ok()) << status.error_message();
    ASSERT_LE(response.runs_size(), 1);
    for (const auto& run : response.runs()) {
      listed.push_back(run.id());
      EXPECT_EQ(run.nodes_size(), 0) << "ListRuns carries no nodes";
      EXPECT_EQ(run.spec_yaml(), "") << "nor the spec";
    }
    token = response.next_page_token();
    if (token.empty()) break;
  }
  EXPECT_TRUE(token.empty()) << "the chain does not end";
  EXPECT_EQ(listed, (std::vector<std::string>{submitted[2], submitted[1], submitted[0]}));
}

TEST_F(RunServiceTest, RunsCarrySpecAndSubmittedLabelsAndListRunsSelectsOnThem) {
  std::string yaml = OneTaskWorkflow("labelled", kEchoHi, true);
  const size_t metadata = yaml.find("metadata:\n") + std::string("metadata:\n").size();
  yaml.insert(metadata, "  labels: {team: web, env: staging}\n");
  v1::SubmitRunRequest request;
  request.set_spec_yaml(yaml);
  (*request.mutable_labels())["env"] = "prod";  // replaces the spec's
  (*request.mutable_labels())["ticket"] = "ops-1";
  v1::Run prod;
  grpc::Status status = Submit(request, &prod);
  ASSERT_TRUE(status.ok()) << status.error_message();
  using Labels = std::map<std::string, std::string>;
  EXPECT_EQ(Labels(prod.labels().begin(), prod.labels().end()),
            (Labels{{"env", "prod"}, {"team", "web"}, {"ticket", "ops-1"}}));
  request.clear_labels();
  v1::Run staging;
  status = Submit(request, &staging);
  ASSERT_TRUE(status.ok()) << status.error_message();
  const std::string plain = SubmitSpec(runs(), OneTaskWorkflow("plain", kEchoHi, true)).id();
  ASSERT_FALSE(plain.empty());
  EXPECT_EQ(GetRun(runs(), prod.id()).labels().at("ticket"), "ops-1");

  v1::ListRunsRequest list;
  list.set_label_selector("env=prod");
  EXPECT_EQ(ListedIds(list), (std::set<std::string>{prod.id()}));
  list.set_label_selector("team==web, env!=prod");
  EXPECT_EQ(ListedIds(list), (std::set<std::string>{staging.id()}));
  list.set_label_selector("env!=prod");
  EXPECT_EQ(ListedIds(list), (std::set<std::string>{staging.id(), plain}));
  list.set_label_selector("team");
  EXPECT_EQ(ListedIds(list), (std::set<std::string>{prod.id(), staging.id()}));
  list.set_label_selector("");
  EXPECT_EQ(ListedIds(list), (std::set<std::string>{prod.id(), staging.id(), plain}));

  v1::ListRunsResponse response;
  for (const char* bad : {"=x", "env=a,b=c=d", "env=a b", "a,,b"}) {
    list.set_label_selector(bad);
    EXPECT_EQ(ListRuns(list, &response).error_code(), grpc::StatusCode::INVALID_ARGUMENT) << bad;
  }
  request.clear_labels();
  (*request.mutable_labels())["bad key"] = "x";
  v1::Run refused;
  EXPECT_EQ(Submit(request, &refused).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_F(RunServiceTest, ListRunsOrdersByRequestedKey) {
  std::vector<std::string> submitted;
  for (int i = 0; i < 3; ++i) {
    submitted.push_back(SubmitSpec(runs(), OneTaskWorkflow("ordered", kEchoHi, true)).id());
    ASSERT_FALSE(submitted.back().empty());
    stack_.clock()->Advance(1000);
  }
  const auto listed = [this](const std::string& order_by) {
    std::vector<std::string> ids;
    v1::ListRunsRequest request;
    request.set_order_by(order_by);
    request.set_page_size(2);
    for (int page = 0; page < 5; ++page) {
      v1::ListRunsResponse response;
      grpc::Status status = ListRuns(request, &response);
      EXPECT_TRUE(status.ok()) << status.error_message();
      for (const auto& run : response.runs()) ids.push_back(run.id());
      if (response.next_page_token().empty()) break;
      request.set_page_token(response.next_page_token());
    }
    return ids;
  };
  EXPECT_EQ(listed("created"), submitted);
  EXPECT_EQ(listed("-created"),
            (std::vector<std::string>{submitted[2], submitted[1], submitted[0]}));
  EXPECT_EQ(listed(""), listed("-created"));
  // Durations change when runs finish (a page walk across that may repeat a run, as the API
  // says): page through them once all three are over.
  for (const std::string& id : submitted) {
    ASSERT_TRUE(WatchToEnd(runs(), id).status.ok());
  }
  EXPECT_EQ(listed("duration").size(), 3u);

  v1::ListRunsRequest bad;
  bad.set_order_by("phase");
  v1::ListRunsResponse response;
  EXPECT_EQ(ListRuns(bad, &response).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
}

// --- WatchRun ---------------------------------------------------------------------------------

TEST_F(RunServiceTest, WatchFromStartStreamsEveryEventAndEndsAfterTheFinalOne) {
  v1::Run run = SubmitSpec(runs(), OneTaskWorkflow("watched", kEchoHi, true));
  ASSERT_FALSE(run.id().empty());
  WatchResult watched = WatchToEnd(runs(), run.id());
  ASSERT_TRUE(watched.status.ok()) << watched.status.error_message();
  ExpectContiguousToFinal(watched.events, 1);
  EXPECT_EQ(watched.events.back().type(), "RunPhase");
  EXPECT_EQ(watched.events.back().phase(), v1::PHASE_SUCCEEDED);
  EXPECT_TRUE(watched.events.back().node_name().empty());
  EXPECT_EQ(GetRun(runs(), run.id()).last_sequence(), watched.events.back().sequence());
}

TEST_F(RunServiceTest, WatchResumesAfterASequenceOfALiveRun) {
  v1::Run run = SubmitSpec(runs(), OneTaskWorkflow("resumed", kOneSleepTwo, true));
  ASSERT_FALSE(run.id().empty());
  std::vector<v1::RunEvent> first;
  ASSERT_TRUE(WaitForEvent(
      runs(), run.id(), [](const v1::RunEvent& e) { return e.type() == "AttemptStarted"; },
      &first));
  const int64_t k = first.back().sequence();
  ASSERT_EQ(k, static_cast<int64_t>(first.size()));

  WatchResult rest = WatchToEnd(runs(), run.id(), k);
  ASSERT_TRUE(rest.status.ok()) << rest.status.error_message();
  ExpectContiguousToFinal(rest.events, k + 1);
  EXPECT_EQ(rest.events.back().phase(), v1::PHASE_SUCCEEDED);
}

TEST_F(RunServiceTest, WatchOfFinishedRunSendsTheRemainingEventsAndEnds) {
  v1::Run run = RunToEnd(runs(), kEchoHi);
  ASSERT_FALSE(run.id().empty());
  const int64_t n = run.last_sequence();
  ASSERT_GE(n, 3);
  for (int64_t after : {int64_t{0}, int64_t{2}, n - 1, n, n + 5}) {
    SCOPED_TRACE(after);
    // A short deadline: a stream that waited for more would fail with DEADLINE_EXCEEDED.
    WatchResult watched = WatchToEnd(runs(), run.id(), after, seconds(5));
    ASSERT_TRUE(watched.status.ok()) << watched.status.error_message();
    if (after >= n) {
      EXPECT_TRUE(watched.events.empty());
    } else {
      ASSERT_EQ(static_cast<int64_t>(watched.events.size()), n - after);
      ExpectContiguousToFinal(watched.events, after + 1);
    }
  }
}

TEST_F(RunServiceTest, WatchOfUnknownRunIsNotFound) {
  WatchResult watched = WatchToEnd(runs(), "nope-12345");
  EXPECT_EQ(watched.status.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_TRUE(watched.events.empty());
}

TEST_F(RunServiceTest, TwoConcurrentWatchersEachSeeEveryEvent) {
  v1::Run run = SubmitSpec(runs(), OneTaskWorkflow("shared", kOneSleepTwo, true));
  ASSERT_FALSE(run.id().empty());
  auto watch = [&] { return WatchToEnd(runs(), run.id()); };
  std::future<WatchResult> a = std::async(std::launch::async, watch);
  std::future<WatchResult> b = std::async(std::launch::async, watch);
  WatchResult ra = a.get();
  WatchResult rb = b.get();
  ASSERT_TRUE(ra.status.ok()) << ra.status.error_message();
  ASSERT_TRUE(rb.status.ok()) << rb.status.error_message();
  ExpectContiguousToFinal(ra.events, 1);
  ExpectContiguousToFinal(rb.events, 1);
  ASSERT_EQ(ra.events.size(), rb.events.size());
  for (size_t i = 0; i < ra.events.size(); ++i) {
    EXPECT_EQ(ra.events[i].SerializeAsString(), rb.events[i].SerializeAsString()) << i;
  }
  EXPECT_EQ(ra.events.back().phase(), v1::PHASE_SUCCEEDED);
}

TEST_F(RunServiceTest, CancelledWatchersLeaveTheServerWorking) {
  v1::Run run = SubmitSpec(runs(), OneTaskWorkflow("cancelled", kSleep30, true));
  ASSERT_FALSE(run.id().empty());
  ASSERT_TRUE(WaitForAttemptStarted(runs(), run.id()));

  // Watchers that cancel mid-stream, while the run is live and the stream waits for news.
  for (int i = 0; i < 10; ++i) {
    auto context = ContextWithDeadline();
    v1::WatchRunRequest request;
    request.set_run_id(run.id());
    auto reader = runs()->WatchRun(context.get(), request);
    v1::RunEvent event;
    ASSERT_TRUE(reader->Read(&event));
    EXPECT_EQ(event.sequence(), 1);
    context->TryCancel();
    while (reader->Read(&event)) {
    }
    EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::CANCELLED);
  }
  // And one that goes away before reading anything.
  {
    auto context = ContextWithDeadline();
    v1::WatchRunRequest request;
    request.set_run_id(run.id());
    auto reader = runs()->WatchRun(context.get(), request);
    context->TryCancel();
    reader->Finish();
  }

  // The server still answers, streams included, and later commits wake the live watcher only.
  EXPECT_EQ(GetRun(runs(), run.id()).phase(), v1::PHASE_RUNNING);
  std::future<WatchResult> live =
      std::async(std::launch::async, [&] { return WatchToEnd(runs(), run.id()); });
  v1::Run stopped;
  grpc::Status status = EndRun(run.id(), /*terminate=*/false, &stopped);
  ASSERT_TRUE(status.ok()) << status.error_message();
  WatchResult watched = live.get();
  ASSERT_TRUE(watched.status.ok()) << watched.status.error_message();
  ExpectContiguousToFinal(watched.events, 1);
  EXPECT_EQ(watched.events.back().phase(), v1::PHASE_FAILED);

  // Every stream has finished: the server shuts down promptly (a leaked reactor would hang it).
  std::future<void> shutdown = std::async(std::launch::async, [&] { stack_.ShutdownServer(1000); });
  ASSERT_EQ(shutdown.wait_for(seconds(20)), std::future_status::ready)
      << "the server did not shut down: a stream never finished";
}

// --- GetNodeLogs ------------------------------------------------------------------------------

TEST_F(RunServiceTest, NodeLogsOfFinishedNode) {
  v1::Run run = RunToEnd(runs(), kEchoHi);
  ASSERT_FALSE(run.id().empty());
  LogsResult logs = ReadNodeLogs(runs(), run.id(), "say", /*follow=*/false);
  ASSERT_TRUE(logs.status.ok()) << logs.status.error_message();
  EXPECT_EQ(logs.text, "hi\n");
  ASSERT_FALSE(logs.chunks.empty());
  EXPECT_EQ(logs.chunks[0].stream(), "stdout");
  EXPECT_EQ(logs.chunks[0].attempt(), 1);

  // By full node name as well; following a finished node ends at once.
  const v1::Node* say = FindNode(run, "say");
  ASSERT_NE(say, nullptr);
  logs = ReadNodeLogs(runs(), run.id(), say->name(), /*follow=*/true, seconds(5));
  ASSERT_TRUE(logs.status.ok()) << logs.status.error_message();
  EXPECT_EQ(logs.text, "hi\n");
}

TEST_F(RunServiceTest, FollowedNodeLogsStreamUntilTheNodeEnds) {
  v1::Run run = SubmitSpec(runs(), OneTaskWorkflow("follow", kOneSleepTwo, true));
  ASSERT_FALSE(run.id().empty());
  ASSERT_TRUE(WaitForAttemptStarted(runs(), run.id()));

  LogsResult logs = ReadNodeLogs(runs(), run.id(), "say", /*follow=*/true);
  ASSERT_TRUE(logs.status.ok()) << logs.status.error_message();
  EXPECT_EQ(logs.text, "one\ntwo\n");

  // The stream ended because the node did.
  v1::Run now = GetRun(runs(), run.id());
  const v1::Node* say = FindNode(now, "say");
  ASSERT_NE(say, nullptr);
  EXPECT_EQ(say->phase(), v1::PHASE_SUCCEEDED);
}

// Output arrives while the node runs: the command prints "one", then waits for the test to
// create a file before it prints "two" and ends.
TEST_F(RunServiceTest, FollowedNodeLogsArriveWhileTheNodeRuns) {
  const std::string gate = stack_.dir() + "/gate";
  v1::Run run = SubmitSpec(
      runs(),
      OneTaskWorkflow(
          "gated",
          {"sh", "-c", "echo one; while [ ! -e '" + gate + "' ]; do sleep 0.02; done; echo two"},
          true));
  ASSERT_FALSE(run.id().empty());

  auto context = ContextWithDeadline();
  v1::GetNodeLogsRequest request;
  request.set_run_id(run.id());
  request.set_node("say");
  request.set_follow(true);
  auto reader = runs()->GetNodeLogs(context.get(), request);
  v1::LogChunk chunk;
  ASSERT_TRUE(reader->Read(&chunk));
  EXPECT_EQ(chunk.data(), "one\n");
  const v1::Node* say = nullptr;
  v1::Run live = GetRun(runs(), run.id());
  say = FindNode(live, "say");
  ASSERT_NE(say, nullptr);
  EXPECT_EQ(say->phase(), v1::PHASE_RUNNING);

  std::ofstream(gate).put('\n');
  std::string rest;
  while (reader->Read(&chunk)) rest += chunk.data();
  grpc::Status status = reader->Finish();
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(rest, "two\n");
  v1::Run finished = GetRun(runs(), run.id());
  say = FindNode(finished, "say");
  ASSERT_NE(say, nullptr);
  EXPECT_EQ(say->phase(), v1::PHASE_SUCCEEDED);
}

TEST_F(RunServiceTest, NodeLogsOfUnknownNodeIsNotFoundAndListsTheNodes) {
  v1::Run run = RunToEnd(runs(), kEchoHi);
  ASSERT_FALSE(run.id().empty());
  LogsResult logs = ReadNodeLogs(runs(), run.id(), "nope", /*follow=*/false);
  EXPECT_EQ(logs.status.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_NE(logs.status.error_message().find("nope"), std::string::npos)
      << logs.status.error_message();
  EXPECT_NE(logs.status.error_message().find("say"), std::string::npos)
      << logs.status.error_message();

  logs = ReadNodeLogs(runs(), "nope-12345", "say", /*follow=*/false);
  EXPECT_EQ(logs.status.error_code(), grpc::StatusCode::NOT_FOUND);
}

// --- StopRun and TerminateRun -----------------------------------------------------------------

TEST_F(RunServiceTest, StopRunEndsARunningRunFailed) { StopsRunningRun(/*terminate=*/false); }

TEST_F(RunServiceTest, TerminateRunEndsARunningRunFailed) { StopsRunningRun(/*terminate=*/true); }

TEST_F(RunServiceTest, EndingAFinishedRunIsFailedPrecondition) {
  v1::Run run = RunToEnd(runs(), kEchoHi);
  ASSERT_FALSE(run.id().empty());
  v1::Run out;
  grpc::Status stop = EndRun(run.id(), /*terminate=*/false, &out);
  EXPECT_EQ(stop.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_NE(stop.error_message().find("Succeeded"), std::string::npos) << stop.error_message();
  EXPECT_EQ(EndRun(run.id(), /*terminate=*/true, &out).error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(GetRun(runs(), run.id()).phase(), v1::PHASE_SUCCEEDED);
}

TEST_F(RunServiceTest, EndingAnUnknownRunIsNotFound) {
  v1::Run out;
  EXPECT_EQ(EndRun("nope-12345", false, &out).error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(EndRun("nope-12345", true, &out).error_code(), grpc::StatusCode::NOT_FOUND);
}

}  // namespace
}  // namespace dagd::server::testing
