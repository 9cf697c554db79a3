// Test harness for integration tests: the real `dagd` binary on 127.0.0.1 with a port chosen by
// the kernel and a temporary data directory, real gRPC clients, and the real `dagctl`.
#ifndef DAGD_TESTS_INTEGRATION_DAEMON_H_
#define DAGD_TESTS_INTEGRATION_DAEMON_H_

#include <grpcpp/grpcpp.h>
#include <sys/types.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "dagd/v1/run.grpc.pb.h"
#include "dagd/v1/workflow.grpc.pb.h"

namespace dagd::testing {

// A fresh temporary directory, removed with its contents on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// One dagd process. Start() may be called again after Kill()/Terminate() on the same data dir.
class Daemon {
 public:
  explicit Daemon(std::string data_dir) : data_dir_(std::move(data_dir)) {}
  ~Daemon();

  // Starts dagd and waits (bounded) until it serves. Fails the test on error.
  void Start();
  // From now on, start dagd with `--config path` alone. The file must set listen, data-dir,
  // port-file = <data dir>/port and metrics-listen (127.0.0.1:0, or "" for none), and may set
  // metrics-port-file = <data dir>/metrics-port.
  void UseConfigFile(std::string path) { config_file_ = std::move(path); }
  // Flags added to the command line of every later Start() (without a config file); not those
  // the harness sets itself (--listen: ListenOn()).
  void AddArgs(const std::vector<std::string>& args) {
    extra_args_.insert(extra_args_.end(), args.begin(), args.end());
  }
  // dagd's --listen (default 127.0.0.1:0); the harness still connects to 127.0.0.1.
  void ListenOn(std::string address) { listen_ = std::move(address); }
  // The credentials of the harness's own channel (runs(), workflows()); default plaintext.
  // `server_name` (may be empty) is the name the server's certificate is checked for.
  void UseChannelCredentials(std::shared_ptr<grpc::ChannelCredentials> credentials,
                             std::string server_name = "") {
    credentials_ = std::move(credentials);
    server_name_ = std::move(server_name);
  }
  // SIGTERM and wait for a clean exit; returns the exit status.
  int Terminate();
  // SIGKILL, as a crash would.
  void Kill();

  const std::string& address() const { return address_; }
  // HOST:PORT of /metrics, /healthz, /readyz; "" when this dagd serves none.
  const std::string& metrics_address() const { return metrics_address_; }
  pid_t pid() const { return pid_; }
  v1::RunService::Stub* runs() { return runs_.get(); }
  v1::WorkflowService::Stub* workflows() { return workflows_.get(); }

 private:
  std::string data_dir_;
  std::string config_file_;
  std::vector<std::string> extra_args_;
  std::string listen_ = "127.0.0.1:0";
  std::shared_ptr<grpc::ChannelCredentials> credentials_;
  std::string server_name_;
  pid_t pid_ = -1;
  std::string address_;
  std::string metrics_address_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::RunService::Stub> runs_;
  std::unique_ptr<v1::WorkflowService::Stub> workflows_;
};

struct CommandResult {
  int exit_code = -1;
  std::string output;  // stdout and stderr, interleaved
};

// Runs `command` (argv; command[0] is a path), capturing its output. Bounded by `timeout`.
CommandResult RunCommand(const std::vector<std::string>& command,
                         std::chrono::seconds timeout = std::chrono::seconds(120));

// Runs `dagctl` with `args` against `server`, capturing its output. Bounded by `timeout`.
CommandResult RunDagctl(const std::string& server, const std::vector<std::string>& args,
                        std::chrono::seconds timeout = std::chrono::seconds(120));

struct HttpResult {
  int status = -1;  // -1: no HTTP answer (nothing listening, or not HTTP)
  std::string content_type;
  std::string body;
};

// One HTTP/1.0 GET of `target` ("/metrics?x=y") from `address` ("127.0.0.1:PORT").
HttpResult HttpGet(const std::string& address, const std::string& target);

// A loopback TCP port that was free a moment ago (for servers that cannot report theirs).
int FreeLoopbackPort();

// Streams WatchRun until the run is final; returns every event seen. Bounded by `timeout`.
std::vector<v1::RunEvent> WatchToEnd(v1::RunService::Stub* runs, const std::string& run_id,
                                     int64_t after_sequence = 0,
                                     std::chrono::seconds timeout = std::chrono::seconds(120));

// Reads a file; "" if missing.
std::string ReadFile(const std::string& path);
// Every regular file under `dir`, recursively, with its permission bits: the bundle that
// `dagctl --bundle DIR` sends for a plain directory.
v1::Bundle ReadBundle(const std::string& dir);
// Lines of a file.
std::vector<std::string> ReadLines(const std::string& path);

// The node of `run` with that display name, or nullptr.
const v1::Node* FindNode(const v1::Run& run, const std::string& display_name);

// Source paths.
std::string SourcePath(const std::string& relative);
std::string BinaryPath(const std::string& relative);

}  // namespace dagd::testing

#endif  // DAGD_TESTS_INTEGRATION_DAEMON_H_
