#include "cmd/dagctl/connection.h"

#include <arpa/inet.h>
#include <yaml-cpp/yaml.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace dagd::dagctl {
namespace {

// `path` with a leading "~/" replaced by $HOME.
std::string ExpandHome(const std::string& path) {
  const char* home = std::getenv("HOME");
  if (path.rfind("~/", 0) == 0 && home != nullptr) return std::string(home) + path.substr(1);
  return path;
}

absl::StatusOr<std::string> ReadWhole(const std::string& flag, const std::string& path) {
  std::ifstream in(ExpandHome(path), std::ios::binary);
  std::stringstream content;
  if (!in || !(content << in.rdbuf())) {
    return absl::InvalidArgumentError(absl::StrCat(flag, " ", path, ": cannot be read"));
  }
  return content.str();
}

// The host of "host:port" or "[v6]:port" reaches this machine only.
bool IsLoopbackServer(const std::string& server) {
  std::string host = server.substr(0, server.rfind(':'));
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  host = absl::AsciiStrToLower(host);
  if (host == "localhost") return true;
  in_addr v4{};
  if (inet_pton(AF_INET, host.c_str(), &v4) == 1) return (ntohl(v4.s_addr) >> 24) == 127;
  in6_addr v6{};
  return inet_pton(AF_INET6, host.c_str(), &v6) == 1 && IN6_IS_ADDR_LOOPBACK(&v6);
}

}  // namespace

std::string DefaultConfigPath() {
  if (const char* xdg = std::getenv("XDG_CONFIG_HOME"); xdg != nullptr && xdg[0] != '\0') {
    return absl::StrCat(xdg, "/dagctl/config.yaml");
  }
  if (const char* home = std::getenv("HOME"); home != nullptr && home[0] != '\0') {
    return absl::StrCat(home, "/.config/dagctl/config.yaml");
  }
  return "";
}

absl::StatusOr<std::map<std::string, std::string>> ReadConfigFile(const std::string& path,
                                                                  bool required) {
  std::map<std::string, std::string> settings;
  std::error_code ec;
  if (path.empty() || (!required && !std::filesystem::exists(path, ec))) return settings;
  std::ifstream in(path);
  if (!in) {
    return absl::NotFoundError(absl::StrCat("config file ", path,
                                            " cannot be read; name another with --config or "
                                            "DAGCTL_CONFIG"));
  }
  YAML::Node root;
  try {
    root = YAML::Load(in);
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(
        absl::StrCat("config file ", path, ": line ", e.mark.line + 1, ": ", e.msg));
  }
  if (root.IsNull()) return settings;
  if (!root.IsMap()) {
    return absl::InvalidArgumentError(
        absl::StrCat("config file ", path, ": not a mapping of settings (server: HOST:PORT, …)"));
  }
  for (const auto& entry : root) {
    const std::string key = entry.first.Scalar();
    bool known = false;
    for (const char* k : kConfigKeys) known = known || key == k;
    if (!known) {
      return absl::InvalidArgumentError(absl::StrCat(
          "config file ", path, ": line ", entry.first.Mark().line + 1, ": unknown setting \"", key,
          "\"; the settings are ", absl::StrJoin(kConfigKeys, ", ")));
    }
    if (!entry.second.IsScalar()) {
      return absl::InvalidArgumentError(absl::StrCat("config file ", path, ": line ",
                                                     entry.second.Mark().line + 1, ": ", key,
                                                     " must be a single value"));
    }
    settings[key] = entry.second.Scalar();
  }
  return settings;
}

absl::StatusOr<ClientOptions> ConnectionOptions(const ConnectionSettings& settings) {
  ClientOptions options;
  options.server = settings.server;
  options.tls = settings.tls || !settings.ca_file.empty() || !settings.cert_file.empty();
  options.tls_server_name = settings.tls_server_name;
  if (!settings.ca_file.empty()) {
    auto ca = ReadWhole("--ca-file", settings.ca_file);
    if (!ca.ok()) return ca.status();
    options.ca_pem = *std::move(ca);
  }
  if (settings.cert_file.empty() != settings.key_file.empty()) {
    return absl::InvalidArgumentError(
        "--cert-file and --key-file go together (a client certificate and its key, PEM)");
  }
  if (!settings.cert_file.empty()) {
    auto cert = ReadWhole("--cert-file", settings.cert_file);
    if (!cert.ok()) return cert.status();
    auto key = ReadWhole("--key-file", settings.key_file);
    if (!key.ok()) return key.status();
    options.cert_pem = *std::move(cert);
    options.key_pem = *std::move(key);
  }
  if (!settings.token.empty() && !settings.token_file.empty()) {
    return absl::InvalidArgumentError("--token and --token-file: give one of them");
  }
  options.token = settings.token;
  if (!settings.token_file.empty()) {
    auto token = ReadWhole("--token-file", settings.token_file);
    if (!token.ok()) return token.status();
    options.token = std::string(absl::StripAsciiWhitespace(*token));
  }
  if (!options.token.empty() && !options.tls && !IsLoopbackServer(options.server)) {
    return absl::InvalidArgumentError(
        absl::StrCat("dagctl sends a token to ", options.server,
                     " only over TLS: set --ca-file (or --tls for a certificate of a public CA)"));
  }
  return options;
}

}  // namespace dagd::dagctl
