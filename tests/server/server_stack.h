// ServerStack: dagd's serving stack in one test process — the real SQLite store on a temporary
// file, the real Scheduler on an io_context driven by a thread of the stack, the real local
// runner, a RunHub, and DagdServer on 127.0.0.1:0 — plus generated stubs over a real loopback
// channel. Helpers below wait on streams with deadlines, never with fixed sleeps.
//
// Threads: the stack owns the scheduler thread. Stubs may be used from any thread.
#ifndef DAGD_TESTS_SERVER_SERVER_STACK_H_
#define DAGD_TESTS_SERVER_SERVER_STACK_H_

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "dagd/v1/run.grpc.pb.h"
#include "dagd/v1/workflow.grpc.pb.h"
#include "runners/runner.h"
#include "scheduler/clock.h"
#include "scheduler/scheduler.h"
#include "server/run_hub.h"
#include "server/server.h"
#include "storage/store.h"

namespace dagd::server::testing {

// The system clock shifted by an offset the test may advance, so that runs get creation times
// far enough apart to filter on.
class OffsetClock : public scheduler::Clock {
 public:
  int64_t NowMs() override { return scheduler::SystemClock()->NowMs() + offset_ms_.load(); }
  void Advance(int64_t ms) { offset_ms_ += ms; }

 private:
  std::atomic<int64_t> offset_ms_{0};
};

class ServerStack {
 public:
  ServerStack();
  // Shuts down in dagd's order: server, loop, attempts, store.
  ~ServerStack();
  ServerStack(const ServerStack&) = delete;
  ServerStack& operator=(const ServerStack&) = delete;

  // Builds and starts everything; fails the current test on error (use ASSERT_NO_FATAL_FAILURE).
  // The server gets `options`, listening on 127.0.0.1:0 whatever options.listen says; the
  // scheduler gets the stack's options, then `adjust` (may be empty) changes them.
  void Start(ServerOptions options = ServerOptions(),
             const std::function<void(scheduler::SchedulerOptions*)>& adjust = nullptr);
  // Stops the gRPC server (ends open streams after `deadline_ms`); idempotent.
  void ShutdownServer(int64_t deadline_ms);

  v1::WorkflowService::Stub* workflows() { return workflows_.get(); }
  v1::RunService::Stub* runs() { return runs_.get(); }
  std::shared_ptr<grpc::Channel> channel() { return channel_; }
  OffsetClock* clock() { return &clock_; }
  int port() const { return port_; }
  // A temporary directory of the stack's own, removed with it.
  const std::string& dir() const { return dir_; }
  storage::Store* store() { return store_.get(); }
  scheduler::Scheduler* scheduler() { return scheduler_.get(); }
  RunHub* hub() { return &hub_; }

 private:
  std::string dir_;
  OffsetClock clock_;
  std::unique_ptr<storage::Store> store_;
  boost::asio::io_context io_;
  std::optional<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> work_;
  std::thread loop_;
  std::unique_ptr<runners::RunnerRegistry> registry_;
  RunHub hub_;
  std::unique_ptr<scheduler::Scheduler> scheduler_;
  std::unique_ptr<DagdServer> server_;
  int port_ = 0;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::WorkflowService::Stub> workflows_;
  std::unique_ptr<v1::RunService::Stub> runs_;
};

// A workflow named `name` (or with generateName `name-` when `generate` is set) whose DAG has
// one task "say" running `argv` as a container command.
std::string OneTaskWorkflow(const std::string& name, const std::vector<std::string>& argv,
                            bool generate = false);

inline constexpr std::chrono::seconds kDeadline{30};

// A ClientContext whose deadline is `timeout` from now.
std::unique_ptr<grpc::ClientContext> ContextWithDeadline(
    std::chrono::milliseconds timeout = kDeadline);

// Submits an inline spec; fails the test (and returns an empty Run) on error.
v1::Run SubmitSpec(v1::RunService::Stub* runs, const std::string& yaml);

struct WatchResult {
  std::vector<v1::RunEvent> events;
  grpc::Status status;
};

// Streams WatchRun from `after_sequence` until the server ends the stream or `timeout` passes.
WatchResult WatchToEnd(v1::RunService::Stub* runs, const std::string& run_id,
                       int64_t after_sequence = 0, std::chrono::milliseconds timeout = kDeadline);

// Streams WatchRun until an event satisfies `match` (true), or the stream ends or `timeout` passes
// (false); the stream is then cancelled. `seen` (optional) receives every event read.
bool WaitForEvent(v1::RunService::Stub* runs, const std::string& run_id,
                  const std::function<bool(const v1::RunEvent&)>& match,
                  std::vector<v1::RunEvent>* seen = nullptr,
                  std::chrono::milliseconds timeout = kDeadline);

// Waits until the run's first attempt of a leaf node has started.
bool WaitForAttemptStarted(v1::RunService::Stub* runs, const std::string& run_id);

// Runs `argv` as a one-task workflow to its end; returns the finished run (with nodes).
v1::Run RunToEnd(v1::RunService::Stub* runs, const std::vector<std::string>& argv);

v1::Run GetRun(v1::RunService::Stub* runs, const std::string& run_id);

// The node of `run` with that display name, or nullptr.
const v1::Node* FindNode(const v1::Run& run, const std::string& display_name);

struct LogsResult {
  std::vector<v1::LogChunk> chunks;
  std::string text;  // the chunks' data, concatenated
  grpc::Status status;
};

LogsResult ReadNodeLogs(v1::RunService::Stub* runs, const std::string& run_id,
                        const std::string& node, bool follow,
                        std::chrono::milliseconds timeout = kDeadline);

}  // namespace dagd::server::testing

#endif  // DAGD_TESTS_SERVER_SERVER_STACK_H_
