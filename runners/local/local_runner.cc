#include "runners/local/local_runner.h"

#include <fcntl.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string_view>
#include <utility>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"
#include "engine/status_macros.h"
#include "logging/log.h"
#include "runners/local/ansible_output.h"
#include "runners/local/artifacts.h"
#include "runners/local/command.h"
#include "runners/local/credentials.h"
#include "runners/local/files.h"
#include "runners/local/secret_mask.h"
#include "runners/local/spawn.h"

extern char** environ;

namespace dagd::runners::local {
namespace {

// Gives the attempt's directory and everything in it (the bundle, credential copies, staged
// artifacts) to `user`, and makes `command` run as the user, with USER and LOGNAME its name and
// HOME a fresh directory of the attempt (<work_dir>/.dagd-home), as a pod's container gets: a
// system user often has no home it can write, and ansible keeps its temporary files there.
absl::Status HandOver(const std::string& work_dir, const RunAsUser& user, Command* command) {
  const std::string home = work_dir + "/.dagd-home";
  std::error_code made;
  std::filesystem::create_directories(home, made);
  if (made) {
    return absl::UnavailableError(absl::StrCat("cannot create ", home, ": ", made.message()));
  }
  auto give = [&](const std::string& path) -> absl::Status {
    if (lchown(path.c_str(), user.uid, user.gid) == 0) return absl::OkStatus();
    return absl::UnavailableError(absl::StrCat("cannot give ", path, " to --run-as-user ",
                                               user.name, ": ", std::strerror(errno)));
  };
  if (absl::Status st = give(work_dir); !st.ok()) return st;
  std::error_code ec;
  for (auto it = std::filesystem::recursive_directory_iterator(work_dir, ec);
       !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    if (absl::Status st = give(it->path().string()); !st.ok()) return st;
  }
  if (ec) {
    return absl::UnavailableError(
        absl::StrCat("cannot walk ", work_dir, " for --run-as-user: ", ec.message()));
  }
  for (const auto& [name, value] : {std::pair<std::string, std::string>{"HOME", home},
                                    {"USER", user.name},
                                    {"LOGNAME", user.name}}) {
    std::erase_if(command->env,
                  [&](const std::string& entry) { return entry.rfind(name + "=", 0) == 0; });
    command->env.push_back(name + "=" + value);
  }
  command->run_as = user;
  return absl::OkStatus();
}

namespace asio = boost::asio;
using boost::system::error_code;

std::vector<std::string> CurrentEnvironment() {
  std::vector<std::string> env;
  for (char** var = environ; var != nullptr && *var != nullptr; ++var) env.emplace_back(*var);
  return env;
}

std::shared_ptr<spdlog::logger> RunnerLogger() { return logging::Get("runner.local"); }

// SIGKILL to the supervisor first (a pending SIGKILL makes its fork of the worker fail), then
// to the group. Only while the supervisor is not reaped, so that `pgid` cannot be reused.
void KillGroup(pid_t pgid) {
  kill(pgid, SIGKILL);
  kill(-pgid, SIGKILL);
}

void Reap(pid_t pid) {
  while (waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
  }
}

absl::StatusOr<std::string> ReadWholeFile(const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return absl::NotFoundError(std::strerror(errno));
  std::string content;
  std::array<char, 8192> buf;
  for (;;) {
    ssize_t n = read(fd, buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int err = errno;
      close(fd);
      return absl::UnavailableError(std::strerror(err));
    }
    if (n == 0) break;
    content.append(buf.data(), static_cast<size_t>(n));
  }
  close(fd);
  return content;
}

// One event line is one Ansible callback; the scheduler caps what it stores far lower
// (64 KiB). This only bounds the memory a runaway writer on the events pipe can take.
constexpr size_t kMaxEventLineBytes = 16 * 1024 * 1024;

void TrimOneNewline(std::string* s) {
  if (!s->empty() && s->back() == '\n') s->pop_back();
}

// The host path of an artifact key in the store: relative, without "..".
absl::StatusOr<std::string> StorePath(const std::string& artifact_dir, const std::string& key) {
  if (artifact_dir.empty()) {
    return absl::FailedPreconditionError("this runner has no artifact store configured");
  }
  std::string relative = key;
  while (!relative.empty() && relative.front() == '/') relative.erase(0, 1);
  while (!relative.empty() && relative.back() == '/') relative.pop_back();
  const std::filesystem::path path(relative);
  bool escapes = relative.empty();
  for (const auto& part : path) escapes |= part == "..";
  if (escapes) {
    return absl::InvalidArgumentError(
        absl::StrCat("artifact key \"", key, "\" is not a path inside the artifact store"));
  }
  return absl::StrCat(artifact_dir, "/", relative);
}

// Where the command finds `path` (absolute in the pod or on the host; relative to `cwd`).
std::string CommandPath(const std::string& cwd, const std::string& path) {
  std::filesystem::path full(path);
  if (full.is_relative()) full = std::filesystem::path(cwd) / full;
  return full.lexically_normal().string();
}

// Places the attempt's input artifacts before it starts (see the header).
absl::Status StageInputArtifacts(const AttemptSpec& spec, const Command& command,
                                 const std::string& artifact_dir) {
  for (const engine::Artifact& input : spec.resolved.inputs.artifacts) {
    if (input.key.empty() && !input.raw) continue;  // optional, not supplied
    const std::string where = absl::StrCat("input artifact \"", input.name, "\"");
    if (input.path.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(where, " has no path"));
    }
    const std::string path = CommandPath(command.work_dir, input.path);
    absl::StatusOr<std::string> target = command.pod.has_value()
                                             ? command.pod->StagingPath(path)
                                             : absl::StatusOr<std::string>(path);
    if (!target.ok())
      return absl::InvalidArgumentError(absl::StrCat(where, ": ", target.status().message()));
    if (!input.key.empty()) {
      ASSIGN_OR_RETURN(const std::string stored, StorePath(artifact_dir, input.key));
      absl::Status loaded = LoadArtifact(stored, input.sub_path, *target);
      if (loaded.ok() || (input.optional && absl::IsNotFound(loaded))) continue;
      return absl::Status(loaded.code(),
                          absl::StrCat(where, " (key \"", input.key, "\"): ", loaded.message()));
    }
    std::error_code ec;
    std::filesystem::create_directories(std::filesystem::path(*target).parent_path(), ec);
    absl::Status written = WriteFile(*target, *input.raw, 0644);
    if (!written.ok())
      return absl::Status(written.code(), absl::StrCat(where, ": ", written.message()));
  }
  return absl::OkStatus();
}

}  // namespace

struct LocalRunner::Attempt {
  explicit Attempt(asio::io_context& io)
      : stdout_pipe(io),
        stderr_pipe(io),
        report_pipe(io),
        events_pipe(io),
        exit_watch(io),
        kill_timer(io),
        drain_timer(io) {}

  // The RunTag of this attempt's log lines.
  std::string Tag() const { return logging::RunTag(run_id, node_name, number); }

  // Releases every descriptor and timer; pending handlers complete with operation_aborted.
  void CloseAll() {
    error_code ignored;
    for (auto* d : {&stdout_pipe, &stderr_pipe, &report_pipe, &events_pipe, &exit_watch}) {
      d->close(ignored);
    }
    kill_timer.cancel();
    drain_timer.cancel();
  }

  std::string external_name;
  std::string run_id;     // for log lines
  std::string node_name;  // for log lines
  int number = 0;         // the attempt's number, for log lines
  std::string template_name;
  std::string program;
  std::string work_dir;
  std::optional<PodFilesystem> pod;  // the attempt's own filesystem, if it has one
  std::string cwd;                   // the command's working directory (in the pod, if any)
  engine::Outputs outputs;
  bool is_ansible = false;
  int64_t grace_period_ms = 0;
  AttemptCallbacks callbacks;

  pid_t pid = -1;  // the supervisor; also the process group id
  asio::posix::stream_descriptor stdout_pipe;
  asio::posix::stream_descriptor stderr_pipe;
  asio::posix::stream_descriptor report_pipe;
  asio::posix::stream_descriptor events_pipe;  // only for commands with an events channel
  asio::posix::stream_descriptor exit_watch;   // the supervisor's pidfd
  asio::steady_timer kill_timer;               // Cancel: SIGKILL after the grace period
  asio::steady_timer drain_timer;              // after the exit: stop waiting for pipe EOF

  std::array<char, 16384> stdout_buf;
  std::array<char, 16384> stderr_buf;
  std::array<char, 64> report_buf;
  std::array<char, 16384> events_buf;
  std::string events_partial;          // an event line not yet complete
  bool discarding_event_line = false;  // skipping the rest of a line over kMaxEventLineBytes
  std::string stdout_tail;             // the last bytes of stdout, for outputs.result
  std::string report;                  // bytes from the report pipe (runners/local/spawn.h)
  AnsibleOutputScanner ansible;
  // Credential values are masked in everything the attempt reports (secret_mask.h).
  std::shared_ptr<const SecretMasker> masker = std::make_shared<const SecretMasker>();
  SecretMasker::Stream stdout_mask;
  SecretMasker::Stream stderr_mask;

  int open_pipes = 3;  // stdout, stderr, report (+ events)
  bool reaped = false;
  bool lost = false;  // waitpid() found no such child: someone else reaped it
  int supervisor_status = 0;
  bool cancelled = false;
  std::string cancel_message;
  // Set once the attempt left the runner (finished or KillAll()): handlers only unwind.
  bool detached = false;
};

LocalRunner::LocalRunner(asio::io_context& io, LocalRunnerOptions options)
    : io_(io),
      options_(std::move(options)),
      base_env_(CurrentEnvironment()),
      logger_(RunnerLogger()) {}

LocalRunner::~LocalRunner() { KillAll(); }

absl::Status LocalRunner::Start(const AttemptSpec& spec, AttemptCallbacks callbacks) {
  if (attempts_.count(spec.external_name) != 0) {
    return absl::AlreadyExistsError(
        absl::StrCat("attempt \"", spec.external_name, "\" is already running"));
  }
  struct stat st;
  if (stat(spec.work_dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    return absl::FailedPreconditionError(absl::StrCat("work_dir \"", spec.work_dir,
                                                      "\" of attempt \"", spec.external_name,
                                                      "\" is not a directory"));
  }
  // A start that fails leaves no credential copies behind (runners/local/credentials.h).
  absl::Cleanup remove_credentials = [&spec] {
    RemoveStagedCredentials(spec.work_dir).IgnoreError();
  };
  ASSIGN_OR_RETURN(Command command, BuildCommand(spec, options_, base_env_));
  RETURN_IF_ERROR(StageInputArtifacts(spec, command, options_.artifact_dir));
  if (options_.run_as) RETURN_IF_ERROR(HandOver(spec.work_dir, *options_.run_as, &command));
  ASSIGN_OR_RETURN(SpawnedProcess process, SpawnSupervised(command));

  auto attempt = std::make_shared<Attempt>(io_);
  attempt->external_name = spec.external_name;
  attempt->run_id = spec.run_id;
  attempt->node_name = spec.node_name;
  attempt->number = spec.attempt;
  attempt->template_name = spec.resolved.name;
  attempt->program = command.program;
  attempt->work_dir = spec.work_dir;
  attempt->pod = command.pod;
  attempt->cwd = command.work_dir;
  attempt->outputs = spec.resolved.outputs;
  attempt->is_ansible = command.is_ansible;
  attempt->grace_period_ms = std::max<int64_t>(0, spec.grace_period_ms);
  attempt->callbacks = std::move(callbacks);
  attempt->masker = std::make_shared<const SecretMasker>(command.secrets);
  attempt->stdout_mask = SecretMasker::Stream(attempt->masker);
  attempt->stderr_mask = SecretMasker::Stream(attempt->masker);
  attempt->pid = process.pid;

  error_code ec;
  attempt->stdout_pipe.assign(process.stdout_fd, ec);
  if (!ec) attempt->stderr_pipe.assign(process.stderr_fd, ec);
  if (!ec) attempt->report_pipe.assign(process.report_fd, ec);
  if (!ec) attempt->exit_watch.assign(process.pidfd, ec);
  if (!ec && process.events_fd >= 0) attempt->events_pipe.assign(process.events_fd, ec);
  if (ec) {
    for (auto* d : {&attempt->stdout_pipe, &attempt->stderr_pipe, &attempt->report_pipe,
                    &attempt->exit_watch, &attempt->events_pipe}) {
      if (d->is_open()) d->release();
    }
    KillGroup(process.pid);
    Reap(process.pid);
    for (int fd : {process.stdout_fd, process.stderr_fd, process.report_fd, process.pidfd,
                   process.events_fd}) {
      if (fd >= 0) close(fd);
    }
    return absl::UnavailableError(absl::StrCat("cannot watch the process of attempt \"",
                                               spec.external_name, "\": ", ec.message()));
  }

  attempts_.emplace(spec.external_name, attempt);
  std::move(remove_credentials).Cancel();  // from now on the attempt's end removes them
  logger_->info("{}started {} (template {}): {} in process group {}", attempt->Tag(),
                spec.external_name, spec.resolved.name, command.program, process.pid);
  ReadOutput(attempt, Pipe::kStdout);
  ReadOutput(attempt, Pipe::kStderr);
  ReadReport(attempt);
  if (attempt->events_pipe.is_open()) {
    ++attempt->open_pipes;
    ReadEvents(attempt);
  }
  WaitForExit(attempt);
  return absl::OkStatus();
}

void LocalRunner::Cancel(const std::string& external_name, const std::string& message) {
  auto it = attempts_.find(external_name);
  if (it == attempts_.end()) return;
  std::shared_ptr<Attempt> attempt = it->second;
  if (attempt->cancelled || attempt->reaped) return;
  attempt->cancelled = true;
  attempt->cancel_message = message;
  logger_->info("{}cancelling {}: {}", attempt->Tag(), external_name, message);
  kill(attempt->pid, SIGTERM);  // the supervisor relays it to the whole group
  attempt->kill_timer.expires_after(std::chrono::milliseconds(attempt->grace_period_ms));
  attempt->kill_timer.async_wait([attempt](const error_code& ec) {
    if (ec || attempt->detached || attempt->reaped) return;
    KillGroup(attempt->pid);
  });
}

void LocalRunner::KillAll() {
  std::map<std::string, std::shared_ptr<Attempt>> attempts;
  attempts.swap(attempts_);
  for (auto& [name, attempt] : attempts) {
    attempt->detached = true;
    if (!attempt->reaped) {
      KillGroup(attempt->pid);
      Reap(attempt->pid);
    }
    attempt->CloseAll();
    if (absl::Status removed = RemoveStagedCredentials(attempt->work_dir); !removed.ok()) {
      logger_->error("{}{}: {}", attempt->Tag(), name, std::string(removed.message()));
    }
  }
  if (!attempts.empty()) logger_->warn("killed {} running attempt(s)", attempts.size());
}

pid_t LocalRunner::ProcessGroup(const std::string& external_name) const {
  auto it = attempts_.find(external_name);
  if (it == attempts_.end() || it->second->reaped) return -1;
  return it->second->pid;
}

void LocalRunner::ReadOutput(std::shared_ptr<Attempt> attempt, Pipe which) {
  Attempt& a = *attempt;
  auto& pipe = which == Pipe::kStdout ? a.stdout_pipe : a.stderr_pipe;
  auto& buf = which == Pipe::kStdout ? a.stdout_buf : a.stderr_buf;
  pipe.async_read_some(
      asio::buffer(buf), [this, attempt, which, &pipe, &buf](const error_code& ec, size_t n) {
        if (attempt->detached) return;
        Attempt& a = *attempt;
        // Masked before anything sees it; at EOF, with what the mask held.
        SecretMasker::Stream& mask = which == Pipe::kStdout ? a.stdout_mask : a.stderr_mask;
        std::string masked = mask.Feed(std::string_view(buf.data(), n));
        if (ec) masked += mask.Flush();
        if (!masked.empty()) {
          std::string_view data(masked);
          if (which == Pipe::kStdout) {
            // Keep one byte more than the cap: a trailing newline is trimmed
            // before capping.
            const size_t keep = options_.max_result_bytes + 1;
            a.stdout_tail.append(data);
            if (a.stdout_tail.size() > 2 * keep)
              a.stdout_tail.erase(0, a.stdout_tail.size() - keep);
            if (a.is_ansible) a.ansible.FeedStdout(data);
          } else if (a.is_ansible) {
            a.ansible.FeedStderr(data);
          }
          if (a.callbacks.on_log)
            a.callbacks.on_log(which == Pipe::kStdout ? "stdout" : "stderr", data);
          if (a.detached) return;  // the callback called KillAll()
        }
        if (ec) {
          error_code ignored;
          pipe.close(ignored);
          --a.open_pipes;
          MaybeFinish(attempt);
          return;
        }
        ReadOutput(attempt, which);
      });
}

void LocalRunner::ReadReport(std::shared_ptr<Attempt> attempt) {
  Attempt& a = *attempt;
  a.report_pipe.async_read_some(asio::buffer(a.report_buf),
                                [this, attempt](const error_code& ec, size_t n) {
                                  if (attempt->detached) return;
                                  Attempt& a = *attempt;
                                  a.report.append(a.report_buf.data(), n);
                                  if (ec) {
                                    error_code ignored;
                                    a.report_pipe.close(ignored);
                                    --a.open_pipes;
                                    MaybeFinish(attempt);
                                    return;
                                  }
                                  ReadReport(attempt);
                                });
}

void LocalRunner::ReadEvents(std::shared_ptr<Attempt> attempt) {
  Attempt& a = *attempt;
  a.events_pipe.async_read_some(
      asio::buffer(a.events_buf), [this, attempt](const error_code& ec, size_t n) {
        if (attempt->detached) return;
        Attempt& a = *attempt;
        std::string_view data(a.events_buf.data(), n);
        if (a.discarding_event_line) {  // the rest of an oversized line
          const size_t newline = data.find('\n');
          data.remove_prefix(newline == std::string_view::npos ? data.size() : newline + 1);
          a.discarding_event_line = newline == std::string_view::npos;
        }
        a.events_partial.append(data);
        if (ec && !a.events_partial.empty() && a.events_partial.back() != '\n') {
          a.events_partial.push_back('\n');  // the last line, cut short
        }
        size_t start = 0;
        for (size_t end; (end = a.events_partial.find('\n', start)) != std::string::npos;
             start = end + 1) {
          std::string_view line(a.events_partial.data() + start, end - start);
          if (line.empty()) continue;
          const std::string masked = a.masker->Mask(line);
          line = masked;
          if (a.is_ansible) a.ansible.FeedEvent(line);
          if (!a.callbacks.on_event) continue;
          a.callbacks.on_event(line);
          if (a.detached) return;  // the callback called KillAll()
        }
        a.events_partial.erase(0, start);
        if (a.events_partial.size() > kMaxEventLineBytes) {
          logger_->warn("{}{}: dropped an event line longer than {} bytes", a.Tag(),
                        a.external_name, kMaxEventLineBytes);
          a.events_partial.clear();
          a.discarding_event_line = true;
        }
        if (ec) {
          error_code ignored;
          a.events_pipe.close(ignored);
          --a.open_pipes;
          MaybeFinish(attempt);
          return;
        }
        ReadEvents(attempt);
      });
}

void LocalRunner::WaitForExit(std::shared_ptr<Attempt> attempt) {
  attempt->exit_watch.async_wait(
      asio::posix::descriptor_base::wait_read, [this, attempt](const error_code& ec) {
        if (attempt->detached) return;
        if (ec) {
          logger_->warn("{}watching process {} failed: {}", attempt->Tag(), attempt->pid,
                        ec.message());
        }
        int status = 0;
        pid_t reaped;
        do {
          reaped = waitpid(attempt->pid, &status, WNOHANG);
        } while (reaped < 0 && errno == EINTR);
        if (reaped == 0) {  // not exited yet (only after a watch error)
          WaitForExit(attempt);
          return;
        }
        if (reaped < 0) {
          logger_->error("{}process {} of {} was reaped by someone else", attempt->Tag(),
                         attempt->pid, attempt->external_name);
          attempt->lost = true;
        }
        OnReaped(attempt, status);
      });
}

void LocalRunner::OnReaped(const std::shared_ptr<Attempt>& attempt, int status) {
  Attempt& a = *attempt;
  a.reaped = true;
  a.supervisor_status = status;
  // The supervisor ends its group itself; this covers a supervisor killed from outside. The group
  // id stays reserved while any member lives, so it cannot name another group.
  kill(-a.pid, SIGKILL);
  error_code ignored;
  a.exit_watch.close(ignored);
  a.kill_timer.cancel();
  if (a.open_pipes > 0) {
    a.drain_timer.expires_after(std::chrono::milliseconds(options_.drain_timeout_ms));
    a.drain_timer.async_wait([this, attempt](const error_code& ec) {
      if (ec || attempt->detached) return;
      logger_->warn("{}{}: output still held open by a process outside its group; not waiting",
                    attempt->Tag(), attempt->external_name);
      error_code ignored;
      // The pending reads complete with operation_aborted and count the pipes as closed.
      for (auto* pipe : {&attempt->stdout_pipe, &attempt->stderr_pipe, &attempt->report_pipe,
                         &attempt->events_pipe}) {
        if (pipe->is_open()) pipe->close(ignored);
      }
    });
  }
  MaybeFinish(attempt);
}

void LocalRunner::MaybeFinish(const std::shared_ptr<Attempt>& attempt) {
  Attempt& a = *attempt;
  if (!a.reaped || a.open_pipes > 0) return;
  a.detached = true;
  a.drain_timer.cancel();
  auto it = attempts_.find(a.external_name);
  if (it != attempts_.end() && it->second == attempt) attempts_.erase(it);
  if (absl::Status removed = RemoveStagedCredentials(a.work_dir); !removed.ok()) {
    logger_->error("{}{}: {}", a.Tag(), a.external_name, std::string(removed.message()));
  }
  engine::AttemptResult result = Outcome(a);
  a.masker->MaskResult(&result);
  logger_->info("{}finished {}: {}{}{}", a.Tag(), a.external_name,
                engine::NodePhaseName(result.phase), result.message.empty() ? "" : ": ",
                result.message);
  if (a.callbacks.on_finished) a.callbacks.on_finished(std::move(result));
}

engine::AttemptResult LocalRunner::Outcome(Attempt& a) const {
  engine::AttemptResult result;
  const SpawnReport report = ParseSpawnReport(a.report);
  switch (report.failed_stage) {
    case SpawnReport::Stage::kNone:
      break;
    case SpawnReport::Stage::kChdir:
      result.phase = engine::NodePhase::kError;
      result.message = absl::StrCat("cannot enter the working directory ", a.cwd, ": ",
                                    std::strerror(report.failed_errno));
      return result;
    case SpawnReport::Stage::kExec:
      result.phase = engine::NodePhase::kError;
      result.message =
          absl::StrCat("cannot execute ", a.program, ": ", std::strerror(report.failed_errno));
      return result;
    case SpawnReport::Stage::kPod:
      result.phase = engine::NodePhase::kError;
      result.message = absl::StrCat(
          "cannot give the pod its own filesystem (", PodMountStepName(report.failed_pod_step),
          ": ", std::strerror(report.failed_errno),
          "); dagd needs root or unprivileged user namespaces and overlayfs for this, or start "
          "dagd with --pod-filesystem=host to run containers on the host's filesystem");
      return result;
    case SpawnReport::Stage::kFork:
      result.phase = engine::NodePhase::kError;
      result.message = absl::StrCat("cannot fork: ", std::strerror(report.failed_errno));
      return result;
    case SpawnReport::Stage::kUser:
      result.phase = engine::NodePhase::kError;
      result.message = absl::StrCat("cannot become the user of --run-as-user: ",
                                    std::strerror(report.failed_errno));
      return result;
  }

  if (!report.wait_status.has_value() && !a.cancelled &&
      (a.lost || WIFEXITED(a.supervisor_status))) {
    // The supervisor exited without seeing the command end: it could not set itself up.
    result.phase = engine::NodePhase::kError;
    result.message = a.lost ? "dagd lost track of the attempt's process"
                            : absl::StrCat("the attempt's supervisor failed (exit code ",
                                           WEXITSTATUS(a.supervisor_status), ")");
    return result;
  }
  // The command's own status, or the supervisor's if the group was killed from outside.
  const int status = report.wait_status.value_or(a.supervisor_status);
  if (WIFEXITED(status)) result.exit_code = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) result.exit_code = 128 + WTERMSIG(status);

  if (a.cancelled) {
    result.phase = engine::NodePhase::kFailed;
    result.message = a.cancel_message;
  } else if (WIFSIGNALED(status)) {
    result.phase = engine::NodePhase::kFailed;
    result.message = absl::StrCat("terminated by signal ", WTERMSIG(status));
  } else if (result.exit_code != 0 && a.is_ansible) {
    engine::AttemptResult verdict = a.ansible.Classify(result.exit_code);
    result.phase = verdict.phase;
    result.message = std::move(verdict.message);
  } else if (result.exit_code != 0) {
    result.phase = engine::NodePhase::kFailed;
    result.message = absl::StrCat("exit code ", result.exit_code);
  } else {
    result.phase = engine::NodePhase::kSucceeded;
    CollectOutputs(a, &result);
  }
  return result;
}

void LocalRunner::CollectOutputs(const Attempt& a, engine::AttemptResult* result) const {
  if (a.is_ansible) {
    // An ansible node's result is its set_stats data: messages, not console text.
    result->result = a.ansible.custom_stats().dump();
  } else {
    std::string out = a.stdout_tail;
    TrimOneNewline(&out);
    if (out.size() > options_.max_result_bytes) {
      out.erase(0, out.size() - options_.max_result_bytes);
    }
    result->result = std::move(out);
  }

  for (const engine::Parameter& param : a.outputs.parameters) {
    if (!param.value_from.has_value()) continue;
    if (!param.value_from->stats.empty()) {
      const std::string& key = param.value_from->stats;
      const nlohmann::json& stats = a.ansible.custom_stats();
      auto it = stats.find(key);
      if (it != stats.end()) {
        result->parameters[param.name] = it->is_string() ? it->get<std::string>() : it->dump();
      } else if (param.value_from->default_value.has_value()) {
        result->parameters[param.name] = *param.value_from->default_value;
      } else {
        result->phase = engine::NodePhase::kError;
        result->message =
            absl::StrCat("output parameter \"", param.name, "\": the playbook did not set_stats \"",
                         key, "\"", stats.empty() ? " (it set no stats at all)" : "",
                         "; add a set_stats task for it or give valueFrom a default");
        result->parameters.clear();
        return;
      }
      continue;
    }
    if (param.value_from->path.empty()) continue;
    const std::string& path = param.value_from->path;
    absl::StatusOr<std::string> host_path = CommandPath(a.cwd, path);
    if (a.pod.has_value()) host_path = a.pod->Resolve(*host_path, a.work_dir + "/.dagd/outputs");
    absl::StatusOr<std::string> value =
        host_path.ok() ? ReadWholeFile(*host_path) : host_path.status();
    if (!value.ok()) {
      if (!param.value_from->default_value.has_value()) {
        result->phase = engine::NodePhase::kError;
        result->message = absl::StrCat("output parameter \"", param.name, "\": cannot read ", path,
                                       ": ", value.status().message());
        result->parameters.clear();
        return;
      }
      value = *param.value_from->default_value;
    }
    TrimOneNewline(&*value);
    result->parameters[param.name] = *std::move(value);
  }

  for (const engine::Artifact& artifact : a.outputs.artifacts) {
    const std::string where = absl::StrCat("output artifact \"", artifact.name, "\"");
    const std::string path = CommandPath(a.cwd, artifact.path);
    absl::StatusOr<std::string> source = a.pod.has_value()
                                             ? a.pod->Resolve(path, a.work_dir + "/.dagd/outputs")
                                             : absl::StatusOr<std::string>(path);
    struct stat st;
    if (source.ok() && !a.pod.has_value() && lstat(source->c_str(), &st) != 0) {
      source = absl::NotFoundError(absl::StrCat(path, ": ", std::strerror(errno)));
    }
    absl::Status saved = source.status();
    absl::StatusOr<std::string> stored = StorePath(options_.artifact_dir, artifact.key);
    if (saved.ok()) saved = stored.status();
    if (saved.ok()) {
      saved = SaveArtifact(
          *source, artifact.archive_none ? ArtifactArchive::kNone : ArtifactArchive::kTgz, *stored);
    }
    if (saved.ok()) {
      result->artifacts[artifact.name] = artifact.key;
    } else if (!(artifact.optional && absl::IsNotFound(saved))) {
      result->phase = engine::NodePhase::kError;
      result->message = absl::StrCat(
          where, ": ", saved.message(),
          absl::IsNotFound(saved) ? "; write it there, or mark the artifact optional" : "");
      result->parameters.clear();
      result->artifacts.clear();
      return;
    }
  }
}

}  // namespace dagd::runners::local
