// ClusterConfig: where the Kubernetes API server is and how dagd proves who it is, and the two
// ways to get one — from inside a pod (the service account dagd runs as) or from a kubeconfig
// file (a developer's machine, or dagd outside the cluster).
//
// Both loaders only read files; they open no connection. KubeClient::Create() checks the result
// again (server URL, files readable) before the first request.
//
// Stateless and thread-safe (LoadInClusterConfig() reads the environment through
// InClusterOptions::getenv, ::getenv by default).
#ifndef DAGD_RUNNERS_KUBERNETES_CLIENT_CLUSTER_CONFIG_H_
#define DAGD_RUNNERS_KUBERNETES_CLIENT_CLUSTER_CONFIG_H_

#include <functional>
#include <string>

#include "absl/status/statusor.h"

namespace dagd::runners::kubernetes {

struct ClusterConfig {
  // The API server's base URL, "https://10.0.0.1:443" (http:// only for tests and proxies).
  // Request paths are appended to it; a trailing '/' is dropped.
  std::string server;

  // How the server's certificate is verified. PEM data wins over a file; with neither, the
  // system's CA bundle is used. insecure_skip_tls_verify turns verification off (kubeconfig's
  // `insecure-skip-tls-verify: true`; never the default).
  std::string ca_file;
  std::string ca_data;
  bool insecure_skip_tls_verify = false;

  // The client certificate for mutual TLS, PEM. Data wins over a file; certificate and key come
  // together. Inline data never touches the disk (libcurl's CURLOPT_SSLCERT_BLOB/SSLKEY_BLOB).
  std::string client_cert_file;
  std::string client_cert_data;
  std::string client_key_file;
  std::string client_key_data;

  // The bearer token. A token_file wins over a token and is re-read at most once per
  // KubeClientOptions::token_refresh_period (a minute), so projected service account tokens,
  // which the kubelet rotates, keep working. Surrounding whitespace is trimmed.
  std::string token;
  std::string token_file;

  // The namespace dagd works in when a template names none: the context's namespace, or the
  // service account's; "default" if neither says.
  std::string default_namespace = "default";

  // An HTTP(S) proxy (kubeconfig's `proxy-url`). Empty: libcurl's usual environment variables
  // (https_proxy, no_proxy, …) apply, as they do for client-go.
  std::string proxy_url;

  // Where this configuration came from, for messages: `in-cluster (/var/run/…)` or
  // `kubeconfig /home/u/.kube/config, context "dev"`.
  std::string source;
};

// The conventional mount point of a pod's service account credentials.
inline constexpr char kServiceAccountDir[] = "/var/run/secrets/kubernetes.io/serviceaccount";

struct InClusterOptions {
  // The directory holding `token`, `ca.crt` and `namespace`.
  std::string root = kServiceAccountDir;
  // Reads an environment variable (nullptr when unset). Empty: ::getenv.
  std::function<const char*(const char*)> getenv;
};

// The configuration of a pod's own service account: server
// https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT (an IPv6 host in brackets), token_file
// <root>/token, ca_file <root>/ca.crt, default_namespace from <root>/namespace ("default" if the
// file is absent).
// FailedPrecondition when the two variables are unset (not running in a pod); NotFound naming
// the file when the token or the CA certificate is missing or unreadable.
absl::StatusOr<ClusterConfig> LoadInClusterConfig(const InClusterOptions& options = {});

// The configuration a kubeconfig file describes for `context_name`, or for its
// `current-context` when `context_name` is empty. Understands clusters (`server`,
// `certificate-authority`, `certificate-authority-data`, `insecure-skip-tls-verify`,
// `proxy-url`), users (`token`, `tokenFile`, `client-certificate`, `client-certificate-data`,
// `client-key`, `client-key-data`; a user may also be absent: anonymous) and contexts
// (`cluster`, `user`, `namespace`). `*-data` fields are base64 PEM; relative paths are resolved
// against the kubeconfig's own directory, and the files they name must be readable.
// One file only: KUBECONFIG lists with several files are not merged.
// Errors name the file, the context/cluster/user and the field:
//   NotFound          the file, the context, or the cluster/user a context names is missing;
//                     a file a field names is missing or unreadable;
//   InvalidArgument   YAML that does not parse (with its line), a required field missing
//                     (`server`), a field of the wrong type, bad base64, a certificate without
//                     its key;
//   Unimplemented     `exec` credential plugins, `auth-provider`, basic auth (`username`/
//                     `password`) and `tls-server-name` — out of scope for dagd.
absl::StatusOr<ClusterConfig> LoadKubeconfig(const std::string& path,
                                             const std::string& context_name = "");

// The kubeconfig kubectl would read: the first entry of $KUBECONFIG, else $HOME/.kube/config.
// "" when neither variable is set.
std::string DefaultKubeconfigPath();

}  // namespace dagd::runners::kubernetes

#endif  // DAGD_RUNNERS_KUBERNETES_CLIENT_CLUSTER_CONFIG_H_
