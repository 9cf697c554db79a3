#include "server/http_server.h"

#include <spdlog/spdlog.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <chrono>
#include <list>
#include <optional>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "server/auth/file_stamp.h"

namespace dagd::server {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;

constexpr size_t kMaxRequestBytes = 64 * 1024;
constexpr auto kIdleTimeout = std::chrono::seconds(60);

HttpRequest ParseTarget(std::string_view method, std::string_view target) {
  HttpRequest request;
  request.method = std::string(method);
  const size_t q = target.find('?');
  request.path = std::string(target.substr(0, q));
  if (q == std::string_view::npos) return request;
  std::string_view query = target.substr(q + 1);
  while (!query.empty()) {
    const size_t amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    const size_t eq = pair.find('=');
    request.query[PercentDecode(pair.substr(0, eq), /*plus_is_space=*/true)] =
        eq == std::string_view::npos ? ""
                                     : PercentDecode(pair.substr(eq + 1), /*plus_is_space=*/true);
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
  return request;
}

// The TLS context of new connections, rebuilt when one of the files changes (their modification
// times are compared at most once per reload interval). Used on the io_context thread only.
class TlsContextCache {
 public:
  explicit TlsContextCache(TlsFiles files) : files_(std::move(files)) {}

  // The context for a new connection; null when the files never loaded.
  std::shared_ptr<ssl::context> Get() {
    const auto now = std::chrono::steady_clock::now();
    if (context_ && now - last_check_ < std::chrono::seconds(files_.reload_interval_seconds)) {
      return context_;
    }
    last_check_ = now;
    const std::string stamp = Stamp();
    if (context_ && stamp == stamp_) return context_;
    try {
      auto context = std::make_shared<ssl::context>(ssl::context::tls_server);
      context->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                           ssl::context::no_sslv3 | ssl::context::no_tlsv1 |
                           ssl::context::no_tlsv1_1);
      context->use_certificate_chain_file(files_.cert_file);
      context->use_private_key_file(files_.key_file, ssl::context::pem);
      if (files_.mutual()) {
        // Asked for and verified, not required: health probes and Prometheus without a client
        // certificate still reach /healthz, /readyz and /metrics.
        context->load_verify_file(files_.client_ca_file);
        context->set_verify_mode(ssl::verify_peer);
      }
      if (context_) spdlog::info("metrics port: reloaded the TLS certificate");
      context_ = std::move(context);
      stamp_ = stamp;
    } catch (const std::exception& e) {
      spdlog::error("metrics port: cannot load the TLS certificate ({}); {}", e.what(),
                    context_ ? "keeping the previous one" : "refusing connections");
    }
    return context_;
  }

 private:
  // What tells that one of the files changed (auth::FileStamp of each).
  std::string Stamp() const {
    return absl::StrCat(auth::FileStamp(files_.cert_file), ";", auth::FileStamp(files_.key_file),
                        ";", auth::FileStamp(files_.client_ca_file));
  }

  const TlsFiles files_;
  std::shared_ptr<ssl::context> context_;
  std::string stamp_;
  std::chrono::steady_clock::time_point last_check_;
};

}  // namespace

std::string PercentDecode(std::string_view text, bool plus_is_space) {
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    int value = 0;
    if (plus_is_space && text[i] == '+') {
      out.push_back(' ');
    } else if (text[i] == '%' && i + 2 < text.size() &&
               absl::SimpleHexAtoi(std::string(text.substr(i + 1, 2)), &value)) {
      out.push_back(static_cast<char>(value));
      i += 2;
    } else {
      out.push_back(text[i]);  // a '%' that starts no escape stays as it is
    }
  }
  return out;
}

struct HttpServer::Impl : std::enable_shared_from_this<HttpServer::Impl> {
  class SessionBase;
  template <typename Stream>
  class Session;

  Impl(asio::io_context& io, Routes routes, const TlsFiles& tls_files)
      : acceptor(io), routes(std::move(routes)) {
    if (tls_files.enabled()) tls.emplace(tls_files);
  }

  HttpResponse Dispatch(const HttpRequest& request) const {
    if (request.method != "GET" && request.method != "HEAD") {
      HttpResponse r;
      r.status = 405;
      r.headers["Allow"] = "GET, HEAD";
      r.body = "only GET and HEAD are served here\n";
      return r;
    }
    auto exact = routes.find(request.path);
    if (exact != routes.end()) return exact->second(request);
    const HttpHandler* best = nullptr;
    size_t best_length = 0;
    for (const auto& [route, handler] : routes) {
      if (route.size() < 2 || route.back() != '/') continue;  // "/" is the index page only
      if (request.path.compare(0, route.size(), route) == 0 && route.size() > best_length) {
        best = &handler;
        best_length = route.size();
      }
    }
    if (best != nullptr) return (*best)(request);
    HttpResponse r;
    r.status = 404;
    r.body = absl::StrCat("no page at ", request.path, "\n");
    return r;
  }

  void Accept();

  tcp::acceptor acceptor;
  Routes routes;
  std::optional<TlsContextCache> tls;  // set when serving HTTPS
  std::list<std::weak_ptr<SessionBase>> sessions;
  bool stopped = false;
};

class HttpServer::Impl::SessionBase {
 public:
  virtual ~SessionBase() = default;
  virtual void Start() = 0;
  virtual void Close() = 0;
};

// One connection: beast::tcp_stream for HTTP, beast::ssl_stream<beast::tcp_stream> for HTTPS.
template <typename Stream>
class HttpServer::Impl::Session : public SessionBase,
                                  public std::enable_shared_from_this<Session<Stream>> {
 public:
  static constexpr bool kTls = !std::is_same_v<Stream, beast::tcp_stream>;

  Session(std::shared_ptr<Impl> server, tcp::socket socket) requires(!kTls)
      : server_(std::move(server)), stream_(std::move(socket)) {}
  Session(std::shared_ptr<Impl> server, tcp::socket socket,
          std::shared_ptr<ssl::context> tls) requires(kTls)
      : server_(std::move(server)), tls_(std::move(tls)), stream_(std::move(socket), *tls_) {}

  void Start() override {
    if constexpr (kTls) {
      beast::get_lowest_layer(stream_).expires_after(kIdleTimeout);
      stream_.async_handshake(ssl::stream_base::server,
                              [self = this->shared_from_this()](beast::error_code ec) {
                                if (ec) return self->Close();  // not TLS, or a bad certificate
                                self->Read();
                              });
    } else {
      Read();
    }
  }

  void Close() override {
    beast::error_code ignored;
    auto& lowest = beast::get_lowest_layer(stream_);
    lowest.socket().shutdown(tcp::socket::shutdown_both, ignored);
    lowest.close();
  }

 private:
  void Read() {
    parser_.emplace();
    parser_->body_limit(kMaxRequestBytes);
    parser_->header_limit(static_cast<std::uint32_t>(kMaxRequestBytes));
    beast::get_lowest_layer(stream_).expires_after(kIdleTimeout);
    http::async_read(
        stream_, buffer_, *parser_,
        [self = this->shared_from_this()](beast::error_code ec, size_t) { self->OnRead(ec); });
  }

  void OnRead(beast::error_code ec) {
    if (ec == http::error::end_of_stream || ec == beast::error::timeout ||
        ec == asio::error::operation_aborted || ec == ssl::error::stream_truncated) {
      return Close();
    }
    if (ec) {
      // Too large or malformed: answer once and close.
      HttpResponse r;
      r.status = ec == http::error::body_limit || ec == http::error::header_limit ? 413 : 400;
      r.body = absl::StrCat("bad request: ", ec.message(), "\n");
      return Write(r, /*keep_alive=*/false, /*head=*/false, 11);
    }
    const auto& req = parser_->get();
    const HttpRequest request =
        ParseTarget(std::string_view(req.method_string().data(), req.method_string().size()),
                    std::string_view(req.target().data(), req.target().size()));
    HttpResponse response;
    try {
      response = server_->Dispatch(request);
    } catch (const std::exception& e) {
      spdlog::error("http {}: handler failed: {}", request.path, e.what());
      response = HttpResponse{500, "text/plain; charset=utf-8", "internal error\n", {}};
    }
    Write(response, req.keep_alive(), req.method() == http::verb::head, req.version());
  }

  void Write(const HttpResponse& r, bool keep_alive, bool head, unsigned version) {
    auto message = std::make_shared<http::response<http::string_body>>(
        static_cast<http::status>(r.status), version);
    message->set(http::field::server, "dagd");
    message->set(http::field::content_type, r.content_type);
    for (const auto& [name, value] : r.headers) message->set(name, value);
    message->keep_alive(keep_alive);
    if (head) {
      message->content_length(r.body.size());
    } else {
      message->body() = r.body;
      message->prepare_payload();
    }
    http::async_write(
        stream_, *message,
        [self = this->shared_from_this(), message, keep_alive](beast::error_code ec, size_t) {
          if (ec || !keep_alive) return self->Close();
          self->Read();
        });
  }

  std::shared_ptr<Impl> server_;
  std::shared_ptr<ssl::context> tls_;  // outlives stream_, which holds a reference to it
  Stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
};

void HttpServer::Impl::Accept() {
  acceptor.async_accept([self = shared_from_this()](beast::error_code ec, tcp::socket socket) {
    if (self->stopped) return;
    if (!ec) {
      std::shared_ptr<SessionBase> session;
      if (!self->tls) {
        session = std::make_shared<Session<beast::tcp_stream>>(self, std::move(socket));
      } else if (auto context = self->tls->Get()) {
        session = std::make_shared<Session<beast::ssl_stream<beast::tcp_stream>>>(
            self, std::move(socket), std::move(context));
      }
      if (session) {
        self->sessions.remove_if([](const auto& weak) { return weak.expired(); });
        self->sessions.push_back(session);
        session->Start();
      }
    }
    self->Accept();
  });
}

absl::StatusOr<std::unique_ptr<HttpServer>> HttpServer::Start(asio::io_context& io,
                                                              const std::string& listen,
                                                              Routes routes, const TlsFiles& tls) {
  const size_t colon = listen.rfind(':');
  int port = -1;
  if (colon == std::string::npos || !absl::SimpleAtoi(listen.substr(colon + 1), &port) ||
      port < 0 || port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("metrics address \"", listen, "\" is not HOST:PORT (e.g. 127.0.0.1:7234)"));
  }
  std::string host = listen.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  beast::error_code ec;
  tcp::resolver resolver(io);
  auto endpoints = resolver.resolve(host, std::to_string(port), ec);
  if (ec || endpoints.empty()) {
    return absl::UnavailableError(absl::StrCat("cannot resolve the metrics address ", listen, ": ",
                                               ec ? ec.message() : "no address"));
  }
  auto impl = std::make_shared<Impl>(io, std::move(routes), tls);
  const tcp::endpoint endpoint = endpoints.begin()->endpoint();
  impl->acceptor.open(endpoint.protocol(), ec);
  if (!ec) impl->acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) impl->acceptor.bind(endpoint, ec);
  if (!ec) impl->acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    return absl::UnavailableError(absl::StrCat("cannot listen on the metrics address ", listen,
                                               ": ", ec.message(),
                                               "; choose another --metrics-listen"));
  }
  impl->Accept();
  return std::unique_ptr<HttpServer>(new HttpServer(std::move(impl)));
}

HttpServer::HttpServer(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}

HttpServer::~HttpServer() = default;

int HttpServer::port() const {
  beast::error_code ec;
  return impl_->acceptor.local_endpoint(ec).port();
}

void HttpServer::Stop() {
  impl_->stopped = true;
  beast::error_code ignored;
  impl_->acceptor.close(ignored);
  for (auto& weak : impl_->sessions) {
    if (auto session = weak.lock()) session->Close();
  }
  impl_->sessions.clear();
}

}  // namespace dagd::server
