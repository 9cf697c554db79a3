// HttpServer: a small HTTP/1.1 server (Boost.Beast) on dagd's io_context, for the operations
// port: /metrics, /healthz, /readyz and the read-only run pages, over HTTP or HTTPS. GET and HEAD
// only; keep-alive; requests over 64 KiB, or idle for 60 s, close the connection.
//
// Handlers run on the io_context thread, one at a time: they must be quick and must not block
// (they read in-memory state or make a short store read). No Beast types in this header.
#ifndef DAGD_SERVER_HTTP_SERVER_H_
#define DAGD_SERVER_HTTP_SERVER_H_

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "server/tls.h"

namespace boost::asio {
class io_context;
}

namespace dagd::server {

struct HttpRequest {
  std::string method;  // "GET" or "HEAD"
  std::string path;    // without the query, percent-decoding left to the handler
  std::map<std::string, std::string> query;  // ?a=b&c=d, percent-decoded
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
  std::map<std::string, std::string> headers;  // extra headers (Cache-Control, …)
};

using HttpHandler = std::function<HttpResponse(const HttpRequest&)>;

// Decodes %XX escapes (a '%' that starts none stays as it is); with `plus_is_space`, as in a
// query string, '+' is a space.
std::string PercentDecode(std::string_view text, bool plus_is_space);

class HttpServer {
 public:
  // Routes: an exact path ("/metrics"), or a prefix ending in '/' ("/runs/") that matches every
  // path under it; the exact route wins, then the longest prefix. "/" is exact (the index page),
  // not a prefix of everything. Anything else is 404.
  using Routes = std::map<std::string, HttpHandler>;

  // Binds `listen` ("host:port"; port 0 picks one) and starts accepting on `io`, over HTTPS
  // when `tls` is enabled (CheckTlsFiles() passed; a client CA makes client certificates asked
  // for and verified, not required). Unavailable with the address and the system's reason if it
  // cannot bind; InvalidArgument if `listen` is not host:port.
  static absl::StatusOr<std::unique_ptr<HttpServer>> Start(boost::asio::io_context& io,
                                                           const std::string& listen, Routes routes,
                                                           const TlsFiles& tls = {});
  ~HttpServer();

  int port() const;
  // Stops accepting and closes open connections. Call on the io_context thread, or after the
  // io_context stopped.
  void Stop();

 private:
  struct Impl;
  explicit HttpServer(std::shared_ptr<Impl> impl);
  std::shared_ptr<Impl> impl_;
};

}  // namespace dagd::server

#endif  // DAGD_SERVER_HTTP_SERVER_H_
