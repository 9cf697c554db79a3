#include "cmd/dagctl/bundle.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace dagd::dagctl {
namespace {

namespace fs = std::filesystem;

// dagd's cap on a bundle path (storage/bundle.h).
constexpr size_t kMaxPathBytes = 1024;

// Whether `text` is well-formed UTF-8 (what protobuf accepts in a string field): no overlong
// forms, no surrogates, nothing above U+10FFFF.
bool IsUtf8(const std::string& text) {
  size_t i = 0;
  while (i < text.size()) {
    const auto c = static_cast<unsigned char>(text[i]);
    size_t extra = 0;
    unsigned char low = 0x80, high = 0xbf;  // the range of the second byte
    if (c < 0x80) {
      extra = 0;
    } else if (c >= 0xc2 && c <= 0xdf) {
      extra = 1;
    } else if (c >= 0xe0 && c <= 0xef) {
      extra = 2;
      if (c == 0xe0) low = 0xa0;
      if (c == 0xed) high = 0x9f;
    } else if (c >= 0xf0 && c <= 0xf4) {
      extra = 3;
      if (c == 0xf0) low = 0x90;
      if (c == 0xf4) high = 0x8f;
    } else {
      return false;
    }
    if (i + extra >= text.size() && extra > 0) return false;
    for (size_t k = 1; k <= extra; ++k) {
      const auto next = static_cast<unsigned char>(text[i + k]);
      if (k == 1 ? (next < low || next > high) : (next & 0xc0) != 0x80) return false;
    }
    i += extra + 1;
  }
  return true;
}

class Reader {
 public:
  Reader(std::string dir_arg, fs::path root, const BundleLimits& limits, v1::Bundle* bundle)
      : dir_arg_(std::move(dir_arg)), root_(std::move(root)), limits_(limits), bundle_(bundle) {}

  // Adds what `real_dir` (a canonical directory inside the root) holds under `prefix`.
  absl::Status Walk(const fs::path& real_dir, const std::string& prefix) {
    ancestors_.push_back(real_dir);
    std::error_code ec;
    std::vector<fs::directory_entry> entries;
    for (fs::directory_iterator it(real_dir, ec), end; !ec && it != end; it.increment(ec)) {
      entries.push_back(*it);
    }
    if (ec) {
      return absl::UnavailableError(
          absl::StrCat("cannot read the bundle directory ", Shown(prefix), ": ", ec.message()));
    }
    std::sort(entries.begin(), entries.end(), [](const auto& a, const auto& b) {
      return a.path().filename() < b.path().filename();
    });
    for (const fs::directory_entry& entry : entries) {
      const std::string name = entry.path().filename().string();
      if (name == ".git") continue;
      const std::string path = prefix.empty() ? name : absl::StrCat(prefix, "/", name);
      if (absl::Status named = CheckName(path, prefix.empty()); !named.ok()) return named;
      if (absl::Status added = Add(entry.path(), path); !added.ok()) return added;
    }
    ancestors_.pop_back();
    return absl::OkStatus();
  }

 private:
  // How a bundle path is shown to the user: under the directory they named.
  std::string Shown(const std::string& path) const {
    return path.empty() ? dir_arg_ : (fs::path(dir_arg_) / path).string();
  }

  absl::Status CheckName(const std::string& path, bool top) const {
    if (top && absl::StartsWith(path, ".dagd")) {
      return absl::InvalidArgumentError(
          absl::StrCat(Shown(path),
                       ": names starting with \".dagd\" are reserved for dagd's own files in the "
                       "attempt's working directory; rename it or move it out of ",
                       dir_arg_));
    }
    if (!IsUtf8(path) || std::any_of(path.begin(), path.end(), [](char c) {
          return static_cast<unsigned char>(c) < 0x20 || c == 0x7f;
        })) {
      return absl::InvalidArgumentError(
          absl::StrCat(Shown(path),
                       ": bundle file names must be UTF-8 without control characters; rename it "
                       "or move it out of ",
                       dir_arg_));
    }
    if (path.size() > kMaxPathBytes) {
      return absl::InvalidArgumentError(absl::StrCat(Shown(path), ": the path is ", path.size(),
                                                     " bytes inside the bundle; dagd's limit is ",
                                                     kMaxPathBytes));
    }
    return absl::OkStatus();
  }

  // Adds the entry at `location` (a path inside a canonical directory) as bundle path `path`.
  absl::Status Add(const fs::path& location, const std::string& path) {
    std::error_code ec;
    fs::path real = location;
    const fs::file_status link = fs::symlink_status(location, ec);
    if (ec) return Unreadable(path, ec);
    if (fs::is_symlink(link)) {
      real = fs::canonical(location, ec);
      if (ec) {
        return absl::InvalidArgumentError(absl::StrCat("symbolic link ", Shown(path),
                                                       " cannot be resolved (", ec.message(),
                                                       "); fix it or remove it from ", dir_arg_));
      }
      const fs::path inside = real.lexically_relative(root_);
      if (inside.empty() || *inside.begin() == "..") {
        return absl::InvalidArgumentError(absl::StrCat(
            "symbolic link ", Shown(path), " points outside ", dir_arg_, " (to ", real.string(),
            "); a bundle holds only what is inside its directory: copy the file in, or remove "
            "the link"));
      }
    }
    const fs::file_status status = fs::status(real, ec);
    if (ec) return Unreadable(path, ec);
    if (fs::is_directory(status)) {
      if (std::find(ancestors_.begin(), ancestors_.end(), real) != ancestors_.end()) {
        return absl::InvalidArgumentError(absl::StrCat("symbolic link ", Shown(path),
                                                       " leads back to a directory that holds it (",
                                                       real.string(), "); remove the link"));
      }
      return Walk(real, path);
    }
    if (!fs::is_regular_file(status)) {
      return absl::InvalidArgumentError(absl::StrCat(
          Shown(path), " is not a regular file or directory; move it out of ", dir_arg_));
    }
    if (bundle_->files_size() + 1 > limits_.max_files) {
      return absl::InvalidArgumentError(absl::StrCat(
          dir_arg_, " holds more than ", limits_.max_files,
          " files; dagd accepts at most that many per bundle (dagd --max-bundle-files, dagctl "
          "--max-bundle-files): leave out what the workflow does not need"));
    }
    const uintmax_t size = fs::file_size(real, ec);
    if (ec) return Unreadable(path, ec);
    if (size > static_cast<uintmax_t>(limits_.max_bytes - total_bytes_)) {
      return TooBig(path);
    }
    std::ifstream in(real, std::ios::binary);
    std::ostringstream content;
    content << in.rdbuf();
    if (!in.good() && !in.eof()) {
      return absl::UnavailableError(absl::StrCat("cannot read ", Shown(path)));
    }
    v1::BundleFile* file = bundle_->add_files();
    file->set_path(path);
    file->set_content(content.str());
    file->set_mode(static_cast<uint32_t>(status.permissions()) & 0777);
    total_bytes_ += static_cast<int64_t>(file->content().size());
    if (total_bytes_ > limits_.max_bytes) return TooBig(path);  // it grew while being read
    return absl::OkStatus();
  }

  absl::Status TooBig(const std::string& path) const {
    return absl::InvalidArgumentError(
        absl::StrCat(dir_arg_, " holds more than ", limits_.max_bytes,
                     " bytes of files (reached at ", Shown(path),
                     "); dagd accepts at most that much per bundle (dagd --max-bundle-bytes, "
                     "dagctl --max-bundle-bytes): leave out what the workflow does not need"));
  }

  absl::Status Unreadable(const std::string& path, const std::error_code& ec) const {
    return absl::UnavailableError(absl::StrCat("cannot read ", Shown(path), ": ", ec.message()));
  }

  const std::string dir_arg_;
  const fs::path root_;
  const BundleLimits limits_;
  v1::Bundle* bundle_;
  int64_t total_bytes_ = 0;
  std::vector<fs::path> ancestors_;  // the directories being walked, outermost first
};

}  // namespace

absl::Status ReadBundleDir(const std::string& dir, const BundleLimits& limits, v1::Bundle* bundle) {
  std::error_code ec;
  const fs::path root = fs::canonical(dir, ec);
  if (ec || !fs::is_directory(root)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--bundle ", dir, ": not a directory", ec ? absl::StrCat(" (", ec.message(), ")") : "",
        "; name the directory holding the workflow's playbooks and files"));
  }
  bundle->Clear();
  Reader reader(dir, root, limits, bundle);
  if (absl::Status walked = reader.Walk(root, ""); !walked.ok()) {
    bundle->Clear();
    return walked;
  }
  std::sort(bundle->mutable_files()->begin(), bundle->mutable_files()->end(),
            [](const v1::BundleFile& a, const v1::BundleFile& b) { return a.path() < b.path(); });
  return absl::OkStatus();
}

}  // namespace dagd::dagctl
