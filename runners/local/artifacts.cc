#include "runners/local/artifacts.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <set>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "engine/status_macros.h"

namespace dagd::runners::local {
namespace {

constexpr size_t kBufferBytes = 64 * 1024;

// The name of the object built inside a staging directory.
constexpr char kStagedName[] = "artifact";

// What an extracted archive entry keeps of its mode: an archive comes from a step, and a step
// must not be able to plant setuid or setgid programs on the host.
constexpr mode_t kExtractedModeBits = 01777;

absl::Status ErrnoError(absl::string_view what, absl::string_view path, int err) {
  return absl::UnavailableError(absl::StrCat("cannot ", what, " ", path, ": ", std::strerror(err)));
}

// libarchive's last error on `a`, with the errno behind it when there is one.
absl::Status ArchiveError(archive* a, absl::string_view what, absl::string_view path) {
  const char* message = archive_error_string(a);
  std::string text = message != nullptr ? message : "unknown error";
  int err = archive_errno(a);
  if (err > 0 && err != EILSEQ && err != EINVAL) absl::StrAppend(&text, ": ", std::strerror(err));
  return absl::UnavailableError(absl::StrCat("cannot ", what, " ", path, ": ", text));
}

// A file descriptor, closed at scope exit.
class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) close(fd_);
  }
  Fd(Fd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  Fd& operator=(Fd&& other) noexcept {
    if (this != &other) {
      if (fd_ >= 0) close(fd_);
      fd_ = std::exchange(other.fd_, -1);
    }
    return *this;
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;

  int get() const { return fd_; }
  // Closes now and returns close()'s result: a delayed write error shows only there.
  int Close() { return close(std::exchange(fd_, -1)); }

 private:
  int fd_;
};

struct ArchiveReadFree {
  void operator()(archive* a) const { archive_read_free(a); }
};
struct ArchiveWriteFree {
  void operator()(archive* a) const { archive_write_free(a); }
};
struct ArchiveEntryFree {
  void operator()(archive_entry* e) const { archive_entry_free(e); }
};

std::string StripTrailingSlashes(std::string path) {
  while (path.size() > 1 && path.back() == '/') path.pop_back();
  return path;
}

std::string JoinPath(const std::string& dir, absl::string_view name) {
  if (dir.empty()) return std::string(name);
  if (dir.back() == '/') return absl::StrCat(dir, name);
  return absl::StrCat(dir, "/", name);
}

// The directory holding `path` (which has no trailing slash).
std::string ParentOf(const std::string& path) {
  size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

// The components of the relative path `path`, without empty and "." ones. InvalidArgument
// (naming `what`) when it is absolute or has a ".." component.
absl::StatusOr<std::vector<std::string>> RelativeComponents(absl::string_view path,
                                                            absl::string_view what) {
  if (!path.empty() && path.front() == '/') {
    return absl::InvalidArgumentError(absl::StrCat(what, " \"", path, "\" is absolute"));
  }
  std::vector<std::string> components;
  for (absl::string_view part : absl::StrSplit(path, '/')) {
    if (part.empty() || part == ".") continue;
    if (part == "..") {
      return absl::InvalidArgumentError(absl::StrCat(what, " \"", path, "\" has a \"..\""));
    }
    components.emplace_back(part);
  }
  return components;
}

absl::Status WriteAll(int fd, const char* data, size_t size, const std::string& path) {
  while (size > 0) {
    ssize_t n = write(fd, data, size);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoError("write", path, errno);
    data += n;
    size -= static_cast<size_t>(n);
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> ReadLink(const std::string& path) {
  std::string target(256, '\0');
  for (;;) {
    ssize_t n = readlink(path.c_str(), target.data(), target.size());
    if (n < 0) return ErrnoError("read symlink", path, errno);
    if (static_cast<size_t>(n) < target.size()) {
      target.resize(static_cast<size_t>(n));
      return target;
    }
    target.resize(target.size() * 2);
  }
}

// The names in directory `path` but "." and "..", sorted (archives come out the same each time).
absl::StatusOr<std::vector<std::string>> ListDir(const std::string& path) {
  DIR* dir = opendir(path.c_str());
  if (dir == nullptr) return ErrnoError("open directory", path, errno);
  std::vector<std::string> names;
  for (;;) {
    errno = 0;
    const dirent* entry = readdir(dir);
    if (entry == nullptr) break;
    absl::string_view name = entry->d_name;
    if (name != "." && name != "..") names.emplace_back(name);
  }
  int err = errno;
  closedir(dir);
  if (err != 0) return ErrnoError("read directory", path, err);
  std::sort(names.begin(), names.end());
  return names;
}

// Removes `path` and, for a directory, everything in it; symlinks are removed, not followed.
// OK when `path` does not exist.
absl::Status RemoveTree(const std::string& path) {
  struct stat st;
  if (lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return absl::OkStatus();
    return ErrnoError("stat", path, errno);
  }
  if (S_ISDIR(st.st_mode)) {
    // An artifact may hold read-only directories, which must be writable to be emptied.
    if ((st.st_mode & S_IRWXU) != S_IRWXU &&
        chmod(path.c_str(), (st.st_mode & 07777) | S_IRWXU) != 0) {
      return ErrnoError("chmod", path, errno);
    }
    ASSIGN_OR_RETURN(std::vector<std::string> names, ListDir(path));
    for (const std::string& name : names) RETURN_IF_ERROR(RemoveTree(JoinPath(path, name)));
    if (rmdir(path.c_str()) != 0 && errno != ENOENT) return ErrnoError("remove", path, errno);
    return absl::OkStatus();
  }
  if (unlink(path.c_str()) != 0 && errno != ENOENT) return ErrnoError("remove", path, errno);
  return absl::OkStatus();
}

// Creates directory `dir` and its missing parents, each 0755 (whatever the umask).
absl::Status MakeDirs(const std::string& dir) {
  struct stat st;
  if (stat(dir.c_str(), &st) == 0) {
    if (S_ISDIR(st.st_mode)) return absl::OkStatus();
    return ErrnoError("create directory", dir, ENOTDIR);
  }
  if (errno != ENOENT) return ErrnoError("stat", dir, errno);
  std::string parent = ParentOf(dir);
  if (parent != dir) RETURN_IF_ERROR(MakeDirs(parent));
  if (mkdir(dir.c_str(), 0755) != 0) {
    if (errno == EEXIST) return absl::OkStatus();  // made by someone else meanwhile
    return ErrnoError("create directory", dir, errno);
  }
  if (chmod(dir.c_str(), 0755) != 0) return ErrnoError("chmod", dir, errno);
  return absl::OkStatus();
}

// A private directory beside a destination ("<destination>.tmp-XXXXXX", so on the same file
// system and renames out of it are atomic) where the new object is built. Removed, with whatever
// is left in it, at scope exit.
class StagingDir {
 public:
  StagingDir() = default;
  ~StagingDir() {
    if (!path_.empty()) RemoveTree(path_).IgnoreError();
  }
  StagingDir(const StagingDir&) = delete;
  StagingDir& operator=(const StagingDir&) = delete;

  absl::Status Create(const std::string& destination) {
    std::string pattern = absl::StrCat(destination, ".tmp-XXXXXX");
    if (mkdtemp(pattern.data()) == nullptr) return ErrnoError("create directory", pattern, errno);
    path_ = std::move(pattern);
    return absl::OkStatus();
  }

  // Where the new object goes.
  std::string Staged() const { return JoinPath(path_, kStagedName); }

 private:
  std::string path_;
};

// Moves `staged` to `destination`, replacing what is there. rename() replaces a file or symlink
// atomically, but cannot put a directory in place of anything or anything in place of a
// directory: then the old one is removed first.
absl::Status MoveIntoPlace(const std::string& staged, const std::string& destination) {
  struct stat staged_st;
  if (lstat(staged.c_str(), &staged_st) != 0) return ErrnoError("stat", staged, errno);
  struct stat old_st;
  if (lstat(destination.c_str(), &old_st) == 0) {
    if (S_ISDIR(staged_st.st_mode) || S_ISDIR(old_st.st_mode)) {
      RETURN_IF_ERROR(RemoveTree(destination));
    }
  } else if (errno != ENOENT) {
    return ErrnoError("stat", destination, errno);
  }
  if (rename(staged.c_str(), destination.c_str()) != 0) {
    return ErrnoError(absl::StrCat("rename ", staged, " to"), destination, errno);
  }
  return absl::OkStatus();
}

// Copies the regular file open on `in` (`source`) to the new file `dest`, with mode `mode`.
absl::Status CopyFileContent(int in, const std::string& source, const std::string& dest,
                             mode_t mode) {
  Fd out(open(dest.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
  if (out.get() < 0) return ErrnoError("create", dest, errno);
  std::vector<char> buffer(kBufferBytes);
  for (;;) {
    ssize_t n = read(in, buffer.data(), buffer.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoError("read", source, errno);
    if (n == 0) break;
    RETURN_IF_ERROR(WriteAll(out.get(), buffer.data(), static_cast<size_t>(n), dest));
  }
  if (fchmod(out.get(), mode) != 0) return ErrnoError("chmod", dest, errno);
  if (out.Close() != 0) return ErrnoError("write", dest, errno);
  return absl::OkStatus();
}

// Opens `path` for reading if it is a regular file (O_NONBLOCK: a fifo put in its place must not
// block the open); an Fd of -1 when it is something else. `follow`: a symlink at `path` is
// followed.
absl::StatusOr<Fd> OpenRegular(const std::string& path, bool follow, struct stat* st) {
  int flags = O_RDONLY | O_NONBLOCK | O_CLOEXEC | (follow ? 0 : O_NOFOLLOW);
  Fd fd(open(path.c_str(), flags));
  if (fd.get() < 0) return ErrnoError("open", path, errno);
  if (fstat(fd.get(), st) != 0) return ErrnoError("stat", path, errno);
  if (!S_ISREG(st->st_mode)) return Fd();
  return fd;
}

// Copies `source` to the new path `dest`: a regular file, a directory tree, or a symlink (as a
// symlink); sockets, fifos and devices are skipped. `follow`: `source` itself is followed if it
// is a symlink (what it holds never is).
absl::Status CopyTree(const std::string& source, const std::string& dest, bool follow) {
  struct stat st;
  if ((follow ? stat(source.c_str(), &st) : lstat(source.c_str(), &st)) != 0) {
    return ErrnoError("stat", source, errno);
  }
  if (S_ISREG(st.st_mode)) {
    ASSIGN_OR_RETURN(Fd in, OpenRegular(source, follow, &st));
    if (in.get() < 0) return absl::OkStatus();  // no longer a regular file
    return CopyFileContent(in.get(), source, dest, st.st_mode & 07777);
  }
  if (S_ISDIR(st.st_mode)) {
    if (mkdir(dest.c_str(), 0700) != 0) return ErrnoError("create directory", dest, errno);
    ASSIGN_OR_RETURN(std::vector<std::string> names, ListDir(source));
    for (const std::string& name : names) {
      RETURN_IF_ERROR(CopyTree(JoinPath(source, name), JoinPath(dest, name), /*follow=*/false));
    }
    // Last, so that a read-only directory could still be filled.
    if (chmod(dest.c_str(), st.st_mode & 07777) != 0) return ErrnoError("chmod", dest, errno);
    return absl::OkStatus();
  }
  if (S_ISLNK(st.st_mode)) {
    ASSIGN_OR_RETURN(std::string target, ReadLink(source));
    if (symlink(target.c_str(), dest.c_str()) != 0) {
      return ErrnoError("create symlink", dest, errno);
    }
  }
  return absl::OkStatus();
}

// Copies `source` (`follow`: followed if a symlink) to `destination` through a staging directory.
absl::Status PlaceCopy(const std::string& source, bool follow, const std::string& destination) {
  struct stat st;
  if ((follow ? stat(source.c_str(), &st) : lstat(source.c_str(), &st)) != 0) {
    return ErrnoError("stat", source, errno);
  }
  if (!S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode) && !S_ISLNK(st.st_mode)) {
    return absl::InvalidArgumentError(
        absl::StrCat(source, " is not a regular file, directory or symlink"));
  }
  RETURN_IF_ERROR(MakeDirs(ParentOf(destination)));
  StagingDir staging;
  RETURN_IF_ERROR(staging.Create(destination));
  RETURN_IF_ERROR(CopyTree(source, staging.Staged(), follow));
  return MoveIntoPlace(staging.Staged(), destination);
}

// The name of `source`'s top-level entry in its archive: its last non-empty component ("." and
// ".." resolved). InvalidArgument for "/".
absl::StatusOr<std::string> ArtifactName(const std::string& source) {
  std::string path = StripTrailingSlashes(source);
  std::string name = path.substr(path.rfind('/') + 1);  // npos + 1 == 0: the whole path
  if (name == "." || name == "..") {
    char* real = realpath(source.c_str(), nullptr);
    if (real == nullptr) return ErrnoError("resolve", source, errno);
    path = real;
    std::free(real);
    name = path.substr(path.rfind('/') + 1);
  }
  if (name.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot save \"", source, "\" as an artifact: it has no name"));
  }
  return name;
}

// InvalidArgument when `destination` would be inside the directory `source`: the copy or archive
// would then take in its own staging directory.
absl::Status CheckNotInside(const std::string& source, const std::string& destination) {
  char* real_source = realpath(source.c_str(), nullptr);
  if (real_source == nullptr) return ErrnoError("resolve", source, errno);
  std::string src = real_source;
  std::free(real_source);
  std::string parent = ParentOf(destination);
  char* real_parent = realpath(parent.c_str(), nullptr);
  if (real_parent == nullptr) return ErrnoError("resolve", parent, errno);
  std::string dest_dir = real_parent;
  std::free(real_parent);
  if (dest_dir == src || src == "/" || dest_dir.starts_with(src + "/")) {
    return absl::InvalidArgumentError(
        absl::StrCat("artifact destination ", destination, " is inside its source ", source));
  }
  return absl::OkStatus();
}

// Writes a gzip'd tar (Argo's layout) to a new file.
class TgzWriter {
 public:
  explicit TgzWriter(std::string path) : path_(std::move(path)), buffer_(kBufferBytes) {}

  absl::Status Open() {
    fd_ = Fd(open(path_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0666));
    if (fd_.get() < 0) return ErrnoError("create", path_, errno);
    archive_.reset(archive_write_new());
    if (archive_ == nullptr) return absl::ResourceExhaustedError("archive_write_new failed");
    // pax only where ustar falls short (long names, large files), as Go's archive/tar does.
    if (archive_write_add_filter_gzip(archive_.get()) != ARCHIVE_OK ||
        archive_write_set_format_pax_restricted(archive_.get()) != ARCHIVE_OK ||
        archive_write_open_fd(archive_.get(), fd_.get()) != ARCHIVE_OK) {
      return ArchiveError(archive_.get(), "write", path_);
    }
    return absl::OkStatus();
  }

  // Adds host path `path` as entry `name`, and for a directory what it holds. `follow`: `path`
  // itself is followed if it is a symlink.
  absl::Status Add(const std::string& path, const std::string& name, bool follow) {
    struct stat st;
    if ((follow ? stat(path.c_str(), &st) : lstat(path.c_str(), &st)) != 0) {
      return ErrnoError("stat", path, errno);
    }
    Fd in;
    if (S_ISREG(st.st_mode)) {
      ASSIGN_OR_RETURN(in, OpenRegular(path, follow, &st));
      if (in.get() < 0) return absl::OkStatus();  // no longer a regular file
    } else if (!S_ISDIR(st.st_mode) && !S_ISLNK(st.st_mode)) {
      return absl::OkStatus();  // sockets, fifos, devices
    }

    std::unique_ptr<archive_entry, ArchiveEntryFree> entry(archive_entry_new());
    archive_entry_copy_stat(entry.get(), &st);
    archive_entry_set_nlink(entry.get(), 1);  // hard links are stored as separate files
    archive_entry_copy_pathname(entry.get(), name.c_str());
    if (!S_ISREG(st.st_mode)) archive_entry_set_size(entry.get(), 0);
    if (S_ISLNK(st.st_mode)) {
      ASSIGN_OR_RETURN(std::string target, ReadLink(path));
      archive_entry_copy_symlink(entry.get(), target.c_str());
    }
    if (archive_write_header(archive_.get(), entry.get()) < ARCHIVE_WARN) {
      return ArchiveError(archive_.get(), absl::StrCat("add ", path, " to"), path_);
    }
    if (S_ISREG(st.st_mode)) RETURN_IF_ERROR(CopyData(in.get(), path, st.st_size));
    // A file that shrank meanwhile is padded with zeros here.
    if (archive_write_finish_entry(archive_.get()) < ARCHIVE_WARN) {
      return ArchiveError(archive_.get(), "write", path_);
    }
    if (S_ISDIR(st.st_mode)) {
      ASSIGN_OR_RETURN(std::vector<std::string> names, ListDir(path));
      for (const std::string& child : names) {
        RETURN_IF_ERROR(
            Add(JoinPath(path, child), absl::StrCat(name, "/", child), /*follow=*/false));
      }
    }
    return absl::OkStatus();
  }

  absl::Status Close() {
    if (archive_write_close(archive_.get()) != ARCHIVE_OK) {
      return ArchiveError(archive_.get(), "write", path_);
    }
    if (fd_.Close() != 0) return ErrnoError("write", path_, errno);
    return absl::OkStatus();
  }

 private:
  // Copies the first `size` bytes of `in` (the size in the entry's header) into the entry.
  absl::Status CopyData(int in, const std::string& path, off_t size) {
    while (size > 0) {
      size_t want = std::min(buffer_.size(), static_cast<size_t>(size));
      ssize_t n = read(in, buffer_.data(), want);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return ErrnoError("read", path, errno);
      if (n == 0) break;
      if (archive_write_data(archive_.get(), buffer_.data(), static_cast<size_t>(n)) != n) {
        return ArchiveError(archive_.get(), "write", path_);
      }
      size -= n;
    }
    return absl::OkStatus();
  }

  std::string path_;
  Fd fd_;
  std::unique_ptr<archive, ArchiveWriteFree> archive_;
  std::vector<char> buffer_;
};

// Extracts the entries of a tar read by libarchive under directory `root`, refusing whatever
// could write outside it or onto the host's devices.
class TarExtractor {
 public:
  TarExtractor(archive* a, std::string stored, std::string root)
      : archive_(a), stored_(std::move(stored)), root_(std::move(root)), buffer_(kBufferBytes) {}

  absl::Status Open() {
    root_fd_ = Fd(open(root_.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (root_fd_.get() < 0) return ErrnoError("open directory", root_, errno);
    return absl::OkStatus();
  }

  absl::Status Extract(archive_entry* entry) {
    const char* raw_name = archive_entry_pathname(entry);
    if (raw_name == nullptr) raw_name = archive_entry_pathname_utf8(entry);
    if (raw_name == nullptr) return Refuse("an entry", "has no usable name");
    const std::string name = raw_name;
    auto components = RelativeComponents(name, absl::StrCat("archive ", stored_, ": entry"));
    if (!components.ok()) return components.status();
    if (archive_entry_hardlink(entry) != nullptr) return Refuse(name, "is a hard link");
    const mode_t type = archive_entry_filetype(entry);
    if (type != AE_IFREG && type != AE_IFDIR && type != AE_IFLNK) {
      return Refuse(name, "is a device, fifo or socket");
    }
    if (components->empty()) {
      if (type == AE_IFDIR) return absl::OkStatus();  // "./": the root itself
      return Refuse(name, "has no name");
    }
    top_level_.insert(components->front());

    const std::string leaf = components->back();
    components->pop_back();
    ASSIGN_OR_RETURN(Fd parent, OpenDir(*components, name, /*create=*/true));
    struct stat old;
    bool exists = fstatat(parent.get(), leaf.c_str(), &old, AT_SYMLINK_NOFOLLOW) == 0;
    if (!exists && errno != ENOENT) return ErrnoError("stat", InRoot(name), errno);
    const mode_t mode = archive_entry_perm(entry) & kExtractedModeBits;

    if (type == AE_IFDIR) {
      if (exists && !S_ISDIR(old.st_mode)) {
        if (unlinkat(parent.get(), leaf.c_str(), 0) != 0) {
          return ErrnoError("remove", InRoot(name), errno);
        }
        exists = false;
      }
      if (!exists && mkdirat(parent.get(), leaf.c_str(), 0700) != 0) {
        return ErrnoError("create directory", InRoot(name), errno);
      }
      components->push_back(leaf);
      dir_modes_[*components] = mode;  // applied at the end: the directory may be read-only
      return absl::OkStatus();
    }

    // A later entry of the same name replaces an earlier file, as tar does; not a directory.
    if (exists && S_ISDIR(old.st_mode)) return Refuse(name, "would replace a directory");
    if (exists && unlinkat(parent.get(), leaf.c_str(), 0) != 0) {
      return ErrnoError("remove", InRoot(name), errno);
    }
    if (type == AE_IFLNK) {
      const char* target = archive_entry_symlink(entry);
      if (target == nullptr) target = archive_entry_symlink_utf8(entry);
      if (target == nullptr || *target == '\0') return Refuse(name, "is a symlink to nothing");
      // What a symlink points to is the step's business: it is never followed here.
      if (symlinkat(target, parent.get(), leaf.c_str()) != 0) {
        return ErrnoError("create symlink", InRoot(name), errno);
      }
      return absl::OkStatus();
    }
    Fd out(openat(parent.get(), leaf.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                  0600));
    if (out.get() < 0) return ErrnoError("create", InRoot(name), errno);
    for (;;) {
      la_ssize_t n = archive_read_data(archive_, buffer_.data(), buffer_.size());
      if (n == 0) break;
      if (n < 0) return ArchiveError(archive_, "read archive", stored_);
      RETURN_IF_ERROR(WriteAll(out.get(), buffer_.data(), static_cast<size_t>(n), InRoot(name)));
    }
    if (fchmod(out.get(), mode) != 0) return ErrnoError("chmod", InRoot(name), errno);
    if (out.Close() != 0) return ErrnoError("write", InRoot(name), errno);
    return absl::OkStatus();
  }

  // Gives the archive's directories their modes, deepest first (a directory without search
  // permission would hide what is below it).
  absl::Status Finish() {
    std::vector<std::pair<std::vector<std::string>, mode_t>> modes(dir_modes_.begin(),
                                                                   dir_modes_.end());
    std::stable_sort(modes.begin(), modes.end(),
                     [](const auto& a, const auto& b) { return a.first.size() > b.first.size(); });
    for (const auto& [components, mode] : modes) {
      const std::string name = absl::StrJoin(components, "/");
      ASSIGN_OR_RETURN(Fd dir, OpenDir(components, name, /*create=*/false));
      if (fchmod(dir.get(), mode) != 0) return ErrnoError("chmod", InRoot(name), errno);
    }
    return absl::OkStatus();
  }

  // The names of the entries at the archive's top level.
  const std::set<std::string>& top_level() const { return top_level_; }

 private:
  absl::Status Refuse(absl::string_view name, absl::string_view why) const {
    return absl::InvalidArgumentError(
        absl::StrCat("archive ", stored_, ": entry \"", name, "\" ", why, "; not extracted"));
  }

  std::string InRoot(absl::string_view name) const { return JoinPath(root_, name); }

  // Opens directory `components` under the root without following a symlink anywhere, creating
  // missing directories (0755) when `create`. Entry `name` is the one being extracted.
  absl::StatusOr<Fd> OpenDir(const std::vector<std::string>& components, absl::string_view name,
                             bool create) const {
    Fd dir(fcntl(root_fd_.get(), F_DUPFD_CLOEXEC, 0));
    if (dir.get() < 0) return ErrnoError("open directory", root_, errno);
    constexpr int kFlags = O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC;
    for (const std::string& component : components) {
      int next = openat(dir.get(), component.c_str(), kFlags);
      if (next < 0 && errno == ENOENT && create) {
        if (mkdirat(dir.get(), component.c_str(), 0755) != 0 && errno != EEXIST) {
          return ErrnoError("create directory", InRoot(name), errno);
        }
        next = openat(dir.get(), component.c_str(), kFlags);
        if (next >= 0 && fchmod(next, 0755) != 0) {
          int err = errno;
          close(next);
          return ErrnoError("chmod", InRoot(name), err);
        }
      }
      if (next < 0) {
        // The classic escape: an entry "link" -> "/etc", then "link/passwd".
        if (errno == ELOOP || errno == ENOTDIR) {
          return Refuse(name, "leads through a symlink or a file");
        }
        return ErrnoError("open directory", InRoot(name), errno);
      }
      dir = Fd(next);
    }
    return dir;
  }

  archive* archive_;
  std::string stored_;
  std::string root_;
  Fd root_fd_;
  std::vector<char> buffer_;
  std::set<std::string> top_level_;
  std::map<std::vector<std::string>, mode_t> dir_modes_;
};

// `base` + `components` (a sub_path) inside the artifact `stored`: every step a directory that is
// not a symlink. `follow_base`: `base` itself may be a symlink to a directory.
absl::StatusOr<std::string> Descend(const std::string& base,
                                    const std::vector<std::string>& components,
                                    absl::string_view sub_path, const std::string& stored,
                                    bool follow_base) {
  if (components.empty()) return base;
  auto not_found = [&] {
    return absl::NotFoundError(
        absl::StrCat("sub_path \"", sub_path, "\" is not in artifact ", stored));
  };
  struct stat st;
  if ((follow_base ? stat(base.c_str(), &st) : lstat(base.c_str(), &st)) != 0) {
    return ErrnoError("stat", base, errno);
  }
  std::string path = base;
  for (const std::string& component : components) {
    if (!S_ISDIR(st.st_mode)) return not_found();
    path = JoinPath(path, component);
    if (lstat(path.c_str(), &st) != 0) {
      if (errno == ENOENT || errno == ENOTDIR) return not_found();
      return ErrnoError("stat", path, errno);
    }
  }
  return path;
}

bool IsGzipped(archive* a) {
  for (int i = 0; i < archive_filter_count(a); ++i) {
    if (archive_filter_code(a, i) == ARCHIVE_FILTER_GZIP) return true;
  }
  return false;
}

// Extracts the gzip'd tar `stored` (its first header read into `entry`, `status` what reading it
// returned) and places it, or its `sub_path`, at `target`.
absl::Status ExtractArtifact(archive* a, archive_entry* entry, int status,
                             const std::string& stored, const std::vector<std::string>& sub,
                             absl::string_view sub_path, const std::string& target) {
  RETURN_IF_ERROR(MakeDirs(ParentOf(target)));
  StagingDir staging;
  RETURN_IF_ERROR(staging.Create(target));
  const std::string root = staging.Staged();
  if (mkdir(root.c_str(), 0755) != 0 || chmod(root.c_str(), 0755) != 0) {
    return ErrnoError("create directory", root, errno);
  }
  TarExtractor extractor(a, stored, root);
  RETURN_IF_ERROR(extractor.Open());
  for (; status != ARCHIVE_EOF; status = archive_read_next_header(a, &entry)) {
    if (status < ARCHIVE_WARN) return ArchiveError(a, "read archive", stored);
    RETURN_IF_ERROR(extractor.Extract(entry));
  }
  RETURN_IF_ERROR(extractor.Finish());
  std::string base = root;
  if (extractor.top_level().size() == 1) base = JoinPath(root, *extractor.top_level().begin());
  ASSIGN_OR_RETURN(std::string chosen, Descend(base, sub, sub_path, stored, /*follow_base=*/false));
  return MoveIntoPlace(chosen, target);
}

}  // namespace

absl::Status SaveArtifact(const std::string& source, ArtifactArchive archive,
                          const std::string& destination) {
  struct stat st;
  if (stat(source.c_str(), &st) != 0) {
    if (errno == ENOENT || errno == ENOTDIR) {
      return absl::NotFoundError(absl::StrCat("artifact source ", source, " does not exist"));
    }
    return ErrnoError("stat", source, errno);
  }
  if (!S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode)) {
    return absl::InvalidArgumentError(
        absl::StrCat("artifact source ", source, " is not a regular file or directory"));
  }
  const std::string dest = StripTrailingSlashes(destination);
  RETURN_IF_ERROR(MakeDirs(ParentOf(dest)));
  if (S_ISDIR(st.st_mode)) RETURN_IF_ERROR(CheckNotInside(source, dest));

  if (archive == ArtifactArchive::kNone) return PlaceCopy(source, /*follow=*/true, dest);

  ASSIGN_OR_RETURN(std::string name, ArtifactName(source));
  StagingDir staging;
  RETURN_IF_ERROR(staging.Create(dest));
  TgzWriter writer(staging.Staged());
  RETURN_IF_ERROR(writer.Open());
  RETURN_IF_ERROR(writer.Add(source, name, /*follow=*/true));
  RETURN_IF_ERROR(writer.Close());
  return MoveIntoPlace(staging.Staged(), dest);
}

absl::Status LoadArtifact(const std::string& stored, const std::string& sub_path,
                          const std::string& target) {
  ASSIGN_OR_RETURN(std::vector<std::string> sub, RelativeComponents(sub_path, "sub_path"));
  const std::string dest = StripTrailingSlashes(target);
  struct stat st;
  if (stat(stored.c_str(), &st) != 0) {
    if (errno == ENOENT || errno == ENOTDIR) {
      return absl::NotFoundError(absl::StrCat("artifact ", stored, " does not exist"));
    }
    return ErrnoError("stat", stored, errno);
  }

  if (S_ISREG(st.st_mode)) {
    // A gzip'd tar is what Argo extracts; anything else (a plain tar too) is a file to copy.
    std::unique_ptr<archive, ArchiveReadFree> reader(archive_read_new());
    if (reader == nullptr) return absl::ResourceExhaustedError("archive_read_new failed");
    archive_read_support_filter_gzip(reader.get());
    archive_read_support_format_tar(reader.get());
    archive_entry* entry = nullptr;
    if (archive_read_open_filename(reader.get(), stored.c_str(), kBufferBytes) == ARCHIVE_OK) {
      int status = archive_read_next_header(reader.get(), &entry);
      if ((status == ARCHIVE_OK || status == ARCHIVE_WARN || status == ARCHIVE_EOF) &&
          IsGzipped(reader.get())) {
        return ExtractArtifact(reader.get(), entry, status, stored, sub, sub_path, dest);
      }
    }
  }

  ASSIGN_OR_RETURN(std::string chosen,
                   Descend(stored, sub, sub_path, stored, /*follow_base=*/true));
  return PlaceCopy(chosen, /*follow=*/sub.empty(), dest);
}

}  // namespace dagd::runners::local
