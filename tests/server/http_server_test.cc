// HttpServer and the operations routes over real loopback sockets: raw HTTP/1.x bytes in, the
// response bytes out, the server's io_context on its own thread.
#include "server/http_server.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <future>
#include <string>
#include <thread>

#include "server/ops_http.h"

namespace dagd::server {
namespace {

// Sends `request` to 127.0.0.1:port and reads until the server closes (or 10 s pass).
std::string Exchange(int port, const std::string& request) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  timeval tv{10, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    close(fd);
    return "";
  }
  size_t sent = 0;
  while (sent < request.size()) {
    ssize_t n = write(fd, request.data() + sent, request.size() - sent);
    if (n <= 0) break;
    sent += static_cast<size_t>(n);
  }
  std::string response;
  char buf[4096];
  for (ssize_t n; (n = read(fd, buf, sizeof buf)) > 0;) response.append(buf, n);
  close(fd);
  return response;
}

std::string Get(int port, const std::string& target) {
  return Exchange(port, "GET " + target + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
}

class HttpServerTest : public ::testing::Test {
 protected:
  void Start(HttpServer::Routes routes) {
    auto server = HttpServer::Start(io_, "127.0.0.1:0", std::move(routes));
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
    thread_ = std::thread([this] { io_.run(); });
  }

  void TearDown() override {
    if (server_) {
      std::promise<void> stopped;
      boost::asio::post(io_, [&] {
        server_->Stop();
        stopped.set_value();
      });
      stopped.get_future().wait();
    }
    work_.reset();
    io_.stop();
    if (thread_.joinable()) thread_.join();
  }

  static HttpHandler Echo(const std::string& name) {
    return [name](const HttpRequest& request) {
      HttpResponse r;
      r.body = name + " " + request.method + " " + request.path;
      for (const auto& [k, v] : request.query) r.body += " [" + k + "=" + v + "]";
      return r;
    };
  }

  boost::asio::io_context io_;
  std::optional<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> work_{
      io_.get_executor()};
  std::unique_ptr<HttpServer> server_;
  std::thread thread_;
};

TEST_F(HttpServerTest, RoutesExactPathsThenTheLongestPrefix) {
  Start({{"/", Echo("index")},
         {"/metrics", Echo("metrics")},
         {"/runs/", Echo("runs")},
         {"/runs/x/", Echo("x")}});
  const int port = server_->port();
  ASSERT_GT(port, 0);
  std::string r = Get(port, "/metrics");
  EXPECT_EQ(r.substr(0, 15), "HTTP/1.1 200 OK") << r;
  EXPECT_NE(r.find("\r\n\r\nmetrics GET /metrics"), std::string::npos) << r;
  EXPECT_NE(Get(port, "/runs/abc").find("\r\n\r\nruns GET /runs/abc"), std::string::npos);
  EXPECT_NE(Get(port, "/runs/x/events").find("\r\n\r\nx GET /runs/x/events"), std::string::npos);
  r = Get(port, "/metrics/more");
  EXPECT_EQ(r.substr(0, 22), "HTTP/1.1 404 Not Found") << r;
  EXPECT_NE(r.find("no page at /metrics/more"), std::string::npos) << r;
  EXPECT_NE(Get(port, "/").find("\r\n\r\nindex GET /"), std::string::npos);
  EXPECT_EQ(Get(port, "/elsewhere").substr(0, 22), "HTTP/1.1 404 Not Found") << "/ is no prefix";
}

TEST_F(HttpServerTest, QueryParametersArePercentDecoded) {
  Start({{"/q", Echo("q")}});
  std::string r = Get(server_->port(), "/q?a=1&name=web%201+x&flag&bad=%zz");
  EXPECT_NE(r.find("q GET /q [a=1] [bad=%zz] [flag=] [name=web 1 x]"), std::string::npos) << r;
}

TEST_F(HttpServerTest, OnlyGetAndHeadAreServed) {
  Start({{"/m", Echo("m")}});
  std::string post = Exchange(server_->port(),
                              "POST /m HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n"
                              "Connection: close\r\n\r\nhi");
  EXPECT_EQ(post.substr(0, 31), "HTTP/1.1 405 Method Not Allowed") << post;
  EXPECT_NE(post.find("Allow: GET, HEAD"), std::string::npos) << post;

  std::string head =
      Exchange(server_->port(), "HEAD /m HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(head.substr(0, 15), "HTTP/1.1 200 OK") << head;
  EXPECT_NE(head.find("Content-Length: 9\r\n"), std::string::npos) << head;  // "m HEAD /m"
  EXPECT_EQ(head.substr(head.size() - 4), "\r\n\r\n") << "no body: " << head;
}

TEST_F(HttpServerTest, KeepAliveServesSeveralRequestsOnOneConnection) {
  Start({{"/a", Echo("a")}, {"/b", Echo("b")}});
  std::string r = Exchange(server_->port(),
                           "GET /a HTTP/1.1\r\nHost: x\r\n\r\n"
                           "GET /b HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  const size_t first = r.find("a GET /a");
  const size_t second = r.find("b GET /b");
  EXPECT_NE(first, std::string::npos) << r;
  EXPECT_NE(second, std::string::npos) << r;
  EXPECT_LT(first, second);
}

TEST_F(HttpServerTest, AnOversizedOrMalformedRequestIsRefusedAndTheServerGoesOn) {
  Start({{"/m", Echo("m")}});
  std::string huge =
      Exchange(server_->port(),
               "GET /m HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(100 * 1024, 'a') + "\r\n\r\n");
  EXPECT_EQ(huge.substr(0, 12), "HTTP/1.1 413") << huge.substr(0, 200);
  std::string garbage = Exchange(server_->port(), "NOT HTTP AT ALL\r\n\r\n");
  EXPECT_EQ(garbage.substr(0, 12), "HTTP/1.1 400") << garbage;
  EXPECT_NE(Get(server_->port(), "/m").find("m GET /m"), std::string::npos);
}

TEST_F(HttpServerTest, AThrowingHandlerIsA500) {
  Start({{"/boom", [](const HttpRequest&) -> HttpResponse { throw std::runtime_error("x"); }},
         {"/ok", Echo("ok")}});
  EXPECT_EQ(Get(server_->port(), "/boom").substr(0, 12), "HTTP/1.1 500");
  EXPECT_NE(Get(server_->port(), "/ok").find("ok GET /ok"), std::string::npos);
}

TEST(HttpServerStartTest, ABadOrTakenAddressIsAClearError) {
  boost::asio::io_context io;
  auto bad = HttpServer::Start(io, "no-port-here", {});
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("\"no-port-here\" is not HOST:PORT"), std::string::npos)
      << bad.status();

  auto first = HttpServer::Start(io, "127.0.0.1:0", {});
  ASSERT_TRUE(first.ok()) << first.status();
  const std::string taken = "127.0.0.1:" + std::to_string((*first)->port());
  auto second = HttpServer::Start(io, taken, {});
  EXPECT_EQ(second.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(second.status().message().find("cannot listen on the metrics address " + taken),
            std::string::npos)
      << second.status();
  EXPECT_NE(second.status().message().find("--metrics-listen"), std::string::npos);
}

TEST_F(HttpServerTest, OpsRoutesAnswerHealthReadinessAndMetrics) {
  metrics::Registry registry;
  registry.AddCounter("x_total", "X.")->Get().Increment(3);
  std::atomic<bool> ready{true};
  OpsOptions ops;
  ops.registry = &registry;
  ops.not_ready_reason = [&ready] { return ready ? std::string() : std::string("disk full"); };
  HttpServer::Routes routes;
  AddOpsRoutes(ops, &routes);
  Start(std::move(routes));
  const int port = server_->port();

  EXPECT_NE(Get(port, "/healthz").find("200 OK"), std::string::npos);
  std::string readyz = Get(port, "/readyz");
  EXPECT_NE(readyz.find("200 OK"), std::string::npos) << readyz;
  std::string metrics = Get(port, "/metrics");
  EXPECT_NE(metrics.find("Content-Type: text/plain; version=0.0.4; charset=utf-8"),
            std::string::npos)
      << metrics;
  EXPECT_NE(metrics.find("\nx_total 3\n"), std::string::npos) << metrics;
  EXPECT_NE(metrics.find("\ndagd_ready 1\n"), std::string::npos) << metrics;

  ready = false;
  readyz = Get(port, "/readyz");
  EXPECT_EQ(readyz.substr(0, 12), "HTTP/1.1 503") << readyz;
  EXPECT_NE(readyz.find("not ready: disk full"), std::string::npos) << readyz;
  EXPECT_NE(Get(port, "/healthz").find("200 OK"), std::string::npos) << "alive while not ready";
  EXPECT_NE(Get(port, "/metrics").find("\ndagd_ready 0\n"), std::string::npos);
}

}  // namespace
}  // namespace dagd::server
