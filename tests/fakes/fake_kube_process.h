// FakeKubeProcess: the Kubernetes API / Argo Server fake (fake_kube.py, README.md) as a child
// process of a C++ test, on a free loopback port, with a bearer token, a kubeconfig for dagd,
// and schema violations reported at Stop(). Not thread-safe; one per test.
#ifndef DAGD_TESTS_FAKES_FAKE_KUBE_PROCESS_H_
#define DAGD_TESTS_FAKES_FAKE_KUBE_PROCESS_H_

#include <sys/types.h>

#include <string>
#include <vector>

namespace dagd::testing {

class FakeKubeProcess {
 public:
  // Starts the fake with its files in `dir` (which must exist) and `extra_args` (e.g.
  // {"--mode", "both"}); waits until it serves. Aborts the test binary if it cannot start.
  explicit FakeKubeProcess(const std::string& dir, std::vector<std::string> extra_args = {});
  ~FakeKubeProcess();  // Stop()

  // SIGTERM and wait: 0, or 3 if any object it received violated its schema (violations()).
  int Stop();

  std::string server() const;      // "http://127.0.0.1:PORT"
  std::string token_file() const;  // the bearer token it accepts
  std::string kubeconfig() const;  // a kubeconfig for server() with that token
  std::string violations() const;  // the recorded violations (JSON lines), "" if none
  // `GET path` on the fake's API with its token (curl-free: a tiny HTTP client); the body.
  std::string Get(const std::string& path) const;
  // `POST path` with a JSON body, e.g. Post("/fake/faults", R"({"drop_watches": true})").
  std::string Post(const std::string& path, const std::string& json_body) const;

 private:
  std::string Exchange(const std::string& request) const;

  std::string dir_;
  pid_t pid_ = -1;
  int port_ = 0;
  int exit_code_ = -1;
};

}  // namespace dagd::testing

#endif  // DAGD_TESTS_FAKES_FAKE_KUBE_PROCESS_H_
