// Bundles: the playbooks, roles and files stored with a workflow version (or an inline run), and
// materialised into every attempt's fresh working directory.
//
// A bundle is content-addressed twice over: each file's content is a blob named by its SHA-256
// (hex), stored once however many bundles hold it; the bundle is named by the SHA-256 (hex) of
// its canonical manifest (CanonicalBundleManifest), which lists every file's path, mode and
// content digest sorted by path. So equal files give equal digests whatever order they arrive
// in, and a digest pins the exact bytes a run executes. The empty bundle is "no bundle": its
// digest is "".
//
// Pure functions (hashing with OpenSSL); thread-safe.
#ifndef DAGD_STORAGE_BUNDLE_H_
#define DAGD_STORAGE_BUNDLE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace dagd::storage {

// Permission bits a file gets when its mode is given as 0.
inline constexpr uint32_t kDefaultBundleFileMode = 0644;
// The longest path a bundle file may have, in bytes.
inline constexpr size_t kMaxBundlePathBytes = 1024;

// One file of a bundle.
struct BundleFile {
  std::string path;                        // relative and normalized: see ValidateBundlePath
  uint32_t mode = kDefaultBundleFileMode;  // permission bits, <= 0777
  std::string content;
};

// One file as a stored bundle lists it, without its content.
struct BundleEntry {
  std::string path;
  uint32_t mode = kDefaultBundleFileMode;
  std::string blob_digest;  // SHA-256 (hex) of the content
  int64_t size = 0;         // content bytes
};

// What a stored bundle is: its digest and size. `digest` "" means no bundle (and zero sizes).
struct BundleInfo {
  std::string digest;
  int64_t file_count = 0;
  int64_t total_bytes = 0;
};

// The caps a bundle must keep (dagd's --max-bundle-bytes and --max-bundle-files).
struct BundleLimits {
  int64_t max_bytes = int64_t{32} << 20;  // total content bytes
  int64_t max_files = 10000;
};

// SHA-256 of `data`, as 64 lowercase hex digits.
std::string Sha256Hex(absl::string_view data);

// OK if `path` may name a bundle file: relative ('/'-separated, no leading '/'), normalized (no
// empty, "." or ".." components, so no trailing '/' and no "//"), at most kMaxBundlePathBytes,
// free of control characters, and with a first component that does not start with ".dagd"
// (dagd writes its own files into <work_dir>/.dagd*). Otherwise InvalidArgument naming the path,
// the rule and the fix.
absl::Status ValidateBundlePath(absl::string_view path);

// OK if `files` may be stored as a bundle: every path valid (ValidateBundlePath) and given once,
// no path that is also another file's directory ("a" and "a/b"), every mode within 0777 (0 is
// taken as kDefaultBundleFileMode by NormalizeBundleFiles), at most limits.max_files files and
// limits.max_bytes bytes of content in all. Otherwise InvalidArgument naming the first offending
// file (or the totals and the limit) and the fix.
absl::Status ValidateBundle(const std::vector<BundleFile>& files, const BundleLimits& limits);

// Writes a bundle's files, with their modes, into the existing empty directory `dir`, creating
// their parent directories, never through an existing file or link. The paths are checked again
// (ValidateBundlePath), so that not even a tampered database writes outside `dir`. Unavailable
// naming the file when one cannot be written.
absl::Status MaterialiseBundle(const std::vector<BundleFile>& files, const std::string& dir);

// Sorts `files` by path and replaces mode 0 by kDefaultBundleFileMode: the form in which a
// bundle is hashed and stored.
void NormalizeBundleFiles(std::vector<BundleFile>* files);

// The canonical manifest a bundle's digest is the SHA-256 of:
//   "dagd-bundle-v1\n", then per entry, sorted by path (bytewise):
//   "<mode, 4 octal digits> <blob digest> <path>\n"
// Paths hold no control characters, so the text is unambiguous. REQUIRES: `entries` sorted by
// path, modes within 0777.
std::string CanonicalBundleManifest(const std::vector<BundleEntry>& entries);

// The entries (with blob digests) and info (with the bundle digest) of normalized `files`
// (NormalizeBundleFiles); "" digest for no files. Hashes every content once.
struct HashedBundle {
  BundleInfo info;
  std::vector<BundleEntry> entries;  // in the order of `files`
};
HashedBundle HashBundle(const std::vector<BundleFile>& files);

}  // namespace dagd::storage

#endif  // DAGD_STORAGE_BUNDLE_H_
