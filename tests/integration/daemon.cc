#include "tests/integration/daemon.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

namespace dagd::testing {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

// Waits for `pid` to exit until `deadline`; returns its wait status or -1.
int WaitUntil(pid_t pid, Clock::time_point deadline) {
  while (Clock::now() < deadline) {
    int status = 0;
    pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid) return status;
    if (r < 0) return -1;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return -1;
}

}  // namespace

v1::Bundle ReadBundle(const std::string& dir) {
  v1::Bundle bundle;
  for (const auto& entry : fs::recursive_directory_iterator(dir)) {
    if (!entry.is_regular_file()) continue;
    v1::BundleFile* file = bundle.add_files();
    file->set_path(fs::relative(entry.path(), dir).generic_string());
    file->set_content(ReadFile(entry.path().string()));
    file->set_mode(static_cast<uint32_t>(entry.status().permissions()) & 0777);
  }
  return bundle;
}

std::string SourcePath(const std::string& relative) {
  return std::string(DAGD_SOURCE_DIR) + "/" + relative;
}

std::string BinaryPath(const std::string& relative) {
  return std::string(DAGD_BINARY_DIR) + "/" + relative;
}

TempDir::TempDir() {
  std::string tmpl = (fs::temp_directory_path() / "dagd-test-XXXXXX").string();
  char* made = mkdtemp(tmpl.data());
  if (!made) std::abort();
  path_ = made;
}

TempDir::~TempDir() {
  std::error_code ec;
  fs::remove_all(path_, ec);
}

Daemon::~Daemon() {
  if (pid_ > 0) Kill();
}

void Daemon::Start() {
  ASSERT_LT(pid_, 0) << "dagd is already running";
  fs::create_directories(data_dir_);
  const std::string port_file = data_dir_ + "/port";
  fs::remove(port_file);
  const std::string log = data_dir_ + "/dagd.log";
  const std::string binary = BinaryPath("cmd/dagd/dagd");
  pid_ = fork();
  ASSERT_GE(pid_, 0);
  if (pid_ == 0) {
    int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
      dup2(fd, 1);
      dup2(fd, 2);
    }
    if (!config_file_.empty()) {
      execl(binary.c_str(), binary.c_str(), "--config", config_file_.c_str(),
            static_cast<char*>(nullptr));
    } else {
      execl(binary.c_str(), binary.c_str(), "--listen", "127.0.0.1:0", "--data-dir",
            data_dir_.c_str(), "--port-file", port_file.c_str(), "--grace-period-ms", "2000",
            "--log-level", "debug", static_cast<char*>(nullptr));
    }
    _exit(127);
  }
  const auto deadline = Clock::now() + std::chrono::seconds(30);
  while (Clock::now() < deadline) {
    std::string port = ReadFile(port_file);
    if (!port.empty() && port.back() == '\n') {
      address_ = "127.0.0.1:" + port.substr(0, port.size() - 1);
      channel_ = grpc::CreateChannel(address_, grpc::InsecureChannelCredentials());
      runs_ = v1::RunService::NewStub(channel_);
      workflows_ = v1::WorkflowService::NewStub(channel_);
      ASSERT_TRUE(
          channel_->WaitForConnected(std::chrono::system_clock::now() + std::chrono::seconds(10)));
      return;
    }
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      FAIL() << "dagd exited during start-up:\n" << ReadFile(log);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  FAIL() << "dagd did not start serving within 30s:\n" << ReadFile(log);
}

int Daemon::Terminate() {
  if (pid_ < 0) return -1;
  kill(pid_, SIGTERM);
  int status = WaitUntil(pid_, Clock::now() + std::chrono::seconds(30));
  if (status == -1) {
    kill(pid_, SIGKILL);
    waitpid(pid_, &status, 0);
    ADD_FAILURE() << "dagd did not exit within 30s of SIGTERM";
  }
  pid_ = -1;
  return status;
}

void Daemon::Kill() {
  if (pid_ < 0) return;
  kill(pid_, SIGKILL);
  int status = 0;
  waitpid(pid_, &status, 0);
  pid_ = -1;
}

CommandResult RunDagctl(const std::string& server, const std::vector<std::string>& args,
                        std::chrono::seconds timeout) {
  CommandResult result;
  int pipe_fds[2];
  if (pipe(pipe_fds) != 0) return result;
  const std::string binary = BinaryPath("cmd/dagctl/dagctl");
  pid_t pid = fork();
  if (pid == 0) {
    dup2(pipe_fds[1], 1);
    dup2(pipe_fds[1], 2);
    close(pipe_fds[0]);
    close(pipe_fds[1]);
    std::vector<std::string> full = {binary, "--server", server};
    full.insert(full.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (auto& a : full) argv.push_back(a.data());
    argv.push_back(nullptr);
    execv(binary.c_str(), argv.data());
    _exit(127);
  }
  close(pipe_fds[1]);
  fcntl(pipe_fds[0], F_SETFL, O_NONBLOCK);
  const auto deadline = Clock::now() + timeout;
  char buf[4096];
  for (;;) {
    ssize_t n = read(pipe_fds[0], buf, sizeof buf);
    if (n > 0) {
      result.output.append(buf, n);
      continue;
    }
    if (n == 0) break;
    if (Clock::now() > deadline) {
      kill(pid, SIGKILL);
      ADD_FAILURE() << "dagctl timed out: " << result.output;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  close(pipe_fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return result;
}

std::vector<v1::RunEvent> WatchToEnd(v1::RunService::Stub* runs, const std::string& run_id,
                                     int64_t after_sequence, std::chrono::seconds timeout) {
  std::vector<v1::RunEvent> events;
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + timeout);
  v1::WatchRunRequest request;
  request.set_run_id(run_id);
  request.set_after_sequence(after_sequence);
  auto reader = runs->WatchRun(&context, request);
  v1::RunEvent event;
  while (reader->Read(&event)) events.push_back(event);
  grpc::Status status = reader->Finish();
  EXPECT_TRUE(status.ok()) << status.error_code() << ": " << status.error_message();
  return events;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::vector<std::string> ReadLines(const std::string& path) {
  std::vector<std::string> lines;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

const v1::Node* FindNode(const v1::Run& run, const std::string& display_name) {
  for (const auto& node : run.nodes()) {
    if (node.display_name() == display_name) return &node;
  }
  return nullptr;
}

}  // namespace dagd::testing
