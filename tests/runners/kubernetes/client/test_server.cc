#include "tests/runners/kubernetes/client/test_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cctype>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "gtest/gtest.h"

namespace dagd::runners::kubernetes::testing {

// ----- ResponseWriter -----

void ResponseWriter::Send(int status, const std::string& content_type, const std::string& body) {
  std::string head = "HTTP/1.1 " + std::to_string(status) +
                     " Test\r\nContent-Type: " + content_type +
                     "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n";
  if (write_(head)) write_(body);
}

void ResponseWriter::StartStream(int status, const std::string& content_type) {
  write_("HTTP/1.1 " + std::to_string(status) + " Test\r\nContent-Type: " + content_type +
         "\r\nTransfer-Encoding: chunked\r\n\r\n");
}

bool ResponseWriter::WriteChunk(std::string_view data) {
  if (data.empty()) return true;  // an empty chunk would end the stream
  char size[32];
  std::snprintf(size, sizeof(size), "%zx\r\n", data.size());
  std::string chunk = size;
  chunk.append(data);
  chunk += "\r\n";
  return write_(chunk);
}

void ResponseWriter::EndStream() { write_("0\r\n\r\n"); }

// ----- TestHttpServer -----

struct TestHttpServer::State {
  int listen_fd = -1;
  SSL_CTX* ctx = nullptr;
  ~State() {
    if (ctx != nullptr) SSL_CTX_free(ctx);
    if (listen_fd >= 0) close(listen_fd);
  }
};

TestHttpServer::TestHttpServer(TestServerOptions options, Handler handler)
    : options_(std::move(options)),
      handler_(std::move(handler)),
      state_(std::make_unique<State>()) {
  signal(SIGPIPE, SIG_IGN);  // a client that hangs up must not kill the test
  if (options_.tls) {
    state_->ctx = SSL_CTX_new(TLS_server_method());
    bool ok =
        state_->ctx != nullptr &&
        SSL_CTX_use_certificate_chain_file(state_->ctx, options_.cert_file.c_str()) == 1 &&
        SSL_CTX_use_PrivateKey_file(state_->ctx, options_.key_file.c_str(), SSL_FILETYPE_PEM) == 1;
    if (ok && !options_.client_ca_file.empty()) {
      ok =
          SSL_CTX_load_verify_locations(state_->ctx, options_.client_ca_file.c_str(), nullptr) == 1;
      SSL_CTX_set_client_CA_list(state_->ctx,
                                 SSL_load_client_CA_file(options_.client_ca_file.c_str()));
      SSL_CTX_set_verify(state_->ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
    }
    if (!ok) ADD_FAILURE() << "test server: cannot load its certificate or key";
  }
  state_->listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  if (bind(state_->listen_fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      listen(state_->listen_fd, 64) != 0) {
    ADD_FAILURE() << "test server: bind/listen: " << std::strerror(errno);
    return;
  }
  socklen_t len = sizeof(addr);
  getsockname(state_->listen_fd, reinterpret_cast<sockaddr*>(&addr), &len);
  port_ = ntohs(addr.sin_port);
  accept_thread_ = std::thread([this] { AcceptLoop(); });
}

TestHttpServer::~TestHttpServer() {
  std::vector<std::thread> threads;
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
    for (int fd : open_fds_) shutdown(fd, SHUT_RDWR);
  }
  shutdown(state_->listen_fd, SHUT_RDWR);  // wakes accept()
  if (accept_thread_.joinable()) accept_thread_.join();
  {
    std::lock_guard<std::mutex> lock(mu_);
    threads.swap(threads_);
  }
  for (std::thread& thread : threads) thread.join();
}

std::string TestHttpServer::url() const {
  return std::string(options_.tls ? "https" : "http") + "://127.0.0.1:" + std::to_string(port_);
}

std::vector<TestRequest> TestHttpServer::requests() const {
  std::lock_guard<std::mutex> lock(mu_);
  return requests_;
}

void TestHttpServer::AcceptLoop() {
  for (;;) {
    int fd = accept4(state_->listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      return;  // shut down
    }
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) {
      close(fd);
      return;
    }
    connections_++;
    open_fds_.insert(fd);
    threads_.emplace_back([this, fd] { Serve(fd); });
  }
}

namespace {

// One connection's byte stream, plain or TLS.
class Conn {
 public:
  Conn(int fd, SSL* ssl) : fd_(fd), ssl_(ssl) {}

  // >0 bytes read, 0 at EOF or on error.
  int Read(char* buffer, int size) {
    if (ssl_ != nullptr) {
      int n = SSL_read(ssl_, buffer, size);
      return n > 0 ? n : 0;
    }
    for (;;) {
      ssize_t n = recv(fd_, buffer, size, 0);
      if (n < 0 && errno == EINTR) continue;
      return n > 0 ? static_cast<int>(n) : 0;
    }
  }

  bool WriteAll(std::string_view data) {
    while (!data.empty()) {
      int n;
      if (ssl_ != nullptr) {
        n = SSL_write(ssl_, data.data(), static_cast<int>(data.size()));
        if (n <= 0) return false;
      } else {
        ssize_t sent = send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
        if (sent < 0 && errno == EINTR) continue;
        if (sent <= 0) return false;
        n = static_cast<int>(sent);
      }
      data.remove_prefix(n);
    }
    return true;
  }

 private:
  int fd_;
  SSL* ssl_;
};

std::string Lower(std::string text) {
  for (char& c : text) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return text;
}

std::string Trim(const std::string& text) {
  size_t begin = text.find_first_not_of(" \t");
  if (begin == std::string::npos) return "";
  size_t end = text.find_last_not_of(" \t\r");
  return text.substr(begin, end - begin + 1);
}

}  // namespace

void TestHttpServer::Serve(int fd) {
  SSL* ssl = nullptr;
  std::string subject;
  bool ok = true;
  if (options_.tls) {
    ssl = SSL_new(state_->ctx);
    SSL_set_fd(ssl, fd);
    if (SSL_accept(ssl) <= 0) {
      failed_handshakes_++;
      ok = false;
    } else if (X509* peer = SSL_get1_peer_certificate(ssl); peer != nullptr) {
      char line[512];
      X509_NAME_oneline(X509_get_subject_name(peer), line, sizeof(line));
      subject = line;
      X509_free(peer);
    }
  }
  Conn conn(fd, ssl);
  std::string buffer;
  char chunk[16384];
  while (ok) {
    size_t header_end;
    while ((header_end = buffer.find("\r\n\r\n")) == std::string::npos) {
      int n = conn.Read(chunk, sizeof(chunk));
      if (n == 0) {
        ok = false;
        break;
      }
      buffer.append(chunk, n);
    }
    if (!ok) break;
    TestRequest request;
    request.client_subject = subject;
    std::istringstream head(buffer.substr(0, header_end));
    buffer.erase(0, header_end + 4);
    std::string line;
    std::getline(head, line);
    std::istringstream request_line(line);
    request_line >> request.method >> request.target;
    size_t question = request.target.find('?');
    request.path = request.target.substr(0, question);
    if (question != std::string::npos) request.query = request.target.substr(question + 1);
    while (std::getline(head, line)) {
      size_t colon = line.find(':');
      if (colon == std::string::npos) continue;
      request.headers[Lower(Trim(line.substr(0, colon)))] = Trim(line.substr(colon + 1));
    }
    size_t length = 0;
    if (auto it = request.headers.find("content-length"); it != request.headers.end()) {
      length = std::stoul(it->second);
    }
    while (buffer.size() < length) {
      int n = conn.Read(chunk, sizeof(chunk));
      if (n == 0) {
        ok = false;
        break;
      }
      buffer.append(chunk, n);
    }
    if (!ok) break;
    request.body = buffer.substr(0, length);
    buffer.erase(0, length);
    {
      std::lock_guard<std::mutex> lock(mu_);
      requests_.push_back(request);
    }
    ResponseWriter writer([&conn](std::string_view data) { return conn.WriteAll(data); });
    handler_(request, writer);
    if (writer.aborted() || Lower(request.headers["connection"]) == "close") break;
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    open_fds_.erase(fd);
  }
  if (ssl != nullptr) SSL_free(ssl);
  shutdown(fd, SHUT_RDWR);
  close(fd);
}

// ----- Feed, Event, Collector -----

void Feed::Push(std::string piece) {
  std::lock_guard<std::mutex> lock(mu_);
  pieces_.push_back(std::move(piece));
  cv_.notify_all();
}

void Feed::Close() {
  std::lock_guard<std::mutex> lock(mu_);
  closed_ = true;
  cv_.notify_all();
}

std::optional<std::string> Feed::Pop() {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [this] { return closed_ || !pieces_.empty(); });
  if (pieces_.empty()) return std::nullopt;
  std::string piece = std::move(pieces_.front());
  pieces_.pop_front();
  return piece;
}

void Event::Notify() {
  std::lock_guard<std::mutex> lock(mu_);
  set_ = true;
  cv_.notify_all();
}

bool Event::WaitFor(std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  return cv_.wait_for(lock, timeout, [this] { return set_; });
}

void Collector::Add(std::string item) {
  std::lock_guard<std::mutex> lock(mu_);
  items_.push_back(std::move(item));
  cv_.notify_all();
}

bool Collector::WaitForCount(size_t count, std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  return cv_.wait_for(lock, timeout, [&] { return items_.size() >= count; });
}

std::vector<std::string> Collector::items() {
  std::lock_guard<std::mutex> lock(mu_);
  return items_;
}

// ----- files and certificates -----

TempDir::TempDir() {
  std::string pattern = "/tmp/dagd-kube-client-XXXXXX";
  if (mkdtemp(pattern.data()) == nullptr) ADD_FAILURE() << "mkdtemp: " << std::strerror(errno);
  path_ = pattern;
}

TempDir::~TempDir() {
  std::error_code ignored;
  std::filesystem::remove_all(path_, ignored);
}

void WriteFile(const std::string& path, const std::string& content) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << content;
  if (!out) ADD_FAILURE() << "cannot write " << path;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

namespace {

constexpr char kOpensslConfig[] = R"([req]
distinguished_name = dn
prompt = no
[dn]
CN = unused
[ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[server]
basicConstraints = CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1,DNS:localhost
[client]
basicConstraints = CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = clientAuth
)";

bool Run(const std::string& dir, const std::string& command) {
  std::string full = "cd '" + dir + "' && " + command + " >>openssl.log 2>&1";
  if (std::system(full.c_str()) != 0) {
    ADD_FAILURE() << "failed: " << command << "\n" << ReadFile(dir + "/openssl.log");
    return false;
  }
  return true;
}

}  // namespace

bool MakeTestCerts(const std::string& dir, TestCerts* certs) {
  WriteFile(dir + "/openssl.cnf", kOpensslConfig);
  const std::string key = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
  auto make_ca = [&](const std::string& name, const std::string& cn) {
    return Run(dir, "openssl req -x509 -config openssl.cnf -extensions ca " + key + " -keyout " +
                        name + ".key -out " + name + ".crt -days 2 -subj '/CN=" + cn + "'");
  };
  auto make_leaf = [&](const std::string& name, const std::string& subject,
                       const std::string& extensions) {
    return Run(dir, "openssl req -new -config openssl.cnf " + key + " -keyout " + name +
                        ".key -out " + name + ".csr -subj '" + subject + "'") &&
           Run(dir, "openssl x509 -req -in " + name +
                        ".csr -CA ca.crt -CAkey ca.key "
                        "-CAcreateserial -days 2 -out " +
                        name +
                        ".crt -extfile openssl.cnf "
                        "-extensions " +
                        extensions);
  };
  if (!make_ca("ca", "dagd-test-ca") || !make_ca("other-ca", "dagd-other-ca") ||
      !make_leaf("server", "/CN=localhost", "server") ||
      !make_leaf("client", "/O=system:masters/CN=dagd-test-client", "client")) {
    return false;
  }
  certs->dir = dir;
  certs->ca_cert = dir + "/ca.crt";
  certs->ca_key = dir + "/ca.key";
  certs->server_cert = dir + "/server.crt";
  certs->server_key = dir + "/server.key";
  certs->client_cert = dir + "/client.crt";
  certs->client_key = dir + "/client.key";
  certs->other_ca_cert = dir + "/other-ca.crt";
  return true;
}

}  // namespace dagd::runners::kubernetes::testing
