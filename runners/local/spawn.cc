#include "runners/local/spawn.h"

#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <optional>
#include <vector>

#include "absl/strings/str_cat.h"

namespace dagd::runners::local {
namespace {

// Report pipe records: three native int32s. Writes of 12 bytes are atomic (< PIPE_BUF).
constexpr int32_t kRecordStartFailed = 1;  // {kind, stage, errno}
constexpr int32_t kRecordExited = 2;       // {kind, wait status, 0}
constexpr int32_t kRecordPodFailed = 3;    // {kind, PodMountStep, errno}
struct Record {
  int32_t kind;
  int32_t a;
  int32_t b;
};

// Exit code of a supervisor that could not set itself up (nothing was started).
constexpr int kSupervisorSetupFailed = 125;

// The fds the supervisor keeps, at these numbers (kEventsFd only with Command::events_channel).
constexpr int kReportFd = 3;
constexpr int kEventsFd = 4;
static_assert(kEventsFd == kSpawnEventsFd);

// Everything the child processes use, prepared before fork().
struct ChildArgs {
  const char* program;
  char* const* argv;
  char* const* envp;
  const char* work_dir;
  const PodMounts* pod;     // null: the host's filesystem
  const RunAsUser* run_as;  // null: dagd's own user
  // Become 0..4: /dev/null, stdout write end, stderr write end, report write end, events write
  // end (-1: none, and fd 4 stays closed).
  int fds[5];
  int nfds;  // 4 or 5
  pid_t parent;
};

// Async-signal-safe from here to the end of RunSupervisor().

void WriteRecord(int32_t kind, int32_t a, int32_t b) {
  Record record{kind, a, b};
  while (write(kReportFd, &record, sizeof(record)) < 0 && errno == EINTR) {
  }
}

[[noreturn]] void RunWorker(const ChildArgs& args) {
  struct sigaction dfl = {};
  dfl.sa_handler = SIG_DFL;
  sigemptyset(&dfl.sa_mask);
  for (int sig = 1; sig < NSIG; ++sig) sigaction(sig, &dfl, nullptr);  // also undoes SIG_IGN
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  if (args.pod != nullptr) {
    PodMountStep step = EnterPodRoot(*args.pod);
    if (step != PodMountStep::kNone) {
      int err = errno;
      WriteRecord(kRecordPodFailed, static_cast<int32_t>(step), err);
      _exit(127);
    }
  }
  if (args.run_as != nullptr &&
      (setgroups(args.run_as->groups.size(), args.run_as->groups.data()) != 0 ||
       setgid(args.run_as->gid) != 0 || setuid(args.run_as->uid) != 0)) {
    int err = errno;
    WriteRecord(kRecordStartFailed, static_cast<int32_t>(SpawnReport::Stage::kUser), err);
    _exit(127);
  }
  if (chdir(args.work_dir) != 0) {
    int err = errno;
    WriteRecord(kRecordStartFailed, static_cast<int32_t>(SpawnReport::Stage::kChdir), err);
    _exit(127);
  }
  execve(args.program, args.argv, args.envp);
  int err = errno;
  WriteRecord(kRecordStartFailed, static_cast<int32_t>(SpawnReport::Stage::kExec), err);
  _exit(127);
}

void CloseFrom(int first) {
  if (close_range(first, ~0U, 0) == 0) return;
  struct rlimit limit;
  int max_fd = getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur != RLIM_INFINITY
                   ? static_cast<int>(limit.rlim_cur)
                   : 65536;
  for (int fd = first; fd < max_fd; ++fd) close(fd);
}

[[noreturn]] void RunSupervisor(const ChildArgs& args) {
  // Every signal is blocked (inherited from the forking thread) and stays blocked here.
  if (setsid() < 0) _exit(kSupervisorSetupFailed);
  if (prctl(PR_SET_PDEATHSIG, SIGTERM) != 0) _exit(kSupervisorSetupFailed);
  if (getppid() != args.parent) _exit(kSupervisorSetupFailed);  // dagd already gone

  int moved[5];
  for (int i = 0; i < args.nfds; ++i) {
    moved[i] = fcntl(args.fds[i], F_DUPFD, 5);
    if (moved[i] < 0) _exit(kSupervisorSetupFailed);
  }
  for (int i = 0; i < args.nfds; ++i) {
    if (dup2(moved[i], i) < 0) _exit(kSupervisorSetupFailed);
  }
  CloseFrom(args.nfds);
  if (fcntl(kReportFd, F_SETFD, FD_CLOEXEC) != 0) _exit(kSupervisorSetupFailed);
  struct sigaction dfl = {};
  dfl.sa_handler = SIG_DFL;
  sigemptyset(&dfl.sa_mask);
  sigaction(SIGCHLD, &dfl, nullptr);  // SIG_IGN would auto-reap the worker

  pid_t worker = _Fork();
  if (worker == 0) RunWorker(args);
  if (worker < 0) {
    int err = errno;
    WriteRecord(kRecordStartFailed, static_cast<int32_t>(SpawnReport::Stage::kFork), err);
    _exit(127);
  }
  close(0);
  close(1);
  close(2);
  if (args.nfds > kEventsFd) close(kEventsFd);  // EOF once the command's processes are gone

  sigset_t waited;
  sigemptyset(&waited);
  for (int sig : {SIGCHLD, SIGTERM, SIGINT, SIGHUP, SIGQUIT}) sigaddset(&waited, sig);
  for (;;) {
    siginfo_t info;
    int sig = sigwaitinfo(&waited, &info);
    if (sig < 0) continue;
    if (getppid() != args.parent) {
      kill(0, SIGKILL);  // dagd died: end the attempt, this process included
      _exit(kSupervisorSetupFailed);
    }
    if (sig == SIGCHLD) {
      int status = 0;
      if (waitpid(worker, &status, WNOHANG) == worker) {
        WriteRecord(kRecordExited, status, 0);
        kill(0, SIGKILL);  // stragglers, and this process
        _exit(0);
      }
      continue;
    }
    if (info.si_pid == args.parent) kill(0, sig);  // Cancel: relay to the whole group
  }
}

// End of the async-signal-safe part.

std::string Errno(const char* what) { return absl::StrCat(what, ": ", std::strerror(errno)); }

}  // namespace

absl::StatusOr<SpawnedProcess> SpawnSupervised(const Command& command) {
  std::vector<char*> argv;
  argv.reserve(command.argv.size() + 1);
  for (const std::string& arg : command.argv) argv.push_back(const_cast<char*>(arg.c_str()));
  argv.push_back(nullptr);
  std::vector<char*> envp;
  envp.reserve(command.env.size() + 1);
  for (const std::string& var : command.env) envp.push_back(const_cast<char*>(var.c_str()));
  envp.push_back(nullptr);

  std::vector<int> to_close;
  auto fail = [&to_close](std::string message) {
    for (int fd : to_close) close(fd);
    return absl::UnavailableError(std::move(message));
  };
  int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (devnull < 0) return fail(Errno("open /dev/null"));
  to_close.push_back(devnull);
  int out[2], err[2], report[2], events[2] = {-1, -1};
  for (int* p : {out, err, report}) {
    if (pipe2(p, O_CLOEXEC) != 0) return fail(Errno("pipe2"));
    to_close.insert(to_close.end(), {p[0], p[1]});
  }
  if (command.events_channel) {
    if (pipe2(events, O_CLOEXEC) != 0) return fail(Errno("pipe2"));
    to_close.insert(to_close.end(), {events[0], events[1]});
  }

  std::optional<PodMounts> pod;
  if (command.pod.has_value()) pod = PreparePodMounts(*command.pod);
  ChildArgs args{command.program.c_str(),
                 argv.data(),
                 envp.data(),
                 command.work_dir.c_str(),
                 pod.has_value() ? &*pod : nullptr,
                 command.run_as.has_value() ? &*command.run_as : nullptr,
                 {devnull, out[1], err[1], report[1], events[1]},
                 command.events_channel ? 5 : 4,
                 getpid()};
  // Blocked across fork so that no dagd signal handler runs in the child. _Fork() rather than
  // fork(): the child never execs, and third-party atfork handlers (gRPC's) must not run in it.
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  pid_t pid = _Fork();
  if (pid == 0) RunSupervisor(args);
  int fork_errno = errno;
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  if (pid < 0) {
    errno = fork_errno;
    return fail(Errno("fork"));
  }
  for (int fd : {devnull, out[1], err[1], report[1]}) close(fd);
  to_close = {out[0], err[0], report[0]};
  if (command.events_channel) {
    close(events[1]);
    to_close.push_back(events[0]);
  }

  // Through syscall(): Debian 12's <sys/pidfd.h> lacks extern "C" and cannot be used from C++.
  int pidfd = static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
  if (pidfd < 0) {
    std::string message = Errno("pidfd_open");
    kill(pid, SIGKILL);  // before it can fork the worker (fork fails with SIGKILL pending)
    while (waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
    }
    kill(-pid, SIGKILL);  // in case the worker was already forked
    return fail(std::move(message));
  }
  return SpawnedProcess{pid, pidfd, out[0], err[0], report[0], events[0]};
}

SpawnReport ParseSpawnReport(std::string_view bytes) {
  SpawnReport report;
  for (size_t at = 0; at + sizeof(Record) <= bytes.size(); at += sizeof(Record)) {
    Record record;
    std::memcpy(&record, bytes.data() + at, sizeof(record));
    if (record.kind == kRecordStartFailed && report.failed_stage == SpawnReport::Stage::kNone) {
      report.failed_stage = static_cast<SpawnReport::Stage>(record.a);
      report.failed_errno = record.b;
    } else if (record.kind == kRecordPodFailed &&
               report.failed_stage == SpawnReport::Stage::kNone) {
      report.failed_stage = SpawnReport::Stage::kPod;
      report.failed_pod_step = static_cast<PodMountStep>(record.a);
      report.failed_errno = record.b;
    } else if (record.kind == kRecordExited) {
      report.wait_status = record.a;
    }
  }
  return report;
}

}  // namespace dagd::runners::local
