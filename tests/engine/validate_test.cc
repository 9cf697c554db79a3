#include "engine/validate.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "engine/parser.h"
#include "engine/template_refs.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace dagd::engine {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

namespace fs = std::filesystem;

const fs::path kTestdata = fs::path(DAGD_SOURCE_DIR) / "tests" / "testdata";
const fs::path kArgoExamples =
    fs::path(DAGD_SOURCE_DIR) / ".." / "shared" / "conformance" / "argo-examples";

std::string ReadFile(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

// What the daemon does with a submission: parse, then validate.
absl::Status Check(const std::string& yaml, const std::string& file_name = "wf.yaml") {
  absl::StatusOr<Workflow> wf = ParseWorkflow(yaml, file_name);
  if (!wf.ok()) return wf.status();
  return ValidateWorkflow(*wf);
}

std::string CheckError(const std::string& yaml) {
  const absl::Status status = Check(yaml);
  if (status.ok()) return "";
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  return std::string(status.message());
}

Workflow MustParse(const std::string& yaml) {
  absl::StatusOr<Workflow> wf = ParseWorkflow(yaml, "wf.yaml");
  EXPECT_TRUE(wf.ok()) << wf.status();
  return wf.ok() ? *wf : Workflow();
}

// A workflow whose entrypoint `main` is a dag of `tasks` (YAML text of the list, indented by six
// spaces), next to an `echo` template with one required input `message` and a `noop` template.
std::string DagWorkflow(const std::string& tasks) {
  return "apiVersion: argoproj.io/v1alpha1\n"  // line 1
         "kind: Workflow\n"
         "metadata: {name: wf}\n"
         "spec:\n"
         "  entrypoint: main\n"  // line 5
         "  templates:\n"
         "  - name: echo\n"
         "    inputs: {parameters: [{name: message}, {name: colour, default: red}]}\n"
         "    container: {image: alpine, command: [echo, \"{{inputs.parameters.message}}\"]}\n"
         "  - name: noop\n"  // line 10
         "    container: {image: alpine}\n"
         "  - name: main\n"
         "    dag:\n"
         "      tasks:\n" +  // line 14
         tasks;
}

TEST(ValidateTest, AcceptsAWellFormedDag) {
  EXPECT_EQ(CheckError(DagWorkflow(R"(      - name: a
        template: echo
        arguments: {parameters: [{name: message, value: hi}]}
      - name: b
        dependencies: [a]
        template: echo
        arguments: {parameters: [{name: message, value: "{{tasks.a.outputs.result}}"}]}
      - name: c
        depends: "b.Succeeded || b.Failed"
        template: noop
        when: "{{tasks.a.outputs.result}} == hi"
)")),
            "");
}

TEST(ValidateTest, EntrypointMustExist) {
  EXPECT_EQ(CheckError("apiVersion: argoproj.io/v1alpha1\nkind: Workflow\nspec:\n"
                       "  templates: [{name: main, suspend: {}}]\n"),
            "wf.yaml:3:1: spec.entrypoint: missing; name the template the run starts with, one "
            "of: main");
  EXPECT_EQ(CheckError("apiVersion: argoproj.io/v1alpha1\nkind: Workflow\nspec:\n"
                       "  entrypoint: mian\n  templates: [{name: main, suspend: {}}]\n"),
            "wf.yaml:4:3: spec.entrypoint: unknown template 'mian'; did you mean 'main'?");
  EXPECT_EQ(CheckError("apiVersion: argoproj.io/v1alpha1\nkind: Workflow\nspec:\n"
                       "  entrypoint: other\n  templates: [{name: main, suspend: {}}]\n"),
            "wf.yaml:4:3: spec.entrypoint: unknown template 'other'; templates are: main");
  // A WorkflowTemplate may be a library without an entrypoint.
  EXPECT_EQ(CheckError("apiVersion: argoproj.io/v1alpha1\nkind: WorkflowTemplate\nspec:\n"
                       "  templates: [{name: main, suspend: {}}]\n"),
            "");
}

TEST(ValidateTest, EntrypointInputsComeFromWorkflowArguments) {
  const std::string head =
      "apiVersion: argoproj.io/v1alpha1\nkind: Workflow\nspec:\n  entrypoint: main\n";
  const std::string main =
      "  templates:\n  - name: main\n    inputs: {parameters: [{name: env}]}\n    suspend: {}\n";
  EXPECT_EQ(CheckError(head + main),
            "wf.yaml:4:3: spec.entrypoint: entrypoint template 'main' needs input parameter "
            "'env'; declare it in spec.arguments.parameters: {name: env, value: …}");
  EXPECT_EQ(CheckError(head + "  arguments: {parameters: [{name: env}]}\n" + main), "");
}

TEST(ValidateTest, TemplateNamesAreUnique) {
  EXPECT_EQ(CheckError("apiVersion: argoproj.io/v1alpha1\nkind: Workflow\nspec:\n"
                       "  entrypoint: a\n  templates:\n  - name: a\n    suspend: {}\n"
                       "  - name: a\n    suspend: {}\n"),
            "wf.yaml:8:5: spec.templates[1].name: duplicate template name 'a'; template names "
            "must be unique; the first is at line 6");
}

TEST(ValidateTest, TaskNamesAreUniqueWithinADag) {
  EXPECT_EQ(CheckError(DagWorkflow("      - {name: a, template: noop}\n"
                                   "      - {name: a, template: noop}\n")),
            "wf.yaml:16:10: spec.templates[2].dag.tasks[1].name: duplicate task name 'a'; task "
            "names must be unique within a dag; the first is at line 15");
}

TEST(ValidateTest, TaskTemplateMustExist) {
  EXPECT_EQ(CheckError(DagWorkflow("      - {name: a, template: nop}\n")),
            "wf.yaml:15:19: spec.templates[2].dag.tasks[0].template: unknown template 'nop'; did "
            "you mean 'noop'?");
  EXPECT_EQ(CheckError(DagWorkflow("      - {name: a, template: something-else}\n")),
            "wf.yaml:15:19: spec.templates[2].dag.tasks[0].template: unknown template "
            "'something-else'; templates are: echo, noop, main");
  EXPECT_THAT(CheckError(DagWorkflow("      - {name: a}\n")),
              StartsWith("wf.yaml:15:9: spec.templates[2].dag.tasks[0]: task 'a' names no "
                         "template"));
}

TEST(ValidateTest, UnsupportedTaskFeaturesAreNamed) {
  // Resolved from stored WorkflowTemplates before validation (template_refs_test.cc).
  EXPECT_THAT(CheckError(DagWorkflow("      - {name: a, templateRef: {name: x, template: y}}\n")),
              StartsWith("wf.yaml:15:19: spec.templates[2].dag.tasks[0].templateRef: refers to "
                         "WorkflowTemplate 'x', which is only known to a dagd that stores it"));
  EXPECT_THAT(CheckError(DagWorkflow("      - {name: a, template: noop, inline: {container: "
                                     "{image: x}}}\n")),
              HasSubstr("'a' names more than one of `template`, `templateRef` and `inline`"));
  EXPECT_THAT(CheckError(DagWorkflow("      - {name: a, template: noop, withItems: [1], "
                                     "withSequence: {count: \"2\"}}\n")),
              HasSubstr("'a' has more than one loop; keep one of withItems, withParam and "
                        "withSequence"));
}

// A workflow whose templates pass an artifact: `producer` leaves /tmp/out, `consumer` reads
// /tmp/in; `extra` is appended to the templates and `call` is main's task list.
std::string ArtifactWorkflow(const std::string& call, const std::string& extra = "") {
  return "apiVersion: argoproj.io/v1alpha1\n"  // line 1
         "kind: Workflow\n"
         "metadata: {name: wf}\n"
         "spec:\n"
         "  entrypoint: main\n"  // line 5
         "  templates:\n"
         "  - name: producer\n"
         "    container: {image: alpine, command: [sh, -c, \"echo hi > /tmp/out\"]}\n"
         "    outputs: {artifacts: [{name: out, path: /tmp/out}]}\n"
         "  - name: consumer\n"  // line 10
         "    inputs: {artifacts: [{name: in, path: /tmp/in}]}\n"
         "    container: {image: alpine, command: [cat, /tmp/in]}\n"
         "  - name: main\n"
         "    dag:\n"
         "      tasks:\n"  // line 15
         "      - {name: produce, template: producer}\n" +
         call + extra;
}

TEST(ValidateTest, HooksCallKnownTemplatesWithParsableExpressions) {
  EXPECT_EQ(CheckError(DagWorkflow("      - {name: a, template: noop, hooks: {running: "
                                   "{expression: \"tasks.a.status == 'Running'\", "
                                   "template: noop}}}\n")),
            "");
  EXPECT_THAT(CheckError(DagWorkflow("      - {name: a, template: noop, hooks: {running: "
                                     "{expression: \"true\", template: nope}}}\n")),
              HasSubstr("spec.templates[2].dag.tasks[0].hooks.running.template: unknown template "
                        "'nope'"));
  EXPECT_THAT(CheckError(DagWorkflow("      - {name: a, template: noop, hooks: {running: "
                                     "{expression: \"tasks.a.status ==\", template: noop}}}\n")),
              HasSubstr("spec.templates[2].dag.tasks[0].hooks.running.expression: expression "
                        "'tasks.a.status =='"));
  EXPECT_THAT(
      CheckError(DagWorkflow("      - {name: a, template: noop, hooks: {failed: "
                             "{expression: \"true\", template: echo}}}\n")),
      HasSubstr("hooks.failed.arguments: task 'a.hooks.failed' does not pass input parameter "
                "'message' of template 'echo'"));
  // The workflow's own hooks.
  std::string yaml = DagWorkflow("      - {name: a, template: noop}\n");
  const std::string spec_hooks =
      "  hooks:\n    running: {expression: \"workflow.status ==\", template: noop}\n";
  yaml.insert(yaml.find("  templates:"), spec_hooks);
  EXPECT_THAT(CheckError(yaml), HasSubstr("spec.hooks.running.expression: expression"));
}

TEST(ValidateTest, ArtifactsPassedByFromOrKey) {
  EXPECT_EQ(CheckError(ArtifactWorkflow(
                "      - {name: consume, template: consumer, depends: produce, arguments: "
                "{artifacts: [{name: in, from: \"{{tasks.produce.outputs.artifacts.out}}\"}]}}\n")),
            "");
  EXPECT_EQ(CheckError(ArtifactWorkflow("      - {name: consume, template: consumer, arguments: "
                                        "{artifacts: [{name: in, s3: {key: my-file}}]}}\n")),
            "");
  // The producer must come first, as for parameters.
  EXPECT_THAT(
      CheckError(ArtifactWorkflow(
          "      - {name: consume, template: consumer, arguments: "
          "{artifacts: [{name: in, from: \"{{tasks.produce.outputs.artifacts.out}}\"}]}}\n")),
      HasSubstr("arguments.artifacts[0].from: {{tasks.produce.outputs.artifacts.out}} refers to "
                "task 'produce', which task 'consume' does not depend on"));
  // An input artifact with no source.
  EXPECT_EQ(CheckError(ArtifactWorkflow("      - {name: consume, template: consumer}\n")),
            "wf.yaml:17:9: spec.templates[2].dag.tasks[1].arguments: task 'consume' does not pass "
            "input artifact 'in' of template 'consumer'; add it under arguments.artifacts: {name: "
            "in, from: \"{{tasks.X.outputs.artifacts.Y}}\"} (steps.X in a steps template), or "
            "mark the input optional");
  EXPECT_THAT(CheckError(ArtifactWorkflow("      - {name: consume, template: consumer, arguments: "
                                          "{artifacts: [{name: in}]}}\n")),
              HasSubstr("arguments.artifacts[0]: argument artifact 'in' has no source"));
}

TEST(ValidateTest, ArtifactRepositoriesOtherThanDagdsStoreAreRefused) {
  EXPECT_THAT(
      CheckError(ArtifactWorkflow(
          "      - {name: consume, template: consumer, arguments: {artifacts: [{name: in, "
          "http: {url: \"https://example.com/x\"}}]}}\n")),
      HasSubstr("wf.yaml:17:80: spec.templates[2].dag.tasks[1].arguments.artifacts[0].http: "
                "artifact 'in': http repositories are not supported by dagd, which keeps "
                "artifacts in its own store"));
  // An s3 block that names a bucket is a repository too, not a key-only artifact.
  EXPECT_THAT(CheckError(ArtifactWorkflow(
                  "",
                  "  - name: t\n    container: {image: alpine}\n"
                  "    outputs: {artifacts: [{name: a, path: /a, s3: {key: k, bucket: b}}]}\n")),
              HasSubstr("outputs.artifacts[0].s3: artifact 'a': s3 repositories are not "
                        "supported by dagd"));
  EXPECT_THAT(CheckError(ArtifactWorkflow(
                  "",
                  "  - name: t\n    container: {image: alpine}\n"
                  "    outputs: {artifacts: [{name: a, path: /a, archive: {zip: {}}}]}\n")),
              HasSubstr("outputs.artifacts[0].archive: zip archives are not supported by dagd"));
}

TEST(ValidateTest, ArtifactsNeedWhatTheirTemplateUses) {
  EXPECT_THAT(CheckError(ArtifactWorkflow("",
                                          "  - name: t\n    container: {image: alpine}\n"
                                          "    outputs: {artifacts: [{name: a}]}\n")),
              HasSubstr("spec.templates[3].outputs.artifacts[0]: output artifact 'a' has no path; "
                        "give the path the container writes it to"));
  EXPECT_THAT(
      CheckError(ArtifactWorkflow("",
                                  "  - name: t\n    steps: [[{name: s, template: producer}]]\n"
                                  "    outputs: {artifacts: [{name: a}]}\n")),
      HasSubstr("output artifact 'a' of steps template 't' has no source; give `from: "
                "\"{{tasks.X.outputs.artifacts.Y}}\"` or `fromExpression`"));
  EXPECT_THAT(CheckError(ArtifactWorkflow(
                  "",
                  "  - name: t\n    ansible: {playbook: site.yml}\n"
                  "    inputs: {artifacts: [{name: a, path: /a, raw: {data: x}}]}\n")),
              HasSubstr("artifacts on ansible templates are not supported by dagd yet"));
}

TEST(ValidateTest, DependenciesMustNameTasksOfTheSameDag) {
  EXPECT_EQ(
      CheckError(DagWorkflow("      - {name: build, template: noop}\n"
                             "      - {name: test, template: noop, dependencies: [biuld]}\n")),
      "wf.yaml:16:53: spec.templates[2].dag.tasks[1].dependencies[0]: unknown task 'biuld'; "
      "did you mean 'build'?");
  EXPECT_EQ(CheckError(DagWorkflow("      - {name: build, template: noop}\n"
                                   "      - {name: test, template: noop, depends: deploy}\n")),
            "wf.yaml:16:38: spec.templates[2].dag.tasks[1].depends: unknown task 'deploy'; tasks "
            "of dag 'main' are: build, test");
}

TEST(ValidateTest, DependsMustParse) {
  EXPECT_THAT(CheckError(DagWorkflow("      - {name: a, template: noop}\n"
                                     "      - {name: b, template: noop, depends: \"a &&\"}\n")),
              StartsWith("wf.yaml:16:35: spec.templates[2].dag.tasks[1].depends: bad depends "
                         "expression: "));
  EXPECT_THAT(CheckError(DagWorkflow("      - {name: a, template: noop}\n"
                                     "      - {name: b, template: noop, depends: a.Finished}\n")),
              AllOf(HasSubstr("bad depends expression: "), HasSubstr("a.Finished")));
}

TEST(ValidateTest, DependenciesAndDependsAreExclusive) {
  EXPECT_THAT(
      CheckError(DagWorkflow("      - {name: a, template: noop}\n"
                             "      - {name: b, template: noop, depends: a, dependencies: [a]}\n")),
      HasSubstr("spec.templates[2].dag.tasks[1].depends: task 'b' has both dependencies and "
                "depends"));
}

TEST(ValidateTest, CyclesAreReportedWithTheirPath) {
  EXPECT_EQ(CheckError(DagWorkflow("      - {name: a, template: noop, depends: c}\n"
                                   "      - {name: b, template: noop, depends: a}\n"
                                   "      - {name: c, template: noop, dependencies: [b]}\n"
                                   "      - {name: d, template: noop, depends: c}\n")),
            "wf.yaml:15:35: spec.templates[2].dag.tasks[0].depends: dependency cycle: a -> c -> b "
            "-> a; each task depends on the next; remove one of these dependencies");
  EXPECT_THAT(CheckError(DagWorkflow("      - {name: a, template: noop}\n"
                                     "      - {name: b, template: noop, dependencies: [a, b]}\n")),
              HasSubstr("tasks[1].dependencies: dependency cycle: b -> b"));
}

TEST(ValidateTest, TargetsMustNameTasks) {
  const std::string yaml =
      DagWorkflow("      - {name: a, template: noop}\n") + "      target: \"a b\"\n";
  EXPECT_EQ(CheckError(yaml),
            "wf.yaml:16:7: spec.templates[2].dag.target: unknown task 'b'; tasks of dag 'main' "
            "are: a");
}

TEST(ValidateTest, TaskTagsMustNameAncestors) {
  // c depends on b which depends on a: a and b are ancestors of c.
  EXPECT_EQ(CheckError(DagWorkflow(R"(      - {name: a, template: noop}
      - {name: b, template: noop, depends: a}
      - name: c
        depends: b
        template: echo
        when: "{{tasks.b.status}} == Succeeded"
        withParam: "{{tasks.a.outputs.parameters.list}}"
        arguments: {parameters: [{name: message, value: "{{tasks.a.outputs.result}}"}]}
)")),
            "");
  EXPECT_EQ(CheckError(DagWorkflow(R"(      - {name: a, template: noop}
      - {name: b, template: noop}
      - name: c
        depends: b
        template: echo
        arguments: {parameters: [{name: message, value: "{{tasks.a.outputs.result}}"}]}
)")),
            "wf.yaml:20:50: spec.templates[2].dag.tasks[2].arguments.parameters[0].value: "
            "{{tasks.a.outputs.result}} refers to task 'a', which task 'c' does not depend on; "
            "add 'a' to the depends of task 'c' so its outputs exist when 'c' starts");
  EXPECT_THAT(CheckError(DagWorkflow("      - {name: a, template: noop}\n"
                                     "      - {name: b, template: noop, when: "
                                     "\"{{tasks.x.outputs.result}} == 1\"}\n")),
              StartsWith("wf.yaml:16:35: spec.templates[2].dag.tasks[1].when: "
                         "{{tasks.x.outputs.result}} names unknown task 'x'"));
  EXPECT_THAT(CheckError(DagWorkflow("      - {name: a, template: noop, withParam: "
                                     "\"{{tasks.a.outputs.result}}\"}\n")),
              HasSubstr("withParam: {{tasks.a.outputs.result}} refers to task 'a', which task "
                        "'a' does not depend on"));
  // {{tasks.name}} is the task's own name, not a reference.
  EXPECT_EQ(CheckError(DagWorkflow("      - {name: a, template: echo, arguments: {parameters: "
                                   "[{name: message, value: \"{{tasks.name}}\"}]}}\n")),
            "");
}

TEST(ValidateTest, CredentialReferencesMustBeCredentialNames) {
  const std::string head =
      "apiVersion: argoproj.io/v1alpha1\nkind: WorkflowTemplate\nspec:\n  templates:\n"
      "  - name: t\n    inputs: {parameters: [{name: cred}]}\n    ansible:\n"
      "      playbook: p.yml\n";
  const std::string rule(kCredentialNameRule);
  EXPECT_EQ(CheckError(head + "      vaultPasswordRef: ../etc/shadow\n"),
            "wf.yaml:9:7: spec.templates[0].ansible.vaultPasswordRef: '../etc/shadow' is not a "
            "credential name; " +
                rule);
  EXPECT_EQ(CheckError(head + "      privateKeyRef: keys/deploy\n"),
            "wf.yaml:9:7: spec.templates[0].ansible.privateKeyRef: 'keys/deploy' is not a "
            "credential name; " +
                rule);
  EXPECT_EQ(CheckError(head + "      becomePasswordRef: .hidden\n"),
            "wf.yaml:9:7: spec.templates[0].ansible.becomePasswordRef: '.hidden' is not a "
            "credential name; " +
                rule);
  EXPECT_EQ(CheckError(head + "      envFromRef: [api-token, \"has space\"]\n"),
            "wf.yaml:9:31: spec.templates[0].ansible.envFromRef[1]: 'has space' is not a "
            "credential name; " +
                rule);
  EXPECT_EQ(CheckError(head + "      envFromRef: -token\n"),
            "wf.yaml:9:7: spec.templates[0].ansible.envFromRef: '-token' is not a "
            "credential name; " +
                rule);
  EXPECT_EQ(CheckError(head + "      envFromRef: [\"\"]\n"),
            "wf.yaml:9:20: spec.templates[0].ansible.envFromRef[0]: '' is not a credential name; " +
                rule);
  // Good names, and names only known at launch (checked by the runner then).
  EXPECT_EQ(CheckError(head + "      vaultPasswordRef: vault.pass_2-prod\n"
                              "      privateKeyRef: \"{{inputs.parameters.cred}}\"\n"
                              "      becomePasswordRef: 0become\n"
                              "      envFromRef: [A, \"{{inputs.parameters.cred}}-env\"]\n"),
            "");
  // A tag in a name must name a declared input like any other.
  EXPECT_THAT(CheckError(head + "      vaultPasswordRef: \"{{inputs.parameters.crd}}\"\n"),
              HasSubstr("spec.templates[0].ansible.vaultPasswordRef: {{inputs.parameters.crd}} "
                        "names an input parameter that template 't' does not declare"));
}

TEST(ValidateTest, IsCredentialNameFollowsTheRule) {
  for (const char* good : {"a", "A", "0", "vault-pass", "deploy.key", "db_env", "x.y-z_9"}) {
    EXPECT_TRUE(IsCredentialName(good)) << good;
  }
  for (const char* bad : {"", ".hidden", "-x", "_x", "a/b", "/abs", "..", "a b", "a\nb", "é"}) {
    EXPECT_FALSE(IsCredentialName(bad)) << bad;
  }
}

TEST(ValidateTest, InputTagsMustNameDeclaredInputs) {
  const std::string head =
      "apiVersion: argoproj.io/v1alpha1\nkind: WorkflowTemplate\nspec:\n  templates:\n";
  EXPECT_EQ(CheckError(head + "  - name: t\n    inputs: {parameters: [{name: host}]}\n"
                              "    ansible:\n      playbook: p.yml\n"
                              "      extraVars: {h: \"{{inputs.parameters.hots}}\"}\n"),
            "wf.yaml:9:7: spec.templates[0].ansible.extraVars.h: {{inputs.parameters.hots}} "
            "names an input parameter that template 't' does not declare; did you mean 'host'?");
  EXPECT_EQ(CheckError(head + "  - name: t\n    script:\n      image: python\n"
                              "      source: print('{{inputs.parameters.n}}')\n"),
            "wf.yaml:8:7: spec.templates[0].script.source: {{inputs.parameters.n}} names an input "
            "parameter that template 't' does not declare; declare it under "
            "inputs.parameters: {name: n}");
  EXPECT_THAT(CheckError(head + "  - name: t\n    inputs: {parameters: [{name: tag}]}\n"
                                "    ansible:\n      playbook: p.yml\n"
                                "      tags: [web, \"{{inputs.parameters.tga}}\"]\n"),
              HasSubstr("spec.templates[0].ansible.tags[1]: {{inputs.parameters.tga}} names an "
                        "input parameter that template 't' does not declare"));
  EXPECT_THAT(CheckError(head + "  - name: t\n    inputs: {parameters: [{name: tag}]}\n"
                                "    ansible:\n      playbook: p.yml\n"
                                "      skipTags: \"{{inputs.parameters.tga}}\"\n"),
              HasSubstr("{{inputs.parameters.tga}} names an input parameter"));
  EXPECT_THAT(CheckError(head + "  - name: t\n    ansible:\n      playbook: p.yml\n"
                                "      becomeUser: \"{{inputs.parameters.user}}\"\n"),
              HasSubstr("spec.templates[0].ansible.becomeUser: {{inputs.parameters.user}}"));
  // Kubernetes fields kept verbatim are checked too; Jinja2 and other tags are not dagd's.
  EXPECT_THAT(CheckError(head + "  - name: t\n    podSpecPatch: '{{inputs.parameters.patch}}'\n"
                                "    container: {image: alpine}\n"),
              HasSubstr("spec.templates[0].podSpecPatch: {{inputs.parameters.patch}}"));
  EXPECT_EQ(CheckError(head + "  - name: t\n    inputs: {parameters: [{name: a}]}\n"
                              "    container:\n      image: alpine\n"
                              "      args: [\"{{ ansible_host }}\", \"{{inputs.parameters.a}}\", "
                              "\"{{inputs.parameters}}\"]\n"),
            "");
  EXPECT_THAT(CheckError(head + "  - name: t\n    inputs: {parameters: [{name: a}, {name: a}]}\n"
                                "    suspend: {}\n"),
              HasSubstr("spec.templates[0].inputs.parameters[1].name: duplicate input parameter "
                        "'a'"));
}

TEST(ValidateTest, TasksPassRequiredInputsAndNoMisspeltOnes) {
  EXPECT_EQ(CheckError(DagWorkflow("      - {name: a, template: echo}\n")),
            "wf.yaml:15:9: spec.templates[2].dag.tasks[0].arguments: task 'a' does not pass "
            "input parameter 'message' of template 'echo'; add it under arguments.parameters: "
            "{name: message, value: …}");
  EXPECT_EQ(CheckError(DagWorkflow("      - name: a\n        template: echo\n"
                                   "        arguments:\n          parameters:\n"
                                   "          - {name: message, value: x}\n"
                                   "          - {name: color, value: blue}\n")),
            "wf.yaml:20:13: spec.templates[2].dag.tasks[0].arguments.parameters[1]: template "
            "'echo' has no input parameter 'color'; did you mean 'colour'?");
  // Other undeclared arguments are ignored, as Argo ignores them (its examples pass some).
  EXPECT_TRUE(Check(DagWorkflow("      - name: a\n        template: noop\n"
                                "        arguments: {parameters: [{name: x, value: 1}]}\n"))
                  .ok());
  EXPECT_TRUE(Check(DagWorkflow("      - name: a\n        template: echo\n"
                                "        arguments:\n          parameters:\n"
                                "          - {name: message, value: x}\n"
                                "          - {name: colour, value: blue}\n"
                                "          - {name: size, value: \"2\"}\n"))
                  .ok());
}

TEST(ValidateTest, StepsMustNameExistingTemplates) {
  EXPECT_EQ(CheckError("apiVersion: argoproj.io/v1alpha1\nkind: Workflow\nspec:\n"
                       "  entrypoint: main\n  templates:\n  - name: main\n    steps:\n"
                       "    - - {name: a, template: mian}\n"),
            "wf.yaml:8:19: spec.templates[0].steps[0][0].template: unknown template 'mian'; did "
            "you mean 'main'?");
}

TEST(ValidateTest, ErrorsWithoutRecordedLocationsNameTheFile) {
  Workflow wf;
  wf.file = "built.yaml";
  wf.entrypoint = "nope";
  EXPECT_EQ(ValidateWorkflow(wf).message(),
            "built.yaml: spec.entrypoint: unknown template 'nope'; there are no templates");
}

TEST(ResolveWorkflowArgumentsTest, MergesSubmittedValues) {
  const Workflow wf = MustParse(R"(apiVersion: argoproj.io/v1alpha1
kind: Workflow
spec:
  entrypoint: main
  arguments:
    parameters:
    - {name: env, value: staging, enum: [staging, production]}
    - {name: count, value: 2}
    - {name: region, default: eu}
    - {name: token}
  templates: [{name: main, suspend: {}}]
)");
  absl::StatusOr<std::map<std::string, std::string>> args =
      ResolveWorkflowArguments(wf, {{"env", "production"}, {"token", "t"}});
  ASSERT_TRUE(args.ok()) << args.status();
  EXPECT_EQ(*args, (std::map<std::string, std::string>{
                       {"count", "2"}, {"env", "production"}, {"region", "eu"}, {"token", "t"}}));

  EXPECT_EQ(ResolveWorkflowArguments(wf, {}).status().message(),
            "wf.yaml:10:7: spec.arguments.parameters[3]: parameter 'token' has no value; give it "
            "a value here or submit one (token=…)");
  EXPECT_EQ(ResolveWorkflowArguments(wf, {{"token", "t"}, {"evn", "x"}}).status().message(),
            "wf.yaml:6:5: spec.arguments.parameters: submitted parameter 'evn' is not declared; "
            "did you mean 'env'?");
  EXPECT_EQ(ResolveWorkflowArguments(wf, {{"token", "t"}, {"env", "qa"}}).status().message(),
            "wf.yaml:7:7: spec.arguments.parameters[0]: value 'qa' of parameter 'env' is not one "
            "of its enum values; use one of: staging, production");
}

TEST(TopologicalTaskOrderTest, PutsDependenciesFirst) {
  const Workflow wf = MustParse(DagWorkflow(R"(      - {name: d, template: noop, depends: "b && c"}
      - {name: c, template: noop, depends: a}
      - {name: b, template: noop, dependencies: [a]}
      - {name: a, template: noop}
      - {name: x, template: noop}
      - {name: y, template: noop, depends: x}
)"));
  ASSERT_EQ(ValidateWorkflow(wf), absl::OkStatus());
  const std::vector<std::string> order = TopologicalTaskOrder(*wf.templates[2].dag);
  ASSERT_EQ(order.size(), 6u);
  auto position = [&](const std::string& name) {
    return std::find(order.begin(), order.end(), name) - order.begin();
  };
  EXPECT_LT(position("a"), position("b"));
  EXPECT_LT(position("a"), position("c"));
  EXPECT_LT(position("b"), position("d"));
  EXPECT_LT(position("c"), position("d"));
  EXPECT_LT(position("x"), position("y"));
}

// Each file in tests/testdata/malformed/ has one defect and says, on its first line,
// "# expect: <line>: <substring>", what the error must name. The integration tests submit the
// same files to the daemon and check the same expectation.
TEST(TestdataTest, MalformedWorkflowsReportTheExpectedLineAndMessage) {
  int files = 0;
  for (const auto& entry : fs::directory_iterator(kTestdata / "malformed")) {
    const std::string name = entry.path().filename().string();
    const std::string text = ReadFile(entry.path());
    const std::string first_line = text.substr(0, text.find('\n'));
    constexpr std::string_view kPrefix = "# expect: ";
    ASSERT_THAT(first_line, StartsWith(std::string(kPrefix))) << name;
    const size_t colon = first_line.find(": ", kPrefix.size());
    ASSERT_NE(colon, std::string::npos) << name;
    const std::string line = first_line.substr(kPrefix.size(), colon - kPrefix.size());
    const std::string substring = first_line.substr(colon + 2);

    const absl::Status status = Check(text, name);
    std::cout << name << ": " << status.message() << "\n";
    ASSERT_FALSE(status.ok()) << name;
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << name;
    EXPECT_THAT(std::string(status.message()), StartsWith(name + ":" + line + ":")) << name;
    EXPECT_THAT(std::string(status.message()), HasSubstr(substring)) << name;
    ++files;
  }
  EXPECT_GE(files, 12);
}

TEST(TestdataTest, ValidWorkflowsPass) {
  int files = 0;
  for (const auto& entry : fs::directory_iterator(kTestdata / "valid")) {
    const std::string name = entry.path().filename().string();
    EXPECT_EQ(Check(ReadFile(entry.path()), name), absl::OkStatus()) << name;
    ++files;
  }
  EXPECT_GE(files, 3);
}

// Argo's DAG examples (dag-*.yaml) must parse and validate, except those that need a feature
// dagd does not have yet — each listed with its reason.
TEST(TestdataTest, ArgoDagExamplesValidate) {
  const std::map<std::string, std::string> kNotYet = {
      {"dag-inline-cronworkflow.yaml", "kind CronWorkflow"},
  };
  ASSERT_TRUE(fs::is_directory(kArgoExamples)) << kArgoExamples;
  int passed = 0;
  int not_yet = 0;
  for (const auto& entry : fs::directory_iterator(kArgoExamples)) {
    const std::string name = entry.path().filename().string();
    if (!name.starts_with("dag-") || entry.path().extension() != ".yaml") continue;
    const absl::Status status = Check(ReadFile(entry.path()), name);
    auto reason = kNotYet.find(name);
    if (reason != kNotYet.end()) {
      EXPECT_FALSE(status.ok()) << name << " now validates: remove it from kNotYet";
      std::cout << "not yet: " << name << " (" << reason->second << "): " << status.message()
                << "\n";
      ++not_yet;
      continue;
    }
    EXPECT_EQ(status, absl::OkStatus()) << name;
    if (status.ok()) ++passed;
  }
  std::cout << "argo dag examples: " << passed << " validate, " << not_yet << " not yet\n";
  EXPECT_GE(passed, 14);
}

// Argo's examples that use {{=…}} expressions: the expression tags are not taken for unknown or
// undeclared dagd tags.
TEST(TestdataTest, ArgoExpressionExamplesValidate) {
  for (const char* name :
       {"expression-tag-template-workflow.yaml", "expression-destructure-json.yaml",
        "expression-destructure-json-complex.yaml", "expression-reusing-verbose-snippets.yaml",
        "skipped-output-defaults/expression-fallback.yaml"}) {
    EXPECT_EQ(Check(ReadFile(kArgoExamples / name), name), absl::OkStatus()) << name;
  }
}

}  // namespace
}  // namespace dagd::engine

namespace dagd::engine {
namespace {

// Issue 6, point 4: linting every file of Argo's examples either passes or names what dagd
// refuses on purpose. Each accepted phrase says why it is a refusal and not a bug.
// What `dagctl lint` answers for every file once the examples' WorkflowTemplates are applied:
// each document is resolved against every WorkflowTemplate and ClusterWorkflowTemplate of the
// examples, then checked.
TEST(TestdataTest, EveryArgoExampleLintsCleanOrNamesWhatDagdRefuses) {
  const std::vector<std::pair<std::string, std::string>> kOnPurpose = {
      {"not supported by dagd yet", "a feature still to build, named"},
      {"which dagd does not run yet", "resource, http, plugin, containerSet and data templates"},
      {"unsupported kind", "CronWorkflow, WorkflowEventBinding, …: not a workflow"},
      {"unsupported apiVersion", "ConfigMaps and other Kubernetes objects"},
      {"duplicate field", "a YAML key written twice: which one wins is a guess"},
      {"repositories are not supported by dagd",
       "S3, Git, HTTP, … artifact repositories: dagd keeps artifacts in its own store"},
  };
  const fs::path root = kArgoExamples.parent_path();
  std::map<std::string, absl::StatusOr<std::vector<Workflow>>> parsed;
  TemplateLibrary library;
  for (const auto& entry : fs::recursive_directory_iterator(root)) {
    if (entry.path().extension() != ".yaml") continue;
    const std::string name = fs::relative(entry.path(), root).string();
    auto documents = ParseWorkflowDocuments(ReadFile(entry.path()), name);
    if (documents.ok()) {
      for (const Workflow& document : *documents) {
        if (document.kind != WorkflowKind::kWorkflow) library.emplace(document.name, document);
      }
    }
    parsed.emplace(name, std::move(documents));
  }
  int clean = 0;
  int templates_resolved = 0;
  std::map<std::string, int> refusals;
  for (auto& [name, documents] : parsed) {
    std::vector<absl::Status> problems;
    if (!documents.ok()) {
      problems.push_back(documents.status());
    } else {
      for (Workflow& document : *documents) {
        const size_t own = document.templates.size();
        if (absl::Status resolved = ResolveTemplateRefs(&document, library); !resolved.ok()) {
          problems.push_back(resolved);
          continue;
        }
        templates_resolved += static_cast<int>(document.templates.size() - own);
        for (absl::Status& problem : FindWorkflowProblems(document)) problems.push_back(problem);
      }
    }
    if (problems.empty()) ++clean;
    for (const absl::Status& problem : problems) {
      const std::string message(problem.message());
      auto known = std::find_if(kOnPurpose.begin(), kOnPurpose.end(), [&](const auto& phrase) {
        return message.find(phrase.first) != std::string::npos;
      });
      EXPECT_NE(known, kOnPurpose.end()) << "not a refusal on purpose: " << message;
      if (known != kOnPurpose.end()) ++refusals[known->first];
    }
  }
  std::cout << "argo examples: " << parsed.size() << " files, " << clean << " lint clean, "
            << library.size() << " WorkflowTemplates, " << templates_resolved
            << " templates imported through templateRef\n";
  for (const auto& [phrase, count] : refusals)
    std::cout << "  " << count << " x " << phrase << "\n";
  EXPECT_GE(parsed.size(), 200u);
  // 22 examples that use S3, Git, HTTP, … repositories linted clean while dagd ignored
  // artifacts; they are refused on purpose now that dagd moves artifacts itself.
  // 23 examples with resource, http, plugin, containerSet or data templates linted clean
  // and failed when a node reached the template; they are refused at submit now.
  EXPECT_GE(clean, 163);
  EXPECT_GE(library.size(), 17u);
  EXPECT_GE(templates_resolved, 22);
}

}  // namespace
}  // namespace dagd::engine
