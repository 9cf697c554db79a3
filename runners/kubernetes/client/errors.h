// How the Kubernetes client turns HTTP answers into absl::Status.
//
// Every error names the API server, then the HTTP status, then Kubernetes' own words — the
// `message` of the `Status` object the API server sends with every error:
//
//   kubernetes API https://10.0.0.1:6443: 404 Not Found: jobs.batch "x" not found
//
// HTTP status → absl code:
//   400, 413, 415, 422 → InvalidArgument      401 → Unauthenticated     403 → PermissionDenied
//   404 → NotFound     409 → AlreadyExists (reason "Conflict", a stale resourceVersion → Aborted)
//   410 → OutOfRange (test with IsGone(): the watch's resourceVersion is too old; list again)
//   429 → ResourceExhausted    5xx → Unavailable    anything else → Unknown
// Each such status also carries the HTTP status as a payload (HttpStatusOf()) and, when the
// Status object had one, its machine-readable `reason` (KubernetesReasonOf()).
//
// Pure functions; thread-safe.
#ifndef DAGD_RUNNERS_KUBERNETES_CLIENT_ERRORS_H_
#define DAGD_RUNNERS_KUBERNETES_CLIENT_ERRORS_H_

#include <optional>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "nlohmann/json.hpp"

namespace dagd::runners::kubernetes {

// The absl::Status for an HTTP answer with status `http_status` (>= 300) from `server`. `body` is
// the response body: when it is a Kubernetes `Status` object its `message` is used, otherwise a
// short single-line excerpt of the body, if any.
absl::Status HttpError(std::string_view server, int http_status, std::string_view body);

// The absl::Status for a Kubernetes `Status` object that arrived on its own, e.g. the `object` of
// a watch event of type ERROR (`{"kind":"Status","code":410,"reason":"Expired","message":…}`).
// Its `code` plays the part of the HTTP status (500 when it has none).
absl::Status StatusFromKubernetesStatus(std::string_view server, const nlohmann::json& status);

// The HTTP status an error from HttpError() / StatusFromKubernetesStatus() carries, if any.
std::optional<int> HttpStatusOf(const absl::Status& status);

// The Kubernetes `reason` (e.g. "AlreadyExists", "Conflict", "Expired") such an error carries,
// or "" when there was none.
std::string KubernetesReasonOf(const absl::Status& status);

// True for HTTP 410 Gone: the resourceVersion a watch or list asked for is too old.
bool IsGone(const absl::Status& status);

// "Not Found" for 404 and so on; "" for a code it does not know.
std::string_view HttpReasonPhrase(int http_status);

}  // namespace dagd::runners::kubernetes

#endif  // DAGD_RUNNERS_KUBERNETES_CLIENT_ERRORS_H_
