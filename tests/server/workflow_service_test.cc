// WorkflowService over real gRPC on loopback, backed by the real SQLite store.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "tests/server/server_stack.h"

namespace dagd::server::testing {
namespace {

std::string ReadTestdata(const std::string& relative) {
  std::ifstream in(std::string(DAGD_SOURCE_DIR) + "/tests/testdata/" + relative);
  EXPECT_TRUE(in.good()) << relative;
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

class WorkflowServiceTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_NO_FATAL_FAILURE(stack_.Start()); }

  grpc::Status Create(const std::string& yaml, v1::CreateWorkflowResponse* response) {
    v1::CreateWorkflowRequest request;
    request.set_yaml(yaml);
    request.set_file_name("wf.yaml");
    auto context = ContextWithDeadline();
    return stack_.workflows()->CreateWorkflow(context.get(), request, response);
  }

  grpc::Status Get(const std::string& name, int64_t version, v1::Workflow* out) {
    v1::GetWorkflowRequest request;
    request.set_name(name);
    request.set_version(version);
    auto context = ContextWithDeadline();
    return stack_.workflows()->GetWorkflow(context.get(), request, out);
  }

  v1::LintWorkflowResponse Lint(const std::string& yaml, const std::string& file) {
    v1::LintWorkflowRequest request;
    request.set_yaml(yaml);
    request.set_file_name(file);
    v1::LintWorkflowResponse response;
    auto context = ContextWithDeadline();
    grpc::Status status = stack_.workflows()->LintWorkflow(context.get(), request, &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return response;
  }

  ServerStack stack_;
};

TEST_F(WorkflowServiceTest, CreateStoresVersionsOnlyWhenTheSpecChanges) {
  const std::string v1_yaml = OneTaskWorkflow("hello", {"sh", "-c", "echo hi"});
  v1::CreateWorkflowResponse first;
  grpc::Status status = Create(v1_yaml, &first);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_TRUE(first.created());
  EXPECT_EQ(first.workflow().name(), "hello");
  EXPECT_EQ(first.workflow().version(), 1);
  EXPECT_EQ(first.workflow().yaml(), v1_yaml);
  EXPECT_EQ(first.workflow().entrypoint(), "main");
  EXPECT_EQ(first.workflow().spec_sha256().size(), 64u);
  EXPECT_TRUE(first.workflow().has_create_time());

  v1::CreateWorkflowResponse same;
  status = Create(v1_yaml, &same);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_FALSE(same.created());
  EXPECT_EQ(same.workflow().version(), 1);

  const std::string v2_yaml = OneTaskWorkflow("hello", {"sh", "-c", "echo changed"});
  v1::CreateWorkflowResponse changed;
  status = Create(v2_yaml, &changed);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_TRUE(changed.created());
  EXPECT_EQ(changed.workflow().version(), 2);

  v1::Workflow latest;
  status = Get("hello", 0, &latest);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(latest.version(), 2);
  EXPECT_EQ(latest.yaml(), v2_yaml);

  v1::Workflow old;
  status = Get("hello", 1, &old);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(old.version(), 1);
  EXPECT_EQ(old.yaml(), v1_yaml);
}

TEST_F(WorkflowServiceTest, GetOfUnknownWorkflowOrVersionIsNotFound) {
  v1::Workflow out;
  EXPECT_EQ(Get("nope", 0, &out).error_code(), grpc::StatusCode::NOT_FOUND);

  v1::CreateWorkflowResponse created;
  ASSERT_TRUE(Create(OneTaskWorkflow("hello", {"true"}), &created).ok());
  EXPECT_EQ(Get("hello", 7, &out).error_code(), grpc::StatusCode::NOT_FOUND);
}

TEST_F(WorkflowServiceTest, ListPagesThroughEveryWorkflowOnce) {
  for (const char* name : {"charlie", "alpha", "bravo"}) {
    v1::CreateWorkflowResponse created;
    ASSERT_TRUE(Create(OneTaskWorkflow(name, {"true"}), &created).ok()) << name;
  }
  std::vector<std::string> names;
  std::set<std::string> tokens;
  std::string token;
  for (int page = 0; page < 10; ++page) {
    v1::ListWorkflowsRequest request;
    request.set_page_size(1);
    request.set_page_token(token);
    v1::ListWorkflowsResponse response;
    auto context = ContextWithDeadline();
    grpc::Status status = stack_.workflows()->ListWorkflows(context.get(), request, &response);
    ASSERT_TRUE(status.ok()) << status.error_message();
    ASSERT_LE(response.workflows_size(), 1);
    for (const auto& w : response.workflows()) names.push_back(w.name());
    token = response.next_page_token();
    if (token.empty()) break;
    EXPECT_TRUE(tokens.insert(token).second) << "a token repeats: " << token;
  }
  EXPECT_TRUE(token.empty()) << "the chain does not end";
  EXPECT_EQ(names, (std::vector<std::string>{"alpha", "bravo", "charlie"}));

  // One page holds them all, with no token.
  v1::ListWorkflowsRequest request;
  v1::ListWorkflowsResponse response;
  auto context = ContextWithDeadline();
  ASSERT_TRUE(stack_.workflows()->ListWorkflows(context.get(), request, &response).ok());
  EXPECT_EQ(response.workflows_size(), 3);
  EXPECT_TRUE(response.next_page_token().empty());
}

TEST_F(WorkflowServiceTest, DeleteThenGetIsNotFound) {
  v1::CreateWorkflowResponse created;
  ASSERT_TRUE(Create(OneTaskWorkflow("doomed", {"true"}), &created).ok());

  v1::DeleteWorkflowRequest request;
  request.set_name("doomed");
  v1::DeleteWorkflowResponse response;
  auto context = ContextWithDeadline();
  grpc::Status status = stack_.workflows()->DeleteWorkflow(context.get(), request, &response);
  ASSERT_TRUE(status.ok()) << status.error_message();

  v1::Workflow out;
  EXPECT_EQ(Get("doomed", 0, &out).error_code(), grpc::StatusCode::NOT_FOUND);

  auto again = ContextWithDeadline();
  EXPECT_EQ(stack_.workflows()->DeleteWorkflow(again.get(), request, &response).error_code(),
            grpc::StatusCode::NOT_FOUND);
}

TEST_F(WorkflowServiceTest, GenerateNameAloneCannotBeStored) {
  v1::CreateWorkflowResponse response;
  grpc::Status status =
      Create(OneTaskWorkflow("anonymous", {"true"}, /*generate=*/true), &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(status.error_message().find("metadata.name"), std::string::npos)
      << status.error_message();
  EXPECT_NE(status.error_message().find("wf.yaml"), std::string::npos) << status.error_message();
}

TEST_F(WorkflowServiceTest, CreateOfMalformedWorkflowIsInvalidArgument) {
  v1::CreateWorkflowResponse response;
  grpc::Status status = Create(ReadTestdata("malformed/unknown-field-typo.yaml"), &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(status.error_message().find("wf.yaml:17:"), std::string::npos)
      << status.error_message();
}

TEST_F(WorkflowServiceTest, LintOfMalformedWorkflowNamesLineColumnAndField) {
  const v1::LintWorkflowResponse response =
      Lint(ReadTestdata("malformed/unknown-field-typo.yaml"), "typo.yaml");
  ASSERT_EQ(response.diagnostics_size(), 1);
  const v1::Diagnostic& d = response.diagnostics(0);
  EXPECT_EQ(d.file(), "typo.yaml");
  EXPECT_EQ(d.line(), 17);
  EXPECT_GT(d.column(), 0);
  EXPECT_EQ(d.field(), "spec.templates[0].dag.tasks[1].dependecies");
  EXPECT_NE(d.message().find("dependencies"), std::string::npos) << d.message();
}

// Every malformed test file: one diagnostic at the line its first line names ("# expect: <line>:
// <text>"), with a column, a field path (or none, for YAML syntax errors) and the expected text.
TEST_F(WorkflowServiceTest, LintOfEveryMalformedFileLocatesTheDefect) {
  const std::filesystem::path dir =
      std::filesystem::path(DAGD_SOURCE_DIR) / "tests/testdata/malformed";
  int files = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    const std::string name = entry.path().filename().string();
    SCOPED_TRACE(name);
    const std::string yaml = ReadTestdata("malformed/" + name);
    const std::string kPrefix = "# expect: ";
    ASSERT_EQ(yaml.rfind(kPrefix, 0), 0u);
    const std::string expect = yaml.substr(kPrefix.size(), yaml.find('\n') - kPrefix.size());
    const size_t colon = expect.find(": ");
    ASSERT_NE(colon, std::string::npos);
    const int line = std::stoi(expect.substr(0, colon));
    const std::string text = expect.substr(colon + 2);

    const v1::LintWorkflowResponse response = Lint(yaml, name);
    ASSERT_EQ(response.diagnostics_size(), 1);
    const v1::Diagnostic& d = response.diagnostics(0);
    EXPECT_EQ(d.file(), name);
    EXPECT_EQ(d.line(), line);
    EXPECT_GT(d.column(), 0);
    EXPECT_EQ(d.field().find(' '), std::string::npos) << "not a field path: " << d.field();
    const std::string whole = d.field().empty() ? d.message() : d.field() + ": " + d.message();
    EXPECT_NE(whole.find(text), std::string::npos) << whole;
    ++files;
  }
  EXPECT_GE(files, 20);
}

TEST_F(WorkflowServiceTest, LintOfValidWorkflowHasNoDiagnostics) {
  EXPECT_EQ(Lint(ReadTestdata("valid/diamond.yaml"), "diamond.yaml").diagnostics_size(), 0);
  EXPECT_EQ(Lint(OneTaskWorkflow("x", {"true"}, true), "x.yaml").diagnostics_size(), 0);
}

}  // namespace
}  // namespace dagd::server::testing
