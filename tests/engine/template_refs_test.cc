#include "engine/template_refs.h"

#include <string>
#include <vector>

#include "engine/parser.h"
#include "engine/validate.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace dagd::engine {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

// As ../shared/conformance/argo-examples/workflow-template/templates.yaml: a template that
// calls one of its own document and one of another WorkflowTemplate.
constexpr char kLibrary[] = R"(apiVersion: argoproj.io/v1alpha1
kind: WorkflowTemplate
metadata:
  name: print
spec:
  entrypoint: print-message
  arguments:
    parameters:
    - name: message
      value: from the template
  templates:
  - name: print-message
    inputs:
      parameters:
      - name: message
    container:
      image: busybox
      command: [echo, "{{inputs.parameters.message}}"]
---
apiVersion: argoproj.io/v1alpha1
kind: WorkflowTemplate
metadata:
  name: inner
spec:
  templates:
  - name: local-echo
    container:
      image: busybox
      command: [echo, local]
  - name: inner-steps
    steps:
    - - name: first
        template: local-echo
    - - name: second
        templateRef:
          name: print
          template: print-message
        arguments:
          parameters:
          - name: message
            value: second
---
apiVersion: argoproj.io/v1alpha1
kind: ClusterWorkflowTemplate
metadata:
  name: cluster-print
spec:
  templates:
  - name: print-message
    inputs:
      parameters:
      - name: message
    container:
      image: busybox
      command: [echo, "{{inputs.parameters.message}}"]
)";

TemplateLibrary Library() {
  absl::StatusOr<std::vector<Workflow>> documents = ParseWorkflowDocuments(kLibrary, "lib.yaml");
  EXPECT_TRUE(documents.ok()) << documents.status();
  TemplateLibrary library;
  for (Workflow& document : *documents) library.emplace(document.name, std::move(document));
  return library;
}

std::vector<std::string> TemplateNames(const Workflow& workflow) {
  std::vector<std::string> names;
  for (const Template& t : workflow.templates) names.push_back(t.name);
  return names;
}

Workflow MustResolve(const std::string& yaml) {
  absl::StatusOr<Workflow> workflow = ParseWorkflow(yaml, "wf.yaml");
  EXPECT_TRUE(workflow.ok()) << workflow.status();
  absl::Status resolved = ResolveTemplateRefs(&*workflow, Library());
  EXPECT_TRUE(resolved.ok()) << resolved;
  return *workflow;
}

absl::Status ResolveError(const std::string& yaml) {
  absl::StatusOr<Workflow> workflow = ParseWorkflow(yaml, "wf.yaml");
  EXPECT_TRUE(workflow.ok()) << workflow.status();
  return ResolveTemplateRefs(&*workflow, Library());
}

TEST(ParseWorkflowDocumentsTest, ReadsEveryDocumentWithTheFilesLineNumbers) {
  absl::StatusOr<std::vector<Workflow>> documents = ParseWorkflowDocuments(kLibrary, "lib.yaml");
  ASSERT_TRUE(documents.ok()) << documents.status();
  ASSERT_EQ(documents->size(), 3u);
  EXPECT_EQ((*documents)[1].name, "inner");
  EXPECT_EQ((*documents)[2].kind, WorkflowKind::kClusterWorkflowTemplate);
  // "name: inner-steps" is line 30 of the file.
  EXPECT_EQ((*documents)[1].templates[1].location.line, 30);
  // ParseWorkflow still takes one document only, naming the second.
  absl::StatusOr<Workflow> one = ParseWorkflow(kLibrary, "lib.yaml");
  EXPECT_THAT(one.status().message(), HasSubstr("lib.yaml:20:1: (document 2): a file holds one"));
}

TEST(SplitYamlDocumentsTest, CutsAtMarkersAndDropsEmptyDocuments) {
  const std::vector<YamlDocument> documents = SplitYamlDocuments(
      "# leading comment\n---\na: 1\n--- # a comment\nb: |\n  ---indented\n...\n---\n\n# "
      "c\n---\nc: 3");
  ASSERT_EQ(documents.size(), 3u);
  EXPECT_EQ(documents[0].text, "a: 1\n");
  EXPECT_EQ(documents[0].first_line, 3);
  EXPECT_EQ(documents[1].text, "b: |\n  ---indented\n");
  EXPECT_EQ(documents[1].first_line, 5);
  EXPECT_EQ(documents[2].text, "c: 3");
  EXPECT_EQ(documents[2].first_line, 12);
  EXPECT_EQ(SplitYamlDocuments(kLibrary).size(), ParseWorkflowDocuments(kLibrary, "f")->size());
}

TEST(ResolveTemplateRefsTest, ImportsTheTemplateAndWhatItCallsInItsOwnDocument) {
  const Workflow workflow = MustResolve(R"(apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata: {generateName: refs-}
spec:
  entrypoint: main
  templates:
  - name: main
    dag:
      tasks:
      - name: A
        templateRef: {name: print, template: print-message}
        arguments:
          parameters: [{name: message, value: A}]
      - name: B
        depends: A
        templateRef: {name: inner, template: inner-steps}
      - name: C
        depends: A
        templateRef: {name: cluster-print, template: print-message, clusterScope: true}
        arguments:
          parameters: [{name: message, value: C}]
)");
  // Each template once, whoever calls it; the local call of inner-steps follows it.
  EXPECT_THAT(TemplateNames(workflow),
              ElementsAre("main", "print/print-message", "inner/inner-steps",
                          "cluster-print/print-message", "inner/local-echo"));
  const DagTemplate& dag = *workflow.templates[0].dag;
  EXPECT_EQ(dag.tasks[0].template_name, "print/print-message");
  EXPECT_FALSE(dag.tasks[0].template_ref.has_value());
  EXPECT_EQ(dag.tasks[2].template_name, "cluster-print/print-message");
  const StepsTemplate& inner = *workflow.FindTemplate("inner/inner-steps")->steps;
  EXPECT_EQ(inner.groups[0][0].template_name, "inner/local-echo");
  EXPECT_EQ(inner.groups[1][0].template_name, "print/print-message");
  // The result is an ordinary workflow: validation checks the imported templates' inputs.
  EXPECT_THAT(FindWorkflowProblems(workflow), IsEmpty());
  // Imported templates keep where they were written (the library's lines).
  EXPECT_EQ(workflow.FindTemplate("inner/inner-steps")->location.line, 30);
  EXPECT_EQ(workflow.field_locations.at("spec.templates[2]").line, 30);
}

TEST(ResolveTemplateRefsTest, ValidationSeesTheImportedTemplatesInputs) {
  absl::StatusOr<Workflow> workflow = ParseWorkflow(R"(apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata: {generateName: refs-}
spec:
  entrypoint: main
  templates:
  - name: main
    steps:
    - - name: hello
        templateRef: {name: print, template: print-message}
)",
                                                    "wf.yaml");
  ASSERT_TRUE(workflow.ok());
  ASSERT_TRUE(ResolveTemplateRefs(&*workflow, Library()).ok());
  EXPECT_THAT(ValidateWorkflow(*workflow).message(),
              HasSubstr("wf.yaml:9:9: spec.templates[0].steps[0][0].arguments: task 'hello' does "
                        "not pass input parameter 'message' of template 'print/print-message'"));
}

TEST(ResolveTemplateRefsTest, NamesAMissingDocumentOrTemplateOrTheWrongScope) {
  constexpr char kHead[] = R"(apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata: {generateName: refs-}
spec:
  entrypoint: main
  templates:
  - name: main
    dag:
      tasks:
      - name: A
)";
  EXPECT_EQ(ResolveError(std::string(kHead) +
                         "        templateRef: {name: prnt, template: print-message}\n")
                .message(),
            "wf.yaml:11:9: spec.templates[0].dag.tasks[0].templateRef: WorkflowTemplate 'prnt' "
            "is not stored in dagd; apply it first (dagctl apply -f FILE), or correct the name");
  EXPECT_THAT(ResolveError(std::string(kHead) +
                           "        templateRef: {name: print, template: print-mesage}\n")
                  .message(),
              HasSubstr("templateRef.template: WorkflowTemplate 'print' has no template "
                        "'print-mesage'; did you mean 'print-message'?"));
  EXPECT_THAT(ResolveError(std::string(kHead) +
                           "        templateRef: {name: cluster-print, template: print-message}\n")
                  .message(),
              HasSubstr("'cluster-print' is a ClusterWorkflowTemplate, not a WorkflowTemplate; add "
                        "`clusterScope: true`"));
  EXPECT_THAT(ResolveError(std::string(kHead) +
                           "        templateRef: {name: print, template: print-message, "
                           "clusterScope: true}\n")
                  .message(),
              HasSubstr("'print' is a WorkflowTemplate, not a ClusterWorkflowTemplate"));
}

TEST(ResolveTemplateRefsTest, WorkflowTemplateRefJoinsTheSpecs) {
  const Workflow workflow = MustResolve(R"(apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata:
  generateName: joined-
  labels: {team: a}
spec:
  arguments:
    parameters:
    - name: message
      value: from the workflow
    - name: extra
      value: x
  workflowTemplateRef:
    name: print
)");
  EXPECT_EQ(workflow.kind, WorkflowKind::kWorkflow);
  EXPECT_EQ(workflow.generate_name, "joined-");
  EXPECT_EQ(workflow.labels.at("team"), "a");
  EXPECT_EQ(workflow.entrypoint, "print-message");
  EXPECT_FALSE(workflow.workflow_template_ref.has_value());
  ASSERT_EQ(workflow.arguments.parameters.size(), 2u);
  EXPECT_EQ(workflow.arguments.parameters[0].value, "from the workflow");
  EXPECT_EQ(workflow.arguments.parameters[1].name, "extra");
  EXPECT_THAT(TemplateNames(workflow), ElementsAre("print-message"));
  EXPECT_TRUE(ValidateWorkflow(workflow).ok());
}

TEST(ResolveTemplateRefsTest, AnUnresolvedReferenceFailsValidationWithTheFix) {
  absl::StatusOr<Workflow> workflow = ParseWorkflow(R"(apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata: {generateName: refs-}
spec:
  workflowTemplateRef: {name: print}
)",
                                                    "wf.yaml");
  ASSERT_TRUE(workflow.ok()) << workflow.status();
  EXPECT_THAT(ValidateWorkflow(*workflow).message(),
              HasSubstr("spec.workflowTemplateRef: refers to WorkflowTemplate 'print', which is "
                        "only known to a dagd that stores it; apply the template to dagd"));
}

TEST(ParseRunSpecTest, ReadsTheWorkflowAndTheDocumentsStoredWithIt) {
  constexpr char kWorkflow[] = R"(apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata: {generateName: refs-}
spec:
  entrypoint: main
  templates:
  - name: main
    steps:
    - - name: hello
        templateRef: {name: inner, template: inner-steps})";
  const std::vector<YamlDocument> library = SplitYamlDocuments(kLibrary);
  const std::string spec = JoinRunSpec(kWorkflow, {library[0].text, library[1].text});
  absl::StatusOr<Workflow> workflow = ParseRunSpec(spec, "run");
  ASSERT_TRUE(workflow.ok()) << workflow.status();
  EXPECT_THAT(TemplateNames(*workflow),
              ElementsAre("main", "inner/inner-steps", "inner/local-echo", "print/print-message"));
  EXPECT_TRUE(ValidateWorkflow(*workflow).ok());
  // A run spec without the document it needs names the reference.
  EXPECT_THAT(ParseRunSpec(JoinRunSpec(kWorkflow, {library[1].text}), "run").status().message(),
              HasSubstr("WorkflowTemplate 'print' is not stored in dagd"));
}

}  // namespace
}  // namespace dagd::engine
