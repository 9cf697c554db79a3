#include "tests/server/server_stack.h"

#include <grpc/grpc.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <mutex>

#include "absl/strings/str_cat.h"
#include "runners/builtin.h"
#include "storage/sqlite/sqlite_store.h"

namespace dagd::server::testing {

ServerStack::ServerStack() = default;

void ServerStack::Start(ServerOptions server_options,
                        const std::function<void(scheduler::SchedulerOptions*)>& adjust) {
  // One reference to the gRPC library for the whole test binary, so that destroying a test's
  // server and channel never shuts the library down: grpc_shutdown() joins gRPC's executor
  // threads, and one of them may sit in a 10 s epoll_wait (seen after a rejected oversized
  // request), which would make a test take 10 s longer now and then.
  static std::once_flag grpc_initialized;
  std::call_once(grpc_initialized, [] { grpc_init(); });

  std::string pattern = ::testing::TempDir() + "dagd-server-XXXXXX";
  ASSERT_NE(mkdtemp(pattern.data()), nullptr) << "mkdtemp " << pattern;
  dir_ = pattern;

  auto store = storage::OpenSqliteStore(dir_ + "/dagd.db");
  ASSERT_TRUE(store.ok()) << store.status();
  store_ = std::move(*store);

  registry_ = std::make_unique<runners::RunnerRegistry>();
  runners::BuiltinRunnerOptions runner_options;
  runner_options.io_context = &io_;
  absl::Status registered = runners::RegisterBuiltinRunners(registry_.get(), runner_options);
  ASSERT_TRUE(registered.ok()) << registered;

  scheduler::SchedulerOptions options;
  options.data_dir = dir_;
  options.grace_period_ms = 2000;
  options.log_flush_interval_ms = 20;
  if (adjust) adjust(&options);
  scheduler_ =
      std::make_unique<scheduler::Scheduler>(io_, store_.get(), registry_.get(), &clock_, options);
  scheduler_->AddListener(&hub_);
  absl::Status recovered = scheduler_->Recover();
  ASSERT_TRUE(recovered.ok()) << recovered;

  work_.emplace(boost::asio::make_work_guard(io_));
  loop_ = std::thread([this] { io_.run(); });

  server_options.listen = "127.0.0.1:0";
  auto server = DagdServer::Start(server_options, store_.get(), scheduler_.get(), &hub_);
  ASSERT_TRUE(server.ok()) << server.status();
  server_ = std::move(*server);
  port_ = server_->port();

  channel_ =
      grpc::CreateChannel(absl::StrCat("127.0.0.1:", port_), grpc::InsecureChannelCredentials());
  workflows_ = v1::WorkflowService::NewStub(channel_);
  runs_ = v1::RunService::NewStub(channel_);
}

void ServerStack::ShutdownServer(int64_t deadline_ms) {
  if (server_) server_->Shutdown(deadline_ms);
}

ServerStack::~ServerStack() {
  // As cmd/dagd does: stop taking calls while the loop still runs, then stop the loop, end the
  // attempts, and drain the store's writer.
  runs_.reset();
  workflows_.reset();
  channel_.reset();
  if (server_) server_->Shutdown(1000);
  server_.reset();
  work_.reset();
  io_.stop();
  if (loop_.joinable()) loop_.join();
  if (scheduler_) scheduler_->Shutdown();
  store_.reset();
  scheduler_.reset();
  registry_.reset();
  if (!dir_.empty()) {
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }
}

std::string OneTaskWorkflow(const std::string& name, const std::vector<std::string>& argv,
                            bool generate) {
  std::string command;
  for (const std::string& arg : argv) {
    std::string quoted = "\"";
    for (char c : arg) {
      if (c == '"' || c == '\\') quoted += '\\';
      quoted += c;
    }
    quoted += '"';
    absl::StrAppend(&command, command.empty() ? "" : ", ", quoted);
  }
  return absl::StrCat(
      "apiVersion: argoproj.io/v1alpha1\n"
      "kind: Workflow\n"
      "metadata:\n",
      generate ? "  generateName: " : "  name: ", name, generate ? "-\n" : "\n",
      "spec:\n"
      "  entrypoint: main\n"
      "  templates:\n"
      "  - name: main\n"
      "    dag:\n"
      "      tasks:\n"
      "      - name: say\n"
      "        template: step\n"
      "  - name: step\n"
      "    container:\n"
      "      image: alpine:3.18\n"
      "      command: [",
      command, "]\n");
}

std::unique_ptr<grpc::ClientContext> ContextWithDeadline(std::chrono::milliseconds timeout) {
  auto context = std::make_unique<grpc::ClientContext>();
  context->set_deadline(std::chrono::system_clock::now() + timeout);
  return context;
}

v1::Run SubmitSpec(v1::RunService::Stub* runs, const std::string& yaml) {
  v1::SubmitRunRequest request;
  request.set_spec_yaml(yaml);
  request.set_file_name("test.yaml");
  v1::Run run;
  auto context = ContextWithDeadline();
  grpc::Status status = runs->SubmitRun(context.get(), request, &run);
  EXPECT_TRUE(status.ok()) << status.error_code() << ": " << status.error_message();
  return run;
}

WatchResult WatchToEnd(v1::RunService::Stub* runs, const std::string& run_id,
                       int64_t after_sequence, std::chrono::milliseconds timeout) {
  WatchResult result;
  auto context = ContextWithDeadline(timeout);
  v1::WatchRunRequest request;
  request.set_run_id(run_id);
  request.set_after_sequence(after_sequence);
  auto reader = runs->WatchRun(context.get(), request);
  v1::RunEvent event;
  while (reader->Read(&event)) result.events.push_back(event);
  result.status = reader->Finish();
  return result;
}

bool WaitForEvent(v1::RunService::Stub* runs, const std::string& run_id,
                  const std::function<bool(const v1::RunEvent&)>& match,
                  std::vector<v1::RunEvent>* seen, std::chrono::milliseconds timeout) {
  auto context = ContextWithDeadline(timeout);
  v1::WatchRunRequest request;
  request.set_run_id(run_id);
  auto reader = runs->WatchRun(context.get(), request);
  v1::RunEvent event;
  bool matched = false;
  while (reader->Read(&event)) {
    if (seen) seen->push_back(event);
    if (match(event)) {
      matched = true;
      break;
    }
  }
  if (matched) context->TryCancel();
  reader->Finish();
  return matched;
}

bool WaitForAttemptStarted(v1::RunService::Stub* runs, const std::string& run_id) {
  return WaitForEvent(runs, run_id,
                      [](const v1::RunEvent& e) { return e.type() == "AttemptStarted"; });
}

v1::Run GetRun(v1::RunService::Stub* runs, const std::string& run_id) {
  v1::GetRunRequest request;
  request.set_run_id(run_id);
  v1::Run run;
  auto context = ContextWithDeadline();
  grpc::Status status = runs->GetRun(context.get(), request, &run);
  EXPECT_TRUE(status.ok()) << status.error_code() << ": " << status.error_message();
  return run;
}

v1::Run RunToEnd(v1::RunService::Stub* runs, const std::vector<std::string>& argv) {
  v1::Run submitted = SubmitSpec(runs, OneTaskWorkflow("job", argv, /*generate=*/true));
  if (submitted.id().empty()) return submitted;
  WatchResult watched = WatchToEnd(runs, submitted.id());
  EXPECT_TRUE(watched.status.ok()) << watched.status.error_message();
  EXPECT_FALSE(watched.events.empty());
  if (!watched.events.empty()) {
    EXPECT_TRUE(watched.events.back().final());
  }
  return GetRun(runs, submitted.id());
}

const v1::Node* FindNode(const v1::Run& run, const std::string& display_name) {
  for (const auto& node : run.nodes()) {
    if (node.display_name() == display_name) return &node;
  }
  return nullptr;
}

LogsResult ReadNodeLogs(v1::RunService::Stub* runs, const std::string& run_id,
                        const std::string& node, bool follow, std::chrono::milliseconds timeout) {
  LogsResult result;
  auto context = ContextWithDeadline(timeout);
  v1::GetNodeLogsRequest request;
  request.set_run_id(run_id);
  request.set_node(node);
  request.set_follow(follow);
  auto reader = runs->GetNodeLogs(context.get(), request);
  v1::LogChunk chunk;
  while (reader->Read(&chunk)) {
    result.text += chunk.data();
    result.chunks.push_back(chunk);
  }
  result.status = reader->Finish();
  return result;
}

}  // namespace dagd::server::testing
