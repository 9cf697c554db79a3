#include "runners/kubernetes/client/cluster_config.h"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string_view>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "engine/status_macros.h"
#include "yaml-cpp/yaml.h"

namespace dagd::runners::kubernetes {
namespace {

namespace fs = std::filesystem;

absl::StatusOr<std::string> ReadWholeFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat(path, ": cannot read: ", std::strerror(errno)));
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) return absl::NotFoundError(absl::StrCat(path, ": read error"));
  return std::move(text).str();
}

absl::Status CheckReadable(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat(path, ": cannot read: ", std::strerror(errno)));
  return absl::OkStatus();
}

}  // namespace

// ----- in-cluster -----

absl::StatusOr<ClusterConfig> LoadInClusterConfig(const InClusterOptions& options) {
  auto getenv =
      options.getenv ? options.getenv : [](const char* name) { return std::getenv(name); };
  const char* host = getenv("KUBERNETES_SERVICE_HOST");
  const char* port = getenv("KUBERNETES_SERVICE_PORT");
  if (host == nullptr || *host == '\0' || port == nullptr || *port == '\0') {
    return absl::FailedPreconditionError(
        "in-cluster configuration: not running in a Kubernetes pod (KUBERNETES_SERVICE_HOST and "
        "KUBERNETES_SERVICE_PORT must both be set)");
  }
  ClusterConfig config;
  std::string host_part = host;
  if (host_part.find(':') != std::string::npos && host_part.front() != '[') {
    host_part = absl::StrCat("[", host_part, "]");  // an IPv6 address
  }
  config.server = absl::StrCat("https://", host_part, ":", port);
  config.token_file = (fs::path(options.root) / "token").string();
  config.ca_file = (fs::path(options.root) / "ca.crt").string();
  config.source = absl::StrCat("in-cluster (", options.root, ")");

  absl::StatusOr<std::string> token = ReadWholeFile(config.token_file);
  if (!token.ok()) {
    return absl::NotFoundError(
        absl::StrCat("in-cluster configuration: service account token ", token.status().message()));
  }
  if (absl::StripAsciiWhitespace(*token).empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "in-cluster configuration: service account token ", config.token_file, " is empty"));
  }
  if (absl::Status ca = CheckReadable(config.ca_file); !ca.ok()) {
    return absl::NotFoundError(
        absl::StrCat("in-cluster configuration: CA certificate ", ca.message()));
  }
  std::string ns_path = (fs::path(options.root) / "namespace").string();
  if (fs::exists(ns_path)) {
    ASSIGN_OR_RETURN(std::string ns, ReadWholeFile(ns_path));
    absl::string_view trimmed = absl::StripAsciiWhitespace(ns);
    if (!trimmed.empty()) config.default_namespace = std::string(trimmed);
  }
  return config;
}

// ----- kubeconfig -----

namespace {

// Reads one kubeconfig and keeps the file's name and directory for messages and paths.
class KubeconfigReader {
 public:
  explicit KubeconfigReader(std::string path)
      : path_(std::move(path)), dir_(fs::path(path_).parent_path()) {}

  absl::StatusOr<ClusterConfig> Load(const std::string& context_name) {
    ASSIGN_OR_RETURN(std::string text, ReadWholeFile(path_));
    YAML::Node root;
    try {
      root = YAML::Load(text);
    } catch (const YAML::Exception& e) {
      return absl::InvalidArgumentError(
          absl::StrCat("kubeconfig ", path_, ": line ", e.mark.line + 1, ": ", e.msg));
    }
    if (!root.IsMap()) {
      return absl::InvalidArgumentError(absl::StrCat("kubeconfig ", path_,
                                                     ": not a kubeconfig (expected a mapping with "
                                                     "clusters, users and contexts)"));
    }
    try {
      return LoadFrom(root, context_name);
    } catch (const YAML::Exception& e) {  // defensive: conversions are checked before use
      return absl::InvalidArgumentError(
          absl::StrCat("kubeconfig ", path_, ": line ", e.mark.line + 1, ": ", e.msg));
    }
  }

 private:
  absl::StatusOr<ClusterConfig> LoadFrom(const YAML::Node& root, const std::string& wanted) {
    std::string context_name = wanted;
    if (context_name.empty()) {
      ASSIGN_OR_RETURN(context_name, String(root, "current-context", ""));
      if (context_name.empty()) {
        return absl::InvalidArgumentError(
            absl::StrCat("kubeconfig ", path_, ": no context given and no current-context set"));
      }
    }
    std::string where_context = absl::StrCat("context \"", context_name, "\"");
    ASSIGN_OR_RETURN(YAML::Node context, Named(root, "contexts", "context", context_name));
    ASSIGN_OR_RETURN(std::string cluster_name, String(context, "cluster", where_context));
    if (cluster_name.empty()) return Missing(where_context, "cluster", context);
    ASSIGN_OR_RETURN(std::string user_name, String(context, "user", where_context));
    ASSIGN_OR_RETURN(std::string ns, String(context, "namespace", where_context));

    ClusterConfig config;
    config.source = absl::StrCat("kubeconfig ", path_, ", context \"", context_name, "\"");
    if (!ns.empty()) config.default_namespace = ns;

    std::string where_cluster = absl::StrCat("cluster \"", cluster_name, "\"");
    ASSIGN_OR_RETURN(YAML::Node cluster, Named(root, "clusters", "cluster", cluster_name));
    ASSIGN_OR_RETURN(config.server, String(cluster, "server", where_cluster));
    if (config.server.empty()) return Missing(where_cluster, "server", cluster);
    ASSIGN_OR_RETURN(config.ca_data, Base64(cluster, "certificate-authority-data", where_cluster));
    if (config.ca_data.empty()) {
      ASSIGN_OR_RETURN(config.ca_file, Path(cluster, "certificate-authority", where_cluster));
    }
    ASSIGN_OR_RETURN(config.insecure_skip_tls_verify,
                     Bool(cluster, "insecure-skip-tls-verify", where_cluster));
    ASSIGN_OR_RETURN(config.proxy_url, String(cluster, "proxy-url", where_cluster));
    if (cluster["tls-server-name"]) {
      return Unsupported(where_cluster, "tls-server-name",
                         "overriding the server name for TLS is not supported; use a server URL "
                         "whose host the certificate names");
    }

    if (!user_name.empty()) {
      std::string where_user = absl::StrCat("user \"", user_name, "\"");
      ASSIGN_OR_RETURN(YAML::Node user, Named(root, "users", "user", user_name));
      RETURN_IF_ERROR(LoadUser(user, where_user, &config));
    }
    return config;
  }

  absl::Status LoadUser(const YAML::Node& user, const std::string& where, ClusterConfig* config) {
    if (user["exec"]) {
      return Unsupported(where, "exec",
                         "exec-based credential plugins are out of scope for dagd; give the user "
                         "a token, a tokenFile or a client certificate");
    }
    if (user["auth-provider"]) {
      return Unsupported(where, "auth-provider",
                         "auth-provider plugins are out of scope for dagd; give the user a "
                         "token, a tokenFile or a client certificate");
    }
    if (user["username"] || user["password"]) {
      return Unsupported(where, "username",
                         "basic authentication is not supported (Kubernetes removed it); give "
                         "the user a token, a tokenFile or a client certificate");
    }
    ASSIGN_OR_RETURN(config->token, String(user, "token", where));
    ASSIGN_OR_RETURN(config->token_file, Path(user, "tokenFile", where));

    ASSIGN_OR_RETURN(config->client_cert_data, Base64(user, "client-certificate-data", where));
    if (config->client_cert_data.empty()) {
      ASSIGN_OR_RETURN(config->client_cert_file, Path(user, "client-certificate", where));
    }
    ASSIGN_OR_RETURN(config->client_key_data, Base64(user, "client-key-data", where));
    if (config->client_key_data.empty()) {
      ASSIGN_OR_RETURN(config->client_key_file, Path(user, "client-key", where));
    }
    bool has_cert = !config->client_cert_data.empty() || !config->client_cert_file.empty();
    bool has_key = !config->client_key_data.empty() || !config->client_key_file.empty();
    if (has_cert && !has_key) return Missing(where, "client-key or client-key-data", user);
    if (has_key && !has_cert) {
      return Missing(where, "client-certificate or client-certificate-data", user);
    }
    return absl::OkStatus();
  }

  // The inner mapping of the entry named `name` in the list `list` (e.g. clusters[].cluster).
  absl::StatusOr<YAML::Node> Named(const YAML::Node& root, const char* list, const char* inner,
                                   const std::string& name) {
    const YAML::Node entries = root[list];
    std::string what = absl::StrCat(inner, " \"", name, "\"");
    if (entries && !entries.IsSequence() && !entries.IsNull()) {
      return absl::InvalidArgumentError(absl::StrCat("kubeconfig ", path_, ": ", Line(entries),
                                                     "field \"", list, "\" must be a list"));
    }
    if (entries && entries.IsSequence()) {
      for (const YAML::Node& entry : entries) {
        if (!entry.IsMap()) continue;
        const YAML::Node entry_name = entry["name"];
        if (!entry_name || !entry_name.IsScalar() || entry_name.Scalar() != name) continue;
        const YAML::Node body = entry[inner];
        if (!body || body.IsNull()) return YAML::Node(YAML::NodeType::Map);
        if (!body.IsMap()) {
          return absl::InvalidArgumentError(absl::StrCat("kubeconfig ", path_, ": ", Line(body),
                                                         what, ": field \"", inner,
                                                         "\" must be a mapping"));
        }
        return body;
      }
    }
    return absl::NotFoundError(
        absl::StrCat("kubeconfig ", path_, ": ", what, " not found in \"", list, "\""));
  }

  // A scalar field as a string; "" when absent.
  absl::StatusOr<std::string> String(const YAML::Node& map, const char* field,
                                     const std::string& where) {
    const YAML::Node value = map[field];
    if (!value || value.IsNull()) return std::string();
    if (!value.IsScalar()) {
      return absl::InvalidArgumentError(absl::StrCat("kubeconfig ", path_, ": ", Line(value),
                                                     Where(where), "field \"", field,
                                                     "\" must be a string"));
    }
    return value.Scalar();
  }

  absl::StatusOr<bool> Bool(const YAML::Node& map, const char* field, const std::string& where) {
    const YAML::Node value = map[field];
    if (!value || value.IsNull()) return false;
    bool result = false;
    if (!value.IsScalar() || !YAML::convert<bool>::decode(value, result)) {
      return absl::InvalidArgumentError(absl::StrCat("kubeconfig ", path_, ": ", Line(value),
                                                     Where(where), "field \"", field,
                                                     "\" must be true or false"));
    }
    return result;
  }

  // A base64 field, decoded; "" when absent.
  absl::StatusOr<std::string> Base64(const YAML::Node& map, const char* field,
                                     const std::string& where) {
    ASSIGN_OR_RETURN(std::string encoded, String(map, field, where));
    if (encoded.empty()) return std::string();
    std::string compact;
    for (char c : encoded) {
      if (!absl::ascii_isspace(static_cast<unsigned char>(c))) compact.push_back(c);
    }
    std::string decoded;
    if (!absl::Base64Unescape(compact, &decoded) || decoded.empty()) {
      return absl::InvalidArgumentError(absl::StrCat("kubeconfig ", path_, ": ", Line(map[field]),
                                                     Where(where), "field \"", field,
                                                     "\" is not valid base64"));
    }
    return decoded;
  }

  // A path field resolved against the kubeconfig's directory; the file must be readable.
  absl::StatusOr<std::string> Path(const YAML::Node& map, const char* field,
                                   const std::string& where) {
    ASSIGN_OR_RETURN(std::string value, String(map, field, where));
    if (value.empty()) return std::string();
    fs::path path(value);
    if (path.is_relative()) path = (dir_ / path).lexically_normal();
    std::string resolved = path.string();
    if (absl::Status readable = CheckReadable(resolved); !readable.ok()) {
      return absl::NotFoundError(absl::StrCat("kubeconfig ", path_, ": ", Line(map[field]),
                                              Where(where), "field \"", field,
                                              "\": ", readable.message()));
    }
    return resolved;
  }

  absl::Status Missing(const std::string& where, const std::string& field, const YAML::Node& at) {
    return absl::InvalidArgumentError(absl::StrCat(
        "kubeconfig ", path_, ": ", Line(at), Where(where), "field \"", field, "\" is missing"));
  }

  absl::Status Unsupported(const std::string& where, const char* field, const char* explanation) {
    return absl::UnimplementedError(absl::StrCat("kubeconfig ", path_, ": ", Where(where),
                                                 "field \"", field, "\": ", explanation));
  }

  static std::string Line(const YAML::Node& node) {
    if (node.Mark().is_null()) return "";
    return absl::StrCat("line ", node.Mark().line + 1, ": ");
  }

  static std::string Where(const std::string& where) {
    return where.empty() ? std::string() : absl::StrCat(where, ": ");
  }

  std::string path_;
  fs::path dir_;
};

}  // namespace

absl::StatusOr<ClusterConfig> LoadKubeconfig(const std::string& path,
                                             const std::string& context_name) {
  if (!fs::exists(path)) {
    return absl::NotFoundError(absl::StrCat("kubeconfig ", path, ": no such file"));
  }
  return KubeconfigReader(path).Load(context_name);
}

std::string DefaultKubeconfigPath() {
  if (const char* list = std::getenv("KUBECONFIG"); list != nullptr && *list != '\0') {
    for (absl::string_view entry : absl::StrSplit(list, ':')) {
      if (!entry.empty()) return std::string(entry);
    }
  }
  if (const char* home = std::getenv("HOME"); home != nullptr && *home != '\0') {
    return (fs::path(home) / ".kube" / "config").string();
  }
  return "";
}

}  // namespace dagd::runners::kubernetes
