#include "runners/kubernetes/client/errors.h"

#include <string>

#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"

namespace dagd::runners::kubernetes {
namespace {

constexpr std::string_view kHttpStatusPayload = "type.dagd.dev/kubernetes.http_status";
constexpr std::string_view kReasonPayload = "type.dagd.dev/kubernetes.reason";
constexpr size_t kMaxExcerpt = 256;

// absl::string_view is not std::string_view in Debian's abseil.
absl::string_view Av(std::string_view text) { return absl::string_view(text.data(), text.size()); }

absl::StatusCode CodeFor(int http_status, std::string_view reason) {
  switch (http_status) {
    case 400:
    case 413:
    case 415:
    case 422:
      return absl::StatusCode::kInvalidArgument;
    case 401:
      return absl::StatusCode::kUnauthenticated;
    case 403:
      return absl::StatusCode::kPermissionDenied;
    case 404:
      return absl::StatusCode::kNotFound;
    case 409:
      // The API server answers 409 both for "already exists" and for an update whose
      // resourceVersion is stale; the latter is an optimistic-concurrency conflict to retry.
      return reason == "Conflict" ? absl::StatusCode::kAborted : absl::StatusCode::kAlreadyExists;
    case 410:
      return absl::StatusCode::kOutOfRange;
    case 429:
      return absl::StatusCode::kResourceExhausted;
    default:
      break;
  }
  if (http_status >= 500 && http_status <= 599) return absl::StatusCode::kUnavailable;
  return absl::StatusCode::kUnknown;
}

// One line of at most kMaxExcerpt bytes: runs of white space and control characters become one
// space.
std::string Excerpt(std::string_view body) {
  std::string out;
  bool space = false;
  for (char c : body) {
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) {
      space = true;
      continue;
    }
    if (space && !out.empty()) out.push_back(' ');
    space = false;
    // Cut only at the start of a UTF-8 sequence, never inside one.
    if (out.size() >= kMaxExcerpt && (static_cast<unsigned char>(c) & 0xC0) != 0x80) {
      out += "…";
      break;
    }
    out.push_back(c);
  }
  return out;
}

absl::Status MakeStatus(std::string_view server, int http_status, std::string_view message,
                        std::string_view reason) {
  std::string text = absl::StrCat("kubernetes API ", Av(server), ": ", http_status);
  if (std::string_view phrase = HttpReasonPhrase(http_status); !phrase.empty()) {
    absl::StrAppend(&text, " ", Av(phrase));
  }
  if (!message.empty()) absl::StrAppend(&text, ": ", Av(message));
  absl::Status status(CodeFor(http_status, reason), text);
  status.SetPayload(Av(kHttpStatusPayload), absl::Cord(std::to_string(http_status)));
  if (!reason.empty()) status.SetPayload(Av(kReasonPayload), absl::Cord(Av(reason)));
  return status;
}

std::string StringField(const nlohmann::json& object, const char* name) {
  auto it = object.find(name);
  if (it == object.end() || !it->is_string()) return "";
  return it->get<std::string>();
}

}  // namespace

absl::Status HttpError(std::string_view server, int http_status, std::string_view body) {
  nlohmann::json parsed = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (parsed.is_object() && StringField(parsed, "kind") == "Status") {
    std::string message = StringField(parsed, "message");
    return MakeStatus(server, http_status, message.empty() ? Excerpt(body) : message,
                      StringField(parsed, "reason"));
  }
  return MakeStatus(server, http_status, Excerpt(body), "");
}

absl::Status StatusFromKubernetesStatus(std::string_view server, const nlohmann::json& status) {
  int code = 500;
  std::string message;
  std::string reason;
  if (status.is_object()) {
    if (auto it = status.find("code"); it != status.end() && it->is_number_integer()) {
      code = it->get<int>();
    }
    message = StringField(status, "message");
    reason = StringField(status, "reason");
  }
  if (message.empty()) message = Excerpt(status.dump());
  return MakeStatus(server, code, message, reason);
}

std::optional<int> HttpStatusOf(const absl::Status& status) {
  auto payload = status.GetPayload(Av(kHttpStatusPayload));
  if (!payload) return std::nullopt;
  int value = 0;
  for (char c : std::string(*payload)) {
    if (c < '0' || c > '9') return std::nullopt;
    value = value * 10 + (c - '0');
  }
  return value;
}

std::string KubernetesReasonOf(const absl::Status& status) {
  auto payload = status.GetPayload(Av(kReasonPayload));
  return payload ? std::string(*payload) : std::string();
}

bool IsGone(const absl::Status& status) { return HttpStatusOf(status) == 410; }

std::string_view HttpReasonPhrase(int http_status) {
  switch (http_status) {
    case 200:
      return "OK";
    case 201:
      return "Created";
    case 202:
      return "Accepted";
    case 204:
      return "No Content";
    case 301:
      return "Moved Permanently";
    case 302:
      return "Found";
    case 304:
      return "Not Modified";
    case 307:
      return "Temporary Redirect";
    case 308:
      return "Permanent Redirect";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 406:
      return "Not Acceptable";
    case 408:
      return "Request Timeout";
    case 409:
      return "Conflict";
    case 410:
      return "Gone";
    case 413:
      return "Request Entity Too Large";
    case 415:
      return "Unsupported Media Type";
    case 422:
      return "Unprocessable Entity";
    case 429:
      return "Too Many Requests";
    case 500:
      return "Internal Server Error";
    case 501:
      return "Not Implemented";
    case 502:
      return "Bad Gateway";
    case 503:
      return "Service Unavailable";
    case 504:
      return "Gateway Timeout";
    default:
      return "";
  }
}

}  // namespace dagd::runners::kubernetes
