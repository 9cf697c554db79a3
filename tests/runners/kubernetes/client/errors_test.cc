#include "runners/kubernetes/client/errors.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace dagd::runners::kubernetes {
namespace {

using ::testing::HasSubstr;

constexpr char kServer[] = "https://10.0.0.1:6443";

std::string StatusBody(int code, const std::string& reason, const std::string& message) {
  return nlohmann::json{
      {"kind", "Status"},    {"apiVersion", "v1"}, {"metadata", nlohmann::json::object()},
      {"status", "Failure"}, {"message", message}, {"reason", reason},
      {"code", code}}
      .dump();
}

TEST(HttpErrorTest, NotFoundUsesTheStatusMessage) {
  absl::Status status =
      HttpError(kServer, 404, StatusBody(404, "NotFound", "jobs.batch \"x\" not found"));
  EXPECT_EQ(status.code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(std::string(status.message()),
            "kubernetes API https://10.0.0.1:6443: 404 Not Found: jobs.batch \"x\" not found");
  EXPECT_EQ(HttpStatusOf(status), 404);
  EXPECT_EQ(KubernetesReasonOf(status), "NotFound");
  EXPECT_FALSE(IsGone(status));
}

TEST(HttpErrorTest, MapsEachStatusOntoItsCode) {
  struct Case {
    int http;
    std::string reason;
    absl::StatusCode code;
  };
  const Case cases[] = {
      {400, "BadRequest", absl::StatusCode::kInvalidArgument},
      {401, "Unauthorized", absl::StatusCode::kUnauthenticated},
      {403, "Forbidden", absl::StatusCode::kPermissionDenied},
      {404, "NotFound", absl::StatusCode::kNotFound},
      {409, "AlreadyExists", absl::StatusCode::kAlreadyExists},
      {409, "", absl::StatusCode::kAlreadyExists},
      {409, "Conflict", absl::StatusCode::kAborted},
      {410, "Expired", absl::StatusCode::kOutOfRange},
      {413, "RequestEntityTooLarge", absl::StatusCode::kInvalidArgument},
      {422, "Invalid", absl::StatusCode::kInvalidArgument},
      {429, "TooManyRequests", absl::StatusCode::kResourceExhausted},
      {500, "InternalError", absl::StatusCode::kUnavailable},
      {503, "ServiceUnavailable", absl::StatusCode::kUnavailable},
      {504, "Timeout", absl::StatusCode::kUnavailable},
      {418, "", absl::StatusCode::kUnknown},
  };
  for (const Case& c : cases) {
    absl::Status status = HttpError(kServer, c.http, StatusBody(c.http, c.reason, "words"));
    EXPECT_EQ(status.code(), c.code) << c.http << " " << c.reason;
    EXPECT_EQ(HttpStatusOf(status), c.http);
    EXPECT_EQ(KubernetesReasonOf(status), c.reason);
  }
}

TEST(HttpErrorTest, GoneIsDistinguishable) {
  absl::Status gone =
      HttpError(kServer, 410, StatusBody(410, "Expired", "too old resource version: 1 (5)"));
  EXPECT_TRUE(IsGone(gone));
  EXPECT_EQ(std::string(gone.message()),
            "kubernetes API https://10.0.0.1:6443: 410 Gone: too old resource version: 1 (5)");
  // OutOfRange from anywhere else is not a 410.
  EXPECT_FALSE(IsGone(absl::OutOfRangeError("index 7")));
  EXPECT_FALSE(HttpStatusOf(absl::OutOfRangeError("index 7")).has_value());
}

TEST(HttpErrorTest, BodyThatIsNotAStatusIsQuotedOnOneLine) {
  absl::Status status = HttpError(kServer, 502, "<html>\n  <body>bad gateway</body>\n</html>\n");
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(std::string(status.message()),
            "kubernetes API https://10.0.0.1:6443: 502 Bad Gateway: <html> "
            "<body>bad gateway</body> </html>");
}

TEST(HttpErrorTest, EmptyBodyGivesStatusLineOnly) {
  absl::Status status = HttpError(kServer, 500, "");
  EXPECT_EQ(std::string(status.message()),
            "kubernetes API https://10.0.0.1:6443: 500 Internal Server Error");
}

TEST(HttpErrorTest, LongBodyIsCutAtACharacterBoundary) {
  std::string body(255, 'a');
  body += "\xC3\xA9\xC3\xA9";  // "éé": the cut falls after the first
  body += std::string(1000, 'b');
  absl::Status status = HttpError(kServer, 500, body);
  std::string message(status.message());
  EXPECT_THAT(message, HasSubstr(std::string(255, 'a') + "\xC3\xA9…"));
  EXPECT_LT(message.size(), 400u);
}

TEST(StatusFromKubernetesStatusTest, WatchErrorEventObject) {
  nlohmann::json object =
      nlohmann::json::parse(StatusBody(410, "Expired", "too old resource version: 12 (40)"));
  absl::Status status = StatusFromKubernetesStatus(kServer, object);
  EXPECT_TRUE(IsGone(status));
  EXPECT_EQ(status.code(), absl::StatusCode::kOutOfRange);
  EXPECT_EQ(KubernetesReasonOf(status), "Expired");
  EXPECT_THAT(std::string(status.message()), HasSubstr("410 Gone: too old resource version"));
}

TEST(StatusFromKubernetesStatusTest, WithoutCodeIsInternalServerError) {
  absl::Status status = StatusFromKubernetesStatus(kServer, {{"kind", "Status"}, {"message", "?"}});
  EXPECT_EQ(HttpStatusOf(status), 500);
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable);
}

}  // namespace
}  // namespace dagd::runners::kubernetes
