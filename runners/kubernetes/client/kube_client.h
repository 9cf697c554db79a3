// KubeClient: dagd's HTTP client for the Kubernetes API server (and any API server that speaks
// the same conventions), on libcurl.
//
// One client per cluster, shared by everything that talks to it. It owns a small pool of
// connections (at most KubeClientOptions::max_idle_connections kept open between calls) and
// the bearer token, which it re-reads from ClusterConfig::token_file at most once per
// token_refresh_period so rotated service account tokens are picked up.
//
// THREADS. Every method is thread-safe and BLOCKING: a Request() waits for the whole answer (up
// to its timeout), a Watch() or Stream() runs until the server ends the stream, a callback
// fails, or its CancelToken is cancelled. Call them from worker threads — never from the
// scheduler's io_context thread, which must not block (DESIGN.md §2). Callbacks run on the
// calling thread, one at a time per call, and should return quickly: while a callback runs
// nothing is read from the stream. A CancelToken may be cancelled from any thread; a call
// blocked on it returns within milliseconds (libcurl's multi interface is woken up, not polled).
//
// ERRORS. Every failure is an absl::Status whose message names the API server:
//   an HTTP status >= 300       → errors.h (e.g. 404 → NotFound, with Kubernetes' `message`);
//   no connection (refused, unreachable, no TCP/TLS connection within connect_timeout), a
//   broken connection, a TLS failure → Unavailable "kubernetes API https://…: <libcurl's words>";
//   a bad local certificate/key → FailedPrecondition;
//   the request timeout on an established connection → DeadlineExceeded;
//   a cancelled CancelToken     → Cancelled.
// Redirects are not followed.
//
// libcurl is initialised once per process (InitCurlOnce(), called by Create()); no libcurl type
// appears in this header.
#ifndef DAGD_RUNNERS_KUBERNETES_CLIENT_KUBE_CLIENT_H_
#define DAGD_RUNNERS_KUBERNETES_CLIENT_KUBE_CLIENT_H_

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"
#include "runners/kubernetes/client/cluster_config.h"
#include "runners/kubernetes/client/errors.h"

namespace dagd::runners::kubernetes {

// Calls curl_global_init() the first time, never again. Thread-safe. KubeClient::Create() calls
// it; anything else in dagd that uses libcurl should too.
void InitCurlOnce();

// Cancels the calls it is passed to: those running now return Cancelled promptly, those started
// later return Cancelled at once. One token may serve many calls on many threads (e.g. every
// watch of a runner that is shutting down). Cancelling is permanent. Thread-safe.
class CancelToken {
 public:
  CancelToken() = default;
  CancelToken(const CancelToken&) = delete;
  CancelToken& operator=(const CancelToken&) = delete;

  void Cancel();
  bool IsCancelled() const { return cancelled_.load(std::memory_order_acquire); }

  // For KubeClient: `wake` is called (under the token's lock, so it must not block) when the
  // token is cancelled, until the registration is removed. Returns 0 when already cancelled.
  uint64_t Register(std::function<void()> wake);
  void Unregister(uint64_t id);

 private:
  std::atomic<bool> cancelled_{false};
  std::mutex mu_;
  uint64_t next_id_ = 1;
  std::map<uint64_t, std::function<void()>> wakes_;
};

struct KubeClientOptions {
  // How long to wait for a TCP connection (and the TLS handshake).
  std::chrono::milliseconds connect_timeout{10'000};
  // The whole-request limit of Request() when RequestOptions::timeout is 0.
  std::chrono::milliseconds request_timeout{30'000};
  // A token file is re-read when the token in hand is at least this old.
  std::chrono::milliseconds token_refresh_period{60'000};
  // The clock for the token's age. Empty: std::chrono::steady_clock::now. Tests pass a manual
  // clock.
  std::function<std::chrono::steady_clock::time_point()> now;
  // Connections (with their TLS sessions) kept open between calls.
  size_t max_idle_connections = 8;
  std::string user_agent = "dagd";
};

// Query parameters, in order; names and values are percent-encoded by the client.
using Query = std::vector<std::pair<std::string, std::string>>;

struct RequestOptions {
  // The Content-Type of the body, e.g. "application/merge-patch+json" for a PATCH.
  std::string content_type = "application/json";
  // 0: KubeClientOptions::request_timeout.
  std::chrono::milliseconds timeout{0};
  // Optional; lets another thread abandon the request.
  CancelToken* cancel = nullptr;
};

struct Response {
  int http_status = 0;       // 2xx (anything else is an error status)
  std::string content_type;  // as the server sent it
  std::string body;          // the raw body
  nlohmann::json json;       // the body parsed, when content_type is JSON; else null
};

struct StreamOptions {
  // Give up with DeadlineExceeded when no byte arrives for this long; 0: never. Watches that
  // ask for bookmarks (allowWatchBookmarks=true) hear from the API server about once a minute,
  // so a few minutes is a safe value for them. TCP keepalive is always on.
  std::chrono::milliseconds idle_timeout{0};
};

// Called with each complete line of a stream (without its '\n'; empty lines are skipped). A
// non-OK return ends the stream: Watch() returns that status.
using LineCallback = std::function<absl::Status(std::string_view line)>;
// Called with each watch event, parsed.
using EventCallback = std::function<absl::Status(const nlohmann::json& event)>;
// Called with the bytes of a stream as they arrive, in arbitrary pieces.
using DataCallback = std::function<absl::Status(std::string_view bytes)>;

class KubeClient {
 public:
  // Checks `config` (an http or https server URL; the CA, certificate, key and token files it
  // names readable; certificate and key together) and reads the token file once.
  // InvalidArgument / NotFound naming the field or the file otherwise.
  static absl::StatusOr<std::unique_ptr<KubeClient>> Create(ClusterConfig config,
                                                            KubeClientOptions options = {});
  ~KubeClient();
  KubeClient(const KubeClient&) = delete;
  KubeClient& operator=(const KubeClient&) = delete;

  // The server's base URL, as errors name it.
  const std::string& server() const;
  const ClusterConfig& config() const;

  // One request: `method` ("GET", "POST", "PUT", "PATCH", "DELETE") on `path` (an absolute API
  // path such as "/apis/batch/v1/namespaces/ns/jobs", used as given — names in it must already
  // be URL-safe, as Kubernetes names are) with `query`, and `body` sent as JSON when present.
  // Returns the 2xx response; every other outcome is an error (see above), so a 404 is NotFound
  // carrying the server's Status message. A JSON content type whose body does not parse is
  // Internal.
  absl::StatusOr<Response> Request(std::string_view method, std::string_view path,
                                   const Query& query = {},
                                   const std::optional<nlohmann::json>& body = std::nullopt,
                                   const RequestOptions& options = {});

  // A GET whose answer is a stream of newline-delimited JSON (a watch: put watch=1 — and
  // resourceVersion, allowWatchBookmarks, timeoutSeconds as needed — in `query`). Each line is
  // handed to `on_line` as soon as it is complete. Returns OK when the server ends the stream
  // (a watch's timeoutSeconds), Cancelled when `cancel` (may be null) is cancelled, the
  // callback's status when it returns one, the HTTP error when the server refuses the stream
  // (e.g. IsGone() for a 410), Unavailable when the connection breaks. A last line without a
  // '\n' is still delivered. Note that a watch reports an expired resourceVersion either as a
  // 410 answer or as an ERROR event carrying a Status object (StatusFromKubernetesStatus()).
  absl::Status Watch(std::string_view path, const Query& query, const LineCallback& on_line,
                     CancelToken* cancel, const StreamOptions& options = {});

  // Watch() with each line parsed as JSON; a line that does not parse ends the watch with
  // DataLoss naming the server.
  absl::Status WatchEvents(std::string_view path, const Query& query, const EventCallback& on_event,
                           CancelToken* cancel, const StreamOptions& options = {});

  // A GET whose answer is delivered as raw bytes as they arrive — pod logs with follow=true.
  // Returns as Watch() does.
  absl::Status Stream(std::string_view path, const Query& query, const DataCallback& on_data,
                      CancelToken* cancel, const StreamOptions& options = {});

 private:
  class Impl;
  explicit KubeClient(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace dagd::runners::kubernetes

#endif  // DAGD_RUNNERS_KUBERNETES_CLIENT_KUBE_CLIENT_H_
