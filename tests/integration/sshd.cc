#include "tests/integration/sshd.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <thread>

#include "tests/integration/daemon.h"

namespace dagd::testing {
namespace {

bool Accepts(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const bool ok = connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  close(fd);
  return ok;
}

}  // namespace

int FreePort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  close(fd);
  return ntohs(addr.sin_port);
}

Sshd::~Sshd() {
  if (pid_ > 0) {
    kill(-pid_, SIGKILL);  // sshd and every session it forked
    waitpid(pid_, nullptr, 0);
  }
}

void Sshd::Start() {
  ASSERT_EQ(geteuid(), 0u) << "sshd needs root for privilege separation";
  std::filesystem::create_directories("/run/sshd");
  for (const char* key : {"host_key", "client_key"}) {
    const std::string keygen = "ssh-keygen -q -t ed25519 -N '' -f " + dir_ + "/" + key;
    ASSERT_EQ(std::system(keygen.c_str()), 0) << keygen;
  }
  std::filesystem::copy_file(dir_ + "/client_key.pub", dir_ + "/authorized_keys");
  port_ = FreePort();
  {
    std::ofstream config(dir_ + "/sshd_config");
    config << "Port " << port_ << "\n"
           << "ListenAddress 127.0.0.1\n"
           << "HostKey " << dir_ << "/host_key\n"
           << "AuthorizedKeysFile " << dir_ << "/authorized_keys\n"
           << "PasswordAuthentication no\n"
           << "KbdInteractiveAuthentication no\n"
           << "UsePAM no\n"
           << "PermitRootLogin prohibit-password\n"
           << "StrictModes no\n"
           << "PidFile " << dir_ << "/sshd.pid\n";
  }
  const std::string log = dir_ + "/sshd.log";
  pid_ = fork();
  ASSERT_GE(pid_, 0);
  if (pid_ == 0) {
    // Its own session, and none of the test's output pipes: the per-connection children of sshd
    // must not keep the test runner waiting for EOF after the test.
    setsid();
    int null_fd = open("/dev/null", O_RDWR);
    for (int fd : {0, 1, 2}) dup2(null_fd, fd);
    execl("/usr/sbin/sshd", "/usr/sbin/sshd", "-D", "-e", "-f", (dir_ + "/sshd_config").c_str(),
          "-E", log.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (std::chrono::steady_clock::now() < deadline) {
    if (Accepts(port_)) return;
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      FAIL() << "sshd exited: " << ReadFile(log);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  FAIL() << "sshd did not accept connections within 20s: " << ReadFile(log);
}

}  // namespace dagd::testing
