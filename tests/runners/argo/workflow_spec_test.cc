// BuildNodeWorkflow(): the one-step Argo Workflow of an attempt, checked against Argo's official
// schema (../shared/schemas/argo-workflow.schema.json), and an ansible step's container run here
// the way Argo would run it (its raw artifacts written to a temporary /dagd/bundle).
#include "runners/argo/workflow_spec.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

#include "tests/runners/runner_test_util.h"

namespace dagd::runners::argo {
namespace {

namespace fs = std::filesystem;
using ::dagd::runners::testing::AnsibleTemplate;
using ::dagd::runners::testing::MakeSpec;
using ::dagd::runners::testing::ReadTextFile;
using ::dagd::runners::testing::TempDir;
using ::dagd::runners::testing::WriteTextFile;
using nlohmann::json;
using ::testing::HasSubstr;

std::pair<int, std::string> RunShell(const std::string& command) {
  std::string output;
  FILE* pipe = popen((command + " 2>&1").c_str(), "r");
  if (pipe == nullptr) return {-1, ""};
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, pipe)) > 0) output.append(buf, n);
  const int status = pclose(pipe);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, output};
}

// Empty if `workflow` is valid under Argo's schema, else the violations.
std::string ArgoViolations(const json& workflow, const TempDir& dir) {
  const std::string file = dir.path() + "/workflow.json";
  WriteTextFile(file, workflow.dump(2));
  auto [code, output] =
      RunShell("/usr/bin/python3 " + std::string(DAGD_SOURCE_DIR) +
               "/tests/runners/kubernetes/validate_schema.py " + std::string(DAGD_SOURCE_DIR) +
               "/../shared/schemas/argo-workflow.schema.json " + file);
  return code == 0 ? "" : output;
}

TEST(BuildNodeWorkflowTest, ContainerStepIsAOneTemplateWorkflow) {
  TempDir dir;
  engine::Template t;
  t.name = "build";
  t.type = engine::TemplateType::kContainer;
  t.container.emplace();
  t.container->image = "golang:1.22";
  t.container->command = {"sh", "-c"};
  t.container->args = {"go build ./... > /tmp/out"};
  t.container->kubernetes = json::parse(R"({"resources": {"limits": {"cpu": "1"}}})");
  t.kubernetes = json::parse(R"({"nodeSelector": {"disk": "ssd"}})");
  t.timeout = "2m";
  engine::Parameter out;
  out.name = "binary";
  out.value_from.emplace();
  out.value_from->path = "/tmp/out";
  t.outputs.parameters = {out};
  AttemptSpec spec = MakeSpec(t, "ci-x7k2p-1a2b3c4d-1", dir.path());
  spec.run_id = "ci-x7k2p";
  spec.node_name = "ci-x7k2p.build";
  spec.workflow_kubernetes =
      json::parse(R"({"serviceAccountName": "ci", "podGC": {"strategy": "OnPodSuccess"}})");
  WorkflowSpecOptions options;
  auto workflow = BuildNodeWorkflow(spec, options);
  ASSERT_TRUE(workflow.ok()) << workflow.status();
  const json& w = *workflow;
  EXPECT_EQ(w["metadata"]["name"], "ci-x7k2p-1a2b3c4d-1");
  EXPECT_EQ(w["metadata"]["namespace"], "argo");
  EXPECT_EQ(w["metadata"]["annotations"]["dagd.io/node"], "ci-x7k2p.build");
  EXPECT_EQ(w["spec"]["entrypoint"], "main");
  EXPECT_EQ(w["spec"]["serviceAccountName"], "ci");
  EXPECT_EQ(w["spec"]["podGC"]["strategy"], "OnPodSuccess");
  const json& tmpl = w["spec"]["templates"][0];
  EXPECT_EQ(tmpl["timeout"], "2m");
  EXPECT_EQ(tmpl["nodeSelector"]["disk"], "ssd");
  EXPECT_EQ(tmpl["container"]["resources"]["limits"]["cpu"], "1");
  EXPECT_EQ(tmpl["outputs"]["parameters"][0]["valueFrom"]["path"], "/tmp/out");
  EXPECT_EQ(ArgoViolations(w, dir), "");
  json bad = w;
  bad["spec"]["templates"][0]["container"]["args"] = "not a list";  // the check can fail
  EXPECT_THAT(ArgoViolations(bad, dir), HasSubstr("spec/templates/0/container/args"));
}

TEST(BuildNodeWorkflowTest, AnsibleStepShipsItsFilesAndReadsStatsFromFiles) {
  TempDir work;
  TempDir scratch;
  WriteTextFile(work.path() + "/site.yml", R"(
- hosts: localhost
  connection: local
  gather_facts: false
  vars:
    ansible_python_interpreter: "{{ ansible_playbook_python }}"
  tasks:
    - ansible.builtin.set_stats:
        data: {hosts: [web1, web2], region: eu}
)");
  engine::AnsibleSpec a;
  a.playbook = "site.yml";
  a.inventory = "localhost,";
  engine::Template t = AnsibleTemplate("discover", a);
  engine::Parameter hosts;
  hosts.name = "hosts";
  hosts.value_from.emplace();
  hosts.value_from->stats = "hosts";
  t.outputs.parameters = {hosts};
  AttemptSpec spec = MakeSpec(t, "d-1-aaaa-1", work.path());
  spec.bundle_dir = work.path();
  auto workflow = BuildNodeWorkflow(spec, WorkflowSpecOptions{});
  ASSERT_TRUE(workflow.ok()) << workflow.status();
  EXPECT_EQ(ArgoViolations(*workflow, scratch), "");
  const json& tmpl = (*workflow)["spec"]["templates"][0];
  EXPECT_EQ(tmpl["outputs"]["parameters"][0]["valueFrom"]["path"], "/dagd/work/.dagd/stats/hosts");
  EXPECT_EQ(tmpl["outputs"]["parameters"][1]["name"], kResultParameter);

  // Run the container here: artifacts at a temporary /dagd/bundle, the work dir empty.
  const std::string bundle = scratch.path() + "/bundle";
  const std::string run_dir = scratch.path() + "/work";
  fs::create_directories(run_dir);
  for (const json& artifact : tmpl["inputs"]["artifacts"]) {
    std::string path = artifact["path"].get<std::string>();
    path.replace(0, std::string("/dagd/bundle").size(), bundle);
    WriteTextFile(path, artifact["raw"]["data"].get<std::string>());
  }
  auto map = [&](std::string text) {
    for (const auto& [from, to] :
         {std::pair<std::string, std::string>{"/dagd/bundle", bundle}, {"/dagd/work", run_dir}}) {
      for (size_t at; (at = text.find(from)) != std::string::npos;)
        text.replace(at, from.size(), to);
    }
    return text;
  };
  std::string command = "cd " + run_dir + " && env -i PATH=/usr/local/bin:/usr/bin:/bin";
  for (const json& var : tmpl["container"]["env"]) {
    command +=
        " '" + var["name"].get<std::string>() + "=" + map(var["value"].get<std::string>()) + "'";
  }
  for (const json& part : tmpl["container"]["command"])
    command += " '" + map(part.get<std::string>()) + "'";
  for (const json& part : tmpl["container"]["args"])
    command += " '" + map(part.get<std::string>()) + "'";
  auto [code, output] = RunShell(command);
  ASSERT_EQ(code, 0) << output;
  EXPECT_EQ(ReadTextFile(run_dir + "/.dagd/stats/hosts"), R"(["web1","web2"])");
  EXPECT_EQ(ReadTextFile(run_dir + "/.dagd/stats/region"), "eu");
  EXPECT_EQ(json::parse(ReadTextFile(run_dir + "/.dagd/stats/_all.json")),
            json::parse(R"({"hosts": ["web1", "web2"], "region": "eu"})"));
}

TEST(BuildNodeWorkflowTest, StepTemplatesAreRefused) {
  TempDir dir;
  engine::Template t;
  t.name = "loop";
  t.type = engine::TemplateType::kDag;
  t.dag.emplace();
  auto workflow = BuildNodeWorkflow(MakeSpec(t, "x-1", dir.path()), WorkflowSpecOptions{});
  EXPECT_EQ(workflow.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(workflow.status().message()), HasSubstr("template \"loop\""));
}

}  // namespace
}  // namespace dagd::runners::argo
