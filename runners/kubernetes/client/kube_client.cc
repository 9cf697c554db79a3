#include "runners/kubernetes/client/kube_client.h"

#include <curl/curl.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "engine/status_macros.h"
#include "spdlog/sinks/stdout_color_sinks.h"
#include "spdlog/spdlog.h"

namespace dagd::runners::kubernetes {
namespace {

using SteadyClock = std::chrono::steady_clock;

// absl::string_view is not std::string_view in Debian's abseil.
absl::string_view Av(std::string_view text) { return absl::string_view(text.data(), text.size()); }

// The longest line a watch may send (an event carries a whole object; etcd caps objects at
// 1.5 MiB, JSON escaping can inflate that).
constexpr size_t kMaxLine = 16u << 20;
// How much of a refused stream's error body is kept for the message.
constexpr size_t kMaxErrorBody = 64u << 10;
// The longest a blocked call waits between looks at its cancel token and idle timer, in case a
// wakeup is lost. Cancellation itself wakes the call at once.
constexpr int kMaxPollMs = 1000;

std::shared_ptr<spdlog::logger> Logger() {
  if (auto logger = spdlog::get("runner.kubernetes")) return logger;
  auto logger = spdlog::default_logger()->clone("runner.kubernetes");
  try {
    spdlog::register_logger(logger);
  } catch (const spdlog::spdlog_ex&) {
    return spdlog::get("runner.kubernetes");  // registered concurrently
  }
  return logger;
}

absl::StatusOr<std::string> ReadToken(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::NotFoundError(
        absl::StrCat("token file ", path, ": cannot read: ", std::strerror(errno)));
  }
  std::ostringstream text;
  text << in.rdbuf();
  std::string token(absl::StripAsciiWhitespace(text.str()));
  if (token.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("token file ", path, " is empty"));
  }
  return token;
}

absl::Status CheckReadable(const std::string& path, std::string_view what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::NotFoundError(
        absl::StrCat(Av(what), " ", path, ": cannot read: ", std::strerror(errno)));
  }
  return absl::OkStatus();
}

bool IsJsonContentType(std::string_view content_type) {
  std::string_view media = content_type.substr(0, content_type.find(';'));
  absl::string_view stripped = absl::StripAsciiWhitespace(Av(media));
  return absl::EqualsIgnoreCase(stripped, "application/json") ||
         absl::EndsWithIgnoreCase(stripped, "+json");
}

// One pooled connection: an easy handle inside its own multi handle. The multi handle owns the
// connection cache, so a pair that goes back to the pool keeps its keep-alive connection (and
// TLS session) for the next call.
struct Connection {
  CURLM* multi = nullptr;
  CURL* easy = nullptr;
  char error[CURL_ERROR_SIZE] = {};

  Connection() : multi(curl_multi_init()), easy(curl_easy_init()) {}
  ~Connection() {
    if (easy != nullptr) curl_easy_cleanup(easy);
    if (multi != nullptr) curl_multi_cleanup(multi);
  }
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;
};

// What one call collects while libcurl runs it.
struct Transfer {
  enum class Mode { kBuffer, kLines, kBytes };
  Mode mode = Mode::kBuffer;
  CURL* easy = nullptr;
  const LineCallback* on_line = nullptr;
  const DataCallback* on_data = nullptr;

  std::string body;              // kBuffer: the body; streams: the error body of a refused stream
  std::string partial;           // kLines: an incomplete line
  bool decided = false;          // streams: the status code has been looked at
  bool deliver = false;          // streams: 2xx, hand bytes to the callback
  absl::Status callback_status;  // a callback's error, which ended the transfer
  SteadyClock::time_point last_data = SteadyClock::now();
};

absl::Status DeliverLines(Transfer* t, bool at_end) {
  size_t start = 0;
  for (;;) {
    size_t newline = t->partial.find('\n', start);
    if (newline == std::string::npos) break;
    std::string_view line(t->partial.data() + start, newline - start);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    start = newline + 1;
    if (line.empty()) continue;
    if (absl::Status status = (*t->on_line)(line); !status.ok()) return status;
  }
  t->partial.erase(0, start);
  if (at_end && !t->partial.empty()) {
    std::string last = std::move(t->partial);
    t->partial.clear();
    return (*t->on_line)(last);
  }
  if (t->partial.size() > kMaxLine) {
    return absl::ResourceExhaustedError(
        absl::StrCat("a line of the stream is longer than ", kMaxLine, " bytes"));
  }
  return absl::OkStatus();
}

size_t WriteCallback(char* data, size_t size, size_t count, void* user) {
  auto* t = static_cast<Transfer*>(user);
  size_t length = size * count;
  t->last_data = SteadyClock::now();
  std::string_view bytes(data, length);
  if (t->mode == Transfer::Mode::kBuffer) {
    t->body.append(bytes);
    return length;
  }
  if (!t->decided) {
    long code = 0;  // NOLINT(google-runtime-int): libcurl's type
    curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &code);
    t->deliver = code >= 200 && code < 300;
    t->decided = true;
  }
  if (!t->deliver) {
    if (t->body.size() < kMaxErrorBody) {
      t->body.append(bytes.substr(0, kMaxErrorBody - t->body.size()));
    }
    return length;
  }
  absl::Status status;
  try {  // an exception must not unwind through libcurl's C frames
    if (t->mode == Transfer::Mode::kBytes) {
      if (!bytes.empty()) status = (*t->on_data)(bytes);
    } else {
      t->partial.append(bytes);
      status = DeliverLines(t, /*at_end=*/false);
    }
  } catch (const std::exception& e) {
    status = absl::InternalError(absl::StrCat("a stream callback threw: ", e.what()));
  }
  if (!status.ok()) {
    t->callback_status = std::move(status);
    return 0;  // != length: libcurl ends the transfer with CURLE_WRITE_ERROR
  }
  return length;
}

// Percent-encodes a query component (RFC 3986 unreserved characters stay).
std::string Escape(std::string_view text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    auto u = static_cast<unsigned char>(c);
    if (absl::ascii_isalnum(u) || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(c);
    } else {
      out.push_back('%');
      out.push_back(kHex[u >> 4]);
      out.push_back(kHex[u & 0xf]);
    }
  }
  return out;
}

void SetBlob(CURL* easy, CURLoption option, const std::string& data) {
  curl_blob blob{};
  blob.data = const_cast<char*>(data.data());
  blob.len = data.size();
  blob.flags = CURL_BLOB_COPY;
  curl_easy_setopt(easy, option, &blob);
}

}  // namespace

void InitCurlOnce() {
  static std::once_flag once;
  std::call_once(once, [] {
    CURLcode code = curl_global_init(CURL_GLOBAL_DEFAULT);
    DAGD_CHECK(code == CURLE_OK);
  });
}

// ----- CancelToken -----

void CancelToken::Cancel() {
  std::lock_guard<std::mutex> lock(mu_);
  cancelled_.store(true, std::memory_order_release);
  for (auto& [id, wake] : wakes_) wake();
}

uint64_t CancelToken::Register(std::function<void()> wake) {
  std::lock_guard<std::mutex> lock(mu_);
  if (cancelled_.load(std::memory_order_acquire)) return 0;
  uint64_t id = next_id_++;
  wakes_.emplace(id, std::move(wake));
  return id;
}

void CancelToken::Unregister(uint64_t id) {
  std::lock_guard<std::mutex> lock(mu_);
  wakes_.erase(id);
}

// ----- KubeClient::Impl -----

class KubeClient::Impl {
 public:
  Impl(ClusterConfig config, KubeClientOptions options)
      : config_(std::move(config)), options_(std::move(options)), logger_(Logger()) {}

  ~Impl() {
    std::lock_guard<std::mutex> lock(pool_mu_);
    idle_.clear();
  }

  const ClusterConfig& config() const { return config_; }

  absl::Status Init() {
    if (config_.token_file.empty()) return absl::OkStatus();
    ASSIGN_OR_RETURN(token_, ReadToken(config_.token_file));
    token_read_at_ = Now();
    return absl::OkStatus();
  }

  absl::StatusOr<Response> Request(std::string_view method, std::string_view path,
                                   const Query& query, const std::optional<nlohmann::json>& body,
                                   const RequestOptions& options) {
    std::string payload;
    if (body) {
      try {
        payload = body->dump();
      } catch (const nlohmann::json::exception& e) {  // a string that is not UTF-8
        return absl::InvalidArgumentError(absl::StrCat(Prefix(), Av(method), " ", Av(path),
                                                       ": cannot encode the body: ", e.what()));
      }
    }
    Call call;
    call.method = method;
    call.path = path;
    call.query = &query;
    call.payload = body ? &payload : nullptr;
    call.content_type = options.content_type;
    call.accept = "application/json";
    call.timeout = options.timeout.count() > 0 ? options.timeout : options_.request_timeout;
    call.cancel = options.cancel;
    call.compressed = true;
    Transfer transfer;
    transfer.mode = Transfer::Mode::kBuffer;
    Response response;
    RETURN_IF_ERROR(Perform(call, &transfer, &response));
    return response;
  }

  absl::Status Stream(std::string_view path, const Query& query, std::string_view accept,
                      const LineCallback* on_line, const DataCallback* on_data, CancelToken* cancel,
                      const StreamOptions& options) {
    Call call;
    call.method = "GET";
    call.path = path;
    call.query = &query;
    call.accept = accept;
    call.cancel = cancel;
    call.idle_timeout = options.idle_timeout;
    Transfer transfer;
    transfer.mode = on_line != nullptr ? Transfer::Mode::kLines : Transfer::Mode::kBytes;
    transfer.on_line = on_line;
    transfer.on_data = on_data;
    return Perform(call, &transfer, nullptr);
  }

 private:
  struct Call {
    std::string_view method;
    std::string_view path;
    const Query* query = nullptr;
    const std::string* payload = nullptr;  // null: no body
    std::string_view content_type;
    std::string_view accept;
    std::chrono::milliseconds timeout{0};  // 0: none (streams)
    std::chrono::milliseconds idle_timeout{0};
    CancelToken* cancel = nullptr;
    bool compressed = false;  // offer gzip (the API server compresses large responses)
  };

  SteadyClock::time_point Now() const { return options_.now ? options_.now() : SteadyClock::now(); }

  std::string Prefix() const { return absl::StrCat("kubernetes API ", config_.server, ": "); }

  // The bearer token to send now: the configured one, or the token file's content, re-read
  // when the copy in hand is at least token_refresh_period old.
  std::string CurrentToken() {
    if (config_.token_file.empty()) return config_.token;
    std::lock_guard<std::mutex> lock(token_mu_);
    SteadyClock::time_point now = Now();
    if (now - token_read_at_ >= options_.token_refresh_period) {
      token_read_at_ = now;
      absl::StatusOr<std::string> fresh = ReadToken(config_.token_file);
      if (!fresh.ok()) {
        // client-go does the same: a token file being rewritten must not fail requests.
        logger_->warn("{}; keeping the token read before", std::string(fresh.status().message()));
      } else if (*fresh != token_) {
        logger_->info("kubernetes API {}: token file {} changed; using the new token",
                      config_.server, config_.token_file);
        token_ = *std::move(fresh);
      }
    }
    return token_;
  }

  std::unique_ptr<Connection> Acquire() {
    {
      std::lock_guard<std::mutex> lock(pool_mu_);
      if (!idle_.empty()) {
        std::unique_ptr<Connection> conn = std::move(idle_.back());
        idle_.pop_back();
        return conn;
      }
    }
    return std::make_unique<Connection>();
  }

  void Release(std::unique_ptr<Connection> conn) {
    std::lock_guard<std::mutex> lock(pool_mu_);
    if (idle_.size() < options_.max_idle_connections) idle_.push_back(std::move(conn));
  }

  std::string Url(const Call& call) const {
    std::string url = absl::StrCat(config_.server, Av(call.path));
    char separator = call.path.find('?') == std::string_view::npos ? '?' : '&';
    for (const auto& [name, value] : *call.query) {
      absl::StrAppend(&url, absl::string_view(&separator, 1), Escape(name), "=", Escape(value));
      separator = '&';
    }
    return url;
  }

  curl_slist* Configure(Connection* conn, const Call& call, const std::string& token,
                        Transfer* transfer) {
    CURL* easy = conn->easy;
    curl_easy_reset(easy);  // keeps the connection cache and TLS sessions
    conn->error[0] = '\0';
    curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, conn->error);
    std::string url = Url(call);
    curl_easy_setopt(easy, CURLOPT_URL, url.c_str());
    curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS,
                     static_cast<long>(options_.connect_timeout.count()));
    curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, static_cast<long>(call.timeout.count()));
    curl_easy_setopt(easy, CURLOPT_USERAGENT, options_.user_agent.c_str());
    curl_easy_setopt(easy, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(easy, CURLOPT_TCP_KEEPIDLE, 30L);
    curl_easy_setopt(easy, CURLOPT_TCP_KEEPINTVL, 10L);
    if (call.compressed) curl_easy_setopt(easy, CURLOPT_ACCEPT_ENCODING, "");

    // TLS. A configured CA replaces the system's bundle and directory entirely.
    if (!config_.ca_data.empty()) {
      SetBlob(easy, CURLOPT_CAINFO_BLOB, config_.ca_data);
      curl_easy_setopt(easy, CURLOPT_CAPATH, nullptr);
    } else if (!config_.ca_file.empty()) {
      curl_easy_setopt(easy, CURLOPT_CAINFO, config_.ca_file.c_str());
      curl_easy_setopt(easy, CURLOPT_CAPATH, nullptr);
    }
    if (config_.insecure_skip_tls_verify) {
      curl_easy_setopt(easy, CURLOPT_SSL_VERIFYPEER, 0L);
      curl_easy_setopt(easy, CURLOPT_SSL_VERIFYHOST, 0L);
    }
    if (!config_.client_cert_data.empty()) {
      SetBlob(easy, CURLOPT_SSLCERT_BLOB, config_.client_cert_data);
    } else if (!config_.client_cert_file.empty()) {
      curl_easy_setopt(easy, CURLOPT_SSLCERT, config_.client_cert_file.c_str());
    }
    curl_easy_setopt(easy, CURLOPT_SSLCERTTYPE, "PEM");
    if (!config_.client_key_data.empty()) {
      SetBlob(easy, CURLOPT_SSLKEY_BLOB, config_.client_key_data);
    } else if (!config_.client_key_file.empty()) {
      curl_easy_setopt(easy, CURLOPT_SSLKEY, config_.client_key_file.c_str());
    }
    curl_easy_setopt(easy, CURLOPT_SSLKEYTYPE, "PEM");
    if (!config_.proxy_url.empty()) {
      curl_easy_setopt(easy, CURLOPT_PROXY, config_.proxy_url.c_str());
    }

    curl_slist* headers = nullptr;
    headers = curl_slist_append(headers, absl::StrCat("Accept: ", Av(call.accept)).c_str());
    if (!token.empty()) {
      headers = curl_slist_append(headers, absl::StrCat("Authorization: Bearer ", token).c_str());
    }
    if (call.payload != nullptr) {
      headers =
          curl_slist_append(headers, absl::StrCat("Content-Type: ", Av(call.content_type)).c_str());
    }
    headers = curl_slist_append(headers, "Expect:");  // no 100-continue round trip
    curl_easy_setopt(easy, CURLOPT_HTTPHEADER, headers);

    std::string method(call.method);
    curl_easy_setopt(easy, CURLOPT_CUSTOMREQUEST, method.c_str());  // copied by libcurl
    if (method == "HEAD") curl_easy_setopt(easy, CURLOPT_NOBODY, 1L);
    if (call.payload != nullptr) {
      curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE,
                       static_cast<curl_off_t>(call.payload->size()));
      curl_easy_setopt(easy, CURLOPT_COPYPOSTFIELDS, call.payload->c_str());
    }
    curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, &WriteCallback);
    curl_easy_setopt(easy, CURLOPT_WRITEDATA, transfer);
    transfer->easy = easy;
    return headers;
  }

  absl::Status CurlError(CURLcode code, const Connection& conn) const {
    std::string detail =
        conn.error[0] != '\0' ? std::string(conn.error) : std::string(curl_easy_strerror(code));
    // libcurl 7.88 says "Couldn't connect to server"; the system's reason says why.
    long os_errno = 0;  // NOLINT(google-runtime-int): libcurl's type
    curl_easy_getinfo(conn.easy, CURLINFO_OS_ERRNO, &os_errno);
    if (os_errno != 0) {
      std::string reason = std::strerror(static_cast<int>(os_errno));
      if (!absl::StrContains(detail, reason)) absl::StrAppend(&detail, " (", reason, ")");
    }
    switch (code) {
      case CURLE_COULDNT_CONNECT:
      case CURLE_COULDNT_RESOLVE_HOST:
      case CURLE_COULDNT_RESOLVE_PROXY:
        return absl::UnavailableError(absl::StrCat(
            Prefix(), "cannot connect: ", detail,
            "; check that the server is up and reachable from dagd",
            config_.source.empty() ? ""
                                   : absl::StrCat(" (its address is from ", config_.source, ")")));
      case CURLE_OPERATION_TIMEDOUT: {
        // A server that never completed the connection (TCP and TLS) is unreachable, not slow.
        curl_off_t ready_after = 0;
        curl_easy_getinfo(conn.easy, CURLINFO_PRETRANSFER_TIME_T, &ready_after);
        if (ready_after == 0) {
          return absl::UnavailableError(absl::StrCat(Prefix(), "cannot connect: ", detail));
        }
        return absl::DeadlineExceededError(absl::StrCat(Prefix(), "timed out: ", detail));
      }
      case CURLE_SSL_CERTPROBLEM:
      case CURLE_SSL_CACERT_BADFILE:
      case CURLE_SSL_CRL_BADFILE:
      case CURLE_SSL_ENGINE_NOTFOUND:
      case CURLE_SSL_ENGINE_SETFAILED:
      case CURLE_SSL_ENGINE_INITFAILED:
        return absl::FailedPreconditionError(absl::StrCat(Prefix(), "TLS configuration: ", detail));
      case CURLE_URL_MALFORMAT:
      case CURLE_UNSUPPORTED_PROTOCOL:
        return absl::InvalidArgumentError(absl::StrCat(Prefix(), detail));
      default:
        return absl::UnavailableError(absl::StrCat(Prefix(), detail));
    }
  }

  // Runs one call on a pooled connection until it completes, fails, is cancelled or idles out.
  absl::Status Perform(const Call& call, Transfer* transfer, Response* response) {
    std::string token = CurrentToken();
    std::unique_ptr<Connection> conn = Acquire();
    if (conn->multi == nullptr || conn->easy == nullptr) {
      return absl::ResourceExhaustedError(absl::StrCat(Prefix(), "cannot create a libcurl handle"));
    }
    curl_slist* headers = Configure(conn.get(), call, token, transfer);
    absl::Cleanup free_headers = [headers] { curl_slist_free_all(headers); };

    uint64_t registration = 0;
    if (call.cancel != nullptr) {
      CURLM* multi = conn->multi;
      registration = call.cancel->Register([multi] { curl_multi_wakeup(multi); });
      if (registration == 0) {
        Release(std::move(conn));
        return absl::CancelledError(absl::StrCat(Prefix(), "cancelled"));
      }
    }

    curl_multi_add_handle(conn->multi, conn->easy);
    transfer->last_data = SteadyClock::now();
    std::optional<CURLcode> result;
    absl::Status stopped;  // set when we end the transfer ourselves
    for (;;) {
      int running = 0;
      CURLMcode mc = curl_multi_perform(conn->multi, &running);
      if (mc != CURLM_OK) {
        stopped = absl::InternalError(absl::StrCat(Prefix(), "libcurl: ", curl_multi_strerror(mc)));
        break;
      }
      int queued = 0;
      while (CURLMsg* message = curl_multi_info_read(conn->multi, &queued)) {
        if (message->msg == CURLMSG_DONE) result = message->data.result;
      }
      if (result) break;
      if (call.cancel != nullptr && call.cancel->IsCancelled()) {
        stopped = absl::CancelledError(absl::StrCat(Prefix(), "cancelled"));
        break;
      }
      int wait_ms = kMaxPollMs;
      if (call.idle_timeout.count() > 0) {
        auto idle = std::chrono::duration_cast<std::chrono::milliseconds>(SteadyClock::now() -
                                                                          transfer->last_data);
        if (idle >= call.idle_timeout) {
          stopped = absl::DeadlineExceededError(absl::StrCat(Prefix(), "no data on the stream for ",
                                                             call.idle_timeout.count(), " ms"));
          break;
        }
        wait_ms =
            static_cast<int>(std::min<int64_t>(wait_ms, (call.idle_timeout - idle).count() + 1));
      }
      mc = curl_multi_poll(conn->multi, nullptr, 0, wait_ms, nullptr);
      if (mc != CURLM_OK) {
        stopped = absl::InternalError(absl::StrCat(Prefix(), "libcurl: ", curl_multi_strerror(mc)));
        break;
      }
    }
    curl_multi_remove_handle(conn->multi, conn->easy);  // closes the connection if unfinished
    if (registration != 0) call.cancel->Unregister(registration);

    absl::Status status;
    if (!stopped.ok()) {
      status = std::move(stopped);
    } else if (*result != CURLE_OK) {
      status = transfer->callback_status.ok() ? CurlError(*result, *conn)
                                              : std::move(transfer->callback_status);
    } else {
      status = Finish(call, conn.get(), transfer, response);
    }
    Release(std::move(conn));
    return status;
  }

  // A transfer libcurl completed: the HTTP status decides.
  absl::Status Finish(const Call& call, Connection* conn, Transfer* transfer, Response* response) {
    long code = 0;  // NOLINT(google-runtime-int): libcurl's type
    curl_easy_getinfo(conn->easy, CURLINFO_RESPONSE_CODE, &code);
    if (code < 200 || code >= 300) {
      return HttpError(config_.server, static_cast<int>(code), transfer->body);
    }
    if (transfer->mode == Transfer::Mode::kLines) {
      try {
        return DeliverLines(transfer, /*at_end=*/true);
      } catch (const std::exception& e) {
        return absl::InternalError(absl::StrCat("a stream callback threw: ", e.what()));
      }
    }
    if (response == nullptr) return absl::OkStatus();
    response->http_status = static_cast<int>(code);
    char* content_type = nullptr;
    curl_easy_getinfo(conn->easy, CURLINFO_CONTENT_TYPE, &content_type);
    if (content_type != nullptr) response->content_type = content_type;
    response->body = std::move(transfer->body);
    if (IsJsonContentType(response->content_type) && !response->body.empty()) {
      response->json = nlohmann::json::parse(response->body, nullptr, /*allow_exceptions=*/false);
      if (response->json.is_discarded()) {
        response->json = nullptr;
        return absl::InternalError(absl::StrCat(Prefix(), Av(call.method), " ", Av(call.path),
                                                ": the response is not valid JSON"));
      }
    }
    return absl::OkStatus();
  }

  ClusterConfig config_;
  KubeClientOptions options_;
  std::shared_ptr<spdlog::logger> logger_;

  std::mutex pool_mu_;
  std::vector<std::unique_ptr<Connection>> idle_;  // guarded by pool_mu_

  std::mutex token_mu_;
  std::string token_;                      // guarded by token_mu_
  SteadyClock::time_point token_read_at_;  // guarded by token_mu_
};

// ----- KubeClient -----

namespace {

absl::Status CheckServer(std::string* server) {
  while (!server->empty() && server->back() == '/') server->pop_back();
  absl::string_view rest = *server;
  if (!absl::ConsumePrefix(&rest, "https://") && !absl::ConsumePrefix(&rest, "http://")) {
    return absl::InvalidArgumentError(absl::StrCat("kubernetes client: server \"", *server,
                                                   "\" is not an http:// or https:// URL"));
  }
  if (rest.empty() || rest.front() == '/' || rest.front() == ':') {
    return absl::InvalidArgumentError(
        absl::StrCat("kubernetes client: server \"", *server, "\" names no host"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<KubeClient>> KubeClient::Create(ClusterConfig config,
                                                               KubeClientOptions options) {
  InitCurlOnce();
  RETURN_IF_ERROR(CheckServer(&config.server));
  const std::string prefix =
      absl::StrCat("kubernetes client for ", config.server,
                   config.source.empty() ? "" : absl::StrCat(" (", config.source, ")"), ": ");
  auto where = [&prefix](const absl::Status& status) {
    return absl::Status(status.code(), absl::StrCat(prefix, status.message()));
  };
  if (config.ca_data.empty() && !config.ca_file.empty()) {
    if (absl::Status s = CheckReadable(config.ca_file, "CA file"); !s.ok()) return where(s);
  }
  bool has_cert = !config.client_cert_data.empty() || !config.client_cert_file.empty();
  bool has_key = !config.client_key_data.empty() || !config.client_key_file.empty();
  if (has_cert != has_key) {
    return where(
        absl::InvalidArgumentError("a client certificate needs its key and a key its certificate"));
  }
  if (config.client_cert_data.empty() && !config.client_cert_file.empty()) {
    if (absl::Status s = CheckReadable(config.client_cert_file, "client certificate"); !s.ok()) {
      return where(s);
    }
  }
  if (config.client_key_data.empty() && !config.client_key_file.empty()) {
    if (absl::Status s = CheckReadable(config.client_key_file, "client key"); !s.ok()) {
      return where(s);
    }
  }
  auto impl = std::make_unique<Impl>(std::move(config), std::move(options));
  if (absl::Status s = impl->Init(); !s.ok()) return where(s);
  return std::unique_ptr<KubeClient>(new KubeClient(std::move(impl)));
}

KubeClient::KubeClient(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
KubeClient::~KubeClient() = default;

const std::string& KubeClient::server() const { return impl_->config().server; }
const ClusterConfig& KubeClient::config() const { return impl_->config(); }

absl::StatusOr<Response> KubeClient::Request(std::string_view method, std::string_view path,
                                             const Query& query,
                                             const std::optional<nlohmann::json>& body,
                                             const RequestOptions& options) {
  return impl_->Request(method, path, query, body, options);
}

absl::Status KubeClient::Watch(std::string_view path, const Query& query,
                               const LineCallback& on_line, CancelToken* cancel,
                               const StreamOptions& options) {
  return impl_->Stream(path, query, "application/json", &on_line, nullptr, cancel, options);
}

absl::Status KubeClient::WatchEvents(std::string_view path, const Query& query,
                                     const EventCallback& on_event, CancelToken* cancel,
                                     const StreamOptions& options) {
  const std::string& server = impl_->config().server;
  LineCallback on_line = [&](std::string_view line) -> absl::Status {
    nlohmann::json event = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (event.is_discarded()) {
      return absl::DataLossError(
          absl::StrCat("kubernetes API ", server,
                       ": a watch event is not valid JSON: ", Av(line.substr(0, 200))));
    }
    return on_event(event);
  };
  return impl_->Stream(path, query, "application/json", &on_line, nullptr, cancel, options);
}

absl::Status KubeClient::Stream(std::string_view path, const Query& query,
                                const DataCallback& on_data, CancelToken* cancel,
                                const StreamOptions& options) {
  return impl_->Stream(path, query, "*/*", nullptr, &on_data, cancel, options);
}

}  // namespace dagd::runners::kubernetes
