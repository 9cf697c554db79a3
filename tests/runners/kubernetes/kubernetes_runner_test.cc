// KubernetesRunner against the Kubernetes API fake (tests/fakes/): real HTTP on loopback, every
// object dagd sends checked against ../shared/schemas (the fake exits 3 on a violation, which
// fails the test), pods that really run their command — ansible-playbook included.
#include "runners/kubernetes/kubernetes_runner.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

#include "runners/kubernetes/client/kube_client.h"
#include "tests/fakes/fake_kube_process.h"
#include "tests/runners/runner_test_util.h"

namespace dagd::runners::kubernetes {
namespace {

namespace fs = std::filesystem;
using ::dagd::runners::testing::AnsibleTemplate;
using ::dagd::runners::testing::MakeSpec;
using ::dagd::runners::testing::ReadTextFile;
using ::dagd::runners::testing::Recorder;
using ::dagd::runners::testing::RunUntil;
using ::dagd::runners::testing::TempDir;
using ::dagd::runners::testing::WriteTextFile;
using engine::NodePhase;
using nlohmann::json;
using ::testing::HasSubstr;

class KubernetesRunnerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ClusterConfig config;
    config.server = fake_.server();
    config.token_file = fake_.token_file();
    auto client = KubeClient::Create(config);
    ASSERT_TRUE(client.ok()) << client.status();
    client_ = std::shared_ptr<KubeClient>(std::move(client).value());
    KubernetesRunnerOptions options;
    options.job.namespace_name = "dagd-test";
    runner_ = std::make_unique<KubernetesRunner>(io_, client_, options);
  }

  void TearDown() override {
    runner_.reset();
    EXPECT_EQ(fake_.Stop(), 0) << "schema violations: " << fake_.violations();
  }

  engine::AttemptResult Run(const AttemptSpec& spec, Recorder* recorder) {
    absl::Status status = runner_->Start(spec, recorder->Callbacks());
    EXPECT_TRUE(status.ok()) << status;
    EXPECT_TRUE(RunUntil(
        io_, [&] { return recorder->finished(); }, std::chrono::seconds(120)));
    if (recorder->result) return *recorder->result;
    return engine::AttemptResult{.phase = NodePhase::kError, .message = "timed out"};
  }

  json Get(const std::string& path) {
    auto response = client_->Request("GET", path);
    EXPECT_TRUE(response.ok()) << response.status();
    return response.ok() ? response->json : json();
  }

  TempDir dir_;
  dagd::testing::FakeKubeProcess fake_{dir_.path()};
  boost::asio::io_context io_;
  std::shared_ptr<KubeClient> client_;
  std::unique_ptr<KubernetesRunner> runner_;
  TempDir work_;
};

engine::Template Shell(const std::string& name, const std::string& script) {
  engine::Template t;
  t.name = name;
  t.type = engine::TemplateType::kContainer;
  t.container.emplace();
  t.container->image = "debian:12";
  t.container->command = {"sh", "-c", script};
  return t;
}

TEST_F(KubernetesRunnerTest, ContainerJobSucceedsWithItsLogAsResult) {
  AttemptSpec spec =
      MakeSpec(Shell("hello", "echo hello from a pod"), "run1-aaaa0001-1", work_.Subdir("a"));
  Recorder r;
  engine::AttemptResult result = Run(spec, &r);
  EXPECT_EQ(result.phase, NodePhase::kSucceeded) << result.message;
  EXPECT_EQ(result.exit_code, 0);
  EXPECT_EQ(result.result, "hello from a pod");
  EXPECT_THAT(r.stdout_text, HasSubstr("hello from a pod"));
  json job = Get("/apis/batch/v1/namespaces/dagd-test/jobs/run1-aaaa0001-1");
  EXPECT_EQ(job["spec"]["backoffLimit"], 0);
  EXPECT_EQ(job["metadata"]["labels"]["app.kubernetes.io/managed-by"], "dagd");
}

TEST_F(KubernetesRunnerTest, FailingContainerReportsItsExitCode) {
  Recorder r;
  engine::AttemptResult result = Run(
      MakeSpec(Shell("fail", "echo about to fail; exit 3"), "run1-aaaa0002-1", work_.Subdir("b")),
      &r);
  EXPECT_EQ(result.phase, NodePhase::kFailed);
  EXPECT_EQ(result.exit_code, 3);
  EXPECT_EQ(result.message, "exit code 3");
  EXPECT_THAT(r.stdout_text, HasSubstr("about to fail"));
}

TEST_F(KubernetesRunnerTest, AnsibleJobRunsThePlaybookAndReportsEventsAndStats) {
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
        data: {hosts: [web1, web2]}
)");
  engine::AnsibleSpec a;
  a.playbook = "site.yml";
  a.inventory = "localhost,";
  a.extra_vars = {{"who", "cluster"}};
  engine::Template t = AnsibleTemplate("greet", a);
  engine::Parameter hosts;
  hosts.name = "hosts";
  hosts.value_from.emplace();
  hosts.value_from->stats = "hosts";
  t.outputs.parameters = {hosts};
  AttemptSpec spec = MakeSpec(t, "run1-aaaa0003-1", work_.path() + "/c");
  spec.bundle_dir = spec.work_dir;
  Recorder r;
  engine::AttemptResult result = Run(spec, &r);
  ASSERT_EQ(result.phase, NodePhase::kSucceeded) << result.message << r.stdout_text;
  EXPECT_EQ(result.parameters["hosts"], R"(["web1","web2"])");
  EXPECT_THAT(r.stdout_text, HasSubstr("hello cluster"));
  EXPECT_THAT(r.stdout_text, ::testing::Not(HasSubstr("dagd-event")));
  bool greeted = false;
  for (const std::string& line : r.events) {
    json event = json::parse(line, nullptr, false);
    ASSERT_TRUE(event.is_object()) << line;
    if (event.value("kind", "") == "runner_on_ok" && event.value("task", "") == "Greet") {
      greeted = true;
    }
  }
  EXPECT_TRUE(greeted) << r.events.size() << " events";
  // The files went in a ConfigMap that the Job owns, so it goes with the Job.
  json config_map = Get("/api/v1/namespaces/dagd-test/configmaps/run1-aaaa0003-1");
  ASSERT_TRUE(config_map["metadata"].contains("ownerReferences")) << config_map.dump();
  EXPECT_EQ(config_map["metadata"]["ownerReferences"][0]["kind"], "Job");
  EXPECT_EQ(config_map["metadata"]["ownerReferences"][0]["uid"],
            Get("/apis/batch/v1/namespaces/dagd-test/jobs/run1-aaaa0003-1")["metadata"]["uid"]);
}

TEST_F(KubernetesRunnerTest, CancelDeletesTheJob) {
  Recorder r;
  AttemptSpec spec = MakeSpec(Shell("sleepy", "sleep 300"), "run1-aaaa0004-1", work_.Subdir("d"));
  ASSERT_TRUE(runner_->Start(spec, r.Callbacks()).ok());
  // Wait until the Job exists, then cancel.
  ASSERT_TRUE(RunUntil(
      io_,
      [&] {
        return client_->Request("GET", "/apis/batch/v1/namespaces/dagd-test/jobs/run1-aaaa0004-1")
            .ok();
      },
      std::chrono::seconds(30)));
  runner_->Cancel(spec.external_name, "Stopped with strategy 'Stop'");
  EXPECT_FALSE(r.finished()) << "on_finished must not run inside Cancel()";
  ASSERT_TRUE(RunUntil(
      io_, [&] { return r.finished(); }, std::chrono::seconds(30)));
  EXPECT_EQ(r.result->phase, NodePhase::kFailed);
  EXPECT_EQ(r.result->message, "Stopped with strategy 'Stop'");
  EXPECT_TRUE(RunUntil(
      io_,
      [&] {
        return absl::IsNotFound(
            client_->Request("GET", "/apis/batch/v1/namespaces/dagd-test/jobs/run1-aaaa0004-1")
                .status());
      },
      std::chrono::seconds(30)));
}

// The watch is cut and then expires (410) while the Job runs: the runner lists again and still
// sees the completion.
TEST_F(KubernetesRunnerTest, BrokenAndExpiredWatchesDoNotLoseTheCompletion) {
  Recorder r;
  AttemptSpec spec =
      MakeSpec(Shell("slow", "sleep 2; echo finished"), "run1-aaaa0006-1", work_.Subdir("f"));
  ASSERT_TRUE(runner_->Start(spec, r.Callbacks()).ok());
  ASSERT_TRUE(RunUntil(
      io_,
      [&] {
        return client_->Request("GET", "/apis/batch/v1/namespaces/dagd-test/jobs/run1-aaaa0006-1")
            .ok();
      },
      std::chrono::seconds(30)));
  fake_.Post("/fake/faults", R"({"gone_next_watch": 2, "gone_next_list": 1})");
  fake_.Post("/fake/faults", R"({"drop_watches": true})");
  ASSERT_TRUE(RunUntil(
      io_, [&] { return r.finished(); }, std::chrono::seconds(60)));
  EXPECT_EQ(r.result->phase, NodePhase::kSucceeded) << r.result->message;
  EXPECT_EQ(r.result->result, "finished");
}

// A refused create (the API answering 500) ends the attempt in Error — retryable under OnError —
// with the server and Kubernetes' message.
TEST_F(KubernetesRunnerTest, ApiErrorOnCreateIsAnErrorAttempt) {
  fake_.Post(
      "/fake/faults",
      R"({"fail_next": {"count": 1, "code": 500, "method": "POST", "path": "/apis/batch/"}})");
  Recorder r;
  engine::AttemptResult result =
      Run(MakeSpec(Shell("x", "true"), "run1-aaaa0007-1", work_.Subdir("g")), &r);
  EXPECT_EQ(result.phase, NodePhase::kError);
  EXPECT_THAT(result.message, HasSubstr(fake_.server()));
  EXPECT_THAT(result.message, HasSubstr("500"));
  Recorder again;
  EXPECT_EQ(Run(MakeSpec(Shell("x", "true"), "run1-aaaa0007-2", work_.Subdir("h")), &again).phase,
            NodePhase::kSucceeded);
}

TEST_F(KubernetesRunnerTest, UnreachableApiEndsTheAttemptInErrorNamingTheServer) {
  ClusterConfig config;
  config.server = "http://127.0.0.1:1";  // nothing listens
  auto client = KubeClient::Create(config);
  ASSERT_TRUE(client.ok());
  boost::asio::io_context io;
  KubernetesRunnerOptions options;
  options.max_backoff_ms = 200;
  KubernetesRunner runner(io, std::shared_ptr<KubeClient>(std::move(client).value()), options);
  Recorder r;
  ASSERT_TRUE(
      runner
          .Start(MakeSpec(Shell("x", "true"), "run1-aaaa0005-1", work_.Subdir("e")), r.Callbacks())
          .ok());
  ASSERT_TRUE(RunUntil(
      io, [&] { return r.finished(); }, std::chrono::seconds(30)));
  EXPECT_EQ(r.result->phase, NodePhase::kError);
  EXPECT_THAT(r.result->message, HasSubstr("http://127.0.0.1:1"));
}

}  // namespace
}  // namespace dagd::runners::kubernetes
