// A real OpenSSH server for tests: /usr/sbin/sshd on 127.0.0.1 at a free port, with its own
// host key, accepting one generated client key for the current user. Needs root (sshd's
// privilege separation), as the tests run in CI.
#ifndef DAGD_TESTS_INTEGRATION_SSHD_H_
#define DAGD_TESTS_INTEGRATION_SSHD_H_

#include <sys/types.h>

#include <string>

namespace dagd::testing {

class Sshd {
 public:
  // Keys, configuration and logs go to `dir`.
  explicit Sshd(std::string dir) : dir_(std::move(dir)) {}
  ~Sshd();

  // Starts sshd and waits (bounded) until it accepts connections. Fails the test on error.
  void Start();

  int port() const { return port_; }
  // The private key the server accepts.
  std::string client_key() const { return dir_ + "/client_key"; }

 private:
  std::string dir_;
  pid_t pid_ = -1;
  int port_ = 0;
};

// A loopback port on which nothing listens (bound once, then released).
int FreePort();

}  // namespace dagd::testing

#endif  // DAGD_TESTS_INTEGRATION_SSHD_H_
