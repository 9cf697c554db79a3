#include "server/auth/static_tokens.h"

#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <spdlog/spdlog.h>
#include <yaml-cpp/yaml.h>

#include <fstream>
#include <set>
#include <sstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "server/auth/file_stamp.h"

namespace dagd::server::auth {
namespace {

absl::Status Bad(const std::string& file, const YAML::Node& node, const std::string& what) {
  return absl::InvalidArgumentError(
      absl::StrCat("static token file ", file, ": line ", node.Mark().line + 1, ": ", what));
}

}  // namespace

absl::StatusOr<std::vector<StaticToken>> ParseStaticTokens(const std::string& text,
                                                           const std::string& file) {
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(
        absl::StrCat("static token file ", file, ": line ", e.mark.line + 1, ": ", e.msg));
  }
  std::vector<StaticToken> tokens;
  if (root.IsNull()) return tokens;
  if (!root.IsMap()) return Bad(file, root, "expected a mapping with `tokens:`");
  for (const auto& entry : root) {
    if (entry.first.Scalar() != "tokens") {
      return Bad(file, entry.first,
                 absl::StrCat("unknown key \"", entry.first.Scalar(),
                              "\"; the file holds `tokens:` only"));
    }
  }
  const YAML::Node list = root["tokens"];
  if (!list || list.IsNull()) return tokens;
  if (!list.IsSequence()) return Bad(file, list, "`tokens` must be a list");
  std::set<std::string> seen;
  for (const YAML::Node& item : list) {
    if (!item.IsMap()) return Bad(file, item, "each token is a mapping {sha256, user, groups}");
    StaticToken token;
    std::string hex;
    for (const auto& field : item) {
      const std::string key = field.first.Scalar();
      if (key == "sha256" && field.second.IsScalar()) {
        hex = field.second.Scalar();
      } else if (key == "user" && field.second.IsScalar()) {
        token.user = field.second.Scalar();
      } else if (key == "groups" && field.second.IsSequence()) {
        for (const YAML::Node& group : field.second) {
          if (!group.IsScalar() || group.Scalar().empty()) {
            return Bad(file, group, "groups are non-empty strings");
          }
          token.groups.push_back(group.Scalar());
        }
      } else if (key == "sha256" || key == "user" || key == "groups") {
        return Bad(file, field.second,
                   absl::StrCat(key, " must be ", key == "groups" ? "a list" : "a string"));
      } else {
        return Bad(file, field.first,
                   absl::StrCat("unknown key \"", key, "\"; a token has sha256, user, groups"));
      }
    }
    if (hex.size() != 64 || hex.find_first_not_of("0123456789abcdefABCDEF") != std::string::npos) {
      return Bad(file, item,
                 "sha256 must be the 64 hex digits of the token's SHA-256 (printf %s \"$TOKEN\" | "
                 "sha256sum); the token itself never goes in this file");
    }
    for (size_t i = 0; i < 32; ++i) {
      int byte = 0;
      absl::SimpleHexAtoi(hex.substr(2 * i, 2), &byte);
      token.sha256[i] = static_cast<unsigned char>(byte);
    }
    if (token.user.empty()) return Bad(file, item, "a token needs a user");
    if (!seen.insert(std::string(token.sha256.begin(), token.sha256.end())).second) {
      return Bad(file, item, "the same token hash is listed twice");
    }
    tokens.push_back(std::move(token));
  }
  return tokens;
}

absl::StatusOr<std::unique_ptr<StaticTokenAuthenticator>> StaticTokenAuthenticator::Create(
    std::string path, std::chrono::seconds reload_interval) {
  std::unique_ptr<StaticTokenAuthenticator> authenticator(
      new StaticTokenAuthenticator(std::move(path), reload_interval));
  std::lock_guard<std::mutex> lock(authenticator->mutex_);
  if (absl::Status st = authenticator->Reload(/*force=*/true); !st.ok()) return st;
  return authenticator;
}

absl::Status StaticTokenAuthenticator::Reload(bool force) {
  const auto now = std::chrono::steady_clock::now();
  if (!force && now - last_check_ < reload_interval_) return absl::OkStatus();
  last_check_ = now;
  const std::string stamp = FileStamp(path_);
  if (!force && stamp == stamp_) return absl::OkStatus();
  stamp_ = stamp;  // a bad file is reported once per change
  std::ifstream in(path_);
  std::stringstream text;
  if (!in || !(text << in.rdbuf())) {
    return absl::NotFoundError(absl::StrCat("static token file ", path_, " cannot be read"));
  }
  auto tokens = ParseStaticTokens(text.str(), path_);
  if (!tokens.ok()) return tokens.status();
  tokens_ = *std::move(tokens);
  return absl::OkStatus();
}

absl::StatusOr<Principal> StaticTokenAuthenticator::Authenticate(const std::string& token) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(token.data()), token.size(), digest);
  std::lock_guard<std::mutex> lock(mutex_);
  if (absl::Status st = Reload(/*force=*/false); !st.ok()) {
    spdlog::error("{}; the tokens read before stay in force", std::string(st.message()));
  }
  const StaticToken* match = nullptr;
  for (const StaticToken& entry : tokens_) {
    // Every entry is compared, whatever matched before.
    const bool equal = CRYPTO_memcmp(entry.sha256.data(), digest, SHA256_DIGEST_LENGTH) == 0;
    if (equal) match = &entry;
  }
  if (match == nullptr) return absl::UnauthenticatedError("not a token of the static token file");
  return Principal{.name = match->user, .groups = match->groups, .method = "static-token"};
}

}  // namespace dagd::server::auth
