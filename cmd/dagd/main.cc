// dagd: the daemon. Reads its configuration, opens the store, removes credential copies a crash
// left behind, registers the runners, resumes unfinished runs, serves gRPC until SIGTERM or SIGINT,
// then shuts down in order: stop taking calls, stop the loop, end running attempts, drain the
// store's writer.
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include <CLI/CLI.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "logging/log.h"
#include "metrics/process.h"
#include "metrics/registry.h"
#include "runners/builtin.h"
#include "runners/local/credentials.h"
#include "runners/local/pod_filesystem.h"
#include "runners/runner.h"
#include "scheduler/scheduler.h"
#include "server/access_config.h"
#include "server/http_server.h"
#include "server/ops_http.h"
#include "server/run_hub.h"
#include "server/server.h"
#include "server/tls.h"
#include "server/web_ui.h"
#include "storage/sqlite/sqlite_store.h"

namespace {

struct Flags {
  std::string listen = "127.0.0.1:7233";
  std::string data_dir = "dagd-data";
  std::string default_runner = "local";
  std::string log_level = "info";
  std::string log_format = "text";
  std::string port_file;
  std::string metrics_listen = "127.0.0.1:7234";
  std::string metrics_port_file;
  std::vector<std::string> local_images;  // IMAGE=PROGRAM [ARG...]
  std::vector<std::string> semaphores;    // CONFIGMAP/KEY=N
  std::string credentials_dir;            // empty: <data_dir>/credentials
  std::string pod_filesystem = "auto";    // auto, overlay, host
  std::string run_as_user;                // empty: attempts run as dagd's user
  int64_t grace_period_ms = 10000;
  dagd::server::TlsFiles tls;
  bool insecure_remote = false;
  dagd::server::AuthSettings auth;
  int64_t max_request_bytes = 0;  // 0: what the bundle and workflow limits need
  int64_t max_workflow_bytes = dagd::server::kMaxSpecBytes;
  int max_watches_per_principal = 64;
  int64_t max_log_bytes_per_attempt = int64_t{64} << 20;
  int64_t max_expression_bytes = 16 * 1024;
  int max_expression_nesting = 32;
  int64_t max_nodes_per_run = 20000;
  int64_t max_fanout = 5000;
  dagd::storage::BundleLimits bundle_limits;
  dagd::runners::KubernetesRunnerSettings kubernetes;
  dagd::runners::ArgoRunnerSettings argo;
};

int Fail(const std::string& message) {
  std::cerr << "dagd: " << message << "\n";
  return 1;
}

// Writes `port` and a newline to `path` atomically (a reader never sees half a number).
void WritePortFile(const std::string& path, int port) {
  if (path.empty()) return;
  const std::string tmp = path + ".tmp";
  std::ofstream(tmp) << port << "\n";
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
}

}  // namespace

int main(int argc, char** argv) {
  Flags flags;
  CLI::App app{"dagd: a DAG workflow engine daemon for Argo-style workflows and Ansible"};
  app.set_config("--config", "", "Read flags from this file (TOML or INI: listen = \"…\")");
  app.add_option("--listen", flags.listen, "gRPC address HOST:PORT (port 0: any free port)")
      ->capture_default_str();
  app.add_option("--tls-cert-file", flags.tls.cert_file,
                 "Serve gRPC and the metrics port over TLS with this certificate chain (PEM); "
                 "re-read when it changes");
  app.add_option("--tls-key-file", flags.tls.key_file,
                 "The private key of --tls-cert-file (PEM, unencrypted; re-read when it changes)");
  app.add_option("--tls-client-ca-file", flags.tls.client_ca_file,
                 "Mutual TLS: gRPC clients must present a certificate signed by a CA in this PEM "
                 "bundle (the metrics port asks for one but does not require it)");
  app.add_option("--tls-reload-interval", flags.tls.reload_interval_seconds,
                 "Seconds between checks of the TLS files for changes")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_flag("--insecure-remote", flags.insecure_remote,
               "Allow --listen and --metrics-listen on addresses other hosts reach without TLS "
               "(dagd warns; for a TLS-terminating proxy in front of dagd)");
  app.add_option("--auth-policy", flags.auth.policy_file,
                 "Who holds which role (viewer, operator, admin) in which namespace: a YAML file "
                 "of bindings, re-read when it changes (docs/security.md). Needed with any "
                 "--auth-* method");
  app.add_option("--auth-static-tokens", flags.auth.static_tokens_file,
                 "Accept the bearer tokens whose SHA-256 this YAML file lists (with their user "
                 "and groups); re-read when it changes");
  app.add_option("--auth-oidc-issuer", flags.auth.oidc_issuer,
                 "Accept OIDC ID tokens (RS256/ES256 JWTs) of this issuer, verified against its "
                 "JWKS (fetched from the issuer and cached, or --auth-oidc-jwks-file)");
  app.add_option("--auth-oidc-audience", flags.auth.oidc_audiences,
                 "An `aud` OIDC tokens must carry: dagd's client id (repeatable)");
  app.add_option("--auth-oidc-jwks-file", flags.auth.oidc_jwks_file,
                 "The issuer's keys from this JWKS file instead of fetching them");
  app.add_option("--auth-oidc-username-claim", flags.auth.oidc_username_claim,
                 "The claim naming the user")
      ->capture_default_str();
  app.add_option("--auth-oidc-username-prefix", flags.auth.oidc_username_prefix,
                 "Put before every OIDC user name (e.g. oidc:)");
  app.add_option("--auth-oidc-groups-claim", flags.auth.oidc_groups_claim,
                 "The claim listing the user's groups")
      ->capture_default_str();
  app.add_option("--auth-oidc-groups-prefix", flags.auth.oidc_groups_prefix,
                 "Put before every OIDC group name");
  app.add_option("--auth-oidc-ca-file", flags.auth.oidc_ca_file,
                 "CA of the issuer's certificate (default: the system's)");
  app.add_flag("--auth-tokenreview", flags.auth.tokenreview,
               "Accept Kubernetes service account tokens, checked with the TokenReview API of "
               "the cluster of --kube-in-cluster or --kubeconfig (needs create on tokenreviews)");
  app.add_option("--auth-tokenreview-audience", flags.auth.tokenreview_audiences,
                 "An audience service account tokens must be issued for (repeatable)");
  app.add_flag("--auth-client-certificates", flags.auth.client_certificates,
               "A call without a token is the subject of its client certificate (common name "
               "= user, organizations = groups); needs --tls-client-ca-file");
  app.add_option("--data-dir", flags.data_dir,
                 "Directory for the SQLite database and attempt working directories")
      ->capture_default_str();
  app.add_option("--default-runner", flags.default_runner,
                 "Runner for templates that name none (local)")
      ->capture_default_str();
  app.add_option("--log-level", flags.log_level, "trace, debug, info, warn, error")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error"}))
      ->capture_default_str();
  app.add_option("--log-format", flags.log_format,
                 "text (for people) or json (one object per line with time, level, logger, run, "
                 "node, attempt, msg)")
      ->check(CLI::IsMember({"text", "json"}))
      ->capture_default_str();
  app.add_option("--grace-period-ms", flags.grace_period_ms,
                 "Between SIGTERM and SIGKILL when an attempt is stopped")
      ->capture_default_str();
  app.add_option("--credentials-dir", flags.credentials_dir,
                 "Directory of the credentials ansible templates name, one file per credential; "
                 "owned by dagd's user, mode 700 (default: <data-dir>/credentials, created if "
                 "missing)");
  app.add_option("--port-file", flags.port_file,
                 "Write the port actually listened on to this file once serving");
  app.add_option("--metrics-listen", flags.metrics_listen,
                 "HTTP address HOST:PORT of /metrics, /healthz, /readyz and the run pages "
                 "(port 0: any free port; empty: none)")
      ->capture_default_str();
  app.add_option("--metrics-port-file", flags.metrics_port_file,
                 "Write the metrics port actually listened on to this file once serving");
  app.add_option("--max-bundle-bytes", flags.bundle_limits.max_bytes,
                 "Largest total content of a workflow's bundle (dagctl apply --bundle)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--max-bundle-files", flags.bundle_limits.max_files,
                 "Most files in a workflow's bundle")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--max-request-bytes", flags.max_request_bytes,
                 "Largest gRPC request (0: room for a bundle and a workflow at their limits); "
                 "larger ones get RESOURCE_EXHAUSTED")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app.add_option("--max-workflow-bytes", flags.max_workflow_bytes,
                 "Largest workflow YAML accepted (apply, submit, lint, export)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--max-watches-per-principal", flags.max_watches_per_principal,
                 "Streams (watch, logs, events) one caller may have open at once")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--max-log-bytes-per-attempt", flags.max_log_bytes_per_attempt,
                 "Output stored per attempt; the rest is dropped with a note (0: no limit)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app.add_option("--max-expression-bytes", flags.max_expression_bytes,
                 "Longest expression ({{= }}, when, depends) of a workflow stored or submitted")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--max-expression-nesting", flags.max_expression_nesting,
                 "Deepest bracket nesting of such an expression")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--max-nodes-per-run", flags.max_nodes_per_run,
                 "Nodes one run may have; a node past it ends in Error, saying so (0: no limit)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app.add_option("--max-fanout", flags.max_fanout,
                 "Items one withItems, withParam or withSequence may expand to; more is an Error "
                 "node (0: no limit)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app.add_option("--local-image", flags.local_images,
                 "IMAGE=PROGRAM [ARG...]: what the local runner runs for a container template of "
                 "IMAGE that gives no command (repeatable; e.g. "
                 "--local-image 'docker/whalesay=/usr/games/cowsay'). argoproj/argosay:v2 is "
                 "built in")
      ->type_name("IMAGE=COMMAND");
  app.add_option("--pod-filesystem", flags.pod_filesystem,
                 "What container and script templates on the local runner see: overlay (their "
                 "own, as a pod's: the host's root filesystem read-only under their writes, a "
                 "private /tmp; needs root or unprivileged user namespaces), host (the host's "
                 "files, working directory the attempt's directory), or auto (overlay where "
                 "this host allows it, else host with a warning)")
      ->check(CLI::IsMember({"auto", "overlay", "host"}))
      ->capture_default_str();
  app.add_option("--run-as-user", flags.run_as_user,
                 "Run every attempt of the local runner as this unprivileged user (dagd must be "
                 "root; the user must be able to reach --data-dir, and needs a home directory it "
                 "can write for ansible's local connection: useradd --system --create-home)");
  app.add_option("--semaphore", flags.semaphores,
                 "CONFIGMAP/KEY=N: how many may hold the synchronization semaphore with "
                 "configMapKeyRef {name: CONFIGMAP, key: KEY} at once, across every run "
                 "(repeatable; over a ConfigMap stored with dagctl apply, which sizes the others; "
                 "a workflow naming a semaphore sized by neither is refused); database/KEY=N "
                 "sizes Argo's database semaphore {database: {key: KEY}}")
      ->type_name("CONFIGMAP/KEY=N");
  app.add_flag("--kube-in-cluster", flags.kubernetes.in_cluster,
               "Run the kubernetes runner on the cluster dagd runs in (its service account)");
  app.add_option("--kubeconfig", flags.kubernetes.kubeconfig,
                 "Run the kubernetes runner on the cluster of this kubeconfig");
  app.add_option("--kube-context", flags.kubernetes.context,
                 "The kubeconfig's context (default: its current-context)");
  app.add_option("--kube-namespace", flags.kubernetes.namespace_name,
                 "Namespace of dagd's Jobs (default: the context's or the pod's)");
  app.add_option("--ansible-image", flags.kubernetes.ansible_image,
                 "Image that runs ansible templates on the cluster, as a Job or in an Argo "
                 "Workflow (ansible-playbook, python3, sh)");
  app.add_option("--argo-server", flags.argo.server,
                 "Run the argo runner through this Argo Server, https://HOST:2746");
  app.add_option("--argo-token-file", flags.argo.token_file,
                 "The Argo Server's bearer token (re-read every minute)");
  app.add_option("--argo-ca-file", flags.argo.ca_file,
                 "CA certificate of the Argo Server (default: the system's CA bundle)");
  app.add_flag("--argo-insecure-skip-tls-verify", flags.argo.insecure_skip_tls_verify,
               "Do not verify the Argo Server's certificate (testing only)");
  app.add_flag("--argo-on-kubernetes", flags.argo.on_kubernetes,
               "Run the argo runner through the Workflow resource of the kubernetes runner's "
               "cluster instead of an Argo Server");
  app.add_option("--argo-namespace", flags.argo.namespace_name,
                 "Namespace of dagd's Argo Workflows (default: argo)");
  try {
    app.parse(argc, argv);
  } catch (const CLI::Success& e) {
    return app.exit(e);  // --help
  } catch (const CLI::ParseError& e) {
    app.exit(e);
    return 2;  // a usage error, as dagctl reports them
  }

  if (auto st = dagd::logging::Configure(flags.log_format, flags.log_level); !st.ok()) {
    return Fail(std::string(st.message()));
  }

  if (auto st = dagd::server::CheckTlsFiles(flags.tls); !st.ok()) {
    return Fail(std::string(st.message()));
  }
  for (const auto& [flag, address] :
       {std::pair<const char*, const std::string*>{"--listen", &flags.listen},
        {"--metrics-listen", &flags.metrics_listen}}) {
    if (address->empty()) continue;
    if (auto st =
            dagd::server::CheckPlaintextListen(flag, *address, flags.tls, flags.insecure_remote);
        !st.ok()) {
      return Fail(std::string(st.message()));
    }
    if (!flags.tls.enabled() && !dagd::server::IsLoopbackHost(dagd::server::ListenHost(*address))) {
      spdlog::warn(
          "{} {}: serving other hosts without TLS (--insecure-remote); tokens and workflows "
          "cross the network in the clear unless a TLS proxy is in front",
          flag, *address);
    }
  }
  if (!flags.auth.authenticating() &&
      !dagd::server::IsLoopbackHost(dagd::server::ListenHost(flags.listen))) {
    if (!flags.insecure_remote) {
      return Fail("--listen " + flags.listen +
                  " reaches other hosts, and without authentication each of them could run "
                  "anything: set an --auth-* method and --auth-policy, listen on 127.0.0.1, or "
                  "accept it with --insecure-remote");
    }
    spdlog::warn("--listen {}: no authentication (--insecure-remote): every caller is admin",
                 flags.listen);
  }
  auto access = dagd::server::NewAccessControl(flags.auth, flags.tls, flags.kubernetes);
  if (!access.ok()) return Fail(std::string(access.status().message()));

  std::error_code ec;
  std::filesystem::create_directories(flags.data_dir, ec);
  if (ec) return Fail("cannot create the data directory " + flags.data_dir + ": " + ec.message());
  const std::string data_dir = std::filesystem::absolute(flags.data_dir).string();

  // Declared first: every module that reports metrics holds pointers into it.
  dagd::metrics::Registry metrics;
  dagd::metrics::AddBuildInfo(&metrics, DAGD_VERSION, dagd::storage::SqliteVersion());
  dagd::metrics::AddProcessMetrics(&metrics);

  auto store = dagd::storage::OpenSqliteStore(data_dir + "/dagd.db", &metrics);
  if (!store.ok()) return Fail(std::string(store.status().message()));

  // Credential copies a dagd that died left in attempt directories go before anything runs.
  if (auto removed = dagd::runners::local::RemoveStaleCredentials(data_dir); !removed.ok()) {
    spdlog::error("cannot remove stale credentials: {}", std::string(removed.status().message()));
  } else if (*removed > 0) {
    spdlog::info("removed the credentials of {} attempt(s) that were running when dagd stopped",
                 *removed);
  }
  const std::string credentials_dir =
      flags.credentials_dir.empty() ? data_dir + "/credentials"
                                    : std::filesystem::absolute(flags.credentials_dir).string();
  if (flags.credentials_dir.empty()) mkdir(credentials_dir.c_str(), 0700);  // if missing
  if (auto st = dagd::runners::local::CheckCredentialsDir(credentials_dir); !st.ok()) {
    spdlog::warn("{}; ansible templates that name credentials will not start",
                 std::string(st.message()));
  }

  boost::asio::io_context io;
  dagd::runners::RunnerRegistry registry;
  dagd::runners::BuiltinRunnerOptions runner_options;
  runner_options.io_context = &io;
  runner_options.local.credentials_dir = credentials_dir;
  runner_options.local.artifact_dir = data_dir + "/artifacts";
  if (flags.pod_filesystem != "host") {
    using dagd::runners::local::PodFilesystemMode;
    absl::Status probe = dagd::runners::local::ProbePodFilesystem(data_dir);
    if (probe.ok()) {
      runner_options.local.pod_filesystem = PodFilesystemMode::kOverlay;
      spdlog::info("container and script templates get their own filesystem (overlay)");
    } else if (flags.pod_filesystem == "overlay") {
      return Fail("--pod-filesystem=overlay: this host cannot give pods their own filesystem (" +
                  std::string(probe.message()) +
                  "); run dagd as root, allow unprivileged user namespaces, or use "
                  "--pod-filesystem=host");
    } else {
      spdlog::warn(
          "container and script templates run on the host's filesystem: {} "
          "(--pod-filesystem=host silences this)",
          std::string(probe.message()));
    }
  }
  for (const std::string& entry : flags.local_images) {
    const size_t eq = entry.find('=');
    std::vector<std::string> argv;
    if (eq != std::string::npos) {
      for (absl::string_view word :
           absl::StrSplit(entry.substr(eq + 1), ' ', absl::SkipWhitespace())) {
        argv.emplace_back(word);
      }
    }
    if (eq == std::string::npos || eq == 0 || argv.empty()) {
      return Fail("--local-image \"" + entry +
                  "\" is not IMAGE=PROGRAM [ARG...] (e.g. docker/whalesay=/usr/games/cowsay)");
    }
    runner_options.local.image_entrypoints[entry.substr(0, eq)] = std::move(argv);
  }
  if (!flags.run_as_user.empty()) {
    auto user = dagd::runners::local::ResolveRunAsUser(flags.run_as_user);
    if (!user.ok()) return Fail(std::string(user.status().message()));
    runner_options.local.run_as = *std::move(user);
    spdlog::info("local attempts run as user {} (uid {})", flags.run_as_user,
                 runner_options.local.run_as->uid);
  }
  runner_options.kubernetes = flags.kubernetes;
  runner_options.argo = flags.argo;
  if (auto st = dagd::runners::RegisterBuiltinRunners(&registry, runner_options); !st.ok()) {
    return Fail(std::string(st.message()));
  }
  if (!registry.Find(flags.default_runner)) {
    return Fail("--default-runner " + flags.default_runner + " is not a runner of this dagd");
  }

  dagd::scheduler::SchedulerOptions scheduler_options;
  scheduler_options.data_dir = data_dir;
  scheduler_options.default_runner = flags.default_runner;
  scheduler_options.grace_period_ms = flags.grace_period_ms;
  scheduler_options.max_log_bytes_per_attempt = flags.max_log_bytes_per_attempt;
  scheduler_options.run_limits = {.max_nodes = static_cast<size_t>(flags.max_nodes_per_run),
                                  .max_fanout = static_cast<size_t>(flags.max_fanout)};
  for (const std::string& entry : flags.semaphores) {
    const size_t eq = entry.rfind('=');
    int64_t limit = 0;
    const std::string name = eq == std::string::npos ? "" : entry.substr(0, eq);
    if (name.find('/') == std::string::npos || name.front() == '/' || name.back() == '/' ||
        !absl::SimpleAtoi(entry.substr(eq + 1), &limit) || limit < 1) {
      return Fail("--semaphore \"" + entry +
                  "\" is not CONFIGMAP/KEY=N with N >= 1 (e.g. --semaphore my-config/template=3)");
    }
    scheduler_options.semaphore_limits[name] = limit;
  }
  scheduler_options.metrics = &metrics;
  dagd::scheduler::Scheduler scheduler(io, store->get(), &registry, dagd::scheduler::SystemClock(),
                                       scheduler_options);
  dagd::server::RunHub hub;
  scheduler.AddListener(&hub);
  if (auto st = scheduler.Recover(); !st.ok()) {
    return Fail("cannot resume unfinished runs: " + std::string(st.message()));
  }

  dagd::server::ServerOptions server_options;
  server_options.listen = flags.listen;
  server_options.tls = flags.tls;
  server_options.access = access->get();
  server_options.bundle_limits = flags.bundle_limits;
  server_options.max_request_bytes = flags.max_request_bytes;
  server_options.max_workflow_bytes = flags.max_workflow_bytes;
  server_options.max_watches_per_principal = flags.max_watches_per_principal;
  server_options.expression_limits = {.max_bytes = static_cast<size_t>(flags.max_expression_bytes),
                                      .max_nesting = flags.max_expression_nesting};
  server_options.metrics = &metrics;
  if (!flags.kubernetes.ansible_image.empty()) {
    server_options.argo_export.ansible_image = flags.kubernetes.ansible_image;
  }
  auto server = dagd::server::DagdServer::Start(server_options, store->get(), &scheduler, &hub);
  if (!server.ok()) return Fail(std::string(server.status().message()));
  const int port = (*server)->port();

  // The operations port. Ready once serving gRPC (the database is open and migrated and the
  // runners are configured by then) for as long as commits succeed.
  std::unique_ptr<dagd::server::HttpServer> http;
  if (!flags.metrics_listen.empty()) {
    dagd::server::OpsOptions ops;
    ops.registry = &metrics;
    ops.not_ready_reason = [&scheduler]() -> std::string {
      if (scheduler.healthy()) return "";
      return "the last commit to the database failed (full disk, I/O error or lock; see the log "
             "and dagd_storage_commit_errors_total); dagd retries it every second";
    };
    dagd::server::HttpServer::Routes routes;
    dagd::server::AddOpsRoutes(ops, &routes);
    // The run pages carry no credentials: with authentication on they would show every run to
    // anyone who reaches the port, so they are not served.
    if (!flags.auth.authenticating()) {
      dagd::server::AddWebUiRoutes(store->get(), &routes);
    } else {
      spdlog::info("authentication is on: the metrics port serves no run pages");
    }
    auto started =
        dagd::server::HttpServer::Start(io, flags.metrics_listen, std::move(routes), flags.tls);
    if (!started.ok()) {
      (*server)->Shutdown(0);
      return Fail(std::string(started.status().message()));
    }
    http = *std::move(started);
    WritePortFile(flags.metrics_port_file, http->port());
  }
  WritePortFile(flags.port_file, port);
  const std::string host = flags.listen.substr(0, flags.listen.rfind(':'));
  spdlog::info("dagd listening on {}:{}{}, data in {}", host, port,
               !flags.tls.enabled() ? " (plaintext)"
               : flags.tls.mutual() ? " (mutual TLS)"
                                    : " (TLS)",
               data_dir);
  if (http) {
    const std::string metrics_host =
        flags.metrics_listen.substr(0, flags.metrics_listen.rfind(':'));
    spdlog::info("metrics and run pages on {}://{}:{}/", flags.tls.enabled() ? "https" : "http",
                 metrics_host, http->port());
  }

  // On a signal: first stop taking calls while the loop still runs (so calls in progress get
  // their answers), then stop the loop. That happens off the loop's thread, which must keep going.
  std::thread stopper;
  boost::asio::signal_set signals(io, SIGTERM, SIGINT);
  signals.async_wait([&](const boost::system::error_code& error, int signal_number) {
    if (error) return;
    spdlog::info("signal {}: shutting down", signal_number);
    stopper = std::thread([&] {
      (*server)->Shutdown(2000);
      io.stop();
    });
  });
  auto work = boost::asio::make_work_guard(io);
  io.run();
  if (stopper.joinable()) stopper.join();
  if (http) http->Stop();

  // The loop has stopped: no step of any run is in progress. Committed state stays as it is;
  // attempts still running are ended and count as Error attempts when dagd resumes the run.
  scheduler.Shutdown();
  store->reset();  // drains the writer: every acknowledged batch is on disk
  spdlog::info("dagd stopped");
  return 0;
}
