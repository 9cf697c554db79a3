// Reading a bundle directory for `dagctl apply/submit --bundle DIR`: every regular file under
// DIR, with its permission bits, as a dagd.v1.Bundle that dagd stores content-addressed with the
// workflow version (or the run).
//
// What is read: regular files, recursively. Entries named ".git" are skipped at any depth. A
// symbolic link is followed only when it resolves inside DIR (a link to a file sends that file's
// content under the link's path; a link to a directory is walked like one); a link that points
// outside DIR, dangles or loops is an error naming it. So are other file types (fifos, sockets,
// devices), names dagd reserves for itself (".dagd…" at the top), names that are not UTF-8 or
// hold control characters, and going over the limits. Empty directories are not sent.
//
// Every error is an InvalidArgument (or Unavailable for an unreadable file) whose message names
// the file and the fix, and can be shown as is. Not thread-safe in any interesting way: plain
// file-system reads on the calling thread.
#ifndef DAGD_CMD_DAGCTL_BUNDLE_H_
#define DAGD_CMD_DAGCTL_BUNDLE_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "dagd/v1/bundle.pb.h"

namespace dagd::dagctl {

// The caps dagctl checks before sending; the defaults are dagd's (--max-bundle-bytes,
// --max-bundle-files), which checks them again.
struct BundleLimits {
  int64_t max_bytes = int64_t{32} << 20;  // total content bytes
  int64_t max_files = 10000;
};

// Fills `bundle` with the files under `dir`, sorted by path. See the header comment.
absl::Status ReadBundleDir(const std::string& dir, const BundleLimits& limits, v1::Bundle* bundle);

}  // namespace dagd::dagctl

#endif  // DAGD_CMD_DAGCTL_BUNDLE_H_
