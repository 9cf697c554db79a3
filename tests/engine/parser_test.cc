#include "engine/parser.h"

#include <yaml-cpp/yaml.h>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace dagd::engine {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

absl::StatusOr<Workflow> Parse(const std::string& yaml) { return ParseWorkflow(yaml, "wf.yaml"); }

// The error message of parsing `yaml`, or "" if it parsed.
std::string ParseError(const std::string& yaml) {
  absl::StatusOr<Workflow> wf = Parse(yaml);
  if (wf.ok()) return "";
  EXPECT_EQ(wf.status().code(), absl::StatusCode::kInvalidArgument);
  return std::string(wf.status().message());
}

// A workflow around `templates` (YAML text of the list, indented by two spaces).
std::string WithTemplates(const std::string& templates) {
  return "apiVersion: argoproj.io/v1alpha1\n"
         "kind: Workflow\n"
         "metadata: {name: wf}\n"
         "spec:\n"
         "  entrypoint: main\n"
         "  templates:\n" +
         templates;
}

std::string ReadFile(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

TEST(ParserTest, ReadsWorkflowLevelFields) {
  absl::StatusOr<Workflow> wf = Parse(R"(apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata:
  name: release
  generateName: release-
  namespace: ops
  labels: {team: platform, tier: 1}
  annotations: {note: kept out of the model}
spec:
  entrypoint: main
  runner: kubernetes
  parallelism: 3
  activeDeadlineSeconds: 600
  onExit: cleanup
  arguments:
    parameters:
    - {name: env, value: staging}
  templates:
  - name: main
    container: {image: alpine, command: [echo, hi]}
)");
  ASSERT_TRUE(wf.ok()) << wf.status();
  EXPECT_EQ(wf->kind, WorkflowKind::kWorkflow);
  EXPECT_EQ(wf->file, "wf.yaml");
  EXPECT_EQ(wf->name, "release");
  EXPECT_EQ(wf->generate_name, "release-");
  EXPECT_EQ(wf->namespace_name, "ops");
  EXPECT_EQ(wf->labels.at("team"), "platform");
  EXPECT_EQ(wf->labels.at("tier"), "1");
  EXPECT_EQ(wf->entrypoint, "main");
  EXPECT_EQ(wf->runner, "kubernetes");
  EXPECT_EQ(wf->parallelism, 3);
  EXPECT_EQ(wf->active_deadline_seconds, 600);
  ASSERT_TRUE(wf->exit_hook.has_value());
  EXPECT_EQ(wf->exit_hook->template_name, "cleanup");
  ASSERT_EQ(wf->arguments.parameters.size(), 1u);
  EXPECT_EQ(wf->arguments.parameters[0].value, "staging");
  ASSERT_EQ(wf->templates.size(), 1u);
  EXPECT_EQ(wf->templates[0].type, TemplateType::kContainer);
  EXPECT_EQ(wf->templates[0].container->command, (std::vector<std::string>{"echo", "hi"}));
}

TEST(ParserTest, ReadsWorkflowTemplateKind) {
  absl::StatusOr<Workflow> wf = Parse(R"(apiVersion: argoproj.io/v1alpha1
kind: WorkflowTemplate
metadata: {name: lib}
spec:
  templates:
  - name: t
    script: {image: python, command: [python], source: 'print(1)'}
)");
  ASSERT_TRUE(wf.ok()) << wf.status();
  EXPECT_EQ(wf->kind, WorkflowKind::kWorkflowTemplate);
  EXPECT_EQ(wf->templates[0].type, TemplateType::kScript);
  EXPECT_EQ(wf->templates[0].script->source, "print(1)");
  EXPECT_EQ(wf->templates[0].script->container.image, "python");
}

TEST(ParserTest, RejectsWrongApiVersionKindAndMissingSpec) {
  EXPECT_THAT(ParseError("apiVersion: v1\nkind: Workflow\nspec: {}\n"),
              StartsWith("wf.yaml:1:13: apiVersion: unsupported apiVersion 'v1'; dagd reads "
                         "argoproj.io/v1alpha1"));
  EXPECT_THAT(ParseError("apiVersion: argoproj.io/v1alpha1\nkind: Pod\nspec: {}\n"),
              StartsWith("wf.yaml:2:7: kind: unsupported kind 'Pod'"));
  EXPECT_THAT(ParseError("kind: Workflow\nspec: {}\n"), HasSubstr("apiVersion: missing"));
  EXPECT_THAT(ParseError("apiVersion: argoproj.io/v1alpha1\nkind: Workflow\n"),
              StartsWith("wf.yaml:1:1: spec: missing"));
}

TEST(ParserTest, MalformedYamlNamesTheLine) {
  EXPECT_EQ(ParseError("spec:\n  a: 1\n   b: 2\n"),
            "wf.yaml:3:5: malformed YAML: illegal map value");
  EXPECT_EQ(ParseError("a: [1, 2\n"),
            "wf.yaml:2:1: malformed YAML: end of sequence flow not found");
}

TEST(ParserTest, MalformedYamlNamesAnUnclosedQuote) {
  // The YAML parser stops at line 4, where the quote opened on line 2 finally closes.
  EXPECT_EQ(ParseError("spec:\n  a: \"x\n  b: 1\n  c: \"y\"\n"),
            "wf.yaml:2:6: malformed YAML: this double quote is never closed (the YAML parser "
            "stopped at line 4: end of map not found); add the closing quote");
  // A quoted string may span lines: a balanced pair before the error is not blamed.
  EXPECT_THAT(ParseError("a: \"x\n  y\"\nb: [1\n"), StartsWith("wf.yaml:4:1: malformed YAML:"));
}

TEST(ParserTest, MalformedYamlThatStallsYamlCppIsAnError) {
  // yaml-cpp 0.7's LoadAll never returns on these: its parser reports the `,` as an empty
  // document again and again without reading past it (found by tests/fuzz, which keeps them in
  // regressions/parse_workflow_fuzz/).
  EXPECT_EQ(ParseError("\n,\n"),
            "wf.yaml:2:1: malformed YAML: unexpected ','; a value cannot start with it (quote it "
            "if it is text)");
  EXPECT_THAT(ParseError(WithTemplates("  - name: main\n    suspend: {}\n") + "---\n,\n"),
              StartsWith("wf.yaml:10:1: malformed YAML: unexpected ','"));
}

TEST(ParserTest, RejectsEmptyAndMultiDocumentFiles) {
  EXPECT_THAT(ParseError(""), HasSubstr("the file holds no workflow"));
  EXPECT_THAT(ParseError("# only a comment\n"), HasSubstr("the file holds no workflow"));
  EXPECT_THAT(
      ParseError(WithTemplates("  - name: main\n    suspend: {}\n") +
                 "---\napiVersion: argoproj.io/v1alpha1\n"),
      AllOf(StartsWith("wf.yaml:10:1: (document 2)"), HasSubstr("a file holds one workflow")));
}

TEST(ParserTest, UnknownFieldSuggestsTheClosestKnownOne) {
  const std::string yaml = WithTemplates(R"(  - name: main
    dag:
      tasks:
      - name: a
        template: t
        dependecies: [b]
)");
  EXPECT_EQ(ParseError(yaml),
            "wf.yaml:12:9: spec.templates[0].dag.tasks[0].dependecies: unknown field; did you "
            "mean 'dependencies'?");
}

TEST(ParserTest, UnknownFieldWithoutCloseMatchListsKnownFields) {
  const std::string yaml = WithTemplates(R"(  - name: main
    retryStrategy:
      attempts: 3
    container: {image: alpine}
)");
  EXPECT_EQ(ParseError(yaml),
            "wf.yaml:9:7: spec.templates[0].retryStrategy.attempts: unknown field; known fields "
            "are: affinity, backoff, expression, limit, retryPolicy");
}

TEST(ParserTest, UnknownTopLevelAndMetadataFields) {
  EXPECT_THAT(ParseError("apiVersion: argoproj.io/v1alpha1\nkind: Workflow\nspce: {}\nspec: {}\n"),
              StartsWith("wf.yaml:3:1: spce: unknown field; did you mean 'spec'?"));
  EXPECT_THAT(ParseError("apiVersion: argoproj.io/v1alpha1\nkind: Workflow\n"
                         "metadata: {lables: {}}\nspec: {}\n"),
              StartsWith("wf.yaml:3:12: metadata.lables: unknown field; did you mean 'labels'?"));
}

TEST(ParserTest, DuplicateKeyIsAnError) {
  const std::string yaml = WithTemplates(R"(  - name: main
    container: {image: alpine}
    name: again
)");
  EXPECT_THAT(ParseError(yaml), StartsWith("wf.yaml:9:5: spec.templates[0].name: duplicate field"));
}

TEST(ParserTest, WrongShapesAreErrors) {
  EXPECT_THAT(ParseError(WithTemplates("  - name: main\n    dag: {tasks: {a: 1}}\n")),
              HasSubstr("spec.templates[0].dag.tasks: must be a list"));
  EXPECT_THAT(ParseError(WithTemplates("  - name: main\n    dag: {}\n")),
              HasSubstr("spec.templates[0].dag.tasks: missing; a dag needs a list of tasks"));
  EXPECT_THAT(ParseError(WithTemplates("  - name: main\n    parallelism: two\n    suspend: {}\n")),
              HasSubstr("spec.templates[0].parallelism: must be a whole number"));
  EXPECT_THAT(ParseError(WithTemplates("  - name: main\n    container: [alpine]\n")),
              HasSubstr("spec.templates[0].container: must be a mapping of fields"));
  EXPECT_THAT(ParseError(WithTemplates("  - name: main\n    container:\n      image: {a: 1}\n")),
              HasSubstr("spec.templates[0].container.image: must be a string"));
  EXPECT_THAT(ParseError(WithTemplates("  - container: {image: alpine}\n")),
              HasSubstr("spec.templates[0].name: missing"));
  EXPECT_THAT(
      ParseError(WithTemplates("  - name: main\n    dag:\n      tasks:\n      - template: x\n")),
      HasSubstr("spec.templates[0].dag.tasks[0].name: missing; every task needs a name"));
}

TEST(ParserTest, TemplateNeedsExactlyOneType) {
  EXPECT_EQ(ParseError(WithTemplates("  - name: main\n    inputs: {parameters: [{name: a}]}\n")),
            "wf.yaml:7:5: spec.templates[0]: template 'main' has no type; give it exactly one "
            "of: container, script, ansible, dag, steps, suspend, resource, http, plugin, "
            "containerSet, data");
  EXPECT_THAT(
      ParseError(WithTemplates(
          "  - name: main\n    container: {image: a}\n    script: {image: a, source: x}\n")),
      StartsWith("wf.yaml:9:13: spec.templates[0].script: template 'main' has both "
                 "'container' and 'script'; keep exactly one of:"));
}

TEST(ParserTest, ParameterValuesKeepTheirText) {
  absl::StatusOr<Workflow> wf = Parse(R"(apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata: {name: wf}
spec:
  entrypoint: main
  arguments:
    parameters:
    - {name: int, value: 3}
    - {name: bool, value: true}
    - {name: float, value: 1.50}
    - {name: quoted, value: "007"}
    - {name: map, value: {a: 1, b: [x, "2"]}}
    - {name: list, value: [1, two]}
    - {name: unset}
    - {name: defaulted, default: 5, enum: [5, 6], description: five or six}
  templates:
  - name: main
    suspend: {}
)");
  ASSERT_TRUE(wf.ok()) << wf.status();
  const std::vector<Parameter>& p = wf->arguments.parameters;
  ASSERT_EQ(p.size(), 8u);
  EXPECT_EQ(p[0].value, "3");
  EXPECT_EQ(p[1].value, "true");
  EXPECT_EQ(p[2].value, "1.50");
  EXPECT_EQ(p[3].value, "007");
  EXPECT_EQ(p[4].value, R"({"a":1,"b":["x","2"]})");
  EXPECT_EQ(p[5].value, R"([1,"two"])");
  EXPECT_FALSE(p[6].value.has_value());
  EXPECT_FALSE(p[6].default_value.has_value());
  EXPECT_EQ(p[7].default_value, "5");
  EXPECT_EQ(p[7].enum_values, (std::vector<std::string>{"5", "6"}));
  EXPECT_EQ(p[7].description, "five or six");
}

TEST(ParserTest, MapAndListValuesThatAreNotUtf8) {
  // Written as JSON with invalid UTF-8 replaced by U+FFFD, as Go's encoding/json does (json::dump
  // threw; found by tests/fuzz).
  absl::StatusOr<Workflow> wf = Parse(
      "apiVersion: argoproj.io/v1alpha1\nkind: Workflow\nmetadata: {name: wf}\nspec:\n"
      "  entrypoint: main\n  arguments:\n    parameters:\n"
      "    - {name: map, value: {a: \"x\xff\"}}\n    - {name: list, value: [\xfe]}\n"
      "  templates:\n  - name: main\n    suspend: {}\n");
  ASSERT_TRUE(wf.ok()) << wf.status();
  ASSERT_EQ(wf->arguments.parameters.size(), 2u);
  EXPECT_EQ(wf->arguments.parameters[0].value, "{\"a\":\"x\xef\xbf\xbd\"}");
  EXPECT_EQ(wf->arguments.parameters[1].value, "[\"\xef\xbf\xbd\"]");
}

TEST(ParserTest, OutputParametersReadValueFrom) {
  absl::StatusOr<Workflow> wf = Parse(WithTemplates(R"(  - name: main
    outputs:
      parameters:
      - name: a
        valueFrom: {path: /tmp/a, default: "none"}
      - name: b
        valueFrom: {stats: hosts}
      - name: c
        globalName: shared
        valueFrom: {expression: "1 + 1", configMapKeyRef: {name: cm, key: k}}
      artifacts:
      - {name: log, path: /tmp/log, globalName: the-log, optional: true, archive: {none: {}}}
      - name: part
        path: /mnt/out/part.json
        s3: {key: "{{workflow.name}}/results/part.json"}
        archive: {tar: {compressionLevel: 0}}
        mode: 493
    container: {image: alpine}
)"));
  ASSERT_TRUE(wf.ok()) << wf.status();
  const std::vector<Parameter>& out = wf->templates[0].outputs.parameters;
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(out[0].value_from->path, "/tmp/a");
  EXPECT_EQ(out[0].value_from->default_value, "none");
  EXPECT_EQ(out[1].value_from->stats, "hosts");
  EXPECT_EQ(out[2].value_from->expression, "1 + 1");
  EXPECT_EQ(out[2].global_name, "shared");
  EXPECT_EQ(out[2].unsupported["valueFrom"]["configMapKeyRef"]["key"], "k");
  EXPECT_TRUE(out[0].unsupported.is_null());
  const std::vector<Artifact>& artifacts = wf->templates[0].outputs.artifacts;
  ASSERT_EQ(artifacts.size(), 2u);
  EXPECT_EQ(artifacts[0].path, "/tmp/log");
  EXPECT_EQ(artifacts[0].global_name, "the-log");
  EXPECT_TRUE(artifacts[0].optional);
  EXPECT_TRUE(artifacts[0].archive_none);
  EXPECT_TRUE(artifacts[0].unsupported.is_null());
  EXPECT_EQ(artifacts[1].key, "{{workflow.name}}/results/part.json");  // a key-only artifact
  EXPECT_FALSE(artifacts[1].archive_none);
  EXPECT_EQ(artifacts[1].unsupported["mode"], 493);
  EXPECT_TRUE(wf->templates[0].kubernetes.is_null()) << wf->templates[0].kubernetes;
}

TEST(ParserTest, ConfigMapsAreReadForTheirData) {
  absl::StatusOr<Workflow> cm = ParseWorkflow(R"(apiVersion: v1
kind: ConfigMap
metadata: {name: my-config}
data:
  template: "3"
  workflow: 2
)",
                                              "cm.yaml");
  ASSERT_TRUE(cm.ok()) << cm.status();
  EXPECT_EQ(cm->kind, WorkflowKind::kConfigMap);
  EXPECT_EQ(cm->name, "my-config");
  EXPECT_EQ(cm->config_data,
            (std::map<std::string, std::string>{{"template", "3"}, {"workflow", "2"}}));
  EXPECT_THAT(ParseWorkflow("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n"
                            "data: {a: [1]}\n",
                            "cm.yaml")
                  .status()
                  .message(),
              HasSubstr("cm.yaml:4:11: data.a: must be a string"));
  EXPECT_THAT(ParseWorkflow("apiVersion: v1\nkind: Secret\n", "s.yaml").status().message(),
              HasSubstr("unsupported apiVersion 'v1'"));
}

TEST(ParserTest, MemoizeReadsKeyMaxAgeAndCache) {
  absl::StatusOr<Workflow> wf = Parse(WithTemplates(R"(  - name: main
    memoize:
      key: "{{inputs.parameters.n}}"
      maxAge: "120s"
      cache: {configMap: {name: fibonacci-m}}
    container: {image: alpine}
)"));
  ASSERT_TRUE(wf.ok()) << wf.status();
  ASSERT_TRUE(wf->templates[0].memoize.has_value());
  EXPECT_EQ(wf->templates[0].memoize->key, "{{inputs.parameters.n}}");
  EXPECT_EQ(wf->templates[0].memoize->max_age, "120s");
  EXPECT_EQ(wf->templates[0].memoize->cache, "fibonacci-m");
  EXPECT_TRUE(wf->templates[0].kubernetes.is_null());
}

TEST(ParserTest, ArtifactSourcesAndRepositories) {
  absl::StatusOr<Workflow> wf = Parse(WithTemplates(R"(  - name: main
    inputs:
      artifacts:
      - {name: text, path: /tmp/text, raw: {data: "hello"}}
      - {name: code, path: /src, git: {repo: "https://example.com/x.git"}}
    steps:
    - - name: use
        template: main
        arguments:
          artifacts:
          - {name: text, from: "{{steps.gen.outputs.artifacts.out}}", subPath: a/b.txt}
          - {name: code, s3: {key: my-file}}
)"));
  ASSERT_TRUE(wf.ok()) << wf.status();
  const std::vector<Artifact>& inputs = wf->templates[0].inputs.artifacts;
  ASSERT_EQ(inputs.size(), 2u);
  EXPECT_EQ(inputs[0].raw, "hello");
  EXPECT_EQ(inputs[1].unsupported["git"]["repo"], "https://example.com/x.git");
  EXPECT_TRUE(inputs[1].key.empty());
  const std::vector<Artifact>& args = wf->templates[0].steps->groups[0][0].arguments.artifacts;
  ASSERT_EQ(args.size(), 2u);
  EXPECT_EQ(args[0].from, "{{steps.gen.outputs.artifacts.out}}");
  EXPECT_EQ(args[0].sub_path, "a/b.txt");
  EXPECT_EQ(args[1].key, "my-file");
  // An s3 block with more than a key names a bucket elsewhere: kept for validation to refuse.
  absl::StatusOr<Workflow> bucket = Parse(WithTemplates(R"(  - name: main
    outputs:
      artifacts: [{name: a, path: /a, s3: {key: k, bucket: b}}]
    container: {image: alpine}
)"));
  ASSERT_TRUE(bucket.ok()) << bucket.status();
  EXPECT_TRUE(bucket->templates[0].outputs.artifacts[0].key.empty());
  EXPECT_EQ(bucket->templates[0].outputs.artifacts[0].unsupported["s3"]["bucket"], "b");
  // A misspelt field is named.
  absl::StatusOr<Workflow> typo = Parse(WithTemplates(R"(  - name: main
    outputs:
      artifacts: [{name: a, pathh: /a}]
    container: {image: alpine}
)"));
  ASSERT_FALSE(typo.ok());
  EXPECT_THAT(typo.status().message(), HasSubstr("outputs.artifacts[0].pathh: unknown field"));
}

TEST(ParserTest, TasksReadEveryModelledField) {
  absl::StatusOr<Workflow> wf = Parse(WithTemplates(R"(  - name: main
    dag:
      target: c
      failFast: false
      tasks:
      - name: a
        template: t
        withItems: [1, "2", 2.5, true, {k: v}, [x]]
      - name: b
        template: t
        dependencies: [a]
        when: "{{tasks.a.outputs.result}} == ok"
        continueOn: {failed: true, error: false}
        withParam: "{{tasks.a.outputs.result}}"
        arguments:
          parameters: [{name: p, value: "{{item}}"}]
          artifacts: [{name: art, from: x}]
      - name: c
        depends: "a.Succeeded || b.Failed"
        templateRef: {name: lib, template: t}
        withSequence: {count: "3"}
        onExit: cleanup
  - name: t
    container: {image: alpine}
)"));
  ASSERT_TRUE(wf.ok()) << wf.status();
  const DagTemplate& dag = *wf->templates[0].dag;
  EXPECT_EQ(dag.target, "c");
  EXPECT_EQ(dag.fail_fast, false);
  ASSERT_EQ(dag.tasks.size(), 3u);
  EXPECT_EQ(dag.tasks[0].with_items,
            (std::vector<nlohmann::json>{1, "2", 2.5, true, {{"k", "v"}}, {"x"}}));
  const DagTask& b = dag.tasks[1];
  EXPECT_EQ(b.template_name, "t");
  EXPECT_EQ(b.dependencies, (std::vector<std::string>{"a"}));
  EXPECT_EQ(b.when, "{{tasks.a.outputs.result}} == ok");
  EXPECT_TRUE(b.continue_on.failed);
  EXPECT_FALSE(b.continue_on.error);
  EXPECT_EQ(b.with_param, "{{tasks.a.outputs.result}}");
  EXPECT_EQ(b.arguments.parameters[0].value, "{{item}}");
  EXPECT_EQ(b.arguments.artifacts[0].name, "art");
  EXPECT_EQ(b.arguments.artifacts[0].from, "x");
  EXPECT_TRUE(b.hooks.empty());
  const DagTask& c = dag.tasks[2];
  EXPECT_EQ(c.depends, "a.Succeeded || b.Failed");
  ASSERT_TRUE(c.template_ref.has_value());
  EXPECT_EQ(c.template_ref->name, "lib");
  EXPECT_EQ(c.template_ref->template_name, "t");
  EXPECT_FALSE(c.template_ref->cluster_scope);
  EXPECT_EQ(c.template_ref->path, "spec.templates[0].dag.tasks[2].templateRef");
  ASSERT_TRUE(c.with_sequence.has_value());
  EXPECT_EQ(c.with_sequence->count, "3");
  ASSERT_TRUE(c.exit_hook.has_value());
  EXPECT_EQ(c.exit_hook->template_name, "cleanup");
}

TEST(ParserTest, ReadsRetryStrategy) {
  absl::StatusOr<Workflow> wf = Parse(WithTemplates(R"(  - name: main
    retryStrategy:
      limit: 3
      retryPolicy: OnTransientError
      expression: "lastRetry.status == 'Error'"
      affinity: {nodeAntiAffinity: {}}
      backoff: {duration: "5s", factor: "2", maxDuration: 1m, cap: 30s}
    container: {image: alpine}
  - name: other
    retryStrategy: {limit: "{{inputs.parameters.n}}", backoff: {duration: 1, factor: 1.5}}
    container: {image: alpine}
)"));
  ASSERT_TRUE(wf.ok()) << wf.status();
  const RetryStrategy& r = *wf->templates[0].retry_strategy;
  EXPECT_EQ(r.limit, "3");
  EXPECT_EQ(r.policy, RetryPolicy::kOnTransientError);
  EXPECT_EQ(r.expression, "lastRetry.status == 'Error'");
  EXPECT_EQ(r.backoff->duration, "5s");
  EXPECT_EQ(r.backoff->factor, 2);
  EXPECT_EQ(r.backoff->max_duration, "1m");
  EXPECT_EQ(r.location.line, 9);
  EXPECT_EQ(r.location.column, 7);
  EXPECT_EQ(wf->templates[0].kubernetes["retryStrategy"]["backoff"]["cap"], "30s");
  EXPECT_TRUE(wf->templates[0].kubernetes["retryStrategy"].contains("affinity"));
  const RetryStrategy& other = *wf->templates[1].retry_strategy;
  EXPECT_EQ(other.limit, "{{inputs.parameters.n}}");
  EXPECT_EQ(other.policy, RetryPolicy::kOnFailure);
  EXPECT_EQ(other.backoff->duration, "1");
  EXPECT_EQ(other.backoff->factor, 1.5);
}

TEST(ParserTest, RejectsBadRetryPolicyAndFactor) {
  EXPECT_EQ(ParseError(WithTemplates(
                "  - name: main\n    retryStrategy: {retryPolicy: Sometimes}\n    suspend: {}\n")),
            "wf.yaml:8:34: spec.templates[0].retryStrategy.retryPolicy: unknown retryPolicy "
            "'Sometimes'; use one of: Always, OnFailure, OnError, OnTransientError");
  EXPECT_THAT(ParseError(WithTemplates("  - name: main\n    retryStrategy: {backoff: {factor: "
                                       "double}}\n    suspend: {}\n")),
              HasSubstr("spec.templates[0].retryStrategy.backoff.factor: must be a number"));
}

TEST(ParserTest, ReadsAnsibleTemplates) {
  absl::StatusOr<Workflow> wf = Parse(WithTemplates(R"(  - name: main
    runner: local
    ansible:
      playbook: site.yml
      inventory: "localhost,"
      limit: web
      extraVars:
        host: "{{ ansible_host }}"
        count: 2
        flags: {debug: true}
        list: [a, 1]
      env:
      - {name: ANSIBLE_FORCE_COLOR, value: "1"}
)"));
  ASSERT_TRUE(wf.ok()) << wf.status();
  const Template& t = wf->templates[0];
  EXPECT_EQ(t.type, TemplateType::kAnsible);
  EXPECT_EQ(t.runner, "local");
  EXPECT_EQ(t.ansible->playbook, "site.yml");
  EXPECT_EQ(t.ansible->inventory, "localhost,");
  EXPECT_EQ(t.ansible->limit, "web");
  EXPECT_EQ(t.ansible->extra_vars.at("host"), "{{ ansible_host }}");
  EXPECT_EQ(t.ansible->extra_vars.at("count"), 2);
  EXPECT_EQ(t.ansible->extra_vars.at("flags"), nlohmann::json({{"debug", true}}));
  EXPECT_EQ(t.ansible->extra_vars.at("list"), nlohmann::json({"a", 1}));
  ASSERT_EQ(t.ansible->env.size(), 1u);
  EXPECT_EQ(t.ansible->env[0].name, "ANSIBLE_FORCE_COLOR");
  EXPECT_EQ(t.ansible->env[0].value, "1");
}

TEST(ParserTest, AnsibleNeedsExactlyOnePlaybookOrSource) {
  EXPECT_THAT(ParseError(WithTemplates("  - name: main\n    ansible: {inventory: x}\n")),
              HasSubstr("spec.templates[0].ansible: needs exactly one of 'playbook' or 'source'"));
  EXPECT_THAT(
      ParseError(WithTemplates("  - name: main\n    ansible: {playbook: a.yml, source: x}\n")),
      HasSubstr("needs exactly one of 'playbook' or 'source'"));
  EXPECT_THAT(ParseError(WithTemplates("  - name: main\n    ansible: {playbook: a, vars: {}}\n")),
              HasSubstr("spec.templates[0].ansible.vars: unknown field; known fields are: "
                        "playbook, source, inventory, extraVars, limit, env, check, diff, "
                        "tags, skipTags, forks, verbosity, become, becomeUser, "
                        "hostKeyChecking, vaultPasswordRef, privateKeyRef, becomePasswordRef, "
                        "envFromRef"));
}

TEST(ParserTest, ReadsAnsibleCommandLineFields) {
  absl::StatusOr<Workflow> wf = Parse(WithTemplates(R"(  - name: main
    ansible:
      playbook: site.yml
      check: true
      diff: true
      tags: [web, "{{inputs.parameters.extra}}"]
      skipTags: "slow, db"
      forks: 7
      verbosity: 3
      become: true
      becomeUser: deploy
      hostKeyChecking: true
)"));
  ASSERT_TRUE(wf.ok()) << wf.status();
  const AnsibleSpec& a = *wf->templates[0].ansible;
  EXPECT_TRUE(a.check);
  EXPECT_TRUE(a.diff);
  EXPECT_THAT(a.tags, ElementsAre("web", "{{inputs.parameters.extra}}"));
  EXPECT_THAT(a.skip_tags, ElementsAre("slow, db"));
  EXPECT_EQ(a.forks, 7);
  EXPECT_EQ(a.verbosity, 3);
  EXPECT_TRUE(a.become);
  EXPECT_EQ(a.become_user, "deploy");
  EXPECT_TRUE(a.host_key_checking);
}

TEST(ParserTest, ReadsAnsibleCredentialReferences) {
  absl::StatusOr<Workflow> wf = Parse(WithTemplates(R"(  - name: main
    ansible:
      playbook: site.yml
      vaultPasswordRef: vault-pass
      privateKeyRef: deploy.key
      becomePasswordRef: "{{inputs.parameters.who}}"
      envFromRef: [api-token, db_env]
  - name: one
    ansible:
      playbook: site.yml
      envFromRef: api-token
  - name: none
    ansible:
      playbook: site.yml
      envFromRef: ~
)"));
  ASSERT_TRUE(wf.ok()) << wf.status();
  const AnsibleSpec& a = *wf->templates[0].ansible;
  EXPECT_EQ(a.vault_password_ref, "vault-pass");
  EXPECT_EQ(a.private_key_ref, "deploy.key");
  EXPECT_EQ(a.become_password_ref, "{{inputs.parameters.who}}");
  EXPECT_THAT(a.env_from_refs, ElementsAre("api-token", "db_env"));
  EXPECT_THAT(wf->templates[1].ansible->env_from_refs, ElementsAre("api-token"));
  EXPECT_TRUE(wf->templates[2].ansible->env_from_refs.empty());
  EXPECT_EQ(wf->field_locations.at("spec.templates[0].ansible.envFromRef[1]").line, 13);
}

TEST(ParserTest, AnsibleCommandLineFieldsDefaultOff) {
  absl::StatusOr<Workflow> wf =
      Parse(WithTemplates("  - name: main\n    ansible: {playbook: site.yml}\n"));
  ASSERT_TRUE(wf.ok()) << wf.status();
  const AnsibleSpec& a = *wf->templates[0].ansible;
  EXPECT_FALSE(a.check);
  EXPECT_FALSE(a.diff);
  EXPECT_TRUE(a.tags.empty());
  EXPECT_TRUE(a.skip_tags.empty());
  EXPECT_FALSE(a.forks.has_value());
  EXPECT_EQ(a.verbosity, 0);
  EXPECT_FALSE(a.become);
  EXPECT_EQ(a.become_user, "");
  EXPECT_FALSE(a.host_key_checking);
  EXPECT_EQ(a.vault_password_ref, "");
  EXPECT_EQ(a.private_key_ref, "");
  EXPECT_EQ(a.become_password_ref, "");
  EXPECT_TRUE(a.env_from_refs.empty());
}

TEST(ParserTest, RejectsBadAnsibleCommandLineFields) {
  auto error = [](const std::string& field) {
    return ParseError(
        WithTemplates("  - name: main\n    ansible: {playbook: a.yml, " + field + "}\n"));
  };
  EXPECT_THAT(error("check: maybe"),
              HasSubstr("spec.templates[0].ansible.check: must be true or false"));
  EXPECT_THAT(error("diff: 1"), HasSubstr("spec.templates[0].ansible.diff: must be true or false"));
  EXPECT_THAT(error("become: sure"),
              HasSubstr("spec.templates[0].ansible.become: must be true or false"));
  EXPECT_THAT(error("hostKeyChecking: strict"),
              HasSubstr("spec.templates[0].ansible.hostKeyChecking: must be true or false"));
  EXPECT_THAT(error("tags: {a: b}"),
              HasSubstr("spec.templates[0].ansible.tags: must be a list of tags or a "
                        "comma-separated string"));
  EXPECT_THAT(error("skipTags: [[a]]"), HasSubstr("spec.templates[0].ansible.skipTags[0]"));
  EXPECT_THAT(error("becomeUser: [root]"),
              HasSubstr("spec.templates[0].ansible.becomeUser: must be a string"));
  EXPECT_THAT(error("vaultPasswordRef: {name: v}"),
              HasSubstr("spec.templates[0].ansible.vaultPasswordRef: must be a string"));
  EXPECT_THAT(error("privateKeyRef: [k]"),
              HasSubstr("spec.templates[0].ansible.privateKeyRef: must be a string"));
  EXPECT_THAT(error("becomePasswordRef: [p]"),
              HasSubstr("spec.templates[0].ansible.becomePasswordRef: must be a string"));
  EXPECT_THAT(error("envFromRef: {a: b}"),
              HasSubstr("spec.templates[0].ansible.envFromRef: must be a credential name or a "
                        "list of them"));
  EXPECT_THAT(error("envFromRef: [[a]]"),
              HasSubstr("spec.templates[0].ansible.envFromRef[0]: must be a string"));
  EXPECT_THAT(error("forks: many"),
              HasSubstr("spec.templates[0].ansible.forks: must be a whole number"));
  EXPECT_THAT(error("forks: 0"), HasSubstr("spec.templates[0].ansible.forks: must be at least 1"));
  EXPECT_THAT(error("verbosity: 5"),
              HasSubstr("spec.templates[0].ansible.verbosity: must be between 0 and 4"));
  EXPECT_THAT(error("verbosity: -1"),
              HasSubstr("spec.templates[0].ansible.verbosity: must be between 0 and 4"));
  EXPECT_THAT(error("verbosity: loud"),
              HasSubstr("spec.templates[0].ansible.verbosity: must be a whole number"));
}

TEST(ParserTest, KeepsKubernetesFieldsVerbatim) {
  absl::StatusOr<Workflow> wf = Parse(R"(apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata: {name: wf}
spec:
  entrypoint: main
  serviceAccountName: runner
  volumes: [{name: work, emptyDir: {}}]
  podGC: {strategy: OnPodSuccess}
  arguments:
    artifacts: [{name: a, raw: {data: x}}]
  templates:
  - name: main
    nodeSelector: {disk: ssd}
    synchronization: {mutex: {name: m}}
    container:
      image: alpine
      workingDir: /work
      env:
      - {name: A, value: "1"}
      - name: SECRET
        valueFrom: {secretKeyRef: {name: s, key: k}}
      resources: {limits: {cpu: 100m, memory: 64Mi}, requests: {cpu: 0.5}}
      securityContext: {runAsNonRoot: true, runAsUser: 1000}
      imagePullPolicy: Always
)");
  ASSERT_TRUE(wf.ok()) << wf.status();
  EXPECT_EQ(wf->kubernetes["serviceAccountName"], "runner");
  EXPECT_EQ(wf->kubernetes["volumes"][0]["emptyDir"], nlohmann::json::object());
  EXPECT_EQ(wf->kubernetes["podGC"]["strategy"], "OnPodSuccess");
  EXPECT_EQ(wf->arguments.artifacts[0].raw, "x");
  const Template& t = wf->templates[0];
  EXPECT_EQ(t.kubernetes["nodeSelector"]["disk"], "ssd");
  ASSERT_TRUE(t.synchronization.has_value());
  EXPECT_EQ(t.synchronization->mutexes, std::vector<std::string>{"m"});
  const ContainerSpec& c = *t.container;
  EXPECT_EQ(c.working_dir, "/work");
  ASSERT_EQ(c.env.size(), 1u);  // SECRET exists only on Kubernetes
  EXPECT_EQ(c.env[0].name, "A");
  EXPECT_EQ(c.kubernetes["env"][1]["valueFrom"]["secretKeyRef"]["key"], "k");
  EXPECT_EQ(c.kubernetes["resources"]["limits"]["cpu"], "100m");
  EXPECT_EQ(c.kubernetes["resources"]["requests"]["cpu"], 0.5);
  EXPECT_EQ(c.kubernetes["securityContext"]["runAsUser"], 1000);
  EXPECT_EQ(c.kubernetes["securityContext"]["runAsNonRoot"], true);
  EXPECT_EQ(c.kubernetes["imagePullPolicy"], "Always");
}

TEST(ParserTest, ReadsStepsSuspendAndUnsupportedTypes) {
  absl::StatusOr<Workflow> wf = Parse(WithTemplates(R"(  - name: main
    steps:
    - - {name: a, template: s, arguments: {parameters: [{name: x, value: 1}]}}
    - - {name: b, template: s}
      - {name: c, template: s, when: "{{steps.a.outputs.result}} == 1"}
  - name: s
    suspend: {duration: 10s}
  - name: k
    resource: {action: create, manifest: "kind: ConfigMap"}
  - name: h
    http: {url: "http://example.com"}
)"));
  ASSERT_TRUE(wf.ok()) << wf.status();
  EXPECT_EQ(wf->templates[0].type, TemplateType::kSteps);
  ASSERT_TRUE(wf->templates[0].steps.has_value());
  const std::vector<std::vector<DagTask>>& groups = wf->templates[0].steps->groups;
  ASSERT_EQ(groups.size(), 2u);
  ASSERT_EQ(groups[1].size(), 2u);
  EXPECT_EQ(groups[0][0].arguments.parameters[0].value, "1");
  EXPECT_EQ(groups[1][1].name, "c");
  EXPECT_EQ(groups[1][1].template_name, "s");
  EXPECT_EQ(groups[1][1].when, "{{steps.a.outputs.result}} == 1");
  EXPECT_EQ(wf->templates[1].type, TemplateType::kSuspend);
  ASSERT_TRUE(wf->templates[1].suspend.has_value());
  EXPECT_EQ(wf->templates[1].suspend->duration, "10s");
  EXPECT_EQ(wf->templates[2].type, TemplateType::kUnsupported);
  EXPECT_EQ(wf->templates[2].kubernetes["resource"]["action"], "create");
  EXPECT_EQ(wf->templates[3].type, TemplateType::kUnsupported);
  EXPECT_EQ(wf->templates[3].kubernetes["http"]["url"], "http://example.com");
}

TEST(ParserTest, ChecksFieldsInsideSteps) {
  EXPECT_EQ(ParseError(WithTemplates(R"(  - name: main
    steps:
    - - name: a
        templat: s
)")),
            "wf.yaml:10:9: spec.templates[0].steps[0][0].templat: unknown field; did you mean "
            "'template'?");
  EXPECT_THAT(ParseError(WithTemplates("  - name: main\n    steps: [{name: a}]\n")),
              HasSubstr("spec.templates[0].steps[0]: must be a list"));
  EXPECT_THAT(
      ParseError(WithTemplates(
          "  - name: main\n    steps: [[{name: a, arguments: {parameters: [{nam: x}]}}]]\n")),
      HasSubstr("spec.templates[0].steps[0][0].arguments.parameters[0].nam: unknown field"));
}

TEST(ParserTest, ReadsExitHooks) {
  absl::StatusOr<Workflow> wf = Parse(WithTemplates(R"(  - name: main
    steps:
    - - name: a
        template: t
        hooks:
          exit:
            template: bye
            arguments: {parameters: [{name: m, value: "{{steps.a.outputs.result}}"}]}
          running: {expression: "steps.a.status == 'Running'", template: t}
  - name: t
    container: {image: alpine}
)"));
  ASSERT_TRUE(wf.ok()) << wf.status();
  const DagTask& a = wf->templates[0].steps->groups[0][0];
  ASSERT_TRUE(a.exit_hook.has_value());
  EXPECT_EQ(a.exit_hook->template_name, "bye");
  EXPECT_EQ(a.exit_hook->arguments.parameters[0].value, "{{steps.a.outputs.result}}");
  EXPECT_EQ(a.exit_hook->name, "exit");
  EXPECT_EQ(a.exit_hook->expression, "");
  ASSERT_EQ(a.hooks.size(), 1u);
  EXPECT_EQ(a.hooks[0].name, "running");
  EXPECT_EQ(a.hooks[0].expression, "steps.a.status == 'Running'");
  EXPECT_EQ(a.hooks[0].template_name, "t");
  EXPECT_THAT(ParseError(WithTemplates(R"(  - name: main
    steps:
    - - {name: a, template: t, hooks: {failed: {template: t}}}
)")),
              HasSubstr("steps[0][0].hooks.failed.expression: missing; say when the hook runs"));
  EXPECT_THAT(ParseError(WithTemplates(R"(  - name: main
    steps:
    - - {name: a, template: t, onExit: t, hooks: {exit: {template: t}}}
)")),
              HasSubstr("hooks.exit: a second exit hook (onExit is one too)"));
  EXPECT_THAT(ParseError(WithTemplates(R"(  - name: main
    steps:
    - - {name: a, template: t, hooks: {x: {expression: "true", template: t, when: y}}}
)")),
              HasSubstr("steps[0][0].hooks.x.when: unknown field"));
  EXPECT_THAT(ParseError(WithTemplates(R"(  - name: main
    steps:
    - - {name: a, template: t, hooks: {exit: {arguments: {}}}}
)")),
              HasSubstr("steps[0][0].hooks.exit.template: missing"));
}

TEST(ParserTest, InlineTemplatesAreHoistedUnderTheirCallersName) {
  absl::StatusOr<Workflow> wf = Parse(WithTemplates(R"(  - name: main
    steps:
    - - name: a
        inline:
          dag:
            tasks:
            - name: deep
              inline: {container: {image: alpine, command: [echo, deep]}}
)"));
  ASSERT_TRUE(wf.ok()) << wf.status();
  ASSERT_EQ(wf->templates.size(), 3u);
  const DagTask& a = wf->templates[0].steps->groups[0][0];
  EXPECT_EQ(a.template_name, "main.a");
  EXPECT_EQ(a.inline_template, nullptr);
  const Template* hoisted = wf->FindTemplate("main.a");
  ASSERT_NE(hoisted, nullptr);
  EXPECT_EQ(hoisted->type, TemplateType::kDag);
  EXPECT_EQ(hoisted->dag->tasks[0].template_name, "main.a.deep");
  ASSERT_NE(wf->FindTemplate("main.a.deep"), nullptr);
  EXPECT_EQ(wf->FindTemplate("main.a.deep")->container->command[1], "deep");
}

TEST(ParserTest, RecordsSourceLocations) {
  absl::StatusOr<Workflow> wf = Parse(WithTemplates(R"(  - name: main
    inputs:
      parameters:
        - name: p
    dag:
      tasks:
      - name: a
        template: main
        arguments: {parameters: [{name: p, value: x}]}
)"));
  ASSERT_TRUE(wf.ok()) << wf.status();
  const Template& t = wf->templates[0];
  EXPECT_EQ(t.location.ToString(), "wf.yaml:7:5");
  EXPECT_EQ(t.inputs.parameters[0].location.ToString(), "wf.yaml:10:11");
  EXPECT_EQ(t.dag->tasks[0].location.ToString(), "wf.yaml:13:9");
  EXPECT_EQ(t.dag->tasks[0].arguments.parameters[0].location.ToString(), "wf.yaml:15:34");
  EXPECT_EQ(wf->field_locations.at("spec.entrypoint").ToString(), "wf.yaml:5:3");
  EXPECT_EQ(wf->field_locations.at("spec.templates[0].dag.tasks[0].template").ToString(),
            "wf.yaml:14:9");
}

// Argo's own examples: every Workflow must parse, and none may fail with "unknown field". The
// few that fail for another reason are listed with it; validate_test holds the stricter check
// for the DAG examples.
TEST(ParserTest, ArgoExamplesParse) {
  const std::map<std::string, std::string> kRejected = {
      {"k8s-patch-json-workflow.yaml",
       "writes metadata.annotations twice; dagd rejects duplicate keys, where the last would "
       "silently win"},
  };
  const std::filesystem::path dir =
      std::filesystem::path(DAGD_SOURCE_DIR) / ".." / "shared" / "conformance" / "argo-examples";
  ASSERT_TRUE(std::filesystem::is_directory(dir)) << dir;
  int workflows = 0;
  int parsed = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (entry.path().extension() != ".yaml") continue;
    const std::string name = entry.path().filename().string();
    const std::string text = ReadFile(entry.path());
    const std::vector<YAML::Node> docs = YAML::LoadAll(text);
    if (docs.empty() || !docs[0]["kind"] || docs[0]["kind"].Scalar() != "Workflow") continue;
    ++workflows;
    absl::StatusOr<Workflow> wf = ParseWorkflow(text, name);
    if (wf.ok()) {
      ++parsed;
      EXPECT_EQ(kRejected.count(name), 0u) << name << " now parses: remove it from kRejected";
      continue;
    }
    EXPECT_THAT(std::string(wf.status().message()), Not(HasSubstr("unknown field"))) << name;
    auto reason = kRejected.find(name);
    if (reason == kRejected.end()) {
      ADD_FAILURE() << wf.status();
    } else {
      std::cout << "rejected: " << name << " (" << reason->second << "): " << wf.status() << "\n";
    }
  }
  std::cout << "argo examples: " << parsed << "/" << workflows << " Workflow files parse\n";
  EXPECT_GE(parsed, 170);
}

TEST(ParserTest, ReadsEveryShapeOfSynchronization) {
  absl::StatusOr<Workflow> wf = Parse(R"(apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata: {generateName: sync-}
spec:
  entrypoint: main
  synchronization:
    mutex: {name: whole-run}
    semaphores:
    - configMapKeyRef: {name: my-config, key: workflow}
    - database: {key: shared}
  templates:
  - name: main
    synchronization:
      mutexes: [{name: a}, {name: "{{workflow.parameters.lock}}", database: true}]
      semaphore:
        configMapKeyRef: {name: my-config, key: template}
    container: {image: alpine, command: ["true"]}
)");
  ASSERT_TRUE(wf.ok()) << wf.status();
  EXPECT_EQ(wf->synchronization->mutexes, std::vector<std::string>{"whole-run"});
  // Argo's database locks are dagd's own (one daemon, one lock table).
  EXPECT_EQ(wf->synchronization->semaphores,
            (std::vector<std::string>{"my-config/workflow", "database/shared"}));
  const Synchronization& t = *wf->templates[0].synchronization;
  EXPECT_EQ(t.mutexes, (std::vector<std::string>{"a", "{{workflow.parameters.lock}}"}));
  EXPECT_EQ(t.semaphores, std::vector<std::string>{"my-config/template"});
  EXPECT_TRUE(t.unsupported.is_null());
  absl::StatusOr<Workflow> bad = Parse(R"(apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata: {generateName: sync-}
spec:
  entrypoint: main
  templates:
  - name: main
    synchronization:
      semaphores: [{configMapKeyRef: {name: my-config}}]
    container: {image: alpine, command: ["true"]}
)");
  EXPECT_THAT(std::string(bad.status().message()),
              HasSubstr("configMapKeyRef: needs name and key"));
  absl::StatusOr<Workflow> no_key = Parse(R"(apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata: {generateName: sync-}
spec:
  entrypoint: main
  templates:
  - name: main
    synchronization:
      semaphores: [{database: {}}]
    container: {image: alpine, command: ["true"]}
)");
  EXPECT_THAT(std::string(no_key.status().message()), HasSubstr("database.key: missing"));
}

}  // namespace
}  // namespace dagd::engine
