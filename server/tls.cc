#include "server/tls.h"

#include <arpa/inet.h>
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/security/tls_certificate_provider.h>
#include <grpcpp/security/tls_credentials_options.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <cstdio>
#include <memory>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace dagd::server {
namespace {

struct FileCloser {
  void operator()(FILE* f) const { std::fclose(f); }
};
using File = std::unique_ptr<FILE, FileCloser>;

absl::Status Invalid(const std::string& flag, const std::string& file, const std::string& why) {
  return absl::InvalidArgumentError(absl::StrCat(flag, " ", file, ": ", why));
}

}  // namespace

absl::Status CheckTlsFiles(const TlsFiles& tls) {
  if (!tls.enabled()) {
    if (tls.mutual()) {
      return absl::InvalidArgumentError(
          "--tls-client-ca-file needs TLS: set --tls-cert-file and --tls-key-file too");
    }
    return absl::OkStatus();
  }
  if (tls.cert_file.empty() || tls.key_file.empty()) {
    return absl::InvalidArgumentError(
        "--tls-cert-file and --tls-key-file go together: set both (PEM files) or neither");
  }
  if (tls.reload_interval_seconds < 1) {
    return absl::InvalidArgumentError("--tls-reload-interval must be at least 1 (seconds)");
  }
  File cert_file(std::fopen(tls.cert_file.c_str(), "r"));
  if (!cert_file) return Invalid("--tls-cert-file", tls.cert_file, "cannot be read");
  std::unique_ptr<X509, decltype(&X509_free)> cert(
      PEM_read_X509(cert_file.get(), nullptr, nullptr, nullptr), X509_free);
  if (!cert) return Invalid("--tls-cert-file", tls.cert_file, "holds no PEM certificate");
  File key_file(std::fopen(tls.key_file.c_str(), "r"));
  if (!key_file) return Invalid("--tls-key-file", tls.key_file, "cannot be read");
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key(
      PEM_read_PrivateKey(key_file.get(), nullptr, nullptr, nullptr), EVP_PKEY_free);
  if (!key) {
    return Invalid("--tls-key-file", tls.key_file,
                   "holds no unencrypted PEM private key (dagd cannot ask for a passphrase)");
  }
  if (X509_check_private_key(cert.get(), key.get()) != 1) {
    ERR_clear_error();
    return Invalid("--tls-key-file", tls.key_file,
                   absl::StrCat("is not the key of the certificate in ", tls.cert_file));
  }
  if (tls.mutual()) {
    File ca_file(std::fopen(tls.client_ca_file.c_str(), "r"));
    if (!ca_file) return Invalid("--tls-client-ca-file", tls.client_ca_file, "cannot be read");
    std::unique_ptr<X509, decltype(&X509_free)> ca(
        PEM_read_X509(ca_file.get(), nullptr, nullptr, nullptr), X509_free);
    if (!ca) return Invalid("--tls-client-ca-file", tls.client_ca_file, "holds no certificate");
  }
  ERR_clear_error();
  return absl::OkStatus();
}

std::string ListenHost(const std::string& listen) {
  const size_t colon = listen.rfind(':');
  std::string host = colon == std::string::npos ? listen : listen.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  return host;
}

bool IsLoopbackHost(const std::string& host) {
  const std::string h = absl::AsciiStrToLower(host);
  if (h == "localhost" || h == "ip6-localhost") return true;
  in_addr v4{};
  if (inet_pton(AF_INET, h.c_str(), &v4) == 1) return (ntohl(v4.s_addr) >> 24) == 127;
  in6_addr v6{};
  if (inet_pton(AF_INET6, h.c_str(), &v6) == 1) {
    if (IN6_IS_ADDR_LOOPBACK(&v6)) return true;
    // ::ffff:127.x.y.z
    return IN6_IS_ADDR_V4MAPPED(&v6) && v6.s6_addr[12] == 127;
  }
  return false;  // a name other than localhost, "", 0.0.0.0, [::]: may reach other hosts
}

absl::Status CheckPlaintextListen(const std::string& flag, const std::string& listen,
                                  const TlsFiles& tls, bool insecure_remote) {
  if (tls.enabled() || insecure_remote || IsLoopbackHost(ListenHost(listen))) {
    return absl::OkStatus();
  }
  return absl::FailedPreconditionError(absl::StrCat(
      flag, " ", listen,
      " reaches other hosts, and without TLS every token and workflow would cross the network in "
      "the clear: set --tls-cert-file and --tls-key-file, listen on 127.0.0.1, or accept "
      "plaintext with --insecure-remote (behind a TLS-terminating proxy, for instance)"));
}

std::shared_ptr<grpc::ServerCredentials> GrpcServerCredentials(const TlsFiles& tls) {
  if (!tls.enabled()) return grpc::InsecureServerCredentials();
  auto provider = std::make_shared<grpc::experimental::FileWatcherCertificateProvider>(
      tls.key_file, tls.cert_file, tls.client_ca_file,
      static_cast<unsigned int>(tls.reload_interval_seconds));
  grpc::experimental::TlsServerCredentialsOptions options(provider);
  options.watch_identity_key_cert_pairs();
  if (tls.mutual()) {
    options.watch_root_certs();
    options.set_cert_request_type(GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  } else {
    options.set_cert_request_type(GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE);
  }
  return grpc::experimental::TlsServerCredentials(options);
}

}  // namespace dagd::server
