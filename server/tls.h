// Transport security of dagd's two ports (gRPC and the operations HTTP port): the certificate
// files, how they become credentials, and the rule that plaintext stays on loopback.
//
// Certificates and keys are re-read when their files change (checked every
// `reload_interval_seconds`), so a rotated certificate (cert-manager, an ACME client) takes
// effect without a restart; connections already open keep the certificate they began with. A
// file that is unreadable or invalid at reload time leaves the previous certificate in use.
//
// Stateless functions; thread-safe.
#ifndef DAGD_SERVER_TLS_H_
#define DAGD_SERVER_TLS_H_

#include <memory>
#include <string>

#include "absl/status/status.h"

namespace grpc {
class ServerCredentials;
}

namespace dagd::server {

struct TlsFiles {
  // The server's certificate chain and private key, PEM. Both or neither; neither: no TLS.
  std::string cert_file;
  std::string key_file;
  // Mutual TLS: clients must present a certificate signed by a CA in this PEM bundle. Empty:
  // no client certificates are asked for.
  std::string client_ca_file;
  // How often the files are checked for changes.
  int reload_interval_seconds = 10;

  bool enabled() const { return !cert_file.empty() || !key_file.empty(); }
  bool mutual() const { return !client_ca_file.empty(); }
};

// OK when `tls` is off, or names a readable certificate and key that load and belong together
// (and a readable client CA bundle, if any). InvalidArgument naming the flag and the file
// otherwise: a certificate without a key, a client CA without a certificate, a file that is not
// PEM, a key that does not match the certificate.
absl::Status CheckTlsFiles(const TlsFiles& tls);

// The host part of "host:port", "[v6]:port" or "v6-without-port-brackets:port".
std::string ListenHost(const std::string& listen);

// Whether `host` reaches this machine only: localhost, 127.0.0.0/8, ::1.
bool IsLoopbackHost(const std::string& host);

// The rule for serving `listen` (flag `flag`): with TLS anything goes; without it, a loopback
// host is fine, and another one is refused (FailedPrecondition naming the flag, the address,
// and both ways out) unless `insecure_remote` — then OK, and the caller warns.
absl::Status CheckPlaintextListen(const std::string& flag, const std::string& listen,
                                  const TlsFiles& tls, bool insecure_remote);

// gRPC server credentials for `tls` (insecure when off): TLS 1.2+ with the files watched for
// changes; with a client CA, client certificates are required and verified.
std::shared_ptr<grpc::ServerCredentials> GrpcServerCredentials(const TlsFiles& tls);

}  // namespace dagd::server

#endif  // DAGD_SERVER_TLS_H_
