#include "storage/bundle.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <set>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "engine/status_macros.h"

namespace dagd::storage {
namespace {

// How a bad path is shown: quoted, control characters escaped.
std::string Quoted(absl::string_view path) {
  return absl::StrCat("\"", absl::CHexEscape(path), "\"");
}

absl::Status PathError(absl::string_view path, absl::string_view what, absl::string_view fix) {
  return absl::InvalidArgumentError(
      absl::StrCat("bundle file ", Quoted(path), ": ", what, "; ", fix));
}

// Writes `content` to a new file `path` (never through an existing file or link) with exactly
// `mode`, whatever the umask.
absl::Status WriteNewFile(const std::string& path, const std::string& content, uint32_t mode) {
  const int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) return absl::UnavailableError(absl::StrCat(path, ": ", std::strerror(errno)));
  size_t written = 0;
  while (written < content.size()) {
    const ssize_t n = write(fd, content.data() + written, content.size() - written);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int error = errno;
      close(fd);
      return absl::UnavailableError(absl::StrCat(path, ": ", std::strerror(error)));
    }
    written += static_cast<size_t>(n);
  }
  const int chmod_error = fchmod(fd, static_cast<mode_t>(mode)) == 0 ? 0 : errno;
  const int close_error = close(fd) == 0 ? 0 : errno;
  if (chmod_error != 0 || close_error != 0) {
    return absl::UnavailableError(
        absl::StrCat(path, ": ", std::strerror(chmod_error != 0 ? chmod_error : close_error)));
  }
  return absl::OkStatus();
}

}  // namespace

std::string Sha256Hex(absl::string_view data) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  DAGD_CHECK(EVP_Digest(data.data(), data.size(), digest, &size, EVP_sha256(), nullptr) == 1);
  return absl::BytesToHexString(absl::string_view(reinterpret_cast<const char*>(digest), size));
}

absl::Status ValidateBundlePath(absl::string_view path) {
  if (path.empty()) {
    return PathError(path, "the path is empty", "name every file by its path inside the bundle");
  }
  if (path.size() > kMaxBundlePathBytes) {
    return PathError(path.substr(0, 64),
                     absl::StrCat("the path is ", path.size(), " bytes long; the limit is ",
                                  kMaxBundlePathBytes),
                     "use a shorter path");
  }
  for (char c : path) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte < 0x20 || byte == 0x7f) {
      return PathError(path, "the path holds a control character", "rename the file");
    }
  }
  if (path.front() == '/') {
    return PathError(path, "the path is absolute",
                     "give it relative to the bundle's root, such as \"playbooks/site.yml\"");
  }
  for (absl::string_view component : absl::StrSplit(path, '/')) {
    if (component == "..") {
      return PathError(path, "the path has a \"..\" component",
                       "bundle files must stay inside the bundle");
    }
    if (component.empty() || component == ".") {
      return PathError(path, "the path is not normalized (an empty or \".\" component)",
                       "write it without \"./\", \"//\" or a trailing \"/\"");
    }
  }
  if (absl::StartsWith(path, ".dagd")) {
    return PathError(path, "paths starting with \".dagd\" are reserved",
                     "dagd writes its own files to <work_dir>/.dagd*; rename the file or leave it "
                     "out of the bundle");
  }
  return absl::OkStatus();
}

absl::Status ValidateBundle(const std::vector<BundleFile>& files, const BundleLimits& limits) {
  if (static_cast<int64_t>(files.size()) > limits.max_files) {
    return absl::InvalidArgumentError(
        absl::StrCat("the bundle has ", files.size(), " files; the limit is ", limits.max_files,
                     " (dagd --max-bundle-files): leave out what the workflow does not need"));
  }
  int64_t total = 0;
  std::set<absl::string_view> paths;
  for (const BundleFile& file : files) {
    RETURN_IF_ERROR(ValidateBundlePath(file.path));
    if (file.mode > 0777) {
      return PathError(file.path, absl::StrFormat("mode %#o has bits beyond 0777", file.mode),
                       "send only permission bits");
    }
    if (!paths.insert(file.path).second) {
      return PathError(file.path, "the path is given twice", "send each file once");
    }
    total += static_cast<int64_t>(file.content.size());
  }
  if (total > limits.max_bytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("the bundle holds ", total, " bytes; the limit is ", limits.max_bytes,
                     " (dagd --max-bundle-bytes): leave out what the workflow does not need"));
  }
  // A file may not also be the directory of another one.
  for (absl::string_view path : paths) {
    for (size_t slash = path.find('/'); slash != absl::string_view::npos;
         slash = path.find('/', slash + 1)) {
      if (paths.count(path.substr(0, slash)) != 0) {
        return PathError(
            path.substr(0, slash),
            absl::StrCat("the path is a file and also the directory of ", Quoted(path)),
            "keep one of the two");
      }
    }
  }
  return absl::OkStatus();
}

void NormalizeBundleFiles(std::vector<BundleFile>* files) {
  for (BundleFile& file : *files) {
    if (file.mode == 0) file.mode = kDefaultBundleFileMode;
  }
  std::sort(files->begin(), files->end(),
            [](const BundleFile& a, const BundleFile& b) { return a.path < b.path; });
}

std::string CanonicalBundleManifest(const std::vector<BundleEntry>& entries) {
  std::string manifest = "dagd-bundle-v1\n";
  for (const BundleEntry& entry : entries) {
    absl::StrAppend(&manifest, absl::StrFormat("%04o", entry.mode), " ", entry.blob_digest, " ",
                    entry.path, "\n");
  }
  return manifest;
}

HashedBundle HashBundle(const std::vector<BundleFile>& files) {
  HashedBundle hashed;
  if (files.empty()) return hashed;
  hashed.entries.reserve(files.size());
  for (const BundleFile& file : files) {
    hashed.entries.push_back(BundleEntry{.path = file.path,
                                         .mode = file.mode,
                                         .blob_digest = Sha256Hex(file.content),
                                         .size = static_cast<int64_t>(file.content.size())});
    hashed.info.total_bytes += static_cast<int64_t>(file.content.size());
  }
  hashed.info.file_count = static_cast<int64_t>(files.size());
  hashed.info.digest = Sha256Hex(CanonicalBundleManifest(hashed.entries));
  return hashed;
}

absl::Status MaterialiseBundle(const std::vector<BundleFile>& files, const std::string& dir) {
  for (const BundleFile& file : files) {
    RETURN_IF_ERROR(ValidateBundlePath(file.path));
    const std::filesystem::path path = std::filesystem::path(dir) / file.path;
    std::error_code ec;
    std::filesystem::create_directories(path.parent_path(), ec);
    if (ec) {
      return absl::UnavailableError(absl::StrCat(path.parent_path().string(), ": ", ec.message()));
    }
    RETURN_IF_ERROR(WriteNewFile(path.string(), file.content, file.mode));
  }
  return absl::OkStatus();
}

}  // namespace dagd::storage
