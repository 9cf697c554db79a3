// How dagctl reaches dagd: the server address, TLS (a CA, a client certificate for mutual
// TLS), and the bearer token sent with every call. Each comes from a flag, else an environment
// variable, else dagctl's config file (flags and variables are CLI11's; the file is read here).
//
// The config file is YAML, `$DAGCTL_CONFIG` or `--config`, by default
// `${XDG_CONFIG_HOME:-~/.config}/dagctl/config.yaml`:
//
//   server: dagd.example.com:7233
//   ca-file: /etc/dagd/ca.pem
//   cert-file: ~/.dagd/alice.pem        # mutual TLS
//   key-file: ~/.dagd/alice-key.pem
//   token-file: ~/.dagd/token           # a bearer token (static, OIDC ID token, …)
//   tls-server-name: dagd.example.com   # the name the server's certificate must carry
//   namespace: team-a                   # -n: where apply and submit store, what lists show
//
// Stateless functions.
#ifndef DAGD_CMD_DAGCTL_CONNECTION_H_
#define DAGD_CMD_DAGCTL_CONNECTION_H_

#include <map>
#include <string>

#include "absl/status/statusor.h"
#include "cmd/dagctl/client.h"

namespace dagd::dagctl {

// The keys a config file may hold, each the name of the flag it stands for.
inline constexpr const char* kConfigKeys[] = {"server",   "ca-file",    "cert-file",
                                              "key-file", "token-file", "tls-server-name",
                                              "tls",      "namespace"};

// The default config file path ("" when neither XDG_CONFIG_HOME nor HOME is set).
std::string DefaultConfigPath();

// The settings of the config file at `path`, by key. A missing file is no settings unless
// `required` (a path the user named): then NotFound. InvalidArgument naming the file for YAML
// that is not a mapping of the keys above to strings (or `tls: true`).
absl::StatusOr<std::map<std::string, std::string>> ReadConfigFile(const std::string& path,
                                                                  bool required);

struct ConnectionSettings {
  std::string server;
  bool tls = false;  // TLS with the system's CAs unless ca_file says otherwise
  std::string ca_file;
  std::string cert_file;
  std::string key_file;
  std::string tls_server_name;
  std::string token;
  std::string token_file;
};

// ClientOptions for `settings`, the files read: TLS is on when `tls`, a CA or a client
// certificate is set. InvalidArgument naming the flag for a file that cannot be read, a
// certificate without its key, both a token and a token file, or a token that would be sent in
// the clear to a host other than this one.
absl::StatusOr<ClientOptions> ConnectionOptions(const ConnectionSettings& settings);

}  // namespace dagd::dagctl

#endif  // DAGD_CMD_DAGCTL_CONNECTION_H_
