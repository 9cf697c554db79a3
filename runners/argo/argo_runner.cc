#include "runners/argo/argo_runner.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/cord.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "engine/status_macros.h"
#include "logging/log.h"
#include "runners/kubernetes/ansible_pod.h"
#include "runners/kubernetes/client/errors.h"
#include "runners/kubernetes/client/kube_client.h"
#include "runners/kubernetes/job_spec.h"
#include "runners/kubernetes/pod_log.h"
#include "runners/local/ansible_output.h"

namespace dagd::runners::argo {
namespace {

namespace asio = boost::asio;
using kubernetes::CancelToken;
using kubernetes::KubeClient;
using kubernetes::Query;
using kubernetes::RequestOptions;
using kubernetes::StreamOptions;
using nlohmann::json;

std::shared_ptr<spdlog::logger> Log() {
  static std::shared_ptr<spdlog::logger> logger = logging::Get("runner.argo");
  return logger;
}

constexpr char kManagedBy[] = "app.kubernetes.io/managed-by=dagd";
constexpr char kWorkflowLabel[] = "workflows.argoproj.io/workflow";
// Server-side length of one watch; the stream then ends cleanly and is resumed.
constexpr char kWatchSeconds[] = "300";

// A sleep that ends early when its CancelToken is cancelled, Wake() is called (a wake that comes
// while nobody sleeps ends the next sleep at once), or a condition holds. Thread-safe.
class Sleeper {
 public:
  explicit Sleeper(CancelToken* cancel) : cancel_(cancel) {
    id_ = cancel_->Register([this] { Wake(); });
  }
  ~Sleeper() {
    if (id_ != 0) cancel_->Unregister(id_);
  }
  Sleeper(const Sleeper&) = delete;
  Sleeper& operator=(const Sleeper&) = delete;

  void Wake() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      woken_ = true;
    }
    cv_.notify_all();
  }

  // Sleeps `ms`, or until cancelled, woken, or `until()` holds (checked under the lock that
  // Wake() takes, so a state change followed by Wake() is never missed).
  void SleepFor(int64_t ms, const std::function<bool()>& until = nullptr) {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait_for(lock, std::chrono::milliseconds(ms),
                 [&] { return woken_ || cancel_->IsCancelled() || (until && until()); });
    woken_ = false;
  }

 private:
  CancelToken* cancel_;
  uint64_t id_ = 0;
  std::mutex mu_;
  std::condition_variable cv_;
  bool woken_ = false;
};

bool IsCompleted(const std::string& phase) {
  return phase == "Succeeded" || phase == "Failed" || phase == "Error";
}

std::string Phase(const json& workflow) {
  auto status = workflow.find("status");
  if (status == workflow.end() || !status->is_object()) return "";
  auto phase = status->find("phase");
  return phase != status->end() && phase->is_string() ? phase->get<std::string>() : "";
}

// object[key] without const operator[]'s undefined behaviour for a missing key: null then.
const json& At(const json& object, const char* key) {
  static const json* const kNull = new json();
  if (!object.is_object()) return *kNull;
  auto it = object.find(key);
  return it != object.end() ? *it : *kNull;
}

std::string StringAt(const json& object, const char* key) {
  if (!object.is_object()) return "";
  auto it = object.find(key);
  return it != object.end() && it->is_string() ? it->get<std::string>() : "";
}

std::string NameOf(const json& object) {
  auto meta = object.find("metadata");
  return meta != object.end() ? StringAt(*meta, "name") : "";
}

// The Pod node of a one-template Workflow: the root node (its id is the Workflow's name), or
// else the Pod node that started last.
const json* PodNode(const json& workflow) {
  auto status = workflow.find("status");
  if (status == workflow.end() || !status->is_object()) return nullptr;
  auto nodes = status->find("nodes");
  if (nodes == status->end() || !nodes->is_object()) return nullptr;
  auto root = nodes->find(NameOf(workflow));
  if (root != nodes->end() && StringAt(*root, "type") == "Pod") return &*root;
  const json* found = nullptr;
  for (const json& node : *nodes) {
    if (StringAt(node, "type") != "Pod") continue;
    if (found == nullptr || StringAt(node, "startedAt") >= StringAt(*found, "startedAt")) {
      found = &node;
    }
  }
  return found;
}

// outputs.exitCode is a string in Argo's API ("3"); -1 when absent.
int ExitCodeOf(const json* node) {
  if (node == nullptr) return -1;
  auto outputs = node->find("outputs");
  if (outputs == node->end() || !outputs->is_object()) return -1;
  auto code = outputs->find("exitCode");
  if (code == outputs->end()) return -1;
  if (code->is_number_integer()) return code->get<int>();
  int value = -1;
  if (code->is_string() && absl::SimpleAtoi(code->get<std::string>(), &value)) return value;
  return -1;
}

// Whether Argo's words say a deadline ended the step (the template's timeout or
// activeDeadlineSeconds, or the Workflow's).
bool IsDeadline(const std::string& message) {
  return absl::StrContains(message, "deadline") || absl::StrContains(message, "Max duration");
}

}  // namespace

class ArgoRunner::Impl : public std::enable_shared_from_this<Impl> {
 public:
  struct Attempt {
    AttemptSpec spec;
    AttemptCallbacks callbacks;
    std::string workflow_name;
    bool is_ansible = false;
    local::AnsibleOutputScanner scanner;
    std::unique_ptr<kubernetes::PodLogDemux> demux;
    std::string log_tail;
    std::shared_ptr<CancelToken> log_cancel = std::make_shared<CancelToken>();
    // Woken when the end is seen, so that a log thread waiting to follow again looks at once.
    std::shared_ptr<Sleeper> log_sleeper = std::make_shared<Sleeper>(log_cancel.get());
    std::atomic<bool> ended{false};  // set on the io thread, read by the log thread
    bool submitted = false;          // the Workflow exists (or the submission gave up)
    bool terminate_when_submitted = false;
    bool log_started = false;
    bool log_done = false;
    std::optional<json> end;  // the completed Workflow
    std::optional<engine::AttemptResult> verdict;
    std::unique_ptr<asio::steady_timer> drain_timer;
    bool finished = false;
  };

  // The RunTag of an attempt's log lines.
  static std::string Tag(const Attempt& attempt) {
    return logging::RunTag(attempt.spec.run_id, attempt.spec.node_name, attempt.spec.attempt);
  }

  Impl(asio::io_context& io, std::shared_ptr<KubeClient> client, ArgoRunnerOptions options)
      : io_(io),
        client_(std::move(client)),
        options_(std::move(options)),
        ns_(options_.workflow.namespace_name),
        pool_(2),
        watch_sleeper_(&watch_cancel_) {}

  void StartWatch() {
    auto self = shared_from_this();
    watch_thread_ = std::thread([self] { self->WatchLoop(); });
  }

  void Shutdown() {
    if (stopped_.exchange(true)) return;
    watch_cancel_.Cancel();
    for (auto& [name, attempt] : attempts_) attempt->log_cancel->Cancel();
    attempts_.clear();
    by_workflow_.clear();
    if (watch_thread_.joinable()) watch_thread_.join();
    pool_.join();
    std::vector<LogThread> threads;
    {
      std::lock_guard<std::mutex> lock(log_threads_mu_);
      threads.swap(log_threads_);
    }
    for (LogThread& t : threads) {
      if (t.thread.joinable()) t.thread.join();
    }
  }

  absl::Status Start(const AttemptSpec& spec, AttemptCallbacks callbacks, bool reattach) {
    if (stopped_) return absl::FailedPreconditionError("the argo runner has been stopped");
    if (attempts_.count(spec.external_name) != 0) {
      return absl::AlreadyExistsError(
          absl::StrCat("attempt \"", spec.external_name, "\" is already running"));
    }
    auto attempt = std::make_shared<Attempt>();
    attempt->spec = spec;
    attempt->callbacks = std::move(callbacks);
    attempt->is_ansible = spec.resolved.type == engine::TemplateType::kAnsible;
    attempt->workflow_name = kubernetes::JobName(spec.external_name);
    std::optional<json> workflow;
    if (!reattach) {
      absl::StatusOr<json> built = BuildNodeWorkflow(spec, options_.workflow);
      if (!built.ok()) return built.status();
      workflow = *std::move(built);
    }
    Attempt* raw = attempt.get();
    attempt->demux = std::make_unique<kubernetes::PodLogDemux>(
        [this, raw](std::string_view text) { OnOutput(raw, text); },
        [this, raw](std::string_view event) { OnEvent(raw, event); });
    attempts_[spec.external_name] = attempt;
    by_workflow_[attempt->workflow_name] = spec.external_name;

    auto self = shared_from_this();
    asio::post(pool_, [self, attempt, workflow = std::move(workflow)] {
      absl::Status status = workflow ? self->Submit(*attempt, *workflow) : self->Adopt(*attempt);
      asio::post(self->io_, [self, attempt, status] {
        if (self->stopped_) return;
        attempt->submitted = true;
        if (attempt->terminate_when_submitted && status.ok()) self->PostTerminate(*attempt);
        if (attempt->finished || attempt->verdict) return;
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
    Log()->info("{}{} attempt {} as Workflow {}/{} ({})",
                logging::RunTag(spec.run_id, spec.node_name, spec.attempt),
                reattach ? "reattached" : "started", spec.external_name, ns_,
                attempt->workflow_name, ApiName());
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
    if (attempt->submitted) {
      PostTerminate(*attempt);
    } else {
      attempt->terminate_when_submitted = true;
    }
    // Never inside Cancel(): the caller may be iterating over its running attempts.
    auto self = shared_from_this();
    asio::post(io_, [self, attempt, result = std::move(result)]() mutable {
      self->Finish(attempt, std::move(result));
    });
  }

  size_t running() const { return attempts_.size(); }

 private:
  struct LogThread {
    std::thread thread;
    std::shared_ptr<std::atomic<bool>> done;
  };

  bool ArgoServer() const { return options_.api == ArgoApi::kArgoServer; }
  const char* ApiName() const { return ArgoServer() ? "Argo Server" : "Kubernetes API"; }

  // Where the Workflows of the namespace live, and one of them.
  std::string WorkflowsPath(const std::string& name = "") const {
    std::string path =
        ArgoServer() ? absl::StrCat("/api/v1/workflows/", ns_)
                     : absl::StrCat("/apis/argoproj.io/v1alpha1/namespaces/", ns_, "/workflows");
    if (!name.empty()) absl::StrAppend(&path, "/", name);
    return path;
  }

  std::string Where(const Attempt& attempt) const {
    return absl::StrCat("Workflow ", ns_, "/", attempt.workflow_name);
  }

  // KubeClient names its server "kubernetes API URL" and quotes a non-Kubernetes error body; for
  // the Argo Server the server is named as such and grpc-gateway's `message` is quoted instead.
  // Code and payloads are kept.
  absl::Status Named(const absl::Status& status) const {
    if (status.ok() || !ArgoServer()) return status;
    const std::string prefix = absl::StrCat("kubernetes API ", client_->server());
    std::string text(status.message());
    if (!absl::StartsWith(text, prefix)) return status;
    std::string rest = text.substr(prefix.size());
    const size_t brace = rest.find(": {");
    if (brace != std::string::npos) {
      json body = json::parse(rest.substr(brace + 2), nullptr, /*allow_exceptions=*/false);
      const std::string message = StringAt(body, "message");
      if (!message.empty()) rest = absl::StrCat(rest.substr(0, brace), ": ", message);
    }
    absl::Status named(status.code(), absl::StrCat("Argo Server ", client_->server(), rest));
    status.ForEachPayload([&named](absl::string_view url, const absl::Cord& payload) {
      named.SetPayload(url, payload);
    });
    return named;
  }

  // Pool: submits the Workflow; one that exists already is adopted.
  absl::Status Submit(const Attempt& attempt, const json& workflow) {
    auto made = ArgoServer()
                    ? client_->Request("POST", WorkflowsPath(), {}, json{{"workflow", workflow}})
                    : client_->Request("POST", WorkflowsPath(), {}, workflow);
    if (made.ok()) return absl::OkStatus();
    if (absl::IsAlreadyExists(made.status())) {
      Log()->info("{}{} exists already (dagd restarted before it knew); adopting it", Tag(attempt),
                  Where(attempt));
      return Adopt(attempt);
    }
    return absl::Status(made.status().code(), absl::StrCat("submitting ", Where(attempt), ": ",
                                                           Named(made.status()).message()));
  }

  // Pool: looks the Workflow up by name; a completed one is reported at once.
  absl::Status Adopt(const Attempt& attempt) {
    auto found = client_->Request("GET", WorkflowsPath(attempt.workflow_name));
    if (absl::IsNotFound(found.status())) {
      return absl::NotFoundError(
          absl::StrCat(Where(attempt),
                       " of this attempt is gone (deleted while dagd was down, or removed by "
                       "its ttlStrategy)"));
    }
    if (!found.ok()) {
      return absl::Status(found.status().code(), absl::StrCat("looking up ", Where(attempt), ": ",
                                                              Named(found.status()).message()));
    }
    if (IsCompleted(Phase(found->json))) PostWorkflow(found->json);
    return absl::OkStatus();
  }

  // Io thread: asks Argo to terminate the Workflow (from the pool).
  void PostTerminate(const Attempt& attempt) {
    auto self = shared_from_this();
    const std::string name = attempt.workflow_name;
    asio::post(pool_, [self, name] {
      absl::StatusOr<kubernetes::Response> done =
          self->ArgoServer()
              ? self->client_->Request("PUT", self->WorkflowsPath(name) + "/terminate", {},
                                       json{{"name", name}, {"namespace", self->ns_}})
              : self->client_->Request(
                    "PATCH", self->WorkflowsPath(name), {},
                    json{{"spec", {{"shutdown", "Terminate"}}}},
                    RequestOptions{.content_type = "application/merge-patch+json"});
      if (done.ok() || absl::IsNotFound(done.status())) return;
      // The Argo Server refuses to terminate a completed Workflow (400): nothing to do.
      Log()->warn("terminating Workflow {}/{}: {}", self->ns_, name,
                  self->Named(done.status()).ToString());
    });
  }

  // Io thread: one thread follows the attempt's log for as long as the Workflow runs.
  void FollowLog(const std::shared_ptr<Attempt>& attempt) {
    if (attempt->log_started || stopped_) return;
    attempt->log_started = true;
    auto self = shared_from_this();
    auto done = std::make_shared<std::atomic<bool>>(false);
    std::lock_guard<std::mutex> lock(log_threads_mu_);
    // Join the threads that have returned (their last act was setting `done`).
    for (auto it = log_threads_.begin(); it != log_threads_.end();) {
      if (it->done->load()) {
        it->thread.join();
        it = log_threads_.erase(it);
      } else {
        ++it;
      }
    }
    log_threads_.push_back({std::thread([self, attempt, done] {
                              absl::Status status = self->ReadLog(attempt);
                              if (!status.ok() && !absl::IsCancelled(status)) {
                                Log()->warn("{}log of {}: {}", Tag(*attempt), self->Where(*attempt),
                                            status.ToString());
                              }
                              asio::post(self->io_, [self, attempt] {
                                attempt->log_done = true;
                                self->MaybeFinish(attempt);
                              });
                              done->store(true);
                            }),
                            done});
  }

  // Log thread: follows the log until it ends after the Workflow completed, the Workflow is
  // gone, or the attempt stops being followed. A stream that breaks, or ends while the Workflow
  // still runs, is followed again from the start; what was delivered already is skipped.
  absl::Status ReadLog(const std::shared_ptr<Attempt>& attempt) {
    CancelToken* cancel = attempt->log_cancel.get();
    std::map<std::string, size_t> lines_seen;  // Argo Server: lines delivered, per pod
    size_t bytes_seen = 0;                     // Kubernetes API: bytes of the pod's log delivered
    int64_t backoff = options_.initial_backoff_ms;
    while (!cancel->IsCancelled()) {
      const bool ended_before = attempt->ended.load();
      absl::Status status = ArgoServer() ? StreamArgoLog(attempt, &lines_seen)
                                         : StreamPodLog(attempt, &bytes_seen, ended_before);
      if (absl::IsCancelled(status) || cancel->IsCancelled()) {
        return absl::CancelledError("stopped following");
      }
      if (status.ok() && ended_before) return status;
      if (absl::IsNotFound(status)) return status;
      if (!status.ok()) {
        Log()->info("{}log of {}: {}; following again in {} ms", Tag(*attempt), Where(*attempt),
                    Named(status).ToString(), backoff);
      }
      // A clean end before the Workflow was seen to complete, or a broken stream: follow again
      // after the backoff, or as soon as the end is seen (then the next pass is the last).
      attempt->log_sleeper->SleepFor(backoff, [&] { return !ended_before && attempt->ended; });
      backoff = std::min(backoff * 2, options_.max_backoff_ms);
    }
    return absl::CancelledError("stopped following");
  }

  // Log thread: one pass over the Argo Server's log stream.
  absl::Status StreamArgoLog(const std::shared_ptr<Attempt>& attempt,
                             std::map<std::string, size_t>* lines_seen) {
    auto self = shared_from_this();
    std::map<std::string, size_t> lines_now;
    return client_->WatchEvents(
        WorkflowsPath(attempt->workflow_name) + "/log",
        {{"logOptions.container", "main"}, {"logOptions.follow", "true"}},
        [&](const json& line) {
          if (line.contains("error")) {
            return absl::UnavailableError(absl::StrCat("the log stream ended in an error: ",
                                                       StringAt(At(line, "error"), "message")));
          }
          auto result = line.find("result");
          if (result == line.end() || !result->is_object()) return absl::OkStatus();
          const std::string pod = StringAt(*result, "podName");
          if (++lines_now[pod] <= (*lines_seen)[pod]) return absl::OkStatus();  // seen
          (*lines_seen)[pod] = lines_now[pod];
          std::string text = StringAt(*result, "content") + "\n";
          asio::post(self->io_, [self, attempt, text = std::move(text)] {
            if (!attempt->finished && !self->stopped_) attempt->demux->Feed(text);
          });
          return absl::OkStatus();
        },
        attempt->log_cancel.get());
  }

  // Log thread: waits for the Workflow's pod to start, then one pass over its log.
  absl::Status StreamPodLog(const std::shared_ptr<Attempt>& attempt, size_t* bytes_seen,
                            bool ended_before) {
    CancelToken* cancel = attempt->log_cancel.get();
    auto self = shared_from_this();
    for (int tries = 0; !cancel->IsCancelled(); ++tries) {
      auto pods = client_->Request(
          "GET", absl::StrCat("/api/v1/namespaces/", ns_, "/pods"),
          {{"labelSelector", absl::StrCat(kWorkflowLabel, "=", attempt->workflow_name)}},
          std::nullopt, RequestOptions{.cancel = cancel});
      if (!pods.ok()) return pods.status();
      std::string pod;
      bool started = false;
      const json& items = At(pods->json, "items");
      if (items.is_array()) {
        for (const json& item : items) {
          const std::string phase = StringAt(At(item, "status"), "phase");
          pod = NameOf(item);
          started = !phase.empty() && phase != "Pending";
        }
      }
      if (started) {
        size_t offset = 0;
        return client_->Stream(
            absl::StrCat("/api/v1/namespaces/", ns_, "/pods/", pod, "/log"),
            {{"container", "main"}, {"follow", "true"}},
            [&](std::string_view bytes) {
              // The stream starts at the log's beginning: skip what an earlier pass delivered.
              const size_t skip =
                  std::min(bytes.size(), *bytes_seen - std::min(*bytes_seen, offset));
              offset += bytes.size();
              bytes.remove_prefix(skip);
              if (bytes.empty()) return absl::OkStatus();
              *bytes_seen += bytes.size();
              asio::post(self->io_, [self, attempt, data = std::string(bytes)] {
                if (!attempt->finished && !self->stopped_) attempt->demux->Feed(data);
              });
              return absl::OkStatus();
            },
            cancel);
      }
      // No pod that ran, and the Workflow is over (e.g. it failed validation): no log.
      if (ended_before || attempt->ended.load()) return absl::OkStatus();
      attempt->log_sleeper->SleepFor(std::min(100 * (tries + 1), 1000),
                                     [&] { return attempt->ended.load(); });
    }
    return absl::CancelledError("stopped following");
  }

  // Watch thread: list dagd's Workflows, then watch from the list's resourceVersion; again after
  // a 410 (at once) or a broken stream (after a backoff).
  void WatchLoop() {
    int64_t backoff = options_.initial_backoff_ms;
    const std::string path = WorkflowsPath();
    const std::string watch_path =
        ArgoServer() ? absl::StrCat("/api/v1/workflow-events/", ns_) : path;
    const Query list_query = {
        {ArgoServer() ? "listOptions.labelSelector" : "labelSelector", kManagedBy}};
    while (!watch_cancel_.IsCancelled()) {
      auto listed = client_->Request("GET", path, list_query, std::nullopt,
                                     RequestOptions{.cancel = &watch_cancel_});
      if (!listed.ok()) {
        if (absl::IsCancelled(listed.status())) return;
        Log()->warn("listing Workflows in {}: {}; again in {} ms", ns_,
                    Named(listed.status()).ToString(), backoff);
        watch_sleeper_.SleepFor(backoff);
        backoff = std::min(backoff * 2, options_.max_backoff_ms);
        continue;
      }
      const json& items = At(listed->json, "items");  // null when empty (Go's nil slice)
      if (items.is_array()) {
        for (const json& workflow : items) PostWorkflow(workflow);
      }
      std::string version = StringAt(At(listed->json, "metadata"), "resourceVersion");
      // Watch until the stream breaks; a clean end (timeoutSeconds) resumes from `version`.
      while (!watch_cancel_.IsCancelled()) {
        bool gone = false;
        bool heard = false;
        Query query;
        if (ArgoServer()) {
          query = {{"listOptions.labelSelector", kManagedBy},
                   {"listOptions.resourceVersion", version},
                   {"listOptions.timeoutSeconds", kWatchSeconds}};
        } else {
          query = {{"labelSelector", kManagedBy},
                   {"watch", "1"},
                   {"allowWatchBookmarks", "true"},
                   {"resourceVersion", version},
                   {"timeoutSeconds", kWatchSeconds}};
        }
        absl::Status watched = client_->WatchEvents(
            watch_path, query,
            [&](const json& line) {
              const json* event = &line;
              if (ArgoServer()) {
                // grpc-gateway's stream error; a Kubernetes 410 arrives only as its text.
                if (line.contains("error")) {
                  const std::string message = StringAt(At(line, "error"), "message");
                  gone = absl::StrContains(message, "too old resource version");
                  return absl::UnavailableError(
                      absl::StrCat("Argo Server ", client_->server(), ": ", message));
                }
                auto result = line.find("result");
                if (result == line.end() || !result->is_object()) return absl::OkStatus();
                event = &*result;
              }
              const std::string type = StringAt(*event, "type");
              auto object = event->find("object");
              if (object == event->end() || !object->is_object()) return absl::OkStatus();
              if (type == "ERROR") {
                absl::Status error =
                    kubernetes::StatusFromKubernetesStatus(client_->server(), *object);
                gone = kubernetes::IsGone(error);
                return error;
              }
              heard = true;
              const std::string seen = StringAt(At(*object, "metadata"), "resourceVersion");
              if (!seen.empty()) version = seen;
              if (type == "ADDED" || type == "MODIFIED") PostWorkflow(*object);
              if (type == "DELETED") PostDeleted(NameOf(*object));
              return absl::OkStatus();
            },
            &watch_cancel_,
            StreamOptions{.idle_timeout = std::chrono::seconds(ArgoServer() ? 360 : 300)});
        if (absl::IsCancelled(watched)) return;
        if (heard) backoff = options_.initial_backoff_ms;
        if (watched.ok()) continue;  // the server's timeout: watch on from `version`
        if (gone || kubernetes::IsGone(watched)) {
          Log()->info("watch of Workflows in {} expired (410 Gone); listing again", ns_);
        } else {
          Log()->warn("watch of Workflows in {} broke: {}; listing again in {} ms", ns_,
                      Named(watched).ToString(), backoff);
          watch_sleeper_.SleepFor(backoff);
          backoff = std::min(backoff * 2, options_.max_backoff_ms);
        }
        break;  // list again: completions missed meanwhile are in the list
      }
    }
  }

  void PostWorkflow(const json& workflow) {
    auto self = shared_from_this();
    asio::post(io_, [self, workflow] { self->OnWorkflow(workflow); });
  }

  void PostDeleted(const std::string& name) {
    auto self = shared_from_this();
    asio::post(io_, [self, name] { self->OnWorkflowDeleted(name); });
  }

  std::shared_ptr<Attempt> Find(const std::string& workflow_name) const {
    auto it = by_workflow_.find(workflow_name);
    if (it == by_workflow_.end()) return nullptr;
    auto attempt = attempts_.find(it->second);
    return attempt == attempts_.end() ? nullptr : attempt->second;
  }

  // Io thread.
  void OnWorkflow(const json& workflow) {
    if (stopped_) return;
    std::shared_ptr<Attempt> attempt = Find(NameOf(workflow));
    if (!attempt || attempt->end || attempt->verdict) return;
    if (!IsCompleted(Phase(workflow))) return;
    attempt->end = workflow;
    attempt->ended.store(true);
    attempt->log_sleeper->Wake();
    FollowLog(attempt);  // a Workflow that completed before its log was followed: read it whole
    ArmDrain(attempt);
    MaybeFinish(attempt);
  }

  void OnWorkflowDeleted(const std::string& name) {
    if (stopped_) return;
    std::shared_ptr<Attempt> attempt = Find(name);
    if (!attempt || attempt->end || attempt->verdict) return;
    engine::AttemptResult result;
    result.phase = engine::NodePhase::kError;
    result.message = absl::StrCat(Where(*attempt), " was deleted before it completed");
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
      Log()->warn("{}{}: log not complete {} ms after the end; finishing without the rest",
                  Tag(*attempt), self->Where(*attempt), self->options_.drain_timeout_ms);
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
    if (attempt->finished || !attempt->end || !attempt->log_done) return;
    attempt->demux->Finish();
    Finish(attempt, Outcome(*attempt));
  }

  engine::AttemptResult Outcome(const Attempt& a) const {
    const json& workflow = *a.end;
    const engine::Template& t = a.spec.resolved;
    const std::string phase = Phase(workflow);
    const json* node = PodNode(workflow);
    std::string message = node != nullptr ? StringAt(*node, "message") : "";
    if (message.empty()) message = StringAt(At(workflow, "status"), "message");
    engine::AttemptResult result;
    result.exit_code = ExitCodeOf(node);

    if (phase == "Error") {
      result.phase = engine::NodePhase::kError;
      result.message = message.empty() ? absl::StrCat(Where(a), " ended in Error") : message;
      return result;
    }
    if (phase == "Failed") {
      result.phase = engine::NodePhase::kFailed;
      if (IsDeadline(message)) {
        result.message = absl::StrCat("timeout: ", message,
                                      t.timeout.empty() ? "" : absl::StrCat(" (", t.timeout, ")"));
      } else if (a.is_ansible && result.exit_code > 0) {
        engine::AttemptResult verdict = a.scanner.Classify(result.exit_code);
        result.phase = verdict.phase;
        result.message = std::move(verdict.message);
      } else if (result.exit_code > 0) {
        result.message = absl::StrCat("exit code ", result.exit_code);
      } else {
        result.message = message.empty() ? absl::StrCat(Where(a), " failed") : message;
      }
      return result;
    }

    result.phase = engine::NodePhase::kSucceeded;
    std::map<std::string, std::string> outputs;  // Argo's output parameters, by name
    std::optional<std::string> argo_result;
    if (node != nullptr && At(*node, "outputs").is_object()) {
      const json& out = At(*node, "outputs");
      if (At(out, "parameters").is_array()) {
        for (const json& p : At(out, "parameters")) {
          auto value = p.find("value");
          if (value != p.end() && value->is_string()) outputs[StringAt(p, "name")] = *value;
        }
      }
      if (At(out, "result").is_string()) argo_result = At(out, "result").get<std::string>();
    }
    if (a.is_ansible) {
      // The set_stats map as the local runner reports it (compact, keys sorted).
      auto it = outputs.find(kResultParameter);
      json stats =
          it != outputs.end() ? json::parse(it->second, nullptr, false) : a.scanner.custom_stats();
      result.result = stats.is_discarded() ? it->second : stats.dump();
    } else if (argo_result) {
      result.result = *argo_result;
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
      auto it = outputs.find(p.name);
      if (it != outputs.end()) {
        result.parameters[p.name] = it->second;
      } else if (p.value_from->default_value) {
        result.parameters[p.name] = *p.value_from->default_value;
      } else {
        result.phase = engine::NodePhase::kError;
        result.message = absl::StrCat("output parameter \"", p.name, "\": ", Where(a),
                                      " reports no value for it");
        result.parameters.clear();
        return result;
      }
    }
    return result;
  }

  void Finish(const std::shared_ptr<Attempt>& attempt, engine::AttemptResult result) {
    if (attempt->finished || stopped_) return;  // after KillAll(), no callbacks
    attempt->finished = true;
    if (attempt->drain_timer) attempt->drain_timer->cancel();
    attempt->log_cancel->Cancel();
    attempts_.erase(attempt->spec.external_name);
    by_workflow_.erase(attempt->workflow_name);
    Log()->info("{}finished {} ({}): {}{}{}", Tag(*attempt), attempt->spec.external_name,
                Where(*attempt), engine::NodePhaseName(result.phase),
                result.message.empty() ? "" : ": ", result.message);
    if (attempt->callbacks.on_finished) attempt->callbacks.on_finished(std::move(result));
  }

  asio::io_context& io_;
  std::shared_ptr<KubeClient> client_;
  const ArgoRunnerOptions options_;
  const std::string ns_;
  asio::thread_pool pool_;
  std::thread watch_thread_;
  CancelToken watch_cancel_;
  Sleeper watch_sleeper_;
  std::atomic<bool> stopped_{false};
  std::mutex log_threads_mu_;
  std::vector<LogThread> log_threads_;
  // Io thread only.
  std::map<std::string, std::shared_ptr<Attempt>> attempts_;  // by external name
  std::map<std::string, std::string> by_workflow_;            // Workflow name → external name
};

ArgoRunner::ArgoRunner(asio::io_context& io, std::shared_ptr<KubeClient> client,
                       ArgoRunnerOptions options)
    : impl_(std::make_shared<Impl>(io, std::move(client), std::move(options))) {
  impl_->StartWatch();
}

ArgoRunner::~ArgoRunner() { impl_->Shutdown(); }

absl::Status ArgoRunner::Start(const AttemptSpec& spec, AttemptCallbacks callbacks) {
  RETURN_IF_ERROR(RefuseArtifacts(spec, "argo"));
  return impl_->Start(spec, std::move(callbacks), /*reattach=*/false);
}

absl::Status ArgoRunner::Reattach(const AttemptSpec& spec, AttemptCallbacks callbacks) {
  return impl_->Start(spec, std::move(callbacks), /*reattach=*/true);
}

void ArgoRunner::Cancel(const std::string& external_name, const std::string& message) {
  impl_->Cancel(external_name, message);
}

void ArgoRunner::KillAll() { impl_->Shutdown(); }

size_t ArgoRunner::running() const { return impl_->running(); }

}  // namespace dagd::runners::argo
