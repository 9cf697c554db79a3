// PodFilesystem: the filesystem a container or script attempt sees on the local runner when
// LocalRunnerOptions::pod_filesystem is kOverlay — its own, as a Kubernetes pod has.
//
// The attempt runs chrooted into an overlay mount whose lower layer is the host's root filesystem
// (read-only through the overlay) and whose upper layer is a directory of the attempt: every file
// it writes outside /tmp lands in that upper layer, never on the host. /tmp is a private, empty
// directory of the attempt, bind-mounted (so /tmp/x of two parallel attempts are two files, as in
// two pods). /proc, /dev and /sys are the host's. The mounts live in a mount namespace of the
// attempt (runners/local/spawn.h sets them up between fork and exec) and vanish with its last
// process; the layers stay on disk under <work_dir>/.dagd/pod/ until the work_dir is removed.
//
// Other filesystems mounted on the host (a separate /home, /work) are not part of the lower layer
// and appear as empty directories; the host's root filesystem is visible read-only, so programs
// installed on the host (sh, python3, cowsay) run as they are. Host directories the pod must
// write to are bind-mounted into it (AddHostMount(): Kubernetes' hostPath volumes).
//
// Before start, files the pod must find (input artifacts, a script's source) are written at
// StagingPath(); after the attempt, Resolve() finds what it left at a path, reading the upper
// layer over the host's files as the overlay did (whiteouts and opaque directories honoured).
//
// Blocking file I/O; thread-compatible.
#ifndef DAGD_RUNNERS_LOCAL_POD_FILESYSTEM_H_
#define DAGD_RUNNERS_LOCAL_POD_FILESYSTEM_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace dagd::runners::local {

class PodFilesystem {
 public:
  // The layers of the attempt whose working directory is `work_dir` (not created).
  explicit PodFilesystem(const std::string& work_dir);

  // Creates the layer directories. Unavailable on failure, naming the path.
  absl::Status Create() const;

  const std::string& root() const { return root_; }    // the overlay's mount point
  const std::string& upper() const { return upper_; }  // the attempt's writes
  const std::string& work() const { return work_; }    // the overlay's scratch directory
  const std::string& tmp() const { return tmp_; }      // the pod's /tmp
  // The overlay's mount options: "lowerdir=/,upperdir=…,workdir=…".
  std::string MountOptions() const;

  // The host path at which a file the pod sees at `pod_path` (absolute, normalised: no "." or
  // ".." components) is written before the attempt starts. Its parent directories are created,
  // with the modes of the host's directories of the same name (so that the overlay shows them
  // as they were). InvalidArgument for a relative path or one with "..".
  absl::StatusOr<std::string> StagingPath(const std::string& pod_path) const;

  // A host file or directory the pod sees at `pod_path` (absolute) instead of its own, as a
  // hostPath volume: writes there reach the host. Creates the mount point in the pod's layers.
  // InvalidArgument as StagingPath(), or for a relative or missing `host_path`.
  absl::Status AddHostMount(const std::string& host_path, const std::string& pod_path,
                            bool read_only);

  struct HostMount {
    std::string host_path;
    std::string pod_path;
    bool read_only = false;
  };
  const std::vector<HostMount>& host_mounts() const { return host_mounts_; }

  // After the attempt: the host path holding what the pod saw at `pod_path` when it ended — a
  // file or directory of the upper layer, of /tmp, or of the host (unchanged by the pod). A
  // directory present in both layers is merged into a new directory under `scratch_dir` (created
  // if missing) and that is returned. NotFound when the pod had nothing there (never written,
  // deleted, or hidden by an opaque directory). InvalidArgument as StagingPath().
  absl::StatusOr<std::string> Resolve(const std::string& pod_path,
                                      const std::string& scratch_dir) const;

 private:
  std::string root_;
  std::string upper_;
  std::string work_;
  std::string tmp_;
  std::vector<HostMount> host_mounts_;
};

// The mounts that put a process into its PodFilesystem, prepared before fork() (every string
// EnterPodRoot() needs).
struct PodMounts {
  std::string root;
  std::string options;  // PodFilesystem::MountOptions()
  std::string tmp;      // bind-mounted at <root>/tmp
  std::string root_tmp, root_proc, root_dev, root_sys;
  std::string uid_map, gid_map;  // "0 <uid> 1": for a user namespace, when not root
  struct Bind {
    std::string source;  // on the host
    std::string target;  // under root
    bool read_only = false;
  };
  std::vector<Bind> host_binds;  // PodFilesystem::host_mounts(), after the others
};
PodMounts PreparePodMounts(const PodFilesystem& pod);

// The step of EnterPodRoot() that failed.
enum class PodMountStep {
  kNone,
  kUnshare,
  kUserMaps,
  kPrivate,
  kOverlay,
  kBind,
  kHostBind,
  kChroot
};
// "unshare", "user namespace maps", "make mounts private", "mount overlay", "bind /proc, /dev,
// /sys, /tmp", "bind a hostPath volume", "chroot".
const char* PodMountStepName(PodMountStep step);

// Async-signal-safe (for the child between fork() and execve()): enters a new mount namespace
// (a new user namespace too when unshare(CLONE_NEWNS) alone is refused, mapping the caller to
// root in it), mounts the overlay and the binds, and chroot()s into the root; the working
// directory is then "/". Returns kNone, or the step that failed with errno set.
PodMountStep EnterPodRoot(const PodMounts& mounts);

// Whether this process can give attempts an overlay filesystem: forks a child that tries the
// mounts in a temporary directory under `scratch_parent` and reports. OK, or FailedPrecondition
// naming the step that failed and why (e.g. "unshare(CLONE_NEWNS): Operation not permitted").
absl::Status ProbePodFilesystem(const std::string& scratch_parent);

}  // namespace dagd::runners::local

#endif  // DAGD_RUNNERS_LOCAL_POD_FILESYSTEM_H_
