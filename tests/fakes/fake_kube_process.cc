#include "tests/fakes/fake_kube_process.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

namespace dagd::testing {
namespace {

std::string Slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream out;
  out << in.rdbuf();
  return out.str();
}

}  // namespace

FakeKubeProcess::FakeKubeProcess(const std::string& dir, std::vector<std::string> extra_args)
    : dir_(dir) {
  std::ofstream(dir_ + "/token") << "dagd-test-token\n";
  std::vector<std::string> args = {
      DAGD_FAKES_PYTHON,  DAGD_FAKE_KUBE,       "--schemas",         DAGD_SHARED_SCHEMAS,
      "--token-file",     dir_ + "/token",      "--port-file",       dir_ + "/port",
      "--work-dir",       dir_ + "/pods",       "--violations-file", dir_ + "/violations.jsonl",
      "--kubeconfig-out", dir_ + "/kubeconfig", "--pod-start-delay", "0.05"};
  args.insert(args.end(), extra_args.begin(), extra_args.end());
  pid_ = fork();
  if (pid_ == 0) {
    std::vector<char*> argv;
    for (std::string& arg : args) argv.push_back(arg.data());
    argv.push_back(nullptr);
    execv(argv[0], argv.data());
    _exit(127);
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (std::chrono::steady_clock::now() < deadline) {
    if (!Slurp(dir_ + "/port").empty() && std::filesystem::exists(dir_ + "/kubeconfig")) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  const std::string port = Slurp(dir_ + "/port");
  if (port.empty()) {
    std::fprintf(stderr, "the Kubernetes API fake did not start (see %s)\n", dir_.c_str());
    std::abort();
  }
  port_ = std::stoi(port);
}

FakeKubeProcess::~FakeKubeProcess() { Stop(); }

int FakeKubeProcess::Stop() {
  if (pid_ <= 0) return exit_code_;
  kill(pid_, SIGTERM);
  int status = 0;
  waitpid(pid_, &status, 0);
  pid_ = -1;
  exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return exit_code_;
}

std::string FakeKubeProcess::server() const { return "http://127.0.0.1:" + std::to_string(port_); }
std::string FakeKubeProcess::token_file() const { return dir_ + "/token"; }
std::string FakeKubeProcess::kubeconfig() const { return dir_ + "/kubeconfig"; }
std::string FakeKubeProcess::violations() const { return Slurp(dir_ + "/violations.jsonl"); }

std::string FakeKubeProcess::Get(const std::string& path) const {
  return Exchange("GET " + path +
                  " HTTP/1.0\r\nHost: 127.0.0.1\r\nAuthorization: Bearer dagd-test-token\r\n"
                  "Connection: close\r\n\r\n");
}

std::string FakeKubeProcess::Post(const std::string& path, const std::string& json_body) const {
  return Exchange("POST " + path +
                  " HTTP/1.0\r\nHost: 127.0.0.1\r\nAuthorization: Bearer dagd-test-token\r\n"
                  "Content-Type: application/json\r\nContent-Length: " +
                  std::to_string(json_body.size()) + "\r\nConnection: close\r\n\r\n" + json_body);
}

std::string FakeKubeProcess::Exchange(const std::string& request) const {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port_));
  inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    close(fd);
    return "";
  }
  (void)!write(fd, request.data(), request.size());
  std::string response;
  char buf[8192];
  ssize_t n;
  while ((n = read(fd, buf, sizeof buf)) > 0) response.append(buf, static_cast<size_t>(n));
  close(fd);
  const size_t body = response.find("\r\n\r\n");
  return body == std::string::npos ? "" : response.substr(body + 4);
}

}  // namespace dagd::testing
