#include "tests/integration/daemon.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
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
  fs::remove(data_dir_ + "/metrics-port");
  metrics_address_.clear();
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
      const std::string metrics_port_file = data_dir_ + "/metrics-port";
      std::vector<std::string> args = {binary,
                                       "--listen",
                                       listen_,
                                       "--data-dir",
                                       data_dir_,
                                       "--port-file",
                                       port_file,
                                       "--metrics-listen",
                                       "127.0.0.1:0",
                                       "--metrics-port-file",
                                       metrics_port_file,
                                       "--grace-period-ms",
                                       "2000",
                                       "--log-level",
                                       "debug"};
      args.insert(args.end(), extra_args_.begin(), extra_args_.end());
      std::vector<char*> argv;
      for (std::string& arg : args) argv.push_back(arg.data());
      argv.push_back(nullptr);
      execv(binary.c_str(), argv.data());
    }
    _exit(127);
  }
  const auto deadline = Clock::now() + std::chrono::seconds(30);
  while (Clock::now() < deadline) {
    std::string port = ReadFile(port_file);
    if (!port.empty() && port.back() == '\n') {
      address_ = "127.0.0.1:" + port.substr(0, port.size() - 1);
      // Written before the gRPC port file, when dagd serves one.
      if (std::string metrics = ReadFile(data_dir_ + "/metrics-port"); !metrics.empty()) {
        metrics_address_ = "127.0.0.1:" + metrics.substr(0, metrics.size() - 1);
      }
      grpc::ChannelArguments channel_args;
      if (!server_name_.empty()) channel_args.SetSslTargetNameOverride(server_name_);
      channel_ = grpc::CreateCustomChannel(
          address_, credentials_ ? credentials_ : grpc::InsecureChannelCredentials(), channel_args);
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

CommandResult RunCommand(const std::vector<std::string>& command, std::chrono::seconds timeout) {
  CommandResult result;
  int pipe_fds[2];
  if (pipe(pipe_fds) != 0) return result;
  pid_t pid = fork();
  if (pid == 0) {
    dup2(pipe_fds[1], 1);
    dup2(pipe_fds[1], 2);
    close(pipe_fds[0]);
    close(pipe_fds[1]);
    std::vector<std::string> full = command;
    std::vector<char*> argv;
    for (auto& a : full) argv.push_back(a.data());
    argv.push_back(nullptr);
    execv(argv[0], argv.data());
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
      ADD_FAILURE() << command[0] << " timed out: " << result.output;
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

CommandResult RunDagctl(const std::string& server, const std::vector<std::string>& args,
                        std::chrono::seconds timeout) {
  std::vector<std::string> command = {BinaryPath("cmd/dagctl/dagctl"), "--server", server};
  command.insert(command.end(), args.begin(), args.end());
  return RunCommand(command, timeout);
}

HttpResult HttpGet(const std::string& address, const std::string& target) {
  HttpResult result;
  const size_t colon = address.rfind(':');
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(std::stoi(address.substr(colon + 1))));
  if (inet_pton(AF_INET, address.substr(0, colon).c_str(), &addr.sin_addr) != 1) return result;
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return result;
  timeval tv{30, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    close(fd);
    return result;
  }
  // HTTP/1.0: the server closes after the response, which is never chunked.
  const std::string request = "GET " + target + " HTTP/1.0\r\nHost: " + address + "\r\n\r\n";
  if (write(fd, request.data(), request.size()) != static_cast<ssize_t>(request.size())) {
    close(fd);
    return result;
  }
  std::string response;
  char buf[8192];
  for (ssize_t n; (n = read(fd, buf, sizeof buf)) > 0;) response.append(buf, n);
  close(fd);
  const size_t header_end = response.find("\r\n\r\n");
  if (response.rfind("HTTP/", 0) != 0 || header_end == std::string::npos) return result;
  result.status = std::stoi(response.substr(response.find(' ') + 1, 3));
  std::istringstream headers(response.substr(0, header_end));
  for (std::string line; std::getline(headers, line);) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    const size_t sep = line.find(':');
    if (sep == std::string::npos) continue;
    std::string name = line.substr(0, sep);
    std::transform(name.begin(), name.end(), name.begin(), ::tolower);
    if (name == "content-type")
      result.content_type = line.substr(line.find_first_not_of(' ', sep + 1));
  }
  result.body = response.substr(header_end + 4);
  return result;
}

int FreeLoopbackPort() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t length = sizeof addr;
  int port = -1;
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &length) == 0) {
    port = ntohs(addr.sin_port);
  }
  close(fd);
  return port;
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
