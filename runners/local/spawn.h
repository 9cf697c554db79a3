// SpawnSupervised(): starts a Command in its own process group under a tiny supervisor, so that
// nothing an attempt started outlives dagd — not even after `kill -9 dagd`.
//
// Process tree of one attempt:
//
//   dagd ──fork──► supervisor (a copy of dagd that never execs; session and group leader)
//                     └─fork──► worker ──execve──► the command (and whatever it forks)
//
// The supervisor, in the child right after fork():
//   1. setsid(): a new session and process group whose id is the supervisor's pid (the pgid);
//      the worker and every descendant that does not leave the group share it.
//   2. prctl(PR_SET_PDEATHSIG, SIGTERM), then getppid() against dagd's pid: if dagd died before
//      the prctl took effect, the group is killed at once (closes the race).
//   3. Keeps only fds 0-3 (stdin /dev/null, stdout pipe, stderr pipe, report pipe), and fd 4
//      (the events pipe) when Command::events_channel is set, closing every other fd it
//      inherited from dagd (sockets, the database) with close_range(). Fd 4 is inherited by the
//      command across execve (kSpawnEventsFd); the supervisor closes its own copy after forking
//      the worker, so the events pipe reaches EOF once the command's processes are gone.
//   4. Forks the worker, then waits in sigwaitinfo() with every signal blocked:
//      - parent gone (getppid() changed: dagd died, the death signal arrived): kill(0, SIGKILL),
//        which ends the whole group, the supervisor included;
//      - SIGTERM/SIGINT/SIGHUP/SIGQUIT sent by dagd: relayed to the group with kill(0, sig)
//        (this is how Cancel reaches every process of the attempt; dagd signals only the
//        supervisor, which avoids racing its setsid());
//      - SIGCHLD for the worker: writes the worker's wait status to the report pipe, then
//        kill(0, SIGKILL): the attempt is over, its stragglers (`cmd &`) die as a Kubernetes
//        container's would.
// The worker resets every signal disposition and the mask, enters the command's PodFilesystem if
// it has one (EnterPodRoot(), runners/local/pod_filesystem.h: the supervisor stays outside it),
// becomes Command::run_as if set (setgroups, setgid, setuid: for good, the supervisor stays
// dagd's user so that Cancel can signal it), chdir()s to the work_dir and execve()s the program; if
// any of these fails it writes {stage, errno} to the report pipe (fd 3, close-on-exec, so a
// successful exec closes it) and exits 127.
//
// Between fork() and execve() only async-signal-safe calls run (dagd is multi-threaded): every
// string, argv and envp array is built before fork(); signals are blocked across fork() so no
// dagd handler can run in the child; the supervisor forks the worker with _Fork().
//
// Limits: a descendant that leaves the group (setsid(), e.g. a daemonizing ssh ControlPersist
// master) is not killed. PR_SET_PDEATHSIG fires when the *thread* that forked exits: the
// supervisor then sees dagd still alive as its parent and keeps running, so attempts survive a
// dagd thread exiting but not dagd exiting.
//
// Thread-compatible: call from any one thread; the returned fds belong to the caller.
#ifndef DAGD_RUNNERS_LOCAL_SPAWN_H_
#define DAGD_RUNNERS_LOCAL_SPAWN_H_

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string_view>

#include "absl/status/statusor.h"
#include "runners/local/command.h"

namespace dagd::runners::local {

// A started attempt. The caller owns every fd (all close-on-exec) and must reap `pid`.
struct SpawnedProcess {
  pid_t pid = -1;      // the supervisor; also the process group id
  int pidfd = -1;      // pidfd_open(pid): readable once the supervisor has exited
  int stdout_fd = -1;  // read end of the command's stdout
  int stderr_fd = -1;  // read end of the command's stderr
  int report_fd = -1;  // read end of the report pipe; EOF once supervisor and worker are gone
  int events_fd = -1;  // read end of the events pipe; -1 without Command::events_channel
};

// Forks the supervisor, which forks the worker that runs `command`. Unavailable if a pipe, the
// fork or pidfd_open fails (nothing is left running then).
absl::StatusOr<SpawnedProcess> SpawnSupervised(const Command& command);

// What the report pipe said, once it reached EOF.
struct SpawnReport {
  // The worker could not start: where (its pod's mounts, chdir or execve) and errno.
  enum class Stage { kNone, kChdir, kExec, kFork, kPod, kUser };
  Stage failed_stage = Stage::kNone;
  int failed_errno = 0;
  PodMountStep failed_pod_step = PodMountStep::kNone;  // with Stage::kPod
  // The worker's wait status, if the supervisor saw it exit (not when the group was killed
  // from outside, e.g. by Cancel's SIGKILL).
  std::optional<int> wait_status;
};

// Decodes everything read from report_fd. Trailing partial records are ignored.
SpawnReport ParseSpawnReport(std::string_view bytes);

}  // namespace dagd::runners::local

#endif  // DAGD_RUNNERS_LOCAL_SPAWN_H_
