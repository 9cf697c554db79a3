// BuildJobObjects(): the Job and ConfigMap of an attempt, checked against the official
// Kubernetes schemas (../shared/schemas) with Debian's python3-jsonschema, and the ansible pod's
// command run on this host the way a pod would run it (its volumes at temporary paths).
#include "runners/kubernetes/job_spec.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <string>

#include "absl/strings/escaping.h"
#include "engine/parser.h"
#include "engine/run_state.h"
#include "tests/runners/runner_test_util.h"

namespace dagd::runners::kubernetes {
namespace {

namespace fs = std::filesystem;
using ::dagd::runners::testing::AnsibleTemplate;
using ::dagd::runners::testing::MakeSpec;
using ::dagd::runners::testing::ReadTextFile;
using ::dagd::runners::testing::TempDir;
using ::dagd::runners::testing::WriteTextFile;
using nlohmann::json;
using ::testing::HasSubstr;

const std::string kSchemas = std::string(DAGD_SOURCE_DIR) + "/../shared/schemas";

struct CommandResult {
  int exit_code = -1;
  std::string output;
};

CommandResult RunShell(const std::string& command) {
  CommandResult result;
  FILE* pipe = popen((command + " 2>&1").c_str(), "r");
  if (pipe == nullptr) return result;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, pipe)) > 0) result.output.append(buf, n);
  const int status = pclose(pipe);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

// Empty if `object` is valid under the schema file, else the violations.
std::string SchemaViolations(const json& object, const std::string& schema, const TempDir& dir) {
  const std::string file = dir.path() + "/object-" + std::to_string(std::rand()) + ".json";
  WriteTextFile(file, object.dump(2));
  // Debian's interpreter and python3-jsonschema (scripts/debian-packages.txt), whatever else is
  // on PATH.
  CommandResult result = RunShell("/usr/bin/python3 " + std::string(DAGD_SOURCE_DIR) +
                                  "/tests/runners/kubernetes/validate_schema.py " + kSchemas + "/" +
                                  schema + " " + file);
  return result.exit_code == 0 ? ""
                               : result.output + " (exit " + std::to_string(result.exit_code) + ")";
}

engine::Template ContainerTemplate() {
  engine::Template t;
  t.name = "build";
  t.type = engine::TemplateType::kContainer;
  t.container.emplace();
  t.container->image = "golang:1.22";
  t.container->command = {"go"};
  t.container->args = {"build", "./..."};
  t.container->env = {{"CGO_ENABLED", "0"}};
  t.container->kubernetes = json::parse(R"({
      "resources": {"limits": {"cpu": "2", "memory": "1Gi"}},
      "volumeMounts": [{"name": "cache", "mountPath": "/root/.cache"}],
      "imagePullPolicy": "IfNotPresent"})");
  t.kubernetes = json::parse(R"({
      "nodeSelector": {"disk": "ssd"},
      "serviceAccountName": "builder",
      "metadata": {"labels": {"team": "platform"}}})");
  t.timeout = "90s";
  t.active_deadline_seconds = 600;
  return t;
}

TEST(JobNameTest, ValidDeterministicAndDistinct) {
  const std::regex label("[a-z0-9]([-a-z0-9]*[a-z0-9])?");
  EXPECT_EQ(JobName("deploy-x7k2p-1a2b3c4d-1"), "deploy-x7k2p-1a2b3c4d-1");
  const std::string long_run(80, 'r');
  std::set<std::string> names;
  for (const std::string& external :
       {long_run + "-1a2b3c4d-1", long_run + "-1a2b3c4d-2", std::string("Deploy_X-1a2b3c4d-1"),
        std::string("deploy-x-1a2b3c4d-1"), std::string("-lead-1a2b3c4d-1")}) {
    const std::string name = JobName(external);
    EXPECT_LE(name.size(), 63u) << external;
    EXPECT_TRUE(std::regex_match(name, label)) << name;
    EXPECT_EQ(JobName(external), name);  // deterministic: reattachment finds the Job by name
    names.insert(name);
  }
  EXPECT_EQ(names.size(), 5u);
  EXPECT_THAT(JobName(long_run + "-1a2b3c4d-2"),
              ::testing::EndsWith(JobName(long_run + "-1a2b3c4d-2").substr(55)));
}

TEST(BuildJobObjectsTest, ContainerTemplatePassesItsKubernetesFieldsThrough) {
  TempDir dir;
  AttemptSpec spec = MakeSpec(ContainerTemplate(), "build-run-1a2b3c4d-2", dir.path());
  spec.run_id = "build-run";
  spec.node_name = "build-run.compile(0:linux)";
  spec.attempt = 2;
  spec.workflow_kubernetes = json::parse(R"({
      "serviceAccountName": "default-sa",
      "tolerations": [{"key": "ci", "operator": "Exists", "effect": "NoSchedule"}],
      "volumes": [{"name": "cache", "emptyDir": {}}],
      "podGC": {"strategy": "OnPodSuccess"}})");
  JobSpecOptions options;
  options.namespace_name = "ci";
  auto objects = BuildJobObjects(spec, options);
  ASSERT_TRUE(objects.ok()) << objects.status();
  const json& job = objects->job;
  EXPECT_FALSE(objects->config_map.has_value());
  EXPECT_EQ(job["metadata"]["name"], "build-run-1a2b3c4d-2");
  EXPECT_EQ(job["metadata"]["namespace"], "ci");
  EXPECT_EQ(job["metadata"]["labels"]["dagd.io/attempt"], "2");
  EXPECT_EQ(job["metadata"]["annotations"]["dagd.io/node"], "build-run.compile(0:linux)");
  EXPECT_EQ(job["spec"]["backoffLimit"], 0);
  EXPECT_EQ(job["spec"]["activeDeadlineSeconds"], 90);  // the smaller of timeout and deadline
  EXPECT_EQ(job["spec"]["ttlSecondsAfterFinished"], options.ttl_seconds_after_finished);
  const json& pod = job["spec"]["template"];
  EXPECT_EQ(pod["metadata"]["labels"]["team"], "platform");
  EXPECT_EQ(pod["metadata"]["labels"]["dagd.io/run"], "build-run");
  EXPECT_EQ(pod["spec"]["restartPolicy"], "Never");
  EXPECT_EQ(pod["spec"]["serviceAccountName"], "builder");  // the template wins
  EXPECT_EQ(pod["spec"]["nodeSelector"]["disk"], "ssd");
  EXPECT_EQ(pod["spec"]["tolerations"][0]["key"], "ci");
  EXPECT_FALSE(pod["spec"].contains("podGC"));  // Argo-only: not a pod field
  const json& container = pod["spec"]["containers"][0];
  EXPECT_EQ(container["image"], "golang:1.22");
  EXPECT_EQ(container["command"], json({"go"}));
  EXPECT_EQ(container["args"], json({"build", "./..."}));
  EXPECT_EQ(container["env"][0]["name"], "CGO_ENABLED");
  EXPECT_EQ(container["resources"]["limits"]["memory"], "1Gi");
  EXPECT_EQ(container["volumeMounts"][0]["mountPath"], "/root/.cache");
  EXPECT_EQ(SchemaViolations(job, "k8s-job-batch-v1.schema.json", dir), "");

  // The check itself can fail: a wrong type and a field the API does not have.
  json bad = job;
  bad["spec"]["backoffLimit"] = "none";
  EXPECT_THAT(SchemaViolations(bad, "k8s-job-batch-v1.schema.json", dir),
              HasSubstr("backoffLimit"));
  bad = job;
  bad["spec"]["template"]["spec"]["containers"][0]["cpuLimit"] = 2;
  EXPECT_THAT(SchemaViolations(bad, "k8s-job-batch-v1.schema.json", dir), HasSubstr("cpuLimit"));
}

TEST(BuildJobObjectsTest, AHostileParameterStaysOneStringAndAddsNoField) {
  // A parameter written to break out of its field, as YAML and as JSON, substituted by the
  // engine into a container's args and env, then built into a Job: it must arrive as the one
  // string it is, with no field of the pod added or changed.
  const std::string hostile =
      "x\"]\n      securityContext: {privileged: true}\n#\", \"securityContext\": "
      "{\"privileged\": true}, \"y\": [\"";
  absl::StatusOr<engine::Workflow> parsed = engine::ParseWorkflow(R"yaml(
apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata: {name: hostile}
spec:
  entrypoint: main
  arguments: {parameters: [{name: x}]}
  templates:
  - name: main
    container:
      image: alpine
      command: [echo]
      args: ["{{workflow.parameters.x}}"]
      env: [{name: X, value: "{{workflow.parameters.x}}"}]
)yaml",
                                                                  "hostile.yaml");
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  auto workflow = std::make_shared<const engine::Workflow>(*std::move(parsed));
  absl::StatusOr<engine::RunState> state =
      engine::RunState::Create(workflow, {{"x", hostile}}, "hostile-run", 1);
  ASSERT_TRUE(state.ok()) << state.status();
  std::vector<engine::DispatchRequest> dispatch = state->Advance(1);
  ASSERT_EQ(dispatch.size(), 1u);
  TempDir dir;
  AttemptSpec spec = MakeSpec(dispatch[0].resolved, "hostile-run-1a2b3c4d-1", dir.path());
  auto objects = BuildJobObjects(spec, JobSpecOptions());
  ASSERT_TRUE(objects.ok()) << objects.status();
  const json& pod = objects->job["spec"]["template"]["spec"];
  const json& container = pod["containers"][0];
  EXPECT_EQ(container["args"], json({hostile}));
  EXPECT_EQ(container["env"][0]["value"], hostile);
  EXPECT_FALSE(container.contains("securityContext"));
  EXPECT_FALSE(pod.contains("securityContext"));
  EXPECT_EQ(SchemaViolations(objects->job, "k8s-job-batch-v1.schema.json", dir), "");
}

TEST(BuildJobObjectsTest, ScriptSourceTravelsInAConfigMap) {
  TempDir dir;
  engine::Template t;
  t.name = "count";
  t.type = engine::TemplateType::kScript;
  t.script.emplace();
  t.script->container.image = "python:3.12";
  t.script->container.command = {"python3"};
  t.script->source = "print(len('dagd'))\n";
  auto objects = BuildJobObjects(MakeSpec(t, "run-1-aaaa-1", dir.path()), JobSpecOptions{});
  ASSERT_TRUE(objects.ok()) << objects.status();
  ASSERT_TRUE(objects->config_map.has_value());
  const json& cm = *objects->config_map;
  EXPECT_EQ(cm["metadata"]["name"], objects->job_name);
  std::string source;
  ASSERT_TRUE(absl::Base64Unescape(cm["binaryData"]["f0"].get<std::string>(), &source));
  EXPECT_EQ(source, t.script->source);
  const json& container = objects->job["spec"]["template"]["spec"]["containers"][0];
  EXPECT_EQ(container["args"], json({"/dagd/script/script"}));
  EXPECT_EQ(SchemaViolations(objects->job, "k8s-job-batch-v1.schema.json", dir), "");
  EXPECT_EQ(SchemaViolations(cm, "k8s-configmap-v1.schema.json", dir), "");
}

class AnsibleJobTest : public ::testing::Test {
 protected:
  AttemptSpec Spec() {
    WriteTextFile(work_.path() + "/playbooks/site.yml", R"(
- hosts: localhost
  connection: local
  gather_facts: false
  vars:
    ansible_python_interpreter: "{{ ansible_playbook_python }}"
  tasks:
    - name: Greet
      ansible.builtin.debug:
        msg: "hello {{ who }} from {{ lookup('ansible.builtin.env', 'PWD') }}"
    - name: Publish
      ansible.builtin.set_stats:
        data: {greeted: "{{ who }}"}
)");
    engine::AnsibleSpec a;
    a.playbook = "playbooks/site.yml";
    a.inventory = "localhost,";
    a.extra_vars = {{"who", "pods"}};
    AttemptSpec spec = MakeSpec(AnsibleTemplate("greet", a), "greet-run-0a0b0c0d-1", work_.path());
    spec.bundle_dir = work_.path();  // the scheduler materialised the bundle here
    return spec;
  }

  TempDir work_;
  TempDir scratch_;
};

TEST_F(AnsibleJobTest, ShipsTheWorkDirAndMapsItsPaths) {
  auto objects = BuildJobObjects(Spec(), JobSpecOptions{});
  ASSERT_TRUE(objects.ok()) << objects.status();
  ASSERT_TRUE(objects->config_map.has_value());
  std::set<std::string> paths;
  for (const json& item :
       objects->job["spec"]["template"]["spec"]["volumes"][0]["configMap"]["items"]) {
    paths.insert(item["path"].get<std::string>());
  }
  EXPECT_TRUE(paths.count("playbooks/site.yml"));
  EXPECT_TRUE(paths.count(".dagd/extra-vars.json"));
  EXPECT_TRUE(paths.count(".dagd/callback_plugins/dagd_events.py"));
  const json& container = objects->job["spec"]["template"]["spec"]["containers"][0];
  EXPECT_EQ(container["workingDir"], "/dagd/work");
  const std::string args = container["args"].dump();
  EXPECT_THAT(args, HasSubstr("\"/dagd/work/playbooks/site.yml\""));
  EXPECT_THAT(args, HasSubstr("\"@/dagd/work/.dagd/extra-vars.json\""));
  EXPECT_THAT(args, ::testing::Not(HasSubstr(work_.path())));
  const std::string env = container["env"].dump();
  EXPECT_THAT(env, HasSubstr("/dagd/work/.dagd/callback_plugins"));
  EXPECT_THAT(env, ::testing::Not(HasSubstr(work_.path())));
  EXPECT_THAT(env, HasSubstr("DAGD_EVENTS_PREFIX"));
  EXPECT_EQ(SchemaViolations(objects->job, "k8s-job-batch-v1.schema.json", scratch_), "");
  EXPECT_EQ(SchemaViolations(*objects->config_map, "k8s-configmap-v1.schema.json", scratch_), "");
}

// The pod's command, run here with its two volumes at temporary paths: the ConfigMap's items
// written out as Kubernetes would (read-only files), the work dir empty.
TEST_F(AnsibleJobTest, ThePodCommandRunsTheRealPlaybookAndReportsEventsInItsLog) {
  auto objects = BuildJobObjects(Spec(), JobSpecOptions{});
  ASSERT_TRUE(objects.ok()) << objects.status();
  const std::string bundle = scratch_.path() + "/bundle";
  const std::string work = scratch_.path() + "/work";
  fs::create_directories(work);
  const json& cm = *objects->config_map;
  for (const json& item :
       objects->job["spec"]["template"]["spec"]["volumes"][0]["configMap"]["items"]) {
    std::string content;
    ASSERT_TRUE(absl::Base64Unescape(
        cm["binaryData"][item["key"].get<std::string>()].get<std::string>(), &content));
    WriteTextFile(bundle + "/" + item["path"].get<std::string>(), content);
    fs::permissions(bundle + "/" + item["path"].get<std::string>(),
                    static_cast<fs::perms>(item["mode"].get<int>() & 0555));
  }
  auto map = [&](std::string text) {
    for (const auto& [from, to] :
         {std::pair<std::string, std::string>{"/dagd/bundle", bundle}, {"/dagd/work", work}}) {
      for (size_t at; (at = text.find(from)) != std::string::npos;)
        text.replace(at, from.size(), to);
    }
    return text;
  };
  const json& container = objects->job["spec"]["template"]["spec"]["containers"][0];
  std::string command = "cd " + work + " && env -i PATH=/usr/local/bin:/usr/bin:/bin";
  for (const json& var : container["env"]) {
    command +=
        " '" + var["name"].get<std::string>() + "=" + map(var["value"].get<std::string>()) + "'";
  }
  for (const json& part : container["command"])
    command += " '" + map(part.get<std::string>()) + "'";
  for (const json& part : container["args"]) command += " '" + map(part.get<std::string>()) + "'";
  CommandResult result = RunShell(command);
  ASSERT_EQ(result.exit_code, 0) << command << "\n" << result.output;
  EXPECT_THAT(result.output, HasSubstr("hello pods from " + work));
  // Event lines start with the prefix, at the start of a line, and parse as JSON.
  int events = 0;
  bool stats = false;
  size_t pos = 0;
  const std::string prefix = kEventLinePrefix;
  while ((pos = result.output.find(prefix, pos)) != std::string::npos) {
    EXPECT_TRUE(pos == 0 || result.output[pos - 1] == '\n');
    const size_t end = result.output.find('\n', pos);
    json event = json::parse(result.output.substr(pos + prefix.size(), end - pos - prefix.size()),
                             nullptr, false);
    ASSERT_TRUE(event.is_object()) << result.output.substr(pos, end - pos);
    ++events;
    if (event.value("kind", "") == "stats") {
      stats = true;
      EXPECT_EQ(event["custom_stats"]["_run"]["greeted"], "pods");
    }
    pos = end;
  }
  EXPECT_GE(events, 5);
  EXPECT_TRUE(stats);
  EXPECT_FALSE(fs::exists(work + "/..data"));
}

TEST_F(AnsibleJobTest, TooManyFilesForAConfigMapIsAClearError) {
  WriteTextFile(work_.path() + "/files/big.bin", std::string(600 * 1024, 'x'));
  JobSpecOptions options;
  options.max_config_map_bytes = 512 * 1024;
  auto objects = BuildJobObjects(Spec(), options);
  EXPECT_EQ(objects.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(std::string(objects.status().message()), HasSubstr("template \"greet\""));
  EXPECT_THAT(std::string(objects.status().message()), HasSubstr("runner: local"));
}

TEST_F(AnsibleJobTest, CredentialsAreRefusedForNow) {
  AttemptSpec spec = Spec();
  spec.resolved.ansible->vault_password_ref = "vault";
  auto objects = BuildJobObjects(spec, JobSpecOptions{});
  EXPECT_EQ(objects.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(objects.status().message()), HasSubstr("runner: local"));
}

}  // namespace
}  // namespace dagd::runners::kubernetes
