#include "runners/local/options.h"

#include <grp.h>
#include <pwd.h>
#include <unistd.h>

#include "absl/strings/str_cat.h"

namespace dagd::runners::local {
namespace {

// argosay v2 (argoproj/argo-workflows test/e2e/images/argosay/v2) for the host, in POSIX sh.
// Run as `sh -c <script> argosay ARGS…`. Unlike the Go original, `echo` prints to stdout so that
// outputs.result sees it.
constexpr char kArgosayScript[] = R"sh(
usage() {
  echo "usage: argosay [assert_contains file string|cat [file...]|echo [string] [file]|sleep duration|exit [code]]" >&2
  exit 1
}
# A Go duration ("1s", "1.5m", "2h45m", "300ms") in seconds.
to_seconds() {
  printf '%s\n' "$1" | awk '{
    d = $0; s = 0
    if (d == "0") { print 0; exit 0 }
    if (d == "") exit 1
    while (d != "") {
      if (!match(d, /^[0-9]*\.?[0-9]+(ns|us|ms|s|m|h)/)) exit 1
      t = substr(d, 1, RLENGTH); d = substr(d, RLENGTH + 1)
      u = t; sub(/^[0-9]*\.?[0-9]+/, "", u); n = t + 0
      if (u == "h") n *= 3600; else if (u == "m") n *= 60
      else if (u == "ms") n /= 1000; else if (u == "us") n /= 1000000
      else if (u == "ns") n /= 1000000000
      s += n
    }
    printf "%.3f\n", s
  }'
}
[ $# -eq 0 ] && set -- echo
cmd=$1
shift
case $cmd in
  echo)
    case $# in
      0) echo "hello argo" ;;
      1) printf '%s\n' "$1" ;;
      2) mkdir -p "$(dirname "$2")" && printf '%s' "$1" > "$2" ;;
      *) echo "usage: argosay echo [string] [file]" >&2; exit 1 ;;
    esac ;;
  cat) cat -- "$@" ;;
  exit) exit "${1:-0}" ;;
  sleep)
    [ $# -eq 1 ] || usage
    secs=$(to_seconds "$1") || { echo "argosay: invalid duration \"$1\"" >&2; exit 1; }
    exec sleep "$secs" ;;
  assert_contains)
    [ $# -eq 2 ] || usage
    grep -qF -- "$2" "$1" || { echo "expected \"$1\" to contain \"$2\"" >&2; exit 1; } ;;
  *) usage ;;
esac
)sh";

}  // namespace

std::map<std::string, std::vector<std::string>> DefaultImageEntrypoints() {
  return {{"argoproj/argosay:v2", {"/bin/sh", "-c", kArgosayScript, "argosay"}}};
}

std::map<std::string, std::string> DefaultImagePrograms() {
  return {{"argoproj/argosay:v2", "/argosay"}};
}

absl::StatusOr<RunAsUser> ResolveRunAsUser(const std::string& name) {
  if (geteuid() != 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("--run-as-user ", name,
                     ": only root can start attempts as another user; run dagd as "
                     "root, or leave --run-as-user unset to run them as dagd's own user"));
  }
  std::vector<char> buffer(16384);
  struct passwd entry {};
  struct passwd* found = nullptr;
  if (getpwnam_r(name.c_str(), &entry, buffer.data(), buffer.size(), &found) != 0 ||
      found == nullptr) {
    return absl::NotFoundError(absl::StrCat(
        "--run-as-user ", name, ": no such user (create one: useradd --system ", name, ")"));
  }
  if (found->pw_uid == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("--run-as-user ", name, " is root: name an unprivileged user"));
  }
  RunAsUser user{.name = name, .uid = found->pw_uid, .gid = found->pw_gid, .home = found->pw_dir};
  int count = 64;
  user.groups.resize(count);
  if (getgrouplist(name.c_str(), user.gid, user.groups.data(), &count) < 0) {
    user.groups.resize(count);
    getgrouplist(name.c_str(), user.gid, user.groups.data(), &count);
  }
  user.groups.resize(count);
  return user;
}

}  // namespace dagd::runners::local
