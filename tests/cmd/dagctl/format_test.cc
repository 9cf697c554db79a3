#include "cmd/dagctl/format.h"

#include <cstdlib>
#include <ctime>

#include "gtest/gtest.h"
#include "yaml-cpp/yaml.h"

namespace dagd::dagctl {
namespace {

using std::chrono::hours;
using std::chrono::milliseconds;
using std::chrono::minutes;
using std::chrono::seconds;

google::protobuf::Timestamp At(int64_t unix_seconds) {
  google::protobuf::Timestamp time;
  time.set_seconds(unix_seconds);
  return time;
}

// Pins the local time zone for the test, so that local RFC 3339 output is reproducible.
class FormatTest : public testing::Test {
 protected:
  void SetUp() override { SetZone("UTC0"); }
  static void SetZone(const char* zone) {
    setenv("TZ", zone, 1);
    tzset();
  }
};

constexpr int64_t kStart = 1714557600;  // 2024-05-01T10:00:00Z
const TimePoint kNow = FromTimestamp(At(kStart + 3600));

TEST_F(FormatTest, Durations) {
  EXPECT_EQ(FormatDuration(milliseconds(300)), "0s");
  EXPECT_EQ(FormatDuration(seconds(45)), "45s");
  EXPECT_EQ(FormatDuration(seconds(80)), "1m20s");
  EXPECT_EQ(FormatDuration(minutes(60)), "1h0m");
  EXPECT_EQ(FormatDuration(hours(2) + minutes(5) + seconds(9)), "2h5m");
  EXPECT_EQ(FormatDuration(hours(76)), "3d4h");
  EXPECT_EQ(FormatDuration(seconds(-5)), "0s");
}

TEST_F(FormatTest, TimesAreLocalRfc3339) {
  EXPECT_EQ(FormatTime(At(kStart)), "2024-05-01T10:00:00+00:00");
  SetZone("XYZ-2");
  EXPECT_EQ(FormatTime(At(kStart)), "2024-05-01T12:00:00+02:00");
  SetZone("ABC+5:30");
  EXPECT_EQ(FormatTime(At(kStart)), "2024-05-01T04:30:00-05:30");
  EXPECT_EQ(FormatTime(google::protobuf::Timestamp()), "-");
}

TEST_F(FormatTest, ElapsedUsesNowWhileRunning) {
  EXPECT_EQ(FormatElapsed(At(kStart), At(kStart + 80), kNow), "1m20s");
  EXPECT_EQ(FormatElapsed(At(kStart), google::protobuf::Timestamp(), kNow), "1h0m");
  EXPECT_EQ(FormatElapsed(google::protobuf::Timestamp(), google::protobuf::Timestamp(), kNow), "-");
}

TEST_F(FormatTest, PhaseNamesAreArgos) {
  EXPECT_EQ(PhaseName(v1::PHASE_SUCCEEDED), "Succeeded");
  EXPECT_EQ(PhaseName(v1::PHASE_OMITTED), "Omitted");
  EXPECT_EQ(PhaseName(v1::PHASE_UNSPECIFIED), "Unknown");
  EXPECT_TRUE(IsFinished(v1::PHASE_ERROR));
  EXPECT_FALSE(IsFinished(v1::PHASE_RUNNING));
}

v1::Node* AddNode(v1::Run* run, const std::string& name, const std::string& display,
                  const std::string& parent, v1::Phase phase, int64_t start, int64_t finish) {
  v1::Node* node = run->add_nodes();
  node->set_name(name);
  node->set_display_name(display);
  node->set_parent(parent);
  node->set_phase(phase);
  if (start > 0) {
    *node->mutable_start_time() = At(start);
  }
  if (finish > 0) {
    *node->mutable_finish_time() = At(finish);
  }
  return node;
}

void AddAttempt(v1::Node* node, v1::Phase phase, int exit_code, const std::string& message,
                int64_t start, int64_t finish) {
  v1::Attempt* attempt = node->add_attempts();
  attempt->set_number(node->attempts_size());
  attempt->set_phase(phase);
  attempt->set_exit_code(exit_code);
  attempt->set_message(message);
  *attempt->mutable_start_time() = At(start);
  *attempt->mutable_finish_time() = At(finish);
}

// deploy-x (dag) -> provision (pod), configure (task group) -> configure(0:a) (pod, retried),
// configure(1:b) (pod, running).
v1::Run SampleRun() {
  v1::Run run;
  run.set_id("deploy-x");
  run.set_workflow_name("deploy");
  run.set_workflow_version(3);
  run.set_phase(v1::PHASE_RUNNING);
  (*run.mutable_parameters())["env"] = "staging";
  (*run.mutable_parameters())["batch"] = "7";
  *run.mutable_create_time() = At(kStart);
  *run.mutable_start_time() = At(kStart + 1);
  v1::Node* root = AddNode(&run, "deploy-x", "deploy-x", "", v1::PHASE_RUNNING, kStart + 1, 0);
  root->add_children("deploy-x.provision");
  root->add_children("deploy-x.configure");
  v1::Node* provision = AddNode(&run, "deploy-x.provision", "provision", "deploy-x",
                                v1::PHASE_SUCCEEDED, kStart + 1, kStart + 81);
  provision->set_type(v1::NODE_TYPE_POD);
  AddAttempt(provision, v1::PHASE_SUCCEEDED, 0, "", kStart + 1, kStart + 81);
  v1::Node* group = AddNode(&run, "deploy-x.configure", "configure", "deploy-x", v1::PHASE_RUNNING,
                            kStart + 81, 0);
  group->set_type(v1::NODE_TYPE_TASK_GROUP);
  group->add_children("deploy-x.configure(0:a)");
  // Listed only through its parent field: still a child of the group.
  v1::Node* b = AddNode(&run, "deploy-x.configure(1:b)", "configure(1:b)", "deploy-x.configure",
                        v1::PHASE_RUNNING, kStart + 82, 0);
  b->set_type(v1::NODE_TYPE_POD);
  AddAttempt(b, v1::PHASE_RUNNING, -1, "", kStart + 82, 0);
  v1::Node* a = AddNode(&run, "deploy-x.configure(0:a)", "configure(0:a)", "deploy-x.configure",
                        v1::PHASE_SUCCEEDED, kStart + 81, kStart + 150);
  a->set_type(v1::NODE_TYPE_POD);
  AddAttempt(a, v1::PHASE_FAILED, 2, "unreachable", kStart + 81, kStart + 91);
  AddAttempt(a, v1::PHASE_SUCCEEDED, 0, "", kStart + 100, kStart + 150);
  return run;
}

TEST_F(FormatTest, NodeTree) {
  EXPECT_EQ(RenderNodeTree(SampleRun(), kNow),
            "NAME                  PHASE      DURATION  ATTEMPTS  MESSAGE\n"
            "deploy-x              Running    59m59s\n"
            "├─ provision          Succeeded  1m20s     1\n"
            "└─ configure          Running    58m39s\n"
            "   ├─ configure(0:a)  Succeeded  1m9s      2\n"
            "   │  ├─ #1           Failed     10s                 exit 2: unreachable\n"
            "   │  └─ #2           Succeeded  50s                 exit 0\n"
            "   └─ configure(1:b)  Running    58m38s    1\n");
}

// What dagd sends for a retried node (server/convert.h): a Retry node whose attempts are its
// first children.
v1::Run RetriedRun() {
  v1::Run run;
  run.set_id("r");
  run.set_phase(v1::PHASE_SUCCEEDED);
  v1::Node* root = AddNode(&run, "r", "r", "", v1::PHASE_SUCCEEDED, kStart, kStart + 60);
  root->set_type(v1::NODE_TYPE_POD);
  AddAttempt(root, v1::PHASE_SUCCEEDED, 0, "", kStart, kStart + 60);
  root->add_children("r.flaky");
  v1::Node* retry =
      AddNode(&run, "r.flaky", "flaky", "r", v1::PHASE_SUCCEEDED, kStart + 1, kStart + 30);
  retry->set_type(v1::NODE_TYPE_RETRY);
  AddAttempt(retry, v1::PHASE_FAILED, 1, "exit code 1", kStart + 1, kStart + 10);
  AddAttempt(retry, v1::PHASE_SUCCEEDED, 0, "", kStart + 20, kStart + 30);
  retry->add_children("r.flaky(0)");
  retry->add_children("r.flaky(1)");
  v1::Node* first =
      AddNode(&run, "r.flaky(0)", "flaky(0)", "r.flaky", v1::PHASE_FAILED, kStart + 1, kStart + 10);
  first->set_type(v1::NODE_TYPE_POD);
  first->set_message("exit code 1");
  AddAttempt(first, v1::PHASE_FAILED, 1, "exit code 1", kStart + 1, kStart + 10);
  v1::Node* second = AddNode(&run, "r.flaky(1)", "flaky(1)", "r.flaky", v1::PHASE_SUCCEEDED,
                             kStart + 20, kStart + 30);
  second->set_type(v1::NODE_TYPE_POD);
  AddAttempt(second, v1::PHASE_SUCCEEDED, 0, "", kStart + 20, kStart + 30);
  return run;
}

TEST_F(FormatTest, ARetryNodeShowsItsAttemptsAsChildrenAndCountsOnce) {
  EXPECT_EQ(RenderNodeTree(RetriedRun(), kNow),
            "NAME            PHASE      DURATION  ATTEMPTS  MESSAGE\n"
            "r               Succeeded  1m0s      1\n"
            "└─ flaky        Succeeded  29s       2\n"
            "   ├─ flaky(0)  Failed     9s        1         exit code 1\n"
            "   └─ flaky(1)  Succeeded  10s       1\n");
  EXPECT_EQ(CountProgress(RetriedRun()).total, 2);  // r and flaky, not flaky's attempts
  EXPECT_EQ(CountProgress(RetriedRun()).done, 2);
}

TEST_F(FormatTest, NodeTreeShowsAnsibleRecapsWhenThereAreAny) {
  v1::Run run = SampleRun();
  v1::AnsibleRecap* recap = run.mutable_nodes(1)->mutable_ansible_recap();
  recap->set_attempt(1);
  recap->set_ok(4);
  recap->set_changed(2);
  recap->set_ignored(1);
  EXPECT_EQ(
      RenderNodeTree(run, kNow),
      "NAME                  PHASE      DURATION  ATTEMPTS  RECAP                              "
      "MESSAGE\n"
      "deploy-x              Running    59m59s\n"
      "├─ provision          Succeeded  1m20s     1         ok=4 changed=2 failed=0 "
      "ignored=1\n"
      "└─ configure          Running    58m39s\n"
      "   ├─ configure(0:a)  Succeeded  1m9s      2\n"
      "   │  ├─ #1           Failed     10s                                                    "
      "exit 2: unreachable\n"
      "   │  └─ #2           Succeeded  50s                                                    "
      "exit 0\n"
      "   └─ configure(1:b)  Running    58m38s    1\n");
}

v1::AnsibleEvent AnsibleEvent(const std::string& kind, const std::string& host,
                              const std::string& task, bool changed) {
  v1::AnsibleEvent event;
  *event.mutable_time() = At(kStart);
  event.set_node_name("deploy-x.configure(0:a)");
  event.set_attempt(2);
  event.set_kind(kind);
  event.set_host(host);
  event.set_task(task);
  event.set_changed(changed);
  event.set_result_json("{}");
  return event;
}

TEST_F(FormatTest, AnsibleEventsTableShowsHostResults) {
  std::vector<v1::AnsibleEvent> events = {
      AnsibleEvent("task_start", "", "Install", false),
      AnsibleEvent("runner_item_on_ok", "web1", "Install", true),
      AnsibleEvent("runner_on_failed", "web2", "Install", false),
      AnsibleEvent("runner_on_unreachable", "web3", "Install", false),
      AnsibleEvent("runner_on_skipped", "web1", "Restart", false),
      AnsibleEvent("stats", "", "", false)};
  events[1].set_item(R"("nginx")");
  events[2].set_item(R"({"name":"curl"})");
  events[2].set_result_json(R"({"ignore_errors": true})");
  EXPECT_EQ(RenderAnsibleEventsTable(events, "deploy-x"),
            "TIME                       NODE              HOST  TASK     STATUS            ITEM\n"
            "2024-05-01T10:00:00+00:00  configure(0:a)#2  web1  Install  changed           nginx\n"
            "2024-05-01T10:00:00+00:00  configure(0:a)#2  web2  Install  failed (ignored)  "
            "{\"name\":\"curl\"}\n"
            "2024-05-01T10:00:00+00:00  configure(0:a)#2  web3  Install  unreachable\n"
            "2024-05-01T10:00:00+00:00  configure(0:a)#2  web1  Restart  skipped\n");
}

TEST_F(FormatTest, RunHeaderThenTree) {
  v1::Run run = SampleRun();
  run.set_message("still going");
  const std::string text = RenderRun(run, kNow);
  EXPECT_EQ(text.substr(0, text.find("\n\n") + 2),
            "Run:         deploy-x\n"
            "Workflow:    deploy@3\n"
            "Phase:       Running\n"
            "Message:     still going\n"
            "Created:     2024-05-01T10:00:00+00:00\n"
            "Started:     2024-05-01T10:00:01+00:00\n"
            "Finished:    -\n"
            "Duration:    59m59s\n"
            "Parameters:\n"
            "  batch: 7\n"
            "  env: staging\n"
            "\n");
  EXPECT_EQ(text.substr(text.find("\n\n") + 2), RenderNodeTree(run, kNow));
}

TEST_F(FormatTest, TreeShowsNodesWithBrokenParents) {
  v1::Run run;
  AddNode(&run, "r.orphan", "orphan", "r.gone", v1::PHASE_PENDING, 0, 0);
  v1::Node* loop = AddNode(&run, "r.loop", "loop", "r.loop", v1::PHASE_PENDING, 0, 0);
  loop->add_children("r.loop");
  EXPECT_EQ(RenderNodeTree(run, kNow),
            "NAME    PHASE    DURATION  ATTEMPTS  MESSAGE\n"
            "orphan  Pending  -\n"
            "loop    Pending  -\n");
}

TEST_F(FormatTest, RunsTable) {
  v1::Run run = SampleRun();
  run.set_message("m");
  v1::Run inline_run;
  inline_run.set_id("hello-1");
  inline_run.set_phase(v1::PHASE_PENDING);
  *inline_run.mutable_create_time() = At(kStart + 5);
  EXPECT_EQ(RenderRunsTable({run, inline_run}, kNow),
            "RUN       WORKFLOW  PHASE    CREATED                    DURATION  MESSAGE\n"
            "deploy-x  deploy    Running  2024-05-01T10:00:00+00:00  59m59s    m\n"
            "hello-1   -         Pending  2024-05-01T10:00:05+00:00  -\n");
}

TEST_F(FormatTest, RunsTableWideAddsVersionFinishRequestIdAndLabels) {
  v1::Run run = SampleRun();
  run.set_request_id("q1");
  (*run.mutable_labels())["team"] = "web";
  (*run.mutable_labels())["env"] = "prod";
  v1::Run inline_run;
  inline_run.set_id("hello-1");
  inline_run.set_workflow_name("hello");
  inline_run.set_phase(v1::PHASE_SUCCEEDED);
  *inline_run.mutable_create_time() = At(kStart + 5);
  *inline_run.mutable_start_time() = At(kStart + 5);
  *inline_run.mutable_finish_time() = At(kStart + 65);
  EXPECT_EQ(RenderRunsTable({run, inline_run}, kNow, {.wide = true}),
            "RUN       WORKFLOW  VERSION  PHASE      CREATED                    FINISHED         "
            "          DURATION  REQUEST ID  LABELS             MESSAGE\n"
            "deploy-x  deploy    3        Running    2024-05-01T10:00:00+00:00  -                "
            "          59m59s    q1          env=prod,team=web\n"
            "hello-1   hello     inline   Succeeded  2024-05-01T10:00:05+00:00  "
            "2024-05-01T10:01:05+00:00  1m0s      -           -\n");
}

TEST_F(FormatTest, NodeTreeWideAddsTemplateAndRunner) {
  v1::Run run = SampleRun();
  run.mutable_nodes(1)->set_template_name("provision-tpl");
  run.mutable_nodes(1)->mutable_attempts(0)->set_runner("local");
  EXPECT_EQ(RenderNodeTree(run, kNow, {.wide = true}),
            "NAME                  PHASE      DURATION  ATTEMPTS  TEMPLATE       RUNNER  MESSAGE\n"
            "deploy-x              Running    59m59s\n"
            "├─ provision          Succeeded  1m20s     1         provision-tpl  local\n"
            "└─ configure          Running    58m39s\n"
            "   ├─ configure(0:a)  Succeeded  1m9s      2\n"
            "   │  ├─ #1           Failed     10s                                        exit 2: "
            "unreachable\n"
            "   │  └─ #2           Succeeded  50s                                        exit 0\n"
            "   └─ configure(1:b)  Running    58m38s    1\n");
}

TEST_F(FormatTest, ColorsPhasesWithoutBreakingTheColumns) {
  EXPECT_EQ(ColoredPhase(v1::PHASE_SUCCEEDED, true), "\x1b[32mSucceeded\x1b[0m");
  EXPECT_EQ(ColoredPhase(v1::PHASE_FAILED, true), "\x1b[31mFailed\x1b[0m");
  EXPECT_EQ(ColoredPhase(v1::PHASE_FAILED, false), "Failed");
  const std::string colored = RenderNodeTree(SampleRun(), kNow, {.color = true});
  EXPECT_NE(colored.find("\x1b[34mRunning\x1b[0m"), std::string::npos) << colored;
  // Without the escapes it is the plain tree, column for column.
  std::string stripped;
  for (size_t i = 0; i < colored.size(); ++i) {
    if (colored[i] == '\x1b') {
      i = colored.find('m', i);
      continue;
    }
    stripped += colored[i];
  }
  EXPECT_EQ(stripped, RenderNodeTree(SampleRun(), kNow));
  EXPECT_EQ(RenderNodeTree(SampleRun(), kNow).find('\x1b'), std::string::npos);
}

TEST_F(FormatTest, ProgressCountsFinishedStepsAndTheFrameShowsTheTree) {
  v1::Run run = SampleRun();
  // Steps: provision (done), configure(0:a) (done), configure(1:b) (running).
  EXPECT_EQ(CountProgress(run).done, 2);
  EXPECT_EQ(CountProgress(run).total, 3);
  EXPECT_EQ(RenderProgress(run, kNow), "Running  2/3 nodes done  elapsed 59m59s\n");
  EXPECT_EQ(
      RenderWatchFrame(run, kNow, {}),
      "Run: deploy-x  Running  2/3 nodes done  elapsed 59m59s\n\n" + RenderNodeTree(run, kNow));
}

TEST_F(FormatTest, RunHeaderShowsLabels) {
  v1::Run run = SampleRun();
  (*run.mutable_labels())["team"] = "web";
  (*run.mutable_labels())["env"] = "prod";
  EXPECT_NE(RenderRun(run, kNow).find("Duration:    59m59s\nLabels:      env=prod,team=web\n"),
            std::string::npos)
      << RenderRun(run, kNow);
}

TEST_F(FormatTest, EventLines) {
  v1::RunEvent event;
  event.set_sequence(4);
  *event.mutable_time() = At(kStart);
  event.set_node_name("deploy-x.provision");
  event.set_type("AttemptFinished");
  event.set_phase(v1::PHASE_FAILED);
  event.set_attempt(2);
  event.set_message("exit 2");
  EXPECT_EQ(RenderEvent(event, "deploy-x"),
            "2024-05-01T10:00:00+00:00 deploy-x.provision#2 AttemptFinished Failed exit 2\n");
  v1::RunEvent run_event;
  *run_event.mutable_time() = At(kStart);
  run_event.set_type("RunStopRequested");
  EXPECT_EQ(RenderEvent(run_event, "deploy-x"),
            "2024-05-01T10:00:00+00:00 deploy-x RunStopRequested -\n");
}

TEST_F(FormatTest, Diagnostics) {
  v1::Diagnostic diagnostic;
  diagnostic.set_line(12);
  diagnostic.set_column(7);
  diagnostic.set_field("spec.templates[1].dag.tasks[0].template");
  diagnostic.set_message("unknown template \"x\"");
  EXPECT_EQ(RenderDiagnostic(diagnostic, "wf.yaml"),
            "wf.yaml:12:7: spec.templates[1].dag.tasks[0].template: unknown template \"x\"");
  v1::Diagnostic bare;
  bare.set_file("other.yaml");
  bare.set_message("not YAML");
  EXPECT_EQ(RenderDiagnostic(bare, "wf.yaml"), "other.yaml: not YAML");
}

TEST_F(FormatTest, JsonKeepsProtoFieldNamesAndDefaults) {
  v1::Run run;
  run.set_id("r1");
  run.set_workflow_name("deploy");
  run.set_last_sequence(7);
  run.set_phase(v1::PHASE_FAILED);
  const nlohmann::ordered_json json = ToJsonValue(run);
  EXPECT_EQ(json["id"], "r1");
  EXPECT_EQ(json["workflow_name"], "deploy");
  EXPECT_EQ(json["last_sequence"], "7");  // proto3 JSON: int64 as a string
  EXPECT_EQ(json["phase"], "PHASE_FAILED");
  EXPECT_EQ(json["workflow_version"], "0");
  EXPECT_EQ(json["message"], "");
  EXPECT_EQ(json.begin().key(), "id");  // field order kept
  EXPECT_EQ(RenderStreamValue(nlohmann::ordered_json{{"a", 1}}, OutputFormat::kJson),
            "{\"a\":1}\n");
  EXPECT_EQ(RenderValue(nlohmann::ordered_json{{"a", 1}}, OutputFormat::kJson),
            "{\n  \"a\": 1\n}\n");
}

TEST_F(FormatTest, YamlQuotesWhatWouldNotReadBackAsAString) {
  const nlohmann::ordered_json value = {
      {"version", "3"},         {"flag", "yes"},       {"empty", ""},
      {"name", "deploy"},       {"count", 2},          {"ok", true},
      {"yaml", "a: 1\nb: 2\n"}, {"list", {"x", "1.5"}}};
  EXPECT_EQ(RenderValue(value, OutputFormat::kYaml),
            "version: \"3\"\n"
            "flag: \"yes\"\n"
            "empty: \"\"\n"
            "name: deploy\n"
            "count: 2\n"
            "ok: true\n"
            "yaml: |\n"
            "  a: 1\n"
            "  b: 2\n"
            "list:\n"
            "  - x\n"
            "  - \"1.5\"\n");
  EXPECT_EQ(RenderStreamValue({{"a", "b"}}, OutputFormat::kYaml), "---\na: b\n");
}

TEST_F(FormatTest, YamlStringsReadBack) {
  for (const std::string text : {"a\nb\n", "a\nb", "a\n\n", " a\nb\n", "1e3", "null", "x: y",
                                 "- item", "#comment", "tab\there", "'quoted'", "\"dq\""}) {
    const YAML::Node node = YAML::Load(RenderValue({{"v", text}}, OutputFormat::kYaml));
    EXPECT_EQ(node["v"].as<std::string>(), text) << RenderValue({{"v", text}}, OutputFormat::kYaml);
  }
}

TEST_F(FormatTest, WorkflowTable) {
  v1::Workflow workflow;
  workflow.set_name("deploy");
  workflow.set_version(2);
  workflow.set_entrypoint("main");
  *workflow.mutable_create_time() = At(kStart);
  EXPECT_EQ(RenderWorkflowsTable({workflow}),
            "NAME    VERSION  ENTRYPOINT  CREATED\n"
            "deploy  2        main        2024-05-01T10:00:00+00:00\n");
}

TEST_F(FormatTest, BytesForPeople) {
  EXPECT_EQ(FormatBytes(0), "0 B");
  EXPECT_EQ(FormatBytes(1023), "1023 B");
  EXPECT_EQ(FormatBytes(1536), "1.5 KiB");
  EXPECT_EQ(FormatBytes(int64_t{32} << 20), "32.0 MiB");
  EXPECT_EQ(FormatBytes(int64_t{3} << 30), "3.0 GiB");
}

TEST_F(FormatTest, WorkflowShowsItsBundle) {
  v1::Workflow workflow;
  workflow.set_name("deploy");
  workflow.set_version(2);
  workflow.set_yaml("kind: Workflow\n");
  EXPECT_NE(RenderWorkflow(workflow).find("Bundle:      -\n"), std::string::npos)
      << RenderWorkflow(workflow);
  EXPECT_EQ(FormatBundle(workflow), "-");

  const std::string digest(64, 'a');
  workflow.set_bundle_digest(digest);
  workflow.set_bundle_files(3);
  workflow.set_bundle_bytes(1536);
  const std::string rendered = RenderWorkflow(workflow);
  EXPECT_NE(rendered.find("Bundle:      " + digest + "\n"), std::string::npos) << rendered;
  EXPECT_NE(rendered.find("Bundle size: 3 files, 1.5 KiB\n"), std::string::npos) << rendered;
  EXPECT_EQ(FormatBundle(workflow), "aaaaaaaaaaaa (3 files, 1.5 KiB)");
  workflow.set_bundle_files(1);
  EXPECT_EQ(FormatBundle(workflow), "aaaaaaaaaaaa (1 file, 1.5 KiB)");
}

TEST_F(FormatTest, RunShowsItsBundleWhenItHasOne) {
  v1::Run run;
  run.set_id("r");
  EXPECT_EQ(RenderRun(run, FromTimestamp(At(kStart))).find("Bundle:"), std::string::npos);
  run.set_bundle_digest(std::string(64, 'b'));
  EXPECT_NE(RenderRun(run, FromTimestamp(At(kStart))).find("Bundle:      " + std::string(64, 'b')),
            std::string::npos);
}

}  // namespace
}  // namespace dagd::dagctl
