// A tiny HTTP/1.1 server on 127.0.0.1:0 for the Kubernetes client's tests — plain or TLS,
// optionally demanding a client certificate — whose answers a test scripts with a handler.
//
// It is not a Kubernetes fake (tests/fakes/ has those): it knows nothing of the API and only
// lets a test decide, request by request, what goes back on the wire: a whole response, or a
// chunked stream written piece by piece while the test watches what the client does.
//
// Threads: one accept thread and one thread per connection; the handler runs on the
// connection's thread. A handler that blocks (a stream waiting for its next piece) must be
// released by the test (e.g. Feed::Close()) before the server is destroyed; the destructor
// shuts every connection down and joins every thread.
#ifndef DAGD_TESTS_RUNNERS_KUBERNETES_CLIENT_TEST_SERVER_H_
#define DAGD_TESTS_RUNNERS_KUBERNETES_CLIENT_TEST_SERVER_H_

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "nlohmann/json.hpp"

namespace dagd::runners::kubernetes::testing {

struct TestRequest {
  std::string method;
  std::string target;                          // path and query, as sent
  std::string path;                            // before '?'
  std::string query;                           // after '?', still percent-encoded
  std::map<std::string, std::string> headers;  // names in lower case
  std::string body;
  std::string client_subject;  // the client certificate's subject, "" without one
};

// Writes one response. Either Send() once, or StartStream(), WriteChunk()…, EndStream().
class ResponseWriter {
 public:
  explicit ResponseWriter(std::function<bool(std::string_view)> write) : write_(std::move(write)) {}

  void Send(int status, const std::string& content_type, const std::string& body);
  void SendJson(int status, const nlohmann::json& body) {
    Send(status, "application/json", body.dump());
  }
  void StartStream(int status, const std::string& content_type);
  // False once the client is gone.
  bool WriteChunk(std::string_view data);
  void EndStream();
  // Drops the connection without finishing the response.
  void Abort() { aborted_ = true; }

  bool aborted() const { return aborted_; }

 private:
  std::function<bool(std::string_view)> write_;
  bool aborted_ = false;
};

using Handler = std::function<void(const TestRequest&, ResponseWriter&)>;

struct TestServerOptions {
  bool tls = false;
  std::string cert_file;       // PEM, with tls
  std::string key_file;        // PEM, with tls
  std::string client_ca_file;  // non-empty: demand a client certificate signed by this CA
};

class TestHttpServer {
 public:
  TestHttpServer(TestServerOptions options, Handler handler);
  ~TestHttpServer();
  TestHttpServer(const TestHttpServer&) = delete;
  TestHttpServer& operator=(const TestHttpServer&) = delete;

  // "http://127.0.0.1:PORT" or "https://127.0.0.1:PORT".
  std::string url() const;
  int port() const { return port_; }

  // Every request handled so far, in order.
  std::vector<TestRequest> requests() const;
  // TCP connections accepted, and TLS handshakes that failed.
  int connections() const { return connections_.load(); }
  int failed_handshakes() const { return failed_handshakes_.load(); }

 private:
  struct State;
  void AcceptLoop();
  void Serve(int fd);

  TestServerOptions options_;
  Handler handler_;
  int port_ = 0;
  std::unique_ptr<State> state_;
  std::atomic<int> connections_{0};
  std::atomic<int> failed_handshakes_{0};
  mutable std::mutex mu_;
  std::vector<TestRequest> requests_;
  std::set<int> open_fds_;
  std::vector<std::thread> threads_;
  bool stopping_ = false;
  std::thread accept_thread_;
};

// A queue of stream pieces a handler waits on: the test Push()es, the handler Pop()s; Close()
// releases the handler (Pop() returns nullopt once the queue is empty).
class Feed {
 public:
  void Push(std::string piece);
  void Close();
  std::optional<std::string> Pop();

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::string> pieces_;
  bool closed_ = false;
};

// A one-shot event with a deadline.
class Event {
 public:
  void Notify();
  bool WaitFor(std::chrono::milliseconds timeout);

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool set_ = false;
};

// A thread-safe list of strings that a test waits on.
class Collector {
 public:
  void Add(std::string item);
  // Waits until at least `count` items arrived; false after `timeout`.
  bool WaitForCount(size_t count, std::chrono::milliseconds timeout);
  std::vector<std::string> items();

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::string> items_;
};

// ----- files and certificates -----

// A fresh directory under /tmp, removed on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string File(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

void WriteFile(const std::string& path, const std::string& content);
std::string ReadFile(const std::string& path);

// A CA, a server certificate for 127.0.0.1/localhost signed by it, a client certificate
// (CN=dagd-test-client, O=system:masters) signed by it, and an unrelated second CA — made with
// the openssl command-line tool. All PEM; keys unencrypted.
struct TestCerts {
  std::string dir;
  std::string ca_cert, ca_key;
  std::string server_cert, server_key;
  std::string client_cert, client_key;
  std::string other_ca_cert;
};
// Generates the certificates into `dir` (once per call). Fails the test (ADD_FAILURE) and
// returns false when openssl fails.
bool MakeTestCerts(const std::string& dir, TestCerts* certs);

}  // namespace dagd::runners::kubernetes::testing

#endif  // DAGD_TESTS_RUNNERS_KUBERNETES_CLIENT_TEST_SERVER_H_
