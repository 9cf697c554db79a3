// Access control on the real server: every RPC of every dagd service called as every kind of
// caller — no credential, a bad token, viewer, operator and admin of the target's namespace, and
// an admin of another namespace — over real gRPC with static tokens and a policy file. An RPC
// that has no access rule, or no case here, fails the first test; so adding an RPC means
// deciding who may call it.
#include "server/access.h"

#include <gtest/gtest.h>
#include <openssl/sha.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "dagd/v1/audit.grpc.pb.h"
#include "server/auth/policy.h"
#include "server/auth/static_tokens.h"
#include "tests/server/server_stack.h"

namespace dagd::server::testing {
namespace {

using auth::Role;

std::string Sha256Hex(const std::string& text) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(text.data()), text.size(), digest);
  std::string hex;
  for (unsigned char byte : digest) absl::StrAppendFormat(&hex, "%02x", byte);
  return hex;
}

// Who calls: the token sent ("" for none).
struct Identity {
  const char* label;
  std::string token;
};

const Identity kNobody{"no credential", ""};
const Identity kBadToken{"an unknown token", "not-a-token"};
const Identity kViewer{"viewer of team-a", "token-vera"};
const Identity kOperator{"operator of team-a", "token-otto"};
const Identity kAdmin{"admin of team-a", "token-ada"};
const Identity kOtherAdmin{"admin of team-b", "token-olga"};

constexpr char kPolicy[] = R"(
bindings:
  - role: viewer
    namespaces: [team-a]
    users: [vera]
  - role: operator
    namespaces: [team-a]
    users: [otto]
  - role: admin
    namespaces: [team-a]
    groups: [team-a-admins]
  - role: admin
    namespaces: [team-b]
    users: [olga]
)";

// A run that waits in a suspend node until resumed.
constexpr char kSuspended[] = R"(apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata: {generateName: wait-, namespace: team-a}
spec:
  entrypoint: main
  templates:
  - name: main
    suspend: {}
)";

std::string StoredWorkflow(const std::string& name) {
  return absl::StrCat(R"(apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata: {name: )",
                      name, R"(, namespace: team-a}
spec:
  entrypoint: main
  templates:
  - name: main
    suspend: {}
)");
}

// What one case acts on: made fresh for each caller, so that an allowed call that changes
// something (a delete, a terminate) leaves the next caller the same situation.
struct Target {
  std::string workflow;  // stored in team-a
  std::string run_id;    // a suspended run in team-a
};

class AccessTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string dir = ::testing::TempDir() + "dagd-access-XXXXXX";
    ASSERT_NE(mkdtemp(dir.data()), nullptr);
    dir_ = dir;
    tokens_file_ = dir + "/access-test-tokens.yaml";
    policy_file_ = dir + "/access-test-policy.yaml";
    std::ofstream(tokens_file_) << "tokens:\n"
                                << "  - {sha256: " << Sha256Hex(kViewer.token) << ", user: vera}\n"
                                << "  - {sha256: " << Sha256Hex(kOperator.token)
                                << ", user: otto}\n"
                                << "  - {sha256: " << Sha256Hex(kAdmin.token)
                                << ", user: ada, groups: [team-a-admins]}\n"
                                << "  - {sha256: " << Sha256Hex(kOtherAdmin.token)
                                << ", user: olga}\n";
    std::ofstream(policy_file_) << kPolicy;
    AccessOptions options;
    auto tokens = auth::StaticTokenAuthenticator::Create(tokens_file_);
    ASSERT_TRUE(tokens.ok()) << tokens.status();
    options.authenticators.push_back(*std::move(tokens));
    // Checked for changes on every call, so a test sees an edit at once.
    auto policy = auth::PolicyFile::Open(policy_file_, std::chrono::seconds(0));
    ASSERT_TRUE(policy.ok()) << policy.status();
    options.policy = *std::move(policy);
    access_ = std::make_unique<AccessControl>(std::move(options));
    ServerOptions server_options;
    server_options.access = access_.get();
    ASSERT_NO_FATAL_FAILURE(stack_.Start(std::move(server_options)));
    audit_ = v1::AuditService::NewStub(stack_.channel());
  }

  std::unique_ptr<grpc::ClientContext> As(const Identity& who) {
    auto context = ContextWithDeadline(std::chrono::seconds(10));
    if (!who.token.empty()) context->AddMetadata("authorization", "Bearer " + who.token);
    return context;
  }

  Target MakeTarget() {
    Target target;
    target.workflow = absl::StrCat("wf-", ++counter_);
    v1::CreateWorkflowRequest create;
    create.set_yaml(StoredWorkflow(target.workflow));
    v1::CreateWorkflowResponse created;
    grpc::Status status = stack_.workflows()->CreateWorkflow(As(kAdmin).get(), create, &created);
    EXPECT_TRUE(status.ok()) << status.error_message();
    v1::SubmitRunRequest submit;
    submit.set_spec_yaml(kSuspended);
    v1::Run run;
    status = stack_.runs()->SubmitRun(As(kOperator).get(), submit, &run);
    EXPECT_TRUE(status.ok()) << status.error_message();
    target.run_id = run.id();
    return target;
  }

  // Reads the first message of a stream (or its end) within a few seconds.
  template <typename Message>
  static grpc::Status FirstOfStream(grpc::ClientContext* context,
                                    std::unique_ptr<grpc::ClientReader<Message>> reader) {
    Message message;
    if (reader->Read(&message)) {
      context->TryCancel();
      reader->Finish().IgnoreError();
      return grpc::Status::OK;
    }
    return reader->Finish();
  }

  using Call = std::function<grpc::Status(grpc::ClientContext*, const Target&)>;

  // One case per RPC: how to call it on a target. `targeted`: it acts in the target's namespace
  // (team-a), so team-b's admin is refused; the others (lists, lint) serve every caller with a
  // role somewhere, filtered to what it may see.
  struct Case {
    Call call;
    bool targeted;
  };

  std::map<std::string, Case> Cases() {
    v1::RunService::Stub* runs = stack_.runs();
    v1::WorkflowService::Stub* workflows = stack_.workflows();
    v1::AuditService::Stub* audit = audit_.get();
    std::map<std::string, Case> cases;
    cases["/dagd.v1.WorkflowService/CreateWorkflow"] = {
        [workflows](grpc::ClientContext* c, const Target&) {
          v1::CreateWorkflowRequest request;
          request.set_yaml(StoredWorkflow("created-by-test"));
          v1::CreateWorkflowResponse response;
          return workflows->CreateWorkflow(c, request, &response);
        },
        true};
    cases["/dagd.v1.WorkflowService/GetWorkflow"] = {
        [workflows](grpc::ClientContext* c, const Target& t) {
          v1::GetWorkflowRequest request;
          request.set_name(t.workflow);
          v1::Workflow response;
          return workflows->GetWorkflow(c, request, &response);
        },
        true};
    cases["/dagd.v1.WorkflowService/ListWorkflows"] = {
        [workflows](grpc::ClientContext* c, const Target&) {
          v1::ListWorkflowsResponse response;
          return workflows->ListWorkflows(c, v1::ListWorkflowsRequest(), &response);
        },
        false};
    cases["/dagd.v1.WorkflowService/DeleteWorkflow"] = {
        [workflows](grpc::ClientContext* c, const Target& t) {
          v1::DeleteWorkflowRequest request;
          request.set_name(t.workflow);
          v1::DeleteWorkflowResponse response;
          return workflows->DeleteWorkflow(c, request, &response);
        },
        true};
    cases["/dagd.v1.WorkflowService/LintWorkflow"] = {
        [workflows](grpc::ClientContext* c, const Target&) {
          v1::LintWorkflowRequest request;
          request.set_yaml(kSuspended);
          v1::LintWorkflowResponse response;
          return workflows->LintWorkflow(c, request, &response);
        },
        false};
    cases["/dagd.v1.WorkflowService/ExportWorkflow"] = {
        [workflows](grpc::ClientContext* c, const Target& t) {
          v1::ExportWorkflowRequest request;
          request.set_run_id(t.run_id);
          request.set_format(v1::ExportWorkflowRequest::FORMAT_ARGO);
          v1::ExportWorkflowResponse response;
          return workflows->ExportWorkflow(c, request, &response);
        },
        true};
    cases["/dagd.v1.RunService/SubmitRun"] = {[runs](grpc::ClientContext* c, const Target&) {
                                                v1::SubmitRunRequest request;
                                                request.set_spec_yaml(kSuspended);
                                                v1::Run response;
                                                return runs->SubmitRun(c, request, &response);
                                              },
                                              true};
    cases["/dagd.v1.RunService/GetRun"] = {[runs](grpc::ClientContext* c, const Target& t) {
                                             v1::GetRunRequest request;
                                             request.set_run_id(t.run_id);
                                             v1::Run response;
                                             return runs->GetRun(c, request, &response);
                                           },
                                           true};
    cases["/dagd.v1.RunService/ListRuns"] = {[runs](grpc::ClientContext* c, const Target&) {
                                               v1::ListRunsResponse response;
                                               return runs->ListRuns(c, v1::ListRunsRequest(),
                                                                     &response);
                                             },
                                             false};
    cases["/dagd.v1.RunService/WatchRun"] = {[runs](grpc::ClientContext* c, const Target& t) {
                                               v1::WatchRunRequest request;
                                               request.set_run_id(t.run_id);
                                               return FirstOfStream(c, runs->WatchRun(c, request));
                                             },
                                             true};
    for (const char* method : {"StopRun", "TerminateRun"}) {
      const bool terminate = std::string(method) == "TerminateRun";
      cases[absl::StrCat("/dagd.v1.RunService/", method)] = {
          [runs, terminate](grpc::ClientContext* c, const Target& t) {
            v1::EndRunRequest request;
            request.set_run_id(t.run_id);
            v1::Run response;
            return terminate ? runs->TerminateRun(c, request, &response)
                             : runs->StopRun(c, request, &response);
          },
          true};
    }
    cases["/dagd.v1.RunService/ResumeRun"] = {[runs](grpc::ClientContext* c, const Target& t) {
                                                v1::ResumeRunRequest request;
                                                request.set_run_id(t.run_id);
                                                v1::Run response;
                                                return runs->ResumeRun(c, request, &response);
                                              },
                                              true};
    cases["/dagd.v1.RunService/SetNode"] = {[runs](grpc::ClientContext* c, const Target& t) {
                                              v1::SetNodeRequest request;
                                              request.set_run_id(t.run_id);
                                              request.set_node(t.run_id);
                                              request.set_phase(v1::PHASE_SUCCEEDED);
                                              v1::Run response;
                                              return runs->SetNode(c, request, &response);
                                            },
                                            true};
    cases["/dagd.v1.RunService/RetryRun"] = {[runs](grpc::ClientContext* c, const Target& t) {
                                               v1::RetryRunRequest request;
                                               request.set_run_id(t.run_id);
                                               v1::Run response;
                                               return runs->RetryRun(c, request, &response);
                                             },
                                             true};
    cases["/dagd.v1.RunService/ResubmitRun"] = {[runs](grpc::ClientContext* c, const Target& t) {
                                                  v1::ResubmitRunRequest request;
                                                  request.set_run_id(t.run_id);
                                                  v1::Run response;
                                                  return runs->ResubmitRun(c, request, &response);
                                                },
                                                true};
    cases["/dagd.v1.RunService/GetNodeLogs"] = {[runs](grpc::ClientContext* c, const Target& t) {
                                                  v1::GetNodeLogsRequest request;
                                                  request.set_run_id(t.run_id);
                                                  request.set_node(t.run_id);
                                                  return FirstOfStream(
                                                      c, runs->GetNodeLogs(c, request));
                                                },
                                                true};
    cases["/dagd.v1.RunService/ListAnsibleEvents"] = {
        [runs](grpc::ClientContext* c, const Target& t) {
          v1::ListAnsibleEventsRequest request;
          request.set_run_id(t.run_id);
          v1::ListAnsibleEventsResponse response;
          return runs->ListAnsibleEvents(c, request, &response);
        },
        true};
    cases["/dagd.v1.RunService/WatchAnsibleEvents"] = {
        [runs](grpc::ClientContext* c, const Target& t) {
          v1::WatchAnsibleEventsRequest request;
          request.set_run_id(t.run_id);
          c->set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(500));
          grpc::Status status = FirstOfStream(c, runs->WatchAnsibleEvents(c, request));
          // A running run without Ansible events streams nothing until the deadline: admitted.
          return status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED ? grpc::Status::OK
                                                                            : status;
        },
        true};
    cases["/dagd.v1.AuditService/ListAuditRecords"] = {
        [audit](grpc::ClientContext* c, const Target&) {
          v1::ListAuditRecordsResponse response;
          return audit->ListAuditRecords(c, v1::ListAuditRecordsRequest(), &response);
        },
        false};
    return cases;
  }

  void TearDown() override {
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }

  std::string dir_;
  std::string tokens_file_;
  std::string policy_file_;
  std::unique_ptr<AccessControl> access_;
  ServerStack stack_;
  std::unique_ptr<v1::AuditService::Stub> audit_;
  int counter_ = 0;
};

// Whether the role `held` (in team-a) suffices for `needed`.
bool Allows(Role held, Role needed) { return held >= needed; }

TEST_F(AccessTest, EveryRpcAsEveryCallerGetsWhatItsRoleAllows) {
  std::map<std::string, Case> cases = Cases();
  std::set<std::string> served;
  // Every service of every dagd proto file.
  std::vector<const google::protobuf::ServiceDescriptor*> services;
  for (const google::protobuf::FileDescriptor* file :
       {v1::Workflow::descriptor()->file(), v1::Run::descriptor()->file(),
        v1::AuditRecord::descriptor()->file(), v1::Bundle::descriptor()->file()}) {
    for (int i = 0; i < file->service_count(); ++i) services.push_back(file->service(i));
  }
  ASSERT_EQ(services.size(), 3u);
  for (const google::protobuf::ServiceDescriptor* service : services) {
    for (int i = 0; i < service->method_count(); ++i) {
      const std::string method =
          absl::StrCat("/", service->full_name(), "/", service->method(i)->name());
      served.insert(method);
      const RpcRule* rule = FindRpcRule(method);
      ASSERT_NE(rule, nullptr) << method << " has no access rule: add one to server/access.cc";
      auto it = cases.find(method);
      ASSERT_NE(it, cases.end()) << method << " has no case in this test: add one";
      const Case& c = it->second;

      struct Expectation {
        const Identity* who;
        Role held;  // in team-a
      };
      for (const Expectation& e :
           {Expectation{&kNobody, Role::kNone}, Expectation{&kBadToken, Role::kNone},
            Expectation{&kViewer, Role::kViewer}, Expectation{&kOtherAdmin, Role::kNone},
            Expectation{&kOperator, Role::kOperator}, Expectation{&kAdmin, Role::kAdmin}}) {
        const Target target = MakeTarget();
        grpc::Status status = c.call(As(*e.who).get(), target);
        SCOPED_TRACE(absl::StrCat(method, " as ", e.who->label, ": ",
                                  static_cast<int>(status.error_code()), " ",
                                  status.error_message()));
        if (e.who->token.empty() || e.who == &kBadToken) {
          EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAUTHENTICATED);
        } else if (e.who == &kOtherAdmin) {
          // Admin in team-b: anything it may do there, but nothing in team-a.
          EXPECT_EQ(status.error_code() == grpc::StatusCode::PERMISSION_DENIED, c.targeted);
        } else if (Allows(e.held, rule->role)) {
          EXPECT_NE(status.error_code(), grpc::StatusCode::PERMISSION_DENIED);
          EXPECT_NE(status.error_code(), grpc::StatusCode::UNAUTHENTICATED);
        } else {
          EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED);
        }
      }
    }
  }
  // Every rule names an RPC that is served (no stale rules).
  for (const RpcRule& rule : RpcRules()) EXPECT_TRUE(served.count(rule.method)) << rule.method;
}

TEST_F(AccessTest, ListsShowOnlyTheNamespacesOfTheCallersRole) {
  const Target target = MakeTarget();
  v1::ListRunsResponse runs;
  ASSERT_TRUE(stack_.runs()->ListRuns(As(kViewer).get(), v1::ListRunsRequest(), &runs).ok());
  ASSERT_EQ(runs.runs_size(), 1);
  EXPECT_EQ(runs.runs(0).id(), target.run_id);
  EXPECT_EQ(runs.runs(0).namespace_(), "team-a");
  EXPECT_EQ(runs.runs(0).submitted_by(), "otto");
  runs.Clear();
  ASSERT_TRUE(stack_.runs()->ListRuns(As(kOtherAdmin).get(), v1::ListRunsRequest(), &runs).ok());
  EXPECT_EQ(runs.runs_size(), 0);
  v1::ListWorkflowsResponse workflows;
  ASSERT_TRUE(stack_.workflows()
                  ->ListWorkflows(As(kOtherAdmin).get(), v1::ListWorkflowsRequest(), &workflows)
                  .ok());
  EXPECT_EQ(workflows.workflows_size(), 0);
  // Asking for a namespace where the caller has no role is refused, not answered empty.
  v1::ListRunsRequest team_a;
  team_a.set_namespace_("team-a");
  grpc::Status status = stack_.runs()->ListRuns(As(kOtherAdmin).get(), team_a, &runs);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_NE(status.error_message().find("olga may not call ListRuns in namespace team-a"),
            std::string::npos)
      << status.error_message();
}

TEST_F(AccessTest, TheAuditLogNamesWhoDidWhatToWhichTargetAndHowItEnded) {
  const Target target = MakeTarget();
  // A refused stop, one without a credential, then the operator's stop.
  v1::EndRunRequest stop;
  stop.set_run_id(target.run_id);
  v1::Run run;
  EXPECT_EQ(stack_.runs()->StopRun(As(kViewer).get(), stop, &run).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(stack_.runs()->StopRun(As(kNobody).get(), stop, &run).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  auto context = As(kOperator);
  context->AddMetadata("x-request-id", "change-4711");
  ASSERT_TRUE(stack_.runs()->StopRun(context.get(), stop, &run).ok());
  // Reads are not audited.
  v1::GetRunRequest get;
  get.set_run_id(target.run_id);
  ASSERT_TRUE(stack_.runs()->GetRun(As(kViewer).get(), get, &run).ok());

  v1::ListAuditRecordsRequest request;
  request.set_method("StopRun");
  v1::ListAuditRecordsResponse response;
  // The team-a admin does not see records without a namespace (the unauthenticated call).
  ASSERT_TRUE(audit_->ListAuditRecords(As(kAdmin).get(), request, &response).ok());
  ASSERT_EQ(response.records_size(), 2);
  const v1::AuditRecord& stopped = response.records(0);
  EXPECT_EQ(stopped.principal(), "otto");
  EXPECT_EQ(stopped.auth_method(), "static-token");
  EXPECT_EQ(stopped.method(), "/dagd.v1.RunService/StopRun");
  EXPECT_EQ(stopped.namespace_(), "team-a");
  EXPECT_EQ(stopped.target(), "run/" + target.run_id);
  EXPECT_EQ(stopped.request_id(), "change-4711");
  EXPECT_EQ(stopped.code(), "OK");
  EXPECT_NE(stopped.peer().find("127.0.0.1"), std::string::npos);
  const v1::AuditRecord& refused = response.records(1);
  EXPECT_EQ(refused.principal(), "vera");
  EXPECT_EQ(refused.code(), "PERMISSION_DENIED");
  EXPECT_EQ(refused.target(), "run/" + target.run_id);
  EXPECT_FALSE(refused.request_id().empty());

  // Who submitted the run, and from which request: the audit record of the submission.
  request.set_method("SubmitRun");
  request.set_target("run/" + target.run_id);
  ASSERT_TRUE(audit_->ListAuditRecords(As(kAdmin).get(), request, &response).ok());
  ASSERT_EQ(response.records_size(), 1);
  EXPECT_EQ(response.records(0).principal(), "otto");

  // team-b's admin sees none of team-a's records; the viewer may not read the log at all.
  request.Clear();
  ASSERT_TRUE(audit_->ListAuditRecords(As(kOtherAdmin).get(), request, &response).ok());
  EXPECT_EQ(response.records_size(), 0);
  EXPECT_EQ(audit_->ListAuditRecords(As(kViewer).get(), request, &response).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
}

TEST_F(AccessTest, ThePolicyFileIsReloadedWhenItChanges) {
  const Target target = MakeTarget();
  v1::GetRunRequest get;
  get.set_run_id(target.run_id);
  v1::Run run;
  ASSERT_TRUE(stack_.runs()->GetRun(As(kViewer).get(), get, &run).ok());
  // vera loses her binding.
  std::ofstream(policy_file_)
      << "bindings:\n  - {role: admin, namespaces: [team-a], users: [otto]}\n";
  EXPECT_EQ(stack_.runs()->GetRun(As(kViewer).get(), get, &run).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  // A broken file leaves the last good policy in force.
  std::ofstream(policy_file_) << "bindings: [ {role: superuser";
  EXPECT_EQ(stack_.runs()->GetRun(As(kViewer).get(), get, &run).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_TRUE(stack_.runs()->GetRun(As(kOperator).get(), get, &run).ok());
}

}  // namespace
}  // namespace dagd::server::testing
