#include "runners/kubernetes/kubernetes_runner.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "engine/status_macros.h"
#include "logging/log.h"
#include "runners/kubernetes/client/errors.h"
#include "runners/kubernetes/client/kube_client.h"
#include "runners/kubernetes/pod_log.h"
#include "runners/local/ansible_output.h"

namespace dagd::runners::kubernetes {
namespace {

namespace asio = boost::asio;
using nlohmann::json;

std::shared_ptr<spdlog::logger> Log() {
  static std::shared_ptr<spdlog::logger> logger = logging::Get("runner.kubernetes");
  return logger;
}

constexpr char kManagedBy[] = "app.kubernetes.io/managed-by=dagd";

// The Job's final condition, if it has one: ("Complete"|"Failed", reason, message).
struct JobEnd {
  bool succeeded = false;
  std::string reason;
  std::string message;
};

std::optional<JobEnd> JobEnded(const json& job) {
  const json& conditions = job["status"].value("conditions", json::array());
  for (const json& condition : conditions) {
    if (condition.value("status", "") != "True") continue;
    const std::string type = condition.value("type", "");
    if (type == "Complete") return JobEnd{true, "", ""};
    if (type == "Failed") {
      return JobEnd{false, condition.value("reason", ""), condition.value("message", "")};
    }
  }
  return std::nullopt;
}

}  // namespace

class KubernetesRunner::Impl : public std::enable_shared_from_this<Impl> {
 public:
  struct Attempt {
    AttemptSpec spec;
    AttemptCallbacks callbacks;
    std::string job_name;
    bool is_ansible = false;
    local::AnsibleOutputScanner scanner;
    std::unique_ptr<PodLogDemux> demux;
    std::string log_tail;
    std::shared_ptr<CancelToken> log_cancel = std::make_shared<CancelToken>();
    bool log_started = false;
    bool log_done = false;
    std::optional<JobEnd> end;
    int exit_code = -1;
    bool exit_code_known = false;
    std::optional<engine::AttemptResult> verdict;  // set when the outcome is decided
    std::unique_ptr<asio::steady_timer> drain_timer;
    bool finished = false;
  };

  // The RunTag of an attempt's log lines.
  static std::string Tag(const Attempt& attempt) {
    return logging::RunTag(attempt.spec.run_id, attempt.spec.node_name, attempt.spec.attempt);
  }

  Impl(asio::io_context& io, std::shared_ptr<KubeClient> client, KubernetesRunnerOptions options)
      : io_(io), client_(std::move(client)), options_(std::move(options)), pool_(2) {}

  void StartWatch() {
    auto self = shared_from_this();
    watch_thread_ = std::thread([self] { self->WatchLoop(); });
  }

  void Shutdown() {
    if (stopped_.exchange(true)) return;
    watch_cancel_.Cancel();
    {
      std::lock_guard<std::mutex> lock(sleep_mu_);  // wake a watch loop waiting out a backoff
    }
    sleep_cv_.notify_all();
    for (auto& [name, attempt] : attempts_) attempt->log_cancel->Cancel();
    attempts_.clear();
    by_job_.clear();
    if (watch_thread_.joinable()) watch_thread_.join();
    pool_.join();
    std::lock_guard<std::mutex> lock(log_threads_mu_);
    for (std::thread& t : log_threads_) {
      if (t.joinable()) t.join();
    }
    log_threads_.clear();
  }

  absl::Status Start(const AttemptSpec& spec, AttemptCallbacks callbacks, bool reattach) {
    if (attempts_.count(spec.external_name) != 0) {
      return absl::AlreadyExistsError(
          absl::StrCat("attempt \"", spec.external_name, "\" is already running"));
    }
    auto attempt = std::make_shared<Attempt>();
    attempt->spec = spec;
    attempt->callbacks = std::move(callbacks);
    attempt->is_ansible = spec.resolved.type == engine::TemplateType::kAnsible;
    std::optional<JobObjects> objects;
    if (!reattach) {
      absl::StatusOr<JobObjects> built = BuildJobObjects(spec, options_.job);
      if (!built.ok()) return built.status();
      attempt->job_name = built->job_name;
      objects = *std::move(built);
    } else {
      attempt->job_name = JobName(spec.external_name);
    }
    Attempt* raw = attempt.get();
    attempt->demux =
        std::make_unique<PodLogDemux>([this, raw](std::string_view text) { OnOutput(raw, text); },
                                      [this, raw](std::string_view event) { OnEvent(raw, event); });
    attempts_[spec.external_name] = attempt;
    by_job_[attempt->job_name] = spec.external_name;

    auto self = shared_from_this();
    asio::post(pool_, [self, attempt, objects = std::move(objects), reattach] {
      absl::Status status = reattach ? self->Adopt(*attempt) : self->Create(*attempt, *objects);
      asio::post(self->io_, [self, attempt, status] {
        if (attempt->finished || self->stopped_) return;
        if (!status.ok()) {
          engine::AttemptResult result;
          result.phase = engine::NodePhase::kError;
          result.message = std::string(status.message());
          self->Finish(attempt, std::move(result));
          return;
        }
        self->FollowLog(attempt);
      });
    });
    Log()->info("{}{} attempt {} as Job {}/{}",
                logging::RunTag(spec.run_id, spec.node_name, spec.attempt),
                reattach ? "reattached" : "started", spec.external_name,
                options_.job.namespace_name, attempt->job_name);
    return absl::OkStatus();
  }

  void Cancel(const std::string& external_name, const std::string& message) {
    auto it = attempts_.find(external_name);
    if (it == attempts_.end() || it->second->verdict) return;
    std::shared_ptr<Attempt> attempt = it->second;
    engine::AttemptResult result;
    result.phase = engine::NodePhase::kFailed;
    result.message = message;
    attempt->verdict = result;
    attempt->log_cancel->Cancel();
    auto self = shared_from_this();
    const std::string path = JobPath(attempt->job_name);
    asio::post(pool_, [self, path] {
      json options = {
          {"kind", "DeleteOptions"}, {"apiVersion", "v1"}, {"propagationPolicy", "Background"}};
      auto deleted = self->client_->Request("DELETE", path, {}, options);
      if (!deleted.ok() && !absl::IsNotFound(deleted.status())) {
        Log()->warn("deleting {}: {}", path, deleted.status().ToString());
      }
    });
    // Never inside Cancel(): the caller may be iterating over its running attempts.
    asio::post(io_, [self, attempt, result = std::move(result)]() mutable {
      self->Finish(attempt, std::move(result));
    });
  }

  size_t running() const { return attempts_.size(); }

 private:
  std::string JobPath(const std::string& name = "") const {
    std::string path =
        absl::StrCat("/apis/batch/v1/namespaces/", options_.job.namespace_name, "/jobs");
    if (!name.empty()) absl::StrAppend(&path, "/", name);
    return path;
  }

  // Pool: the ConfigMap, then the Job; an existing Job of this name is adopted. The ConfigMap
  // is then owned by the Job, so that Kubernetes deletes it with the Job (TTL or Cancel).
  absl::Status Create(const Attempt& attempt, const JobObjects& objects) {
    const std::string config_maps =
        absl::StrCat("/api/v1/namespaces/", options_.job.namespace_name, "/configmaps");
    if (objects.config_map) {
      auto made = client_->Request("POST", config_maps, {}, *objects.config_map);
      if (!made.ok() && !absl::IsAlreadyExists(made.status())) return made.status();
    }
    auto made = client_->Request("POST", JobPath(), {}, objects.job);
    if (!made.ok() && absl::IsAlreadyExists(made.status())) {
      made = client_->Request("GET", JobPath(objects.job_name));
    }
    if (!made.ok()) return made.status();
    if (objects.config_map) {
      json owner = {{"metadata",
                     {{"ownerReferences",
                       {{{"apiVersion", "batch/v1"},
                         {"kind", "Job"},
                         {"name", objects.job_name},
                         {"uid", made->json["metadata"].value("uid", "")}}}}}}};
      auto owned =
          client_->Request("PATCH", absl::StrCat(config_maps, "/", objects.job_name), {}, owner,
                           RequestOptions{.content_type = "application/merge-patch+json"});
      if (!owned.ok()) {
        Log()->warn("ConfigMap {} is not owned by its Job and stays after it: {}", objects.job_name,
                    owned.status().ToString());
      }
    }
    return absl::OkStatus();
  }

  absl::Status Adopt(const Attempt& attempt) {
    auto job = client_->Request("GET", JobPath(attempt.job_name));
    if (absl::IsNotFound(job.status())) {
      return absl::NotFoundError(absl::StrCat("Job ", options_.job.namespace_name, "/",
                                              attempt.job_name,
                                              " of this attempt is gone (deleted while dagd was "
                                              "down, or removed by its TTL)"));
    }
    if (!job.ok()) return job.status();
    if (auto end = JobEnded(job->json)) {
      auto self = shared_from_this();
      const std::string name = attempt.job_name;
      json copy = job->json;
      asio::post(io_, [self, copy] { self->OnJob(copy); });
    }
    return absl::OkStatus();
  }

  // Io thread: one thread follows the pod's log for as long as the Job lives.
  void FollowLog(const std::shared_ptr<Attempt>& attempt) {
    if (attempt->log_started) return;
    attempt->log_started = true;
    auto self = shared_from_this();
    const std::string ns = options_.job.namespace_name;
    const std::string job_name = attempt->job_name;
    auto cancel = attempt->log_cancel;
    std::lock_guard<std::mutex> lock(log_threads_mu_);
    log_threads_.emplace_back([self, attempt, ns, job_name, cancel] {
      absl::Status status = self->ReadLog(ns, job_name, attempt, cancel.get());
      if (!status.ok() && !absl::IsCancelled(status)) {
        Log()->warn("{}log of Job {}/{}: {}", Tag(*attempt), ns, job_name, status.ToString());
      }
      asio::post(self->io_, [self, attempt] {
        attempt->log_done = true;
        self->MaybeFinish(attempt);
      });
    });
  }

  // Log thread: waits for the Job's pod to start, then streams its log until it ends. A stream
  // that breaks is opened again; the bytes already delivered are skipped (a container's log
  // does not change), so nothing is lost or repeated.
  absl::Status ReadLog(const std::string& ns, const std::string& job_name,
                       const std::shared_ptr<Attempt>& attempt, CancelToken* cancel) {
    auto self = shared_from_this();
    size_t delivered = 0;
    for (int tries = 0; !cancel->IsCancelled(); ++tries) {
      auto pods = client_->Request("GET", absl::StrCat("/api/v1/namespaces/", ns, "/pods"),
                                   {{"labelSelector", absl::StrCat("job-name=", job_name)}},
                                   std::nullopt, RequestOptions{.cancel = cancel});
      std::string pod;
      bool started = false;
      if (pods.ok()) {
        for (const json& item : pods->json.value("items", json::array())) {
          const std::string phase = item["status"].value("phase", "Pending");
          pod = item["metadata"].value("name", "");
          started = phase != "Pending";
        }
      } else if (absl::IsCancelled(pods.status())) {
        return pods.status();
      } else {
        // Whatever the API answers now (an outage, a 410 on the list), the log is still there:
        // ask again until the attempt ends, when the drain timer cancels this.
        Log()->info("{}pods of Job {}/{}: {}; asking again", Tag(*attempt), ns, job_name,
                    pods.status().ToString());
      }
      if (started) {
        size_t seen = 0;
        absl::Status streamed = client_->Stream(
            absl::StrCat("/api/v1/namespaces/", ns, "/pods/", pod, "/log"),
            {{"follow", "true"}, {"container", "main"}},
            [self, attempt, &seen, &delivered](std::string_view bytes) {
              const size_t skip = delivered > seen ? std::min(delivered - seen, bytes.size()) : 0;
              seen += bytes.size();
              bytes.remove_prefix(skip);
              if (bytes.empty()) return absl::OkStatus();
              delivered += bytes.size();
              asio::post(self->io_, [self, attempt, data = std::string(bytes)] {
                if (!attempt->finished) attempt->demux->Feed(data);
              });
              return absl::OkStatus();
            },
            cancel);
        if (streamed.ok() || absl::IsCancelled(streamed)) return streamed;
        Log()->info("{}log of Job {}/{} broke ({}); reading on", Tag(*attempt), ns, job_name,
                    streamed.ToString());
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(std::min(100 * (tries + 1), 1000)));
    }
    return absl::CancelledError("stopped following");
  }

  // Watch thread: list dagd's Jobs, then watch from the list's resourceVersion; again on 410.
  void WatchLoop() {
    int64_t backoff = options_.initial_backoff_ms;
    const std::string path = JobPath();
    while (!watch_cancel_.IsCancelled()) {
      auto listed = client_->Request("GET", path, {{"labelSelector", kManagedBy}}, std::nullopt,
                                     RequestOptions{.cancel = &watch_cancel_});
      if (!listed.ok()) {
        if (absl::IsCancelled(listed.status())) return;
        Log()->warn("listing Jobs: {}; again in {} ms", listed.status().ToString(), backoff);
        SleepFor(backoff);
        backoff = std::min(backoff * 2, options_.max_backoff_ms);
        continue;
      }
      for (const json& job : listed->json.value("items", json::array())) PostJob(job);
      std::string version = listed->json["metadata"].value("resourceVersion", "");
      // Watch until the stream breaks; a clean end (timeoutSeconds) resumes from `version`.
      while (!watch_cancel_.IsCancelled()) {
        bool gone = false;
        absl::Status watched = client_->WatchEvents(
            path,
            {{"labelSelector", kManagedBy},
             {"watch", "1"},
             {"allowWatchBookmarks", "true"},
             {"resourceVersion", version},
             {"timeoutSeconds", "300"}},
            [&](const json& event) {
              const std::string type = event.value("type", "");
              const json& object = event["object"];
              if (type == "ERROR") {
                absl::Status error = StatusFromKubernetesStatus(client_->server(), object);
                gone = IsGone(error);
                return error;
              }
              version = object["metadata"].value("resourceVersion", version);
              if (type == "ADDED" || type == "MODIFIED") PostJob(object);
              if (type == "DELETED") PostDeleted(object["metadata"].value("name", ""));
              return absl::OkStatus();
            },
            &watch_cancel_, StreamOptions{.idle_timeout = std::chrono::minutes(5)});
        if (absl::IsCancelled(watched)) return;
        if (watched.ok()) {
          backoff = options_.initial_backoff_ms;
          continue;  // the server's timeout: watch on from `version`
        }
        if (gone || IsGone(watched)) {
          Log()->info("watch of Jobs expired (410 Gone); listing again");
        } else {
          Log()->warn("watch of Jobs broke: {}; listing again in {} ms", watched.ToString(),
                      backoff);
          SleepFor(backoff);
          backoff = std::min(backoff * 2, options_.max_backoff_ms);
        }
        break;  // list again: completions missed meanwhile are in the list
      }
    }
  }

  void SleepFor(int64_t ms) {
    std::unique_lock<std::mutex> lock(sleep_mu_);
    sleep_cv_.wait_for(lock, std::chrono::milliseconds(ms),
                       [this] { return watch_cancel_.IsCancelled(); });
  }

  void PostJob(const json& job) {
    auto self = shared_from_this();
    asio::post(io_, [self, job] { self->OnJob(job); });
  }

  void PostDeleted(const std::string& name) {
    auto self = shared_from_this();
    asio::post(io_, [self, name] { self->OnJobDeleted(name); });
  }

  // Io thread.
  void OnJob(const json& job) {
    if (stopped_) return;
    auto it = by_job_.find(job["metadata"].value("name", ""));
    if (it == by_job_.end()) return;
    auto attempt_it = attempts_.find(it->second);
    if (attempt_it == attempts_.end()) return;
    std::shared_ptr<Attempt> attempt = attempt_it->second;
    if (attempt->end || attempt->verdict) return;
    std::optional<JobEnd> end = JobEnded(job);
    if (!end) {
      if (job["status"].value("active", 0) > 0) FollowLog(attempt);
      return;
    }
    attempt->end = end;
    FollowLog(attempt);  // a Job that ended before its log was followed: read it whole
    if (end->succeeded || end->reason == "DeadlineExceeded") {
      attempt->exit_code_known = true;
      attempt->exit_code = end->succeeded ? 0 : -1;
      ArmDrain(attempt);
      MaybeFinish(attempt);
      return;
    }
    // The container's exit code, from the pod.
    auto self = shared_from_this();
    const std::string ns = options_.job.namespace_name;
    const std::string name = attempt->job_name;
    asio::post(pool_, [self, attempt, ns, name] {
      int code = -1;
      auto pods = self->client_->Request("GET", absl::StrCat("/api/v1/namespaces/", ns, "/pods"),
                                         {{"labelSelector", absl::StrCat("job-name=", name)}});
      if (pods.ok()) {
        for (const json& pod : pods->json.value("items", json::array())) {
          for (const json& c : pod["status"].value("containerStatuses", json::array())) {
            if (c.value("name", "") != "main") continue;
            code = c["state"]["terminated"].value("exitCode", code);
          }
        }
      }
      asio::post(self->io_, [self, attempt, code] {
        attempt->exit_code_known = true;
        attempt->exit_code = code;
        self->ArmDrain(attempt);
        self->MaybeFinish(attempt);
      });
    });
  }

  void OnJobDeleted(const std::string& name) {
    auto it = by_job_.find(name);
    if (it == by_job_.end()) return;
    auto attempt_it = attempts_.find(it->second);
    if (attempt_it == attempts_.end()) return;
    std::shared_ptr<Attempt> attempt = attempt_it->second;
    if (attempt->end || attempt->verdict) return;
    engine::AttemptResult result;
    result.phase = engine::NodePhase::kError;
    result.message = absl::StrCat("Job ", options_.job.namespace_name, "/", name,
                                  " was deleted before it finished");
    attempt->log_cancel->Cancel();
    Finish(attempt, std::move(result));
  }

  void ArmDrain(const std::shared_ptr<Attempt>& attempt) {
    if (attempt->drain_timer) return;
    attempt->drain_timer = std::make_unique<asio::steady_timer>(
        io_, std::chrono::milliseconds(options_.drain_timeout_ms));
    auto self = shared_from_this();
    attempt->drain_timer->async_wait([self, attempt](const boost::system::error_code& ec) {
      if (ec || attempt->finished) return;
      Log()->warn("{}Job {}: log not complete after {} ms; finishing without the rest",
                  Tag(*attempt), attempt->job_name, self->options_.drain_timeout_ms);
      attempt->log_cancel->Cancel();
      attempt->log_done = true;
      self->MaybeFinish(attempt);
    });
  }

  void OnOutput(Attempt* attempt, std::string_view text) {
    if (attempt->is_ansible) attempt->scanner.FeedStdout(text);
    attempt->log_tail.append(text);
    const size_t keep = options_.max_result_bytes + 1;
    if (attempt->log_tail.size() > 2 * keep) {
      attempt->log_tail.erase(0, attempt->log_tail.size() - keep);
    }
    if (attempt->callbacks.on_log) attempt->callbacks.on_log("stdout", text);
  }

  void OnEvent(Attempt* attempt, std::string_view line) {
    if (attempt->is_ansible) attempt->scanner.FeedEvent(line);
    if (attempt->callbacks.on_event) attempt->callbacks.on_event(line);
  }

  void MaybeFinish(const std::shared_ptr<Attempt>& attempt) {
    if (attempt->finished || !attempt->end || !attempt->exit_code_known || !attempt->log_done) {
      return;
    }
    attempt->demux->Finish();
    Finish(attempt, Outcome(*attempt));
  }

  engine::AttemptResult Outcome(const Attempt& a) const {
    engine::AttemptResult result;
    result.exit_code = a.exit_code;
    const engine::Template& t = a.spec.resolved;
    if (!a.end->succeeded) {
      if (a.end->reason == "DeadlineExceeded") {
        result.phase = engine::NodePhase::kFailed;
        result.message = absl::StrCat("timeout: the Job ran longer than its deadline (",
                                      t.timeout.empty() ? "activeDeadlineSeconds" : t.timeout, ")");
      } else if (a.is_ansible && a.exit_code > 0) {
        engine::AttemptResult verdict = a.scanner.Classify(a.exit_code);
        result.phase = verdict.phase;
        result.message = std::move(verdict.message);
      } else {
        result.phase = engine::NodePhase::kFailed;
        result.message = a.exit_code >= 0
                             ? absl::StrCat("exit code ", a.exit_code)
                             : absl::StrCat("Job failed: ", a.end->reason, " ", a.end->message);
      }
      return result;
    }
    result.phase = engine::NodePhase::kSucceeded;
    if (a.is_ansible) {
      result.result = a.scanner.custom_stats().dump();
    } else {
      std::string out = a.log_tail;
      if (!out.empty() && out.back() == '\n') out.pop_back();
      if (out.size() > options_.max_result_bytes) {
        out.erase(0, out.size() - options_.max_result_bytes);
      }
      result.result = std::move(out);
    }
    for (const engine::Parameter& p : t.outputs.parameters) {
      if (!p.value_from) continue;
      if (!p.value_from->path.empty()) {
        result.phase = engine::NodePhase::kError;
        result.message = absl::StrCat(
            "output parameter \"", p.name,
            "\": valueFrom.path cannot be read from a finished pod on the kubernetes runner; "
            "run the template on the argo or local runner");
        result.parameters.clear();
        return result;
      }
      if (p.value_from->stats.empty()) continue;
      const json& stats = a.scanner.custom_stats();
      auto it = stats.find(p.value_from->stats);
      if (it != stats.end()) {
        result.parameters[p.name] = it->is_string() ? it->get<std::string>() : it->dump();
      } else if (p.value_from->default_value) {
        result.parameters[p.name] = *p.value_from->default_value;
      } else {
        result.phase = engine::NodePhase::kError;
        result.message =
            absl::StrCat("output parameter \"", p.name, "\": the playbook did not set_stats \"",
                         p.value_from->stats, "\"");
        result.parameters.clear();
        return result;
      }
    }
    return result;
  }

  void Finish(const std::shared_ptr<Attempt>& attempt, engine::AttemptResult result) {
    if (attempt->finished || stopped_) return;  // after KillAll no callback follows
    attempt->finished = true;
    if (attempt->drain_timer) attempt->drain_timer->cancel();
    attempts_.erase(attempt->spec.external_name);
    by_job_.erase(attempt->job_name);
    Log()->info("{}finished {} (Job {}): {}{}{}", Tag(*attempt), attempt->spec.external_name,
                attempt->job_name, engine::NodePhaseName(result.phase),
                result.message.empty() ? "" : ": ", result.message);
    if (attempt->callbacks.on_finished) attempt->callbacks.on_finished(std::move(result));
  }

  asio::io_context& io_;
  std::shared_ptr<KubeClient> client_;
  const KubernetesRunnerOptions options_;
  asio::thread_pool pool_;
  std::thread watch_thread_;
  CancelToken watch_cancel_;
  std::mutex sleep_mu_;
  std::condition_variable sleep_cv_;
  std::atomic<bool> stopped_{false};
  std::mutex log_threads_mu_;
  std::vector<std::thread> log_threads_;
  // Io thread only.
  std::map<std::string, std::shared_ptr<Attempt>> attempts_;  // by external name
  std::map<std::string, std::string> by_job_;                 // job name → external name
};

KubernetesRunner::KubernetesRunner(asio::io_context& io, std::shared_ptr<KubeClient> client,
                                   KubernetesRunnerOptions options)
    : impl_(std::make_shared<Impl>(io, std::move(client), std::move(options))) {
  impl_->StartWatch();
}

KubernetesRunner::~KubernetesRunner() { impl_->Shutdown(); }

absl::Status KubernetesRunner::Start(const AttemptSpec& spec, AttemptCallbacks callbacks) {
  RETURN_IF_ERROR(RefuseArtifacts(spec, "kubernetes"));
  return impl_->Start(spec, std::move(callbacks), /*reattach=*/false);
}

absl::Status KubernetesRunner::Reattach(const AttemptSpec& spec, AttemptCallbacks callbacks) {
  return impl_->Start(spec, std::move(callbacks), /*reattach=*/true);
}

void KubernetesRunner::Cancel(const std::string& external_name, const std::string& message) {
  impl_->Cancel(external_name, message);
}

void KubernetesRunner::KillAll() { impl_->Shutdown(); }

size_t KubernetesRunner::running() const { return impl_->running(); }

}  // namespace dagd::runners::kubernetes
