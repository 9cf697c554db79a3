#include "runners/local/pod_filesystem.h"

#include <fcntl.h>
#include <sched.h>
#include <stdlib.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <set>
#include <system_error>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

namespace dagd::runners::local {
namespace {

namespace fs = std::filesystem;

absl::Status Unavailable(const std::string& what, const std::string& path, int err) {
  return absl::UnavailableError(absl::StrCat(what, " ", path, ": ", std::strerror(err)));
}

// The components of an absolute pod path ("/a//b/" → {a, b}); "." is dropped, ".." refused.
absl::StatusOr<std::vector<std::string>> Components(const std::string& pod_path) {
  if (pod_path.empty() || pod_path[0] != '/') {
    return absl::InvalidArgumentError(
        absl::StrCat("\"", pod_path, "\" is not an absolute path in the pod"));
  }
  std::vector<std::string> parts;
  for (absl::string_view part : absl::StrSplit(pod_path, '/', absl::SkipEmpty())) {
    if (part == ".") continue;
    if (part == "..") {
      return absl::InvalidArgumentError(
          absl::StrCat("\"", pod_path, "\": a path in the pod may not contain \"..\""));
    }
    parts.emplace_back(part);
  }
  return parts;
}

std::string Join(const std::string& base, const std::vector<std::string>& parts, size_t count) {
  std::string path = base;
  for (size_t i = 0; i < count; ++i) absl::StrAppend(&path, "/", parts[i]);
  return path;
}

// An overlay whiteout: a character device 0/0 in the upper layer hides the lower file.
bool IsWhiteout(const struct stat& st) {
  return S_ISCHR(st.st_mode) && st.st_rdev == makedev(0, 0);
}

// An opaque upper directory hides the lower directory's entries.
bool IsOpaque(const std::string& dir) {
  char value[2];
  for (const char* name : {"trusted.overlay.opaque", "user.overlay.opaque"}) {
    if (lgetxattr(dir.c_str(), name, value, sizeof(value)) == 1 && value[0] == 'y') return true;
  }
  return false;
}

// Copies a file, symlink or directory tree (symlinks as symlinks; sockets, fifos and devices
// skipped).
absl::Status CopyTree(const std::string& from, const std::string& to) {
  struct stat st;
  if (lstat(from.c_str(), &st) != 0) return Unavailable("cannot read", from, errno);
  std::error_code ec;
  if (S_ISDIR(st.st_mode)) {
    if (mkdir(to.c_str(), st.st_mode & 07777) != 0 && errno != EEXIST) {
      return Unavailable("cannot create", to, errno);
    }
    for (const fs::directory_entry& entry : fs::directory_iterator(from, ec)) {
      const std::string name = entry.path().filename().string();
      absl::Status copied = CopyTree(absl::StrCat(from, "/", name), absl::StrCat(to, "/", name));
      if (!copied.ok()) return copied;
    }
    if (ec) return Unavailable("cannot list", from, ec.value());
    return absl::OkStatus();
  }
  if (S_ISLNK(st.st_mode) || S_ISREG(st.st_mode)) {
    fs::copy(from, to, fs::copy_options::copy_symlinks | fs::copy_options::overwrite_existing, ec);
    if (ec) return Unavailable("cannot copy", from, ec.value());
  }
  return absl::OkStatus();
}

// Writes into `dest` what the overlay showed for a directory present in both layers.
absl::Status MergeTree(const std::string& upper, const std::string& lower,
                       const std::string& dest) {
  struct stat st;
  if (lstat(upper.c_str(), &st) != 0) return Unavailable("cannot read", upper, errno);
  if (mkdir(dest.c_str(), st.st_mode & 07777) != 0)
    return Unavailable("cannot create", dest, errno);
  std::set<std::string> in_upper;
  std::error_code ec;
  for (const fs::directory_entry& entry : fs::directory_iterator(upper, ec)) {
    in_upper.insert(entry.path().filename().string());
  }
  if (ec) return Unavailable("cannot list", upper, ec.value());
  for (const fs::directory_entry& entry : fs::directory_iterator(lower, ec)) {
    const std::string name = entry.path().filename().string();
    if (in_upper.count(name) != 0) continue;
    absl::Status copied = CopyTree(absl::StrCat(lower, "/", name), absl::StrCat(dest, "/", name));
    if (!copied.ok()) return copied;
  }
  if (ec) return Unavailable("cannot list", lower, ec.value());
  for (const std::string& name : in_upper) {
    const std::string up = absl::StrCat(upper, "/", name);
    const std::string low = absl::StrCat(lower, "/", name);
    struct stat up_st, low_st;
    if (lstat(up.c_str(), &up_st) != 0) return Unavailable("cannot read", up, errno);
    if (IsWhiteout(up_st)) continue;
    absl::Status copied;
    if (S_ISDIR(up_st.st_mode) && !IsOpaque(up) && lstat(low.c_str(), &low_st) == 0 &&
        S_ISDIR(low_st.st_mode)) {
      copied = MergeTree(up, low, absl::StrCat(dest, "/", name));
    } else {
      copied = CopyTree(up, absl::StrCat(dest, "/", name));
    }
    if (!copied.ok()) return copied;
  }
  return absl::OkStatus();
}

}  // namespace

PodFilesystem::PodFilesystem(const std::string& work_dir) {
  const std::string dir = absl::StrCat(work_dir, "/.dagd/pod");
  root_ = dir + "/root";
  upper_ = dir + "/upper";
  work_ = dir + "/work";
  tmp_ = dir + "/tmp";
}

absl::Status PodFilesystem::Create() const {
  for (const std::string* dir : {&root_, &upper_, &work_, &tmp_}) {
    std::error_code ec;
    fs::create_directories(*dir, ec);
    if (ec) return Unavailable("cannot create", *dir, ec.value());
  }
  if (chmod(tmp_.c_str(), 01777) != 0) return Unavailable("cannot set the mode of", tmp_, errno);
  return absl::OkStatus();
}

std::string PodFilesystem::MountOptions() const {
  return absl::StrCat("lowerdir=/,upperdir=", upper_, ",workdir=", work_);
}

absl::StatusOr<std::string> PodFilesystem::StagingPath(const std::string& pod_path) const {
  absl::StatusOr<std::vector<std::string>> parts = Components(pod_path);
  if (!parts.ok()) return parts.status();
  if (parts->empty()) {
    return absl::InvalidArgumentError("the pod's root directory cannot be written as a whole");
  }
  const bool in_tmp = (*parts)[0] == "tmp";
  const std::string base = in_tmp ? tmp_ : upper_;
  const size_t first = in_tmp ? 1 : 0;
  std::vector<std::string> rest(parts->begin() + static_cast<std::ptrdiff_t>(first), parts->end());
  if (rest.empty()) return base;  // /tmp itself
  for (size_t i = 1; i < rest.size(); ++i) {
    const std::string dir = Join(base, rest, i);
    struct stat host;
    mode_t mode = 0755;
    if (!in_tmp && stat(Join("", rest, i).c_str(), &host) == 0 && S_ISDIR(host.st_mode)) {
      mode = host.st_mode & 07777;
    }
    if (mkdir(dir.c_str(), mode) != 0 && errno != EEXIST) {
      return Unavailable("cannot create", dir, errno);
    }
    if (chmod(dir.c_str(), mode) != 0) return Unavailable("cannot set the mode of", dir, errno);
  }
  return Join(base, rest, rest.size());
}

absl::Status PodFilesystem::AddHostMount(const std::string& host_path, const std::string& pod_path,
                                         bool read_only) {
  struct stat host;
  if (host_path.empty() || host_path[0] != '/') {
    return absl::InvalidArgumentError(
        absl::StrCat("hostPath \"", host_path, "\" is not an absolute path"));
  }
  if (stat(host_path.c_str(), &host) != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("hostPath \"", host_path, "\": ", std::strerror(errno)));
  }
  absl::StatusOr<std::string> mount_point = StagingPath(pod_path);
  if (!mount_point.ok()) return mount_point.status();
  if (S_ISDIR(host.st_mode)) {
    if (mkdir(mount_point->c_str(), 0755) != 0 && errno != EEXIST) {
      return Unavailable("cannot create", *mount_point, errno);
    }
  } else {
    int fd = open(mount_point->c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) return Unavailable("cannot create", *mount_point, errno);
    close(fd);
  }
  host_mounts_.push_back({host_path, pod_path, read_only});
  return absl::OkStatus();
}

absl::StatusOr<std::string> PodFilesystem::Resolve(const std::string& pod_path,
                                                   const std::string& scratch_dir) const {
  absl::StatusOr<std::vector<std::string>> parts = Components(pod_path);
  if (!parts.ok()) return parts.status();
  if (parts->empty()) {
    return absl::InvalidArgumentError("the pod's root directory cannot be read as a whole");
  }
  const absl::Status nothing =
      absl::NotFoundError(absl::StrCat(pod_path, ": the pod left nothing there"));
  struct stat st;
  if (!parts->empty() && (*parts)[0] == "tmp") {
    std::string path = tmp_;
    for (size_t i = 1; i < parts->size(); ++i) absl::StrAppend(&path, "/", (*parts)[i]);
    if (lstat(path.c_str(), &st) != 0) return nothing;
    return path;
  }
  // Walk the upper layer down to the path: a whiteout or file on the way hides everything
  // below; an opaque directory hides the host's entries below it.
  bool host_hidden = false;
  bool in_upper = true;
  for (size_t i = 1; i <= parts->size(); ++i) {
    const std::string up = Join(upper_, *parts, i);
    if (lstat(up.c_str(), &st) != 0) {
      in_upper = false;
      break;
    }
    if (IsWhiteout(st)) return nothing;
    if (i < parts->size() && !S_ISDIR(st.st_mode)) return nothing;
    if (S_ISDIR(st.st_mode) && IsOpaque(up)) host_hidden = true;
  }
  const std::string up = Join(upper_, *parts, parts->size());
  const std::string host = Join("", *parts, parts->size());
  struct stat host_st, root_st;
  // The lower layer is the host's root filesystem only: other mounts were empty directories.
  const bool on_host = !host_hidden && lstat(host.c_str(), &host_st) == 0 &&
                       stat("/", &root_st) == 0 && host_st.st_dev == root_st.st_dev;
  if (!in_upper) {
    if (!on_host) return nothing;
    return host;
  }
  if (!S_ISDIR(st.st_mode) || !on_host || !S_ISDIR(host_st.st_mode)) return up;
  // A directory in both layers: what the pod saw is their union.
  std::error_code ec;
  fs::create_directories(scratch_dir, ec);
  if (ec) return Unavailable("cannot create", scratch_dir, ec.value());
  std::string merged = absl::StrCat(scratch_dir, "/merged-XXXXXX");
  if (mkdtemp(merged.data()) == nullptr) return Unavailable("cannot create", merged, errno);
  const std::string dest = absl::StrCat(merged, "/", parts->back());
  absl::Status status = MergeTree(up, host, dest);
  if (!status.ok()) return status;
  return dest;
}

PodMounts PreparePodMounts(const PodFilesystem& pod) {
  PodMounts m;
  m.root = pod.root();
  m.options = pod.MountOptions();
  m.tmp = pod.tmp();
  m.root_tmp = pod.root() + "/tmp";
  m.root_proc = pod.root() + "/proc";
  m.root_dev = pod.root() + "/dev";
  m.root_sys = pod.root() + "/sys";
  m.uid_map = absl::StrCat("0 ", geteuid(), " 1");
  m.gid_map = absl::StrCat("0 ", getegid(), " 1");
  for (const PodFilesystem::HostMount& mount : pod.host_mounts()) {
    m.host_binds.push_back({mount.host_path, pod.root() + mount.pod_path, mount.read_only});
  }
  return m;
}

const char* PodMountStepName(PodMountStep step) {
  switch (step) {
    case PodMountStep::kNone:
      return "none";
    case PodMountStep::kUnshare:
      return "unshare";
    case PodMountStep::kUserMaps:
      return "user namespace maps";
    case PodMountStep::kPrivate:
      return "make mounts private";
    case PodMountStep::kOverlay:
      return "mount overlay";
    case PodMountStep::kBind:
      return "bind /proc, /dev, /sys, /tmp";
    case PodMountStep::kHostBind:
      return "bind a hostPath volume";
    case PodMountStep::kChroot:
      return "chroot";
  }
  return "unknown";
}

namespace {

// Async-signal-safe.
bool WriteWhole(const char* path, const std::string& text) {
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return false;
  ssize_t n = write(fd, text.data(), text.size());
  int err = errno;
  close(fd);
  errno = err;
  return n == static_cast<ssize_t>(text.size());
}

}  // namespace

PodMountStep EnterPodRoot(const PodMounts& m) {
  if (unshare(CLONE_NEWNS) != 0) {
    if (errno != EPERM) return PodMountStep::kUnshare;
    // Not root: a user namespace of our own grants the mounts (unprivileged overlay needs
    // Linux 5.11+).
    if (unshare(CLONE_NEWUSER | CLONE_NEWNS) != 0) return PodMountStep::kUnshare;
    const std::string deny = "deny";
    if (!WriteWhole("/proc/self/setgroups", deny) || !WriteWhole("/proc/self/uid_map", m.uid_map) ||
        !WriteWhole("/proc/self/gid_map", m.gid_map)) {
      return PodMountStep::kUserMaps;
    }
  }
  if (mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) {
    return PodMountStep::kPrivate;
  }
  if (mount("overlay", m.root.c_str(), "overlay", 0, m.options.c_str()) != 0) {
    return PodMountStep::kOverlay;
  }
  if (mount("/proc", m.root_proc.c_str(), nullptr, MS_BIND | MS_REC, nullptr) != 0 ||
      mount("/dev", m.root_dev.c_str(), nullptr, MS_BIND | MS_REC, nullptr) != 0 ||
      mount("/sys", m.root_sys.c_str(), nullptr, MS_BIND | MS_REC, nullptr) != 0 ||
      mount(m.tmp.c_str(), m.root_tmp.c_str(), nullptr, MS_BIND, nullptr) != 0) {
    return PodMountStep::kBind;
  }
  for (const PodMounts::Bind& bind : m.host_binds) {
    if (mount(bind.source.c_str(), bind.target.c_str(), nullptr, MS_BIND | MS_REC, nullptr) != 0) {
      return PodMountStep::kHostBind;
    }
    if (bind.read_only && mount(nullptr, bind.target.c_str(), nullptr,
                                MS_REMOUNT | MS_BIND | MS_RDONLY | MS_REC, nullptr) != 0) {
      return PodMountStep::kHostBind;
    }
  }
  if (chroot(m.root.c_str()) != 0 || chdir("/") != 0) return PodMountStep::kChroot;
  return PodMountStep::kNone;
}

absl::Status ProbePodFilesystem(const std::string& scratch_parent) {
  std::string dir = absl::StrCat(scratch_parent, "/pod-probe-XXXXXX");
  if (mkdtemp(dir.data()) == nullptr) {
    return absl::FailedPreconditionError(absl::StrCat("cannot create a directory under ",
                                                      scratch_parent, ": ", std::strerror(errno)));
  }
  PodFilesystem pod(dir);
  absl::Status status = pod.Create();
  if (status.ok()) {
    const PodMounts mounts = PreparePodMounts(pod);
    int report[2];
    if (pipe2(report, O_CLOEXEC) != 0) {
      status = absl::FailedPreconditionError(absl::StrCat("pipe2: ", std::strerror(errno)));
    } else {
      pid_t child = fork();
      if (child == 0) {
        close(report[0]);
        PodMountStep step = EnterPodRoot(mounts);
        int32_t record[2] = {static_cast<int32_t>(step), errno};
        if (step == PodMountStep::kNone) {
          int fd = open("/probe", O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
          record[1] = fd < 0 ? errno : 0;
        }
        ssize_t ignored = write(report[1], record, sizeof(record));
        (void)ignored;
        _exit(0);
      }
      close(report[1]);
      int32_t record[2] = {-1, 0};
      ssize_t n = child < 0 ? -1 : read(report[0], record, sizeof(record));
      close(report[0]);
      if (child > 0) {
        while (waitpid(child, nullptr, 0) < 0 && errno == EINTR) {
        }
      }
      struct stat st;
      if (n != static_cast<ssize_t>(sizeof(record))) {
        status = absl::FailedPreconditionError("the probe process did not report");
      } else if (record[0] != static_cast<int32_t>(PodMountStep::kNone)) {
        status = absl::FailedPreconditionError(
            absl::StrCat(PodMountStepName(static_cast<PodMountStep>(record[0])), ": ",
                         std::strerror(record[1])));
      } else if (record[1] != 0 || lstat((pod.upper() + "/probe").c_str(), &st) != 0) {
        status = absl::FailedPreconditionError(absl::StrCat(
            "a file written in the pod did not reach its upper layer: ", std::strerror(record[1])));
      }
    }
  }
  // The overlay leaves its scratch directory without permissions.
  std::error_code ec;
  fs::permissions(pod.work() + "/work", fs::perms::owner_all, ec);
  fs::remove_all(dir, ec);
  return status;
}

}  // namespace dagd::runners::local
