// ArgoRunner against the fake Argo Server and Kubernetes API (tests/fakes/, --mode both: one
// fake serves both APIs, so every test runs once per ArgoApi). Real HTTP on loopback; every
// Workflow dagd sends is checked against Argo's schema in ../shared/schemas (the fake exits 3 on a
// violation, which fails the test); the fake's workflow controller runs each pod's command on
// this host — ansible-playbook included.
#include "runners/argo/argo_runner.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

#include "runners/kubernetes/client/kube_client.h"
#include "tests/fakes/fake_kube_process.h"
#include "tests/runners/runner_test_util.h"

namespace dagd::runners::argo {
namespace {

using ::dagd::runners::testing::AnsibleTemplate;
using ::dagd::runners::testing::MakeSpec;
using ::dagd::runners::testing::PathOutput;
using ::dagd::runners::testing::Recorder;
using ::dagd::runners::testing::RunUntil;
using ::dagd::runners::testing::TempDir;
using ::dagd::runners::testing::WriteTextFile;
using engine::NodePhase;
using kubernetes::ClusterConfig;
using kubernetes::KubeClient;
using nlohmann::json;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kNamespace[] = "dagd-test";  // as in the paths below
constexpr char kCrdPath[] = "/apis/argoproj.io/v1alpha1/namespaces/dagd-test/workflows";

std::string ApiName(const ::testing::TestParamInfo<ArgoApi>& info) {
  return info.param == ArgoApi::kArgoServer ? "ArgoServer" : "KubernetesApi";
}

class ArgoRunnerTest : public ::testing::TestWithParam<ArgoApi> {
 protected:
  void SetUp() override {
    ClusterConfig config;
    config.server = fake_.server();
    config.token_file = fake_.token_file();
    auto client = KubeClient::Create(config);
    ASSERT_TRUE(client.ok()) << client.status();
    client_ = std::shared_ptr<KubeClient>(std::move(client).value());
    runner_ = MakeRunner(Options());
  }

  void TearDown() override {
    runner_.reset();
    EXPECT_EQ(fake_.Stop(), 0) << "schema violations: " << fake_.violations();
  }

  ArgoRunnerOptions Options() const {
    ArgoRunnerOptions options;
    options.workflow.namespace_name = kNamespace;
    options.api = GetParam();
    options.initial_backoff_ms = 50;
    options.max_backoff_ms = 1000;
    return options;
  }

  std::unique_ptr<ArgoRunner> MakeRunner(ArgoRunnerOptions options) {
    return std::make_unique<ArgoRunner>(io_, client_, std::move(options));
  }

  engine::AttemptResult Wait(Recorder* recorder) {
    EXPECT_TRUE(RunUntil(
        io_, [&] { return recorder->finished(); }, std::chrono::seconds(120)));
    if (recorder->result) return *recorder->result;
    return engine::AttemptResult{.phase = NodePhase::kError, .message = "timed out"};
  }

  engine::AttemptResult Run(const AttemptSpec& spec, Recorder* recorder) {
    absl::Status status = runner_->Start(spec, recorder->Callbacks());
    EXPECT_TRUE(status.ok()) << status;
    return Wait(recorder);
  }

  // Runs the io_context until `check` (a blocking call, tried every 50 ms) holds.
  bool Eventually(const std::function<bool()>& check,
                  std::chrono::milliseconds timeout = std::chrono::seconds(60)) {
    auto next = std::chrono::steady_clock::now();
    return RunUntil(
        io_,
        [&] {
          if (std::chrono::steady_clock::now() < next) return false;
          next = std::chrono::steady_clock::now() + std::chrono::milliseconds(50);
          return check();
        },
        timeout);
  }

  // The Workflow as stored (read through the Kubernetes API); null when there is none.
  json Workflow(const std::string& name) {
    auto response = client_->Request("GET", std::string(kCrdPath) + "/" + name);
    return response.ok() ? response->json : json();
  }
  // status.phase / spec.shutdown of the stored Workflow; "" when there is none (yet).
  std::string PhaseOf(const std::string& name) {
    json w = Workflow(name);
    return w.is_object() && w["status"].is_object() ? w["status"].value("phase", "") : "";
  }
  std::string ShutdownOf(const std::string& name) {
    json w = Workflow(name);
    return w.is_object() && w["spec"].is_object() ? w["spec"].value("shutdown", "") : "";
  }

  json Control(const std::string& method, const std::string& path,
               const std::optional<json>& body = std::nullopt) {
    auto response = client_->Request(method, path, {}, body);
    EXPECT_TRUE(response.ok()) << response.status();
    return response.ok() ? response->json : json();
  }

  // The API requests the fake answered whose path starts with `prefix` (with the query parameter
  // `query_key`, without `without_key`, when given).
  int Requests(const std::string& method, const std::string& prefix,
               const std::string& query_key = "", const std::string& without_key = "") {
    int n = 0;
    const json requests = Control("GET", "/fake/requests");  // not a temporary in the for
    for (const json& r : requests["requests"]) {
      if (r.value("method", "") != method) continue;
      if (r.value("path", "").rfind(prefix, 0) != 0) continue;
      if (!query_key.empty() && !r["query"].contains(query_key)) continue;
      if (!without_key.empty() && r["query"].contains(without_key)) continue;
      ++n;
    }
    return n;
  }

  // Where this test's API submits and watches.
  std::string SubmitPath() const {
    return GetParam() == ArgoApi::kArgoServer ? "/api/v1/workflows/dagd-test" : kCrdPath;
  }
  // Watches of dagd's Workflows opened so far: the fake lists a request once it has ended, so
  // those still open are counted from /fake/watches.
  int WorkflowWatches() {
    const bool argo = GetParam() == ArgoApi::kArgoServer;
    int open = 0;
    const json watches = Control("GET", "/fake/watches");
    for (const json& w : watches["open"]) {
      if (w.value("log", false)) continue;
      if (argo ? w.value("path", "") == "/api/v1/workflow-events/dagd-test"
               : w.value("path", "") == kCrdPath && w["query"].contains("watch")) {
        ++open;
      }
    }
    return open + (argo ? Requests("GET", "/api/v1/workflow-events/dagd-test")
                        : Requests("GET", kCrdPath, "watch"));
  }
  int WorkflowLists() {
    return GetParam() == ArgoApi::kArgoServer
               ? Requests("GET", "/api/v1/workflows/dagd-test", "listOptions.labelSelector")
               : Requests("GET", kCrdPath, "labelSelector", "watch");
  }

  TempDir dir_;
  // The Argo Server and the Kubernetes API on one port.
  dagd::testing::FakeKubeProcess fake_{dir_.path(), {"--mode", "both"}};
  boost::asio::io_context io_;
  std::shared_ptr<KubeClient> client_;
  std::unique_ptr<ArgoRunner> runner_;
  TempDir work_;
};

INSTANTIATE_TEST_SUITE_P(BothApis, ArgoRunnerTest,
                         ::testing::Values(ArgoApi::kArgoServer, ArgoApi::kKubernetes), ApiName);

engine::Template Shell(const std::string& name, const std::string& script) {
  engine::Template t;
  t.name = name;
  t.type = engine::TemplateType::kContainer;
  t.container.emplace();
  t.container->image = "debian:12";
  t.container->command = {"sh", "-c", script};
  return t;
}

TEST_P(ArgoRunnerTest, ContainerStepSucceedsWithItsOutputParameterAndResult) {
  // /tmp/answer is the container's path; the fake maps it into the pod's root, as Argo reads it
  // from the container.
  engine::Template t = Shell("hello", "echo hello from argo; printf 42 > /tmp/answer");
  t.outputs.parameters = {PathOutput("answer", "/tmp/answer")};
  AttemptSpec spec = MakeSpec(t, "run1-aaaa0001-1", work_.Subdir("a"));
  Recorder r;
  engine::AttemptResult result = Run(spec, &r);
  ASSERT_EQ(result.phase, NodePhase::kSucceeded) << result.message;
  EXPECT_EQ(result.exit_code, 0);
  EXPECT_EQ(result.result, "hello from argo");
  EXPECT_EQ(result.parameters, (std::map<std::string, std::string>{{"answer", "42"}}));
  EXPECT_EQ(r.stdout_text, "hello from argo\n");
  EXPECT_EQ(r.finished_calls, 1);
  json w = Workflow("run1-aaaa0001-1");
  EXPECT_EQ(w["metadata"]["labels"]["app.kubernetes.io/managed-by"], "dagd");
  EXPECT_EQ(w["status"]["phase"], "Succeeded");
  EXPECT_EQ(Requests("POST", SubmitPath()), 1);  // through the configured API
}

TEST_P(ArgoRunnerTest, ScriptStepResultIsItsStdout) {
  engine::Template t;
  t.name = "script";
  t.type = engine::TemplateType::kScript;
  t.script.emplace();
  t.script->container.image = "debian:12";
  t.script->container.command = {"sh"};
  t.script->source = "echo from a script >&2\necho the result\n";
  Recorder r;
  engine::AttemptResult result = Run(MakeSpec(t, "run1-aaaa0011-1", work_.Subdir("s")), &r);
  ASSERT_EQ(result.phase, NodePhase::kSucceeded) << result.message;
  EXPECT_EQ(result.result, "the result");  // stdout only, as Argo's outputs.result
  EXPECT_THAT(r.stdout_text, HasSubstr("from a script"));
}

TEST_P(ArgoRunnerTest, FailingStepReportsItsExitCode) {
  Recorder r;
  engine::AttemptResult result = Run(
      MakeSpec(Shell("fail", "echo about to fail; exit 3"), "run1-aaaa0002-1", work_.Subdir("b")),
      &r);
  EXPECT_EQ(result.phase, NodePhase::kFailed);
  EXPECT_EQ(result.exit_code, 3);
  EXPECT_EQ(result.message, "exit code 3");
  EXPECT_EQ(r.stdout_text, "about to fail\n");
  EXPECT_EQ(PhaseOf("run1-aaaa0002-1"), "Failed");
}

TEST_P(ArgoRunnerTest, MissingOutputFileIsAnError) {
  engine::Template t = Shell("nofile", "true");
  t.outputs.parameters = {PathOutput("out", "/tmp/never-written")};
  Recorder r;
  engine::AttemptResult result = Run(MakeSpec(t, "run1-aaaa0012-1", work_.Subdir("m")), &r);
  EXPECT_EQ(result.phase, NodePhase::kError);
  EXPECT_THAT(result.message, HasSubstr("/tmp/never-written"));
}

TEST_P(ArgoRunnerTest, TemplateTimeoutFailsTheStep) {
  engine::Template t = Shell("slow", "echo slow; sleep 60");
  t.timeout = "1s";
  Recorder r;
  engine::AttemptResult result = Run(MakeSpec(t, "run1-aaaa0013-1", work_.Subdir("t")), &r);
  EXPECT_EQ(result.phase, NodePhase::kFailed);
  EXPECT_THAT(result.message, HasSubstr("timeout: "));
  EXPECT_THAT(result.message, HasSubstr("(1s)"));
}

TEST_P(ArgoRunnerTest, AnsibleStepRunsThePlaybookAndReportsEventsAndStats) {
  WriteTextFile(work_.path() + "/c/site.yml", R"(
- hosts: localhost
  connection: local
  gather_facts: false
  vars:
    ansible_python_interpreter: "{{ ansible_playbook_python }}"
  tasks:
    - name: Greet
      ansible.builtin.debug:
        msg: "hello {{ who }}"
    - name: Publish
      ansible.builtin.set_stats:
        data: {hosts: [web1, web2], greeting: "hi there"}
)");
  engine::AnsibleSpec a;
  a.playbook = "site.yml";
  a.inventory = "localhost,";
  a.extra_vars = {{"who", "argo"}};
  engine::Template t = AnsibleTemplate("greet", a);
  engine::Parameter hosts;
  hosts.name = "hosts";
  hosts.value_from.emplace();
  hosts.value_from->stats = "hosts";
  engine::Parameter greeting = hosts;
  greeting.name = "greeting";
  greeting.value_from->stats = "greeting";
  t.outputs.parameters = {hosts, greeting};
  AttemptSpec spec = MakeSpec(t, "run1-aaaa0003-1", work_.path() + "/c");
  spec.bundle_dir = spec.work_dir;
  Recorder r;
  engine::AttemptResult result = Run(spec, &r);
  ASSERT_EQ(result.phase, NodePhase::kSucceeded) << result.message << r.stdout_text;
  // Exactly dagd's parameters: the set_stats map travels as an Argo output parameter of its own
  // and becomes the result, never a parameter.
  EXPECT_EQ(result.parameters, (std::map<std::string, std::string>{{"hosts", R"(["web1","web2"])"},
                                                                   {"greeting", "hi there"}}));
  EXPECT_EQ(result.result, R"({"greeting":"hi there","hosts":["web1","web2"]})");
  EXPECT_THAT(r.stdout_text, HasSubstr("hello argo"));
  EXPECT_THAT(r.stdout_text, Not(HasSubstr("dagd-event")));
  bool greeted = false;
  bool stats = false;
  for (const std::string& line : r.events) {
    json event = json::parse(line, nullptr, false);
    ASSERT_TRUE(event.is_object()) << line;
    if (event.value("kind", "") == "runner_on_ok" && event.value("task", "") == "Greet") {
      greeted = true;
    }
    if (event.value("kind", "") == "stats") stats = true;
  }
  EXPECT_TRUE(greeted) << r.events.size() << " events";
  EXPECT_TRUE(stats);
  EXPECT_EQ(r.events_after_finish, 0);
}

TEST_P(ArgoRunnerTest, FailingAnsibleTaskIsClassifiedFromTheLog) {
  WriteTextFile(work_.path() + "/f/site.yml", R"(
- hosts: localhost
  connection: local
  gather_facts: false
  vars:
    ansible_python_interpreter: "{{ ansible_playbook_python }}"
  tasks:
    - name: Break
      ansible.builtin.fail:
        msg: "deliberately broken"
)");
  engine::AnsibleSpec a;
  a.playbook = "site.yml";
  a.inventory = "localhost,";
  AttemptSpec spec = MakeSpec(AnsibleTemplate("broken", a), "run1-aaaa0014-1", work_.path() + "/f");
  spec.bundle_dir = spec.work_dir;
  Recorder r;
  engine::AttemptResult result = Run(spec, &r);
  EXPECT_EQ(result.phase, NodePhase::kFailed) << result.message << r.stdout_text;
  EXPECT_EQ(result.exit_code, 2);
  EXPECT_THAT(result.message, HasSubstr("task \"Break\" failed on localhost"));
  EXPECT_THAT(result.message, HasSubstr("deliberately broken"));
}

TEST_P(ArgoRunnerTest, CancelTerminatesTheWorkflow) {
  Recorder r;
  AttemptSpec spec =
      MakeSpec(Shell("sleepy", "echo sleeping; sleep 300"), "run1-aaaa0004-1", work_.Subdir("d"));
  ASSERT_TRUE(runner_->Start(spec, r.Callbacks()).ok());
  ASSERT_TRUE(RunUntil(
      io_, [&] { return r.stdout_text == "sleeping\n"; }, std::chrono::seconds(30)));
  runner_->Cancel(spec.external_name, "Stopped by the user");
  EXPECT_FALSE(r.finished()) << "on_finished must not run inside Cancel()";
  // Then at once, without waiting for Argo.
  ASSERT_TRUE(RunUntil(
      io_, [&] { return r.finished(); }, std::chrono::seconds(2)));
  EXPECT_EQ(r.result->phase, NodePhase::kFailed);
  EXPECT_EQ(r.result->message, "Stopped by the user");
  EXPECT_EQ(runner_->running(), 0u);
  // Argo terminates it: shutdown Terminate, the pod's process killed, the Workflow Failed.
  ASSERT_TRUE(Eventually([&] { return PhaseOf("run1-aaaa0004-1") == "Failed"; }));
  json w = Workflow("run1-aaaa0004-1");
  EXPECT_EQ(w["spec"]["shutdown"], "Terminate");
  EXPECT_EQ(w["status"]["message"], "Stopped with strategy 'Terminate'");
  RunUntil(
      io_, [] { return false; }, std::chrono::milliseconds(300));
  EXPECT_EQ(r.finished_calls, 1);
  EXPECT_EQ(GetParam() == ArgoApi::kArgoServer
                ? Requests("PUT", "/api/v1/workflows/dagd-test/run1-aaaa0004-1/terminate")
                : Requests("PATCH", std::string(kCrdPath) + "/run1-aaaa0004-1"),
            1);
}

TEST_P(ArgoRunnerTest, KillAllAfterCancelDeliversNothingMore) {
  Recorder r;
  AttemptSpec spec =
      MakeSpec(Shell("sleepy", "echo sleeping; sleep 300"), "run1-aaaa0019-1", work_.Subdir("q"));
  ASSERT_TRUE(runner_->Start(spec, r.Callbacks()).ok());
  ASSERT_TRUE(RunUntil(
      io_, [&] { return r.stdout_text == "sleeping\n"; }, std::chrono::seconds(30)));
  runner_->Cancel(spec.external_name, "Stopped");  // its on_finished is posted …
  runner_->KillAll();                              // … and dropped: dagd is stopping
  const int calls = r.callback_calls;
  RunUntil(
      io_, [] { return false; }, std::chrono::milliseconds(500));
  EXPECT_EQ(r.callback_calls, calls);
  EXPECT_FALSE(r.finished());
}

TEST_P(ArgoRunnerTest, CancelDuringSubmissionTerminatesOnceSubmitted) {
  Recorder r;
  AttemptSpec spec = MakeSpec(Shell("sleepy", "sleep 300"), "run1-aaaa0015-1", work_.Subdir("e"));
  ASSERT_TRUE(runner_->Start(spec, r.Callbacks()).ok());
  runner_->Cancel(spec.external_name, "Stopped at once");  // the POST has not been answered
  ASSERT_TRUE(RunUntil(
      io_, [&] { return r.finished(); }, std::chrono::seconds(2)));
  EXPECT_EQ(r.result->message, "Stopped at once");
  // The terminate follows the submission (a terminate before it would be a 404 and the Workflow
  // would run on unsupervised). Whether the fake then kills a pod it has not started yet is the
  // fake's business, so the request is what is checked.
  ASSERT_TRUE(Eventually([&] { return ShutdownOf("run1-aaaa0015-1") == "Terminate"; }));
  const json requests = Control("GET", "/fake/requests");
  int terminates = 0;
  for (const json& request : requests["requests"]) {
    const std::string method = request.value("method", "");
    const std::string path = request.value("path", "");
    if ((method == "PUT" && path == "/api/v1/workflows/dagd-test/run1-aaaa0015-1/terminate") ||
        (method == "PATCH" && path == std::string(kCrdPath) + "/run1-aaaa0015-1")) {
      ++terminates;
      EXPECT_EQ(request.value("status", 0), 200);
    }
  }
  EXPECT_EQ(terminates, 1);
}

TEST_P(ArgoRunnerTest, ReattachFollowsARunningWorkflowToItsEnd) {
  const std::string go = work_.path() + "/go";
  AttemptSpec spec = MakeSpec(
      Shell("waits", "echo started; while [ ! -f " + go + " ]; do sleep 0.05; done; echo done"),
      "run1-aaaa0006-1", work_.Subdir("f"));
  Recorder before;
  ASSERT_TRUE(runner_->Start(spec, before.Callbacks()).ok());
  ASSERT_TRUE(RunUntil(
      io_, [&] { return before.stdout_text == "started\n"; }, std::chrono::seconds(30)));
  // dagd stops; the Workflow keeps running; a new dagd picks it up by name.
  runner_->KillAll();
  const int calls_before_kill = before.callback_calls;
  runner_ = MakeRunner(Options());
  Recorder after;
  ASSERT_TRUE(runner_->Reattach(spec, after.Callbacks()).ok());
  ASSERT_TRUE(RunUntil(
      io_, [&] { return after.stdout_text == "started\n"; }, std::chrono::seconds(30)));
  EXPECT_FALSE(after.finished());
  WriteTextFile(go, "");
  engine::AttemptResult result = Wait(&after);
  ASSERT_EQ(result.phase, NodePhase::kSucceeded) << result.message;
  EXPECT_EQ(result.result, "started\ndone");
  EXPECT_EQ(after.stdout_text, "started\ndone\n");
  EXPECT_EQ(before.callback_calls, calls_before_kill);  // KillAll: no callbacks after it
  EXPECT_FALSE(before.finished());
  EXPECT_EQ(Requests("POST", SubmitPath()), 1);  // nothing submitted twice
}

TEST_P(ArgoRunnerTest, ReattachToACompletedWorkflowReportsItsOutcome) {
  engine::Template t = Shell("quick", "echo quick; printf v > /tmp/p; exit 0");
  t.outputs.parameters = {PathOutput("p", "/tmp/p")};
  AttemptSpec spec = MakeSpec(t, "run1-aaaa0007-1", work_.Subdir("g"));
  Recorder before;
  ASSERT_TRUE(runner_->Start(spec, before.Callbacks()).ok());
  ASSERT_TRUE(Eventually([&] { return Workflow("run1-aaaa0007-1").is_object(); }));
  runner_->KillAll();  // dagd goes down while the step runs …
  ASSERT_TRUE(Eventually([&] { return PhaseOf("run1-aaaa0007-1") == "Succeeded"; }));
  const int watches = WorkflowWatches();
  runner_ = MakeRunner(Options());  // … and comes back after it completed
  // Its first list has come and gone before the attempt is known: the lookup by name must tell.
  ASSERT_TRUE(Eventually([&] { return WorkflowWatches() == watches + 1; }));
  Recorder after;
  ASSERT_TRUE(runner_->Reattach(spec, after.Callbacks()).ok());
  engine::AttemptResult result = Wait(&after);
  ASSERT_EQ(result.phase, NodePhase::kSucceeded) << result.message;
  EXPECT_EQ(result.result, "quick");
  EXPECT_EQ(result.parameters["p"], "v");
  EXPECT_EQ(after.stdout_text, "quick\n");
  EXPECT_FALSE(before.finished());
}

TEST_P(ArgoRunnerTest, StartAdoptsAWorkflowThatExistsAlready) {
  // dagd committed the intent, submitted, and restarted before it heard back: Start() again
  // must adopt the Workflow, not fail and not submit a second one.
  AttemptSpec spec = MakeSpec(Shell("twice", "echo once"), "run1-aaaa0016-1", work_.Subdir("h"));
  Recorder first;
  ASSERT_TRUE(runner_->Start(spec, first.Callbacks()).ok());
  ASSERT_TRUE(Eventually([&] { return PhaseOf("run1-aaaa0016-1") == "Succeeded"; }));
  runner_->KillAll();
  const int watches = WorkflowWatches();
  runner_ = MakeRunner(Options());
  ASSERT_TRUE(Eventually([&] { return WorkflowWatches() == watches + 1; }));  // first list over
  Recorder second;
  engine::AttemptResult result = Run(spec, &second);
  ASSERT_EQ(result.phase, NodePhase::kSucceeded) << result.message;
  EXPECT_EQ(result.result, "once");
  EXPECT_EQ(Control("GET", "/fake/objects?resource=pods")["objects"]["pods"].size(), 1u);
}

TEST_P(ArgoRunnerTest, ReattachToAGoneWorkflowIsAnError) {
  Recorder r;
  ASSERT_TRUE(runner_
                  ->Reattach(MakeSpec(Shell("gone", "true"), "run1-aaaa0008-1", work_.Subdir("i")),
                             r.Callbacks())
                  .ok());
  engine::AttemptResult result = Wait(&r);
  EXPECT_EQ(result.phase, NodePhase::kError);
  EXPECT_THAT(result.message, HasSubstr("Workflow dagd-test/run1-aaaa0008-1"));
  EXPECT_THAT(result.message, HasSubstr("gone"));
}

TEST_P(ArgoRunnerTest, ConcurrentStepsShareOneWatch) {
  Recorder r1, r2, r3;
  ASSERT_TRUE(runner_
                  ->Start(MakeSpec(Shell("a", "echo a"), "run1-bbbb0001-1", work_.Subdir("j1")),
                          r1.Callbacks())
                  .ok());
  ASSERT_TRUE(runner_
                  ->Start(MakeSpec(Shell("b", "echo b"), "run1-bbbb0002-1", work_.Subdir("j2")),
                          r2.Callbacks())
                  .ok());
  ASSERT_TRUE(runner_
                  ->Start(MakeSpec(Shell("c", "exit 1"), "run1-bbbb0003-1", work_.Subdir("j3")),
                          r3.Callbacks())
                  .ok());
  ASSERT_TRUE(RunUntil(
      io_, [&] { return r1.finished() && r2.finished() && r3.finished(); },
      std::chrono::seconds(60)));
  EXPECT_EQ(r1.result->result, "a");
  EXPECT_EQ(r2.result->result, "b");
  EXPECT_EQ(r3.result->phase, NodePhase::kFailed);
  EXPECT_EQ(WorkflowWatches(), 1);
}

TEST_P(ArgoRunnerTest, DroppedWatchDoesNotMissTheCompletion) {
  // A long backoff: the step completes while the runner is not watching, so only the list
  // after the reconnect can tell it.
  ArgoRunnerOptions options = Options();
  options.initial_backoff_ms = 1500;
  // SetUp's runner lists and watches from its construction on, on its own threads: let it get
  // that far before it goes, so that none of its requests lands after the counts below.
  ASSERT_TRUE(Eventually([&] { return WorkflowWatches() >= 1; }));
  runner_.reset();
  const int watches = WorkflowWatches();
  runner_ = MakeRunner(options);
  const std::string go = work_.path() + "/go";
  AttemptSpec spec = MakeSpec(
      Shell("waits", "echo line 1; while [ ! -f " + go + " ]; do sleep 0.05; done; echo line 2"),
      "run1-aaaa0009-1", work_.Subdir("k"));
  Recorder r;
  ASSERT_TRUE(runner_->Start(spec, r.Callbacks()).ok());
  ASSERT_TRUE(RunUntil(
      io_, [&] { return r.stdout_text == "line 1\n"; }, std::chrono::seconds(30)));
  ASSERT_TRUE(Eventually([&] { return WorkflowWatches() == watches + 1; }));
  const int lists = WorkflowLists();
  Control("POST", "/fake/faults", json{{"drop_watches", true}});  // the watch and the log
  WriteTextFile(go, "");
  ASSERT_TRUE(Eventually([&] { return PhaseOf("run1-aaaa0009-1") == "Succeeded"; }));
  engine::AttemptResult result = Wait(&r);
  ASSERT_EQ(result.phase, NodePhase::kSucceeded) << result.message;
  EXPECT_EQ(result.result, "line 1\nline 2");
  EXPECT_EQ(r.stdout_text, "line 1\nline 2\n");  // the log followed again: nothing lost or twice
  EXPECT_GT(WorkflowLists(), lists);             // the completion came from a new list
  // The new watch may open after the completion was seen in the list: wait for it.
  EXPECT_TRUE(Eventually([&] { return WorkflowWatches() == watches + 2; })) << WorkflowWatches();
}

TEST_P(ArgoRunnerTest, ExpiredWatchListsAgainAtOnce) {
  // The runner's first watch is told its resourceVersion is too old (410: an ERROR event from
  // the Kubernetes API, grpc-gateway's error line from the Argo Server). It must list again at
  // once — not after the (here very long) backoff for broken streams — and see the completion.
  // SetUp's runner lists and watches from its construction on, on its own threads: let it get
  // that far before it goes, so that none of its requests lands after the counts below.
  ASSERT_TRUE(Eventually([&] { return WorkflowWatches() >= 1; }));
  runner_.reset();
  const int lists = WorkflowLists();
  const int watches = WorkflowWatches();
  Control("POST", "/fake/faults", json{{"gone_next_watch", 1}});
  ArgoRunnerOptions options = Options();
  options.initial_backoff_ms = 600000;
  runner_ = MakeRunner(options);
  Recorder r;
  ASSERT_TRUE(runner_
                  ->Start(MakeSpec(Shell("x", "echo x"), "run1-aaaa0018-1", work_.Subdir("p")),
                          r.Callbacks())
                  .ok());
  ASSERT_TRUE(RunUntil(
      io_, [&] { return r.finished(); }, std::chrono::seconds(20)));
  EXPECT_EQ(r.result->phase, NodePhase::kSucceeded) << r.result->message;
  EXPECT_EQ(WorkflowLists(), lists + 2);
  EXPECT_EQ(WorkflowWatches(), watches + 2);
}

TEST_P(ArgoRunnerTest, UnreachableServerEndsTheAttemptInErrorNamingIt) {
  ClusterConfig config;
  config.server = "http://127.0.0.1:1";  // nothing listens
  auto client = KubeClient::Create(config);
  ASSERT_TRUE(client.ok());
  boost::asio::io_context io;
  ArgoRunnerOptions options = Options();
  options.max_backoff_ms = 200;
  ArgoRunner runner(io, std::shared_ptr<KubeClient>(std::move(client).value()), options);
  Recorder r;
  ASSERT_TRUE(
      runner
          .Start(MakeSpec(Shell("x", "true"), "run1-aaaa0005-1", work_.Subdir("l")), r.Callbacks())
          .ok());
  ASSERT_TRUE(RunUntil(
      io, [&] { return r.finished(); }, std::chrono::seconds(30)));
  EXPECT_EQ(r.result->phase, NodePhase::kError);
  EXPECT_THAT(r.result->message, HasSubstr("http://127.0.0.1:1"));
  EXPECT_THAT(r.result->message,
              HasSubstr(GetParam() == ArgoApi::kArgoServer ? "Argo Server http://127.0.0.1:1"
                                                           : "kubernetes API http://127.0.0.1:1"));
}

TEST_P(ArgoRunnerTest, RejectedSubmissionIsAnErrorWithTheServersWords) {
  // A fault makes the API answer the POST with an error of its own kind (grpc-gateway's body
  // from the Argo Server, a Status from the Kubernetes API).
  Control("POST", "/fake/faults",
          json{{"fail_next",
                {{"count", 1}, {"code", 503}, {"method", "POST"}, {"path", SubmitPath()}}}});
  Recorder r;
  engine::AttemptResult result =
      Run(MakeSpec(Shell("x", "true"), "run1-aaaa0010-1", work_.Subdir("n")), &r);
  EXPECT_EQ(result.phase, NodePhase::kError);
  EXPECT_THAT(result.message, HasSubstr("submitting Workflow dagd-test/run1-aaaa0010-1"));
  EXPECT_THAT(result.message, HasSubstr("503"));
  if (GetParam() == ArgoApi::kArgoServer) {
    EXPECT_THAT(result.message,
                HasSubstr("Argo Server " + fake_.server() +
                          ": 503 Service Unavailable: fake fault: injected HTTP 503"));
  } else {
    EXPECT_THAT(result.message, HasSubstr("kubernetes API " + fake_.server()));
  }
}

TEST_P(ArgoRunnerTest, TemplateTheRunnerCannotRunIsAnErrorFromStart) {
  engine::Template t = Shell("noimage", "true");
  t.container->image.clear();
  Recorder r;
  absl::Status status =
      runner_->Start(MakeSpec(t, "run1-aaaa0017-1", work_.Subdir("o")), r.Callbacks());
  EXPECT_TRUE(absl::IsInvalidArgument(status)) << status;
  EXPECT_EQ(runner_->running(), 0u);
  EXPECT_EQ(r.callback_calls, 0);
}

}  // namespace
}  // namespace dagd::runners::argo
