// Small file helpers shared by the local runner's parts. Blocking; thread-compatible.
#ifndef DAGD_RUNNERS_LOCAL_FILES_H_
#define DAGD_RUNNERS_LOCAL_FILES_H_

#include <sys/types.h>

#include <string>

#include "absl/status/status.h"

namespace dagd::runners::local {

// Writes `content` to `path` with exactly the permissions `mode` (whatever the umask), replacing
// a regular file and refusing to follow a symlink. Unavailable on failure, naming the path.
absl::Status WriteFile(const std::string& path, const std::string& content, mode_t mode);

}  // namespace dagd::runners::local

#endif  // DAGD_RUNNERS_LOCAL_FILES_H_
