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

  grpc::Status Create(const std::string& yaml, v1::CreateWorkflowResponse* response,
                      const v1::Bundle& bundle = v1::Bundle()) {
    v1::CreateWorkflowRequest request;
    request.set_yaml(yaml);
    request.set_file_name("wf.yaml");
    *request.mutable_bundle() = bundle;
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

// Lint lists every problem, like `argo lint`, each at its line; submitting names the first.
TEST_F(WorkflowServiceTest, LintListsEveryProblemOfAFile) {
  const v1::LintWorkflowResponse response =
      Lint(ReadTestdata("lint/three-problems.yaml"), "three.yaml");
  ASSERT_EQ(response.diagnostics_size(), 3) << response.DebugString();
  EXPECT_EQ(response.diagnostics(0).line(), 13);  // template: ech
  EXPECT_NE(response.diagnostics(0).message().find("unknown template 'ech'"), std::string::npos);
  EXPECT_EQ(response.diagnostics(1).line(), 17);  // mesage
  EXPECT_NE(response.diagnostics(1).message().find("no input parameter 'mesage'"),
            std::string::npos);
  EXPECT_EQ(response.diagnostics(2).line(), 25);  // {{inputs.parameters.mesage}}
  EXPECT_NE(response.diagnostics(2).message().find("did you mean 'message'"), std::string::npos);
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

// --- bundles ------------------------------------------------------------------------------------

// A stored workflow whose one task runs an ansible template with `playbook` (line 14, column 7).
std::string AnsibleWorkflow(const std::string& playbook) {
  return "apiVersion: argoproj.io/v1alpha1\n"
         "kind: Workflow\n"
         "metadata:\n"
         "  name: play\n"
         "spec:\n"
         "  entrypoint: main\n"
         "  templates:\n"
         "  - name: main\n"
         "    dag:\n"
         "      tasks:\n"
         "      - {name: run, template: site}\n"
         "  - name: site\n"
         "    ansible:\n"
         "      playbook: " +
         playbook +
         "\n"
         "      inventory: localhost,\n";
}

v1::Bundle MakeBundle(const std::vector<std::pair<std::string, std::string>>& files) {
  v1::Bundle bundle;
  for (const auto& [path, content] : files) {
    v1::BundleFile* file = bundle.add_files();
    file->set_path(path);
    file->set_content(content);
  }
  return bundle;
}

TEST_F(WorkflowServiceTest, TheBundleIsStoredWithTheVersionAndChangesItAlone) {
  const std::string yaml = AnsibleWorkflow("playbooks/site.yml");
  const v1::Bundle bundle = MakeBundle(
      {{"playbooks/site.yml", "- hosts: all\n  tasks: []\n"}, {"roles/r/tasks/main.yml", "[]\n"}});
  v1::CreateWorkflowResponse first;
  grpc::Status status = Create(yaml, &first, bundle);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_TRUE(first.created());
  EXPECT_EQ(first.workflow().bundle_digest().size(), 64u);
  EXPECT_EQ(first.workflow().bundle_files(), 2);
  EXPECT_EQ(first.workflow().bundle_bytes(), 25 + 3);

  // The same files in another order: the same version.
  v1::Bundle reordered = bundle;
  reordered.mutable_files()->SwapElements(0, 1);
  v1::CreateWorkflowResponse same;
  status = Create(yaml, &same, reordered);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_FALSE(same.created());
  EXPECT_EQ(same.workflow().version(), 1);
  EXPECT_EQ(same.workflow().bundle_digest(), first.workflow().bundle_digest());

  // One byte changed in one file: a new version with another digest.
  v1::Bundle edited = bundle;
  edited.mutable_files(1)->set_content("[ ]\n");
  v1::CreateWorkflowResponse changed;
  status = Create(yaml, &changed, edited);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_TRUE(changed.created());
  EXPECT_EQ(changed.workflow().version(), 2);
  EXPECT_NE(changed.workflow().bundle_digest(), first.workflow().bundle_digest());

  v1::Workflow got;
  status = Get("play", 1, &got);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(got.bundle_digest(), first.workflow().bundle_digest());
  EXPECT_EQ(got.bundle_files(), 2);
  EXPECT_EQ(got.bundle_bytes(), 28);
}

TEST_F(WorkflowServiceTest, APlaybookMissingFromTheBundleIsRefusedNamingTheLineAndTheFix) {
  const std::string yaml = AnsibleWorkflow("playbooks/site.yml");
  v1::CreateWorkflowResponse response;
  grpc::Status none = Create(yaml, &response);
  EXPECT_EQ(none.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(none.error_message(),
            "wf.yaml:14:7: spec.templates[1].ansible.playbook: template \"site\": playbook "
            "\"playbooks/site.yml\" is relative, but the workflow has no bundle; apply with "
            "--bundle DIR, DIR holding playbooks/site.yml (or fix the path)");

  grpc::Status elsewhere =
      Create(yaml, &response, MakeBundle({{"site.yml", "- hosts: all\n  tasks: []\n"}}));
  EXPECT_EQ(elsewhere.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(elsewhere.error_message().find("wf.yaml:14:7: "), std::string::npos)
      << elsewhere.error_message();
  EXPECT_NE(elsewhere.error_message().find("is not in the workflow's bundle (1 files)"),
            std::string::npos)
      << elsewhere.error_message();

  grpc::Status outside = Create(AnsibleWorkflow("../site.yml"), &response,
                                MakeBundle({{"site.yml", "- hosts: all\n  tasks: []\n"}}));
  EXPECT_EQ(outside.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(outside.error_message().find("points outside the workflow's bundle"), std::string::npos)
      << outside.error_message();

  v1::Workflow got;
  EXPECT_EQ(Get("play", 0, &got).error_code(), grpc::StatusCode::NOT_FOUND);
}

TEST_F(WorkflowServiceTest, PlaybooksKnownOnlyAtRunTimeOrOnTheHostNeedNoBundle) {
  v1::CreateWorkflowResponse response;
  grpc::Status absolute = Create(AnsibleWorkflow("/srv/playbooks/site.yml"), &response);
  EXPECT_TRUE(absolute.ok()) << absolute.error_message();
  grpc::Status templated = Create(AnsibleWorkflow("\"{{workflow.parameters.book}}\""), &response);
  EXPECT_TRUE(templated.ok()) << templated.error_message();
  // A path that normalizes to a bundle file is found.
  grpc::Status dotted = Create(AnsibleWorkflow("./playbooks/../site.yml"), &response,
                               MakeBundle({{"site.yml", "- hosts: all\n  tasks: []\n"}}));
  EXPECT_TRUE(dotted.ok()) << dotted.error_message();
}

TEST_F(WorkflowServiceTest, ABadBundlePathIsRefusedAndNothingIsStored) {
  for (const char* path : {"/etc/site.yml", "../site.yml", ".dagd/plugin.py", "a//b.yml"}) {
    v1::CreateWorkflowResponse response;
    grpc::Status status =
        Create(OneTaskWorkflow("tidy", {"true"}), &response, MakeBundle({{path, "x"}}));
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << path;
    EXPECT_EQ(status.error_message().rfind(std::string("bundle: bundle file \"") + path, 0), 0u)
        << status.error_message();
  }
  v1::Workflow got;
  EXPECT_EQ(Get("tidy", 0, &got).error_code(), grpc::StatusCode::NOT_FOUND);
}

TEST_F(WorkflowServiceTest, LintOfValidWorkflowHasNoDiagnostics) {
  EXPECT_EQ(Lint(ReadTestdata("valid/diamond.yaml"), "diamond.yaml").diagnostics_size(), 0);
  EXPECT_EQ(Lint(OneTaskWorkflow("x", {"true"}, true), "x.yaml").diagnostics_size(), 0);
}

}  // namespace
}  // namespace dagd::server::testing
