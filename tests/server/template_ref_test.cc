// WorkflowTemplates over real gRPC: multi-document apply (all or nothing), templateRef and
// workflowTemplateRef resolved from the store at submit, and the run keeping its snapshot.
#include <gtest/gtest.h>

#include <string>

#include "absl/strings/match.h"
#include "tests/server/server_stack.h"

namespace dagd::server::testing {
namespace {

// Two WorkflowTemplates and a ClusterWorkflowTemplate; `inner` calls `print` by templateRef.
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
  - name: inner-steps
    steps:
    - - name: hello
        templateRef: {name: print, template: print-message}
        arguments:
          parameters: [{name: message, value: inner}]
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
      command: [echo, "cluster {{inputs.parameters.message}}"]
)";

constexpr char kCaller[] = R"(apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata:
  generateName: caller-
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
)";

class TemplateRefTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_NO_FATAL_FAILURE(stack_.Start()); }

  grpc::Status Apply(const std::string& yaml, v1::CreateWorkflowResponse* response) {
    v1::CreateWorkflowRequest request;
    request.set_yaml(yaml);
    request.set_file_name("lib.yaml");
    return stack_.workflows()->CreateWorkflow(ContextWithDeadline().get(), request, response);
  }

  bool Stored(const std::string& name) {
    v1::GetWorkflowRequest request;
    request.set_name(name);
    v1::Workflow out;
    return stack_.workflows()->GetWorkflow(ContextWithDeadline().get(), request, &out).ok();
  }

  grpc::Status Submit(const std::string& yaml, v1::Run* run) {
    v1::SubmitRunRequest request;
    request.set_spec_yaml(yaml);
    request.set_file_name("caller.yaml");
    return stack_.runs()->SubmitRun(ContextWithDeadline().get(), request, run);
  }

  v1::Run RunToFinish(const std::string& yaml) {
    v1::Run run;
    grpc::Status status = Submit(yaml, &run);
    EXPECT_TRUE(status.ok()) << status.error_message();
    WatchResult watched = WatchToEnd(stack_.runs(), run.id());
    EXPECT_TRUE(watched.status.ok()) << watched.status.error_message();
    return GetRun(stack_.runs(), run.id());
  }

  ServerStack stack_;
};

TEST_F(TemplateRefTest, ApplyStoresEveryDocumentWithItsKind) {
  v1::CreateWorkflowResponse response;
  grpc::Status status = Apply(kLibrary, &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_EQ(response.documents_size(), 3);
  EXPECT_EQ(response.documents(0).workflow().name(), "print");
  EXPECT_EQ(response.documents(0).workflow().kind(), "WorkflowTemplate");
  EXPECT_TRUE(response.documents(0).created());
  EXPECT_EQ(response.documents(2).workflow().kind(), "ClusterWorkflowTemplate");
  EXPECT_EQ(response.workflow().name(), "print");
  // Each document is stored as written, without the `---` between them.
  EXPECT_TRUE(absl::StartsWith(response.documents(1).workflow().yaml(), "apiVersion:"));
  EXPECT_FALSE(absl::StrContains(response.documents(1).workflow().yaml(), "---"));

  v1::CreateWorkflowResponse again;
  ASSERT_TRUE(Apply(kLibrary, &again).ok());
  for (const v1::AppliedDocument& document : again.documents()) {
    EXPECT_FALSE(document.created()) << document.workflow().name();
  }
}

TEST_F(TemplateRefTest, AFileWithOneBadDocumentStoresNothing) {
  // The third document refers to a template its WorkflowTemplate does not have.
  std::string bad = kLibrary;
  bad +=
      "---\n"
      "apiVersion: argoproj.io/v1alpha1\n"
      "kind: Workflow\n"
      "metadata: {name: broken}\n"
      "spec:\n"
      "  entrypoint: main\n"
      "  templates:\n"
      "  - name: main\n"
      "    steps:\n"
      "    - - name: a\n"
      "        templateRef: {name: print, template: print-mesage}\n";
  v1::CreateWorkflowResponse response;
  grpc::Status status = Apply(bad, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_TRUE(
      absl::StrContains(status.error_message(),
                        "lib.yaml:56:9: spec.templates[0].steps[0][0].templateRef.template: "
                        "WorkflowTemplate 'print' has no template 'print-mesage'; did you "
                        "mean 'print-message'?"))
      << status.error_message();
  EXPECT_FALSE(Stored("print"));
  EXPECT_FALSE(Stored("broken"));
}

TEST_F(TemplateRefTest, ANameKeepsItsKind) {
  v1::CreateWorkflowResponse response;
  ASSERT_TRUE(Apply(kLibrary, &response).ok());
  std::string as_workflow = OneTaskWorkflow("print", {"true"});
  grpc::Status status = Apply(as_workflow, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_TRUE(absl::StrContains(status.error_message(),
                                "\"print\" is stored as a WorkflowTemplate; a name keeps its kind"))
      << status.error_message();
}

TEST_F(TemplateRefTest, TemplateRefsRunTheStoredTemplatesAndTheRunKeepsItsSnapshot) {
  v1::CreateWorkflowResponse applied;
  ASSERT_TRUE(Apply(kLibrary, &applied).ok());
  v1::Run run = RunToFinish(kCaller);
  EXPECT_EQ(run.phase(), v1::PHASE_SUCCEEDED) << run.message();
  const v1::Node* a = FindNode(run, "A");
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->template_name(), "print/print-message");
  ASSERT_TRUE(a->has_result());
  EXPECT_EQ(a->result(), "A");
  const v1::Node* inner = FindNode(run, "hello");  // B's steps, through inner's templateRef
  ASSERT_NE(inner, nullptr);
  EXPECT_EQ(inner->result(), "inner");
  const v1::Node* c = FindNode(run, "C");
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->result(), "cluster C");
  // The run keeps the documents it used after them: the caller first, as submitted.
  EXPECT_TRUE(absl::StartsWith(run.spec_yaml(), kCaller));
  EXPECT_TRUE(absl::StrContains(run.spec_yaml(), "name: cluster-print"));

  // A later version of a template changes later runs only.
  std::string changed = kLibrary;
  changed.insert(changed.find("[echo, \"") + 8, "v2 ");
  ASSERT_TRUE(Apply(changed, &applied).ok());
  EXPECT_EQ(GetRun(stack_.runs(), run.id()).spec_yaml(), run.spec_yaml());
  v1::Run second = RunToFinish(kCaller);
  EXPECT_EQ(FindNode(second, "A")->result(), "v2 A");
}

TEST_F(TemplateRefTest, AReferenceToNothingStoredIsRefusedNamingItsLine) {
  v1::Run run;
  grpc::Status status = Submit(kCaller, &run);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_TRUE(absl::StrContains(status.error_message(),
                                "caller.yaml:12:9: spec.templates[0].dag.tasks[0].templateRef: "
                                "WorkflowTemplate 'print' is not stored in dagd; apply it first"))
      << status.error_message();
}

TEST_F(TemplateRefTest, ASubmittedSpecIsOneDocument) {
  // Further documents of a run's spec are dagd's to add: a submission carries one workflow.
  v1::Run run;
  grpc::Status status = Submit(std::string(kCaller) + "---\n" + kLibrary, &run);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_TRUE(absl::StrContains(status.error_message(),
                                "caller.yaml:24:1: (document 2): a file holds one workflow"))
      << status.error_message();
}

TEST_F(TemplateRefTest, WorkflowTemplateRefRunsTheTemplateWithTheWorkflowsArguments) {
  v1::CreateWorkflowResponse applied;
  ASSERT_TRUE(Apply(kLibrary, &applied).ok());
  v1::Run run = RunToFinish(R"(apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata:
  generateName: via-ref-
spec:
  arguments:
    parameters:
    - name: message
      value: from the workflow
  workflowTemplateRef:
    name: print
)");
  EXPECT_EQ(run.phase(), v1::PHASE_SUCCEEDED) << run.message();
  ASSERT_EQ(run.nodes_size(), 1);
  EXPECT_EQ(run.nodes(0).result(), "from the workflow");
  EXPECT_EQ(run.parameters().at("message"), "from the workflow");
}

TEST_F(TemplateRefTest, LintResolvesAgainstTheFileAndTheStore) {
  v1::LintWorkflowRequest request;
  request.set_yaml(kLibrary);
  request.set_file_name("lib.yaml");
  v1::LintWorkflowResponse response;
  ASSERT_TRUE(
      stack_.workflows()->LintWorkflow(ContextWithDeadline().get(), request, &response).ok());
  EXPECT_EQ(response.diagnostics_size(), 0) << response.diagnostics(0).message();

  request.set_yaml(kCaller);
  request.set_file_name("caller.yaml");
  response.Clear();
  ASSERT_TRUE(
      stack_.workflows()->LintWorkflow(ContextWithDeadline().get(), request, &response).ok());
  ASSERT_EQ(response.diagnostics_size(), 1);
  EXPECT_EQ(response.diagnostics(0).line(), 12);
  EXPECT_TRUE(absl::StrContains(response.diagnostics(0).message(), "is not stored in dagd"));

  v1::CreateWorkflowResponse applied;
  ASSERT_TRUE(Apply(kLibrary, &applied).ok());
  response.Clear();
  ASSERT_TRUE(
      stack_.workflows()->LintWorkflow(ContextWithDeadline().get(), request, &response).ok());
  EXPECT_EQ(response.diagnostics_size(), 0);
}

}  // namespace
}  // namespace dagd::server::testing
