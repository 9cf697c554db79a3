#include "runners/local/files.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace dagd::runners::local {

absl::Status WriteFile(const std::string& path, const std::string& content, mode_t mode) {
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode);
  if (fd < 0) {
    return absl::UnavailableError(absl::StrCat("cannot write ", path, ": ", std::strerror(errno)));
  }
  absl::Status status;
  if (fchmod(fd, mode) != 0) {
    status =
        absl::UnavailableError(absl::StrCat("cannot chmod ", path, ": ", std::strerror(errno)));
  }
  size_t done = 0;
  while (status.ok() && done < content.size()) {
    ssize_t n = write(fd, content.data() + done, content.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      status =
          absl::UnavailableError(absl::StrCat("cannot write ", path, ": ", std::strerror(errno)));
      break;
    }
    done += static_cast<size_t>(n);
  }
  if (close(fd) != 0 && status.ok()) {
    status =
        absl::UnavailableError(absl::StrCat("cannot write ", path, ": ", std::strerror(errno)));
  }
  return status;
}

}  // namespace dagd::runners::local
