// ExportArgoWorkflow (dagctl export argo): the integration tests' diamond, exported with its
// bundle, is valid under Argo's schema and — submitted to the Argo Server fake, whose workflow
// controller runs the DAG, retries included, and every pod's ansible-playbook on this host —
// ends as it does on dagd: Succeeded, with B failing once and passing on its retry.
#include "runners/argo/export.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

#include "engine/yaml_json.h"
#include "tests/fakes/fake_kube_process.h"
#include "tests/runners/runner_test_util.h"

namespace dagd::runners::argo {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;
using testing::ReadTextFile;
using testing::TempDir;
using testing::WriteTextFile;

const std::string kTestdata = std::string(DAGD_SOURCE_DIR) + "/tests/integration/testdata";

// Empty if `workflow` is valid under Argo's schema, else the violations.
std::string ArgoViolations(const json& workflow, const std::string& dir) {
  const std::string file = dir + "/workflow.json";
  WriteTextFile(file, workflow.dump(2));
  const std::string command = "/usr/bin/python3 " + std::string(DAGD_SOURCE_DIR) +
                              "/tests/runners/kubernetes/validate_schema.py " +
                              std::string(DAGD_SOURCE_DIR) +
                              "/../shared/schemas/argo-workflow.schema.json " + file + " 2>&1";
  std::string output;
  FILE* pipe = popen(command.c_str(), "r");
  char buf[4096];
  size_t n;
  while (pipe != nullptr && (n = fread(buf, 1, sizeof buf, pipe)) > 0) output.append(buf, n);
  const int status = pipe != nullptr ? pclose(pipe) : -1;
  return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? "" : output;
}

class ExportTest : public ::testing::Test {
 protected:
  ExportRequest Request(const std::string& file) {
    ExportRequest request;
    request.yaml = ReadTextFile(kTestdata + "/" + file);
    request.file_name = file;
    request.bundle_dir = kTestdata;
    request.scratch_dir = dir_.Subdir("scratch");
    return request;
  }

  json Export(const ExportRequest& request) {
    absl::StatusOr<json> exported = ExportArgoWorkflow(request, options_);
    EXPECT_TRUE(exported.ok()) << exported.status();
    return exported.ok() ? *exported : json();
  }

  static const json* TemplateNamed(const json& workflow, const std::string& name) {
    for (const json& t : workflow["spec"]["templates"]) {
      if (t.value("name", "") == name) return &t;
    }
    return nullptr;
  }

  TempDir dir_;
  WorkflowSpecOptions options_;
};

TEST_F(ExportTest, AnsibleTemplatesBecomeContainersAndTheRestStaysAsWritten) {
  json exported = Export(Request("diamond-retry.yaml"));
  EXPECT_EQ(ArgoViolations(exported, dir_.path()), "");
  // The DAG as written.
  absl::StatusOr<json> original =
      engine::YamlToJson(ReadTextFile(kTestdata + "/diamond-retry.yaml"), "diamond-retry.yaml");
  ASSERT_TRUE(original.ok());
  EXPECT_EQ(*TemplateNamed(exported, "main"), *TemplateNamed(*original, "main"));
  EXPECT_EQ(exported["metadata"], (*original)["metadata"]);
  // The ansible template: a container in the Ansible image, its inputs and retries kept, its
  // files as raw artifacts, extra vars left for Argo to substitute.
  const json& step = *TemplateNamed(exported, "step");
  EXPECT_FALSE(step.contains("ansible"));
  EXPECT_EQ(step["container"]["image"], options_.ansible_image);
  // IntOrString fields as strings, as Argo's schema has them.
  EXPECT_EQ(step["retryStrategy"], json::parse(R"({"limit": "2", "retryPolicy": "OnFailure",
                                                   "backoff": {"duration": "1s", "factor": "2"}})"));
  EXPECT_EQ(step["inputs"]["parameters"],
            (*TemplateNamed(*original, "step"))["inputs"]["parameters"]);
  std::string playbook, extra_vars;
  for (const json& artifact : step["inputs"]["artifacts"]) {
    const std::string path = artifact["path"];
    if (path.ends_with("/playbooks/step.yml")) playbook = artifact["raw"]["data"];
    if (path.ends_with("extra-vars.json")) extra_vars = artifact["raw"]["data"];
  }
  EXPECT_EQ(playbook, ReadTextFile(kTestdata + "/playbooks/step.yml"));
  EXPECT_THAT(extra_vars, HasSubstr("{{inputs.parameters.step}}"));
  EXPECT_THAT(extra_vars, HasSubstr("{{workflow.parameters.record_dir}}"));
  EXPECT_EQ(step["outputs"]["parameters"].back()["name"], kResultParameter);
  // And the YAML reads back to the same Workflow.
  EXPECT_EQ(engine::YamlToJson(engine::JsonToYaml(exported), "out.yaml").value(), exported);
}

TEST_F(ExportTest, ARunsExportIsNamedAfterItWithItsParameters) {
  ExportRequest request = Request("diamond-retry.yaml");
  request.run_id = "diamond-retry-x7k2p";
  request.parameters = {{"record_dir", "/tmp/records"}};
  json exported = Export(request);
  EXPECT_EQ(exported["metadata"]["name"], "diamond-retry-x7k2p");
  EXPECT_FALSE(exported["metadata"].contains("generateName"));
  EXPECT_EQ(exported["metadata"]["annotations"]["dagd.io/exported-from-run"],
            "diamond-retry-x7k2p");
  EXPECT_EQ(exported["spec"]["arguments"]["parameters"][0],
            json({{"name", "record_dir"}, {"value", "/tmp/records"}}));
  EXPECT_EQ(ArgoViolations(exported, dir_.path()), "");
}

TEST_F(ExportTest, DagdsRunnerFieldsAreDropped) {
  ExportRequest request = Request("diamond-retry.yaml");
  request.yaml.replace(request.yaml.find("spec:\n"), 6, "spec:\n  runner: local\n");
  request.yaml.replace(request.yaml.find("      ansible:"), 0, "      runner: kubernetes\n");
  json exported = Export(request);
  EXPECT_FALSE(exported["spec"].contains("runner"));
  EXPECT_FALSE(TemplateNamed(exported, "step")->contains("runner"));
  EXPECT_EQ(ArgoViolations(exported, dir_.path()), "");
}

TEST_F(ExportTest, BadInputIsAClearError) {
  ExportRequest unknown = Request("diamond-retry.yaml");
  unknown.parameters = {{"recrod_dir", "/tmp"}};
  absl::StatusOr<json> exported = ExportArgoWorkflow(unknown, options_);
  ASSERT_FALSE(exported.ok());
  EXPECT_EQ(exported.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(exported.status().message()),
              HasSubstr("parameter \"recrod_dir\" is not one of spec.arguments.parameters "
                        "(record_dir)"));

  ExportRequest cycle = Request("diamond-retry.yaml");
  cycle.yaml.replace(cycle.yaml.find("            depends: A\n"), 23, "            depends: D\n");
  exported = ExportArgoWorkflow(cycle, options_);
  ASSERT_FALSE(exported.ok());
  EXPECT_THAT(std::string(exported.status().message()), HasSubstr("cycle"));

  ExportRequest missing_playbook = Request("diamond-retry.yaml");
  missing_playbook.bundle_dir = dir_.Subdir("empty-bundle");
  exported = ExportArgoWorkflow(missing_playbook, options_);
  ASSERT_FALSE(exported.ok());
  EXPECT_THAT(std::string(exported.status().message()), HasSubstr("playbooks/step.yml"));
}

// set_stats outputs become files Argo reads. An inventory from a parameter, which dagd parses
// and converts at run time, cannot be exported: a clear error naming the template.
TEST_F(ExportTest, StatsOutputsBecomePathsAndAnInventoryFromAParameterIsRefused) {
  ExportRequest request = Request("outputs-as-messages.yaml");
  absl::StatusOr<json> refused = ExportArgoWorkflow(request, options_);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(refused.status().message()),
              HasSubstr("template \"deploy\" (outputs-as-messages.yaml:75:7): its inventory "
                        "comes from a parameter"));

  // A step that publishes with set_stats exports: its outputs are files Argo reads.
  request.yaml = R"(apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata: {generateName: discover-}
spec:
  entrypoint: discover
  templates:
    - name: discover
      ansible:
        inventory: localhost,
        source: |
          - hosts: localhost
            gather_facts: false
            tasks:
              - ansible.builtin.set_stats: {data: {hosts: [web1, web2]}}
      outputs:
        parameters:
          - name: hosts
            valueFrom: {stats: hosts}
)";
  json exported = Export(request);
  EXPECT_EQ(ArgoViolations(exported, dir_.path()), "");
  const json* discover = TemplateNamed(exported, "discover");
  ASSERT_NE(discover, nullptr) << exported.dump(2);
  EXPECT_EQ(
      (*discover)["outputs"]["parameters"][0],
      json::parse(R"({"name": "hosts", "valueFrom": {"path": "/dagd/work/.dagd/stats/hosts"}})"));
}

// The exported Workflow, run by the fake's Argo workflow controller as Argo would run it.
TEST_F(ExportTest, TheExportRunsOnArgoWithTheSameOutcome) {
  const std::string records = dir_.Subdir("records");
  ExportRequest request = Request("diamond-retry.yaml");
  request.run_id = "diamond-retry-abcde";
  request.parameters = {{"record_dir", records}};
  json exported = Export(request);
  dagd::testing::FakeKubeProcess fake(dir_.Subdir("fake"), {"--mode", "both"});
  const std::string created =
      fake.Post("/api/v1/workflows/dagd-test", json({{"workflow", exported}}).dump());
  ASSERT_THAT(created, HasSubstr("\"uid\"")) << created;

  std::string phase;
  json status;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(180);
  while (std::chrono::steady_clock::now() < deadline) {
    json workflow =
        json::parse(fake.Get("/api/v1/workflows/dagd-test/diamond-retry-abcde"), nullptr, false);
    status = workflow.is_object() && workflow["status"].is_object() ? workflow["status"]
                                                                    : json::object();
    phase = status.value("phase", "");
    if (phase == "Succeeded" || phase == "Failed" || phase == "Error") break;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  EXPECT_EQ(phase, "Succeeded") << status.dump(2);
  // B failed once and passed on its retry; every step ran its playbook.
  int b_pods = 0;
  const json nodes = status["nodes"].is_object() ? status["nodes"] : json::object();
  for (const auto& [id, node] : nodes.items()) {
    if (node.value("type", "") == "Pod" && node.value("displayName", "").rfind("B", 0) == 0) {
      ++b_pods;
    }
  }
  EXPECT_EQ(b_pods, 2) << status.dump(2);
  std::string ran = ReadTextFile(records + "/runs.log");
  std::sort(ran.begin(), ran.end());
  EXPECT_EQ(ran, "\n\n\n\n\nABBCD");
  EXPECT_EQ(fake.Stop(), 0) << "schema violations: " << fake.violations();
}

}  // namespace
}  // namespace dagd::runners::argo
