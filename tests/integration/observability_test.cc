// The operations port of the real dagd, read by the real thing: Debian's `prometheus` scrapes
// /metrics while a workflow of real playbooks runs, and its HTTP query API must give back what
// dagd's own history says happened; `promtool check metrics` must accept the exposition.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <thread>

#include "tests/integration/daemon.h"

namespace dagd::testing {
namespace {

namespace fs = std::filesystem;
using std::chrono::seconds;

const std::string kTestdata = SourcePath("tests/integration/testdata");

// Submits the foundation's diamond of real playbooks (B fails once, then succeeds); an empty
// run (and a test failure) if dagd refuses it.
v1::Run SubmitDiamond(Daemon& dagd, const std::string& records) {
  v1::SubmitRunRequest request;
  request.set_spec_yaml(ReadFile(kTestdata + "/diamond-retry.yaml"));
  request.set_file_name("diamond-retry.yaml");
  *request.mutable_bundle() = ReadBundle(kTestdata);
  (*request.mutable_parameters())["record_dir"] = records;
  v1::Run run;
  grpc::ClientContext context;
  grpc::Status status = dagd.runs()->SubmitRun(&context, request, &run);
  EXPECT_TRUE(status.ok()) << status.error_message();
  return run;
}

// A child process with its output in a log file; SIGTERM, then SIGKILL, on destruction.
class BackgroundProcess {
 public:
  BackgroundProcess(const std::vector<std::string>& command, const std::string& log) : log_(log) {
    pid_ = fork();
    if (pid_ == 0) {
      const int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      dup2(fd, 1);
      dup2(fd, 2);
      std::vector<std::string> copy = command;
      std::vector<char*> argv;
      for (auto& a : copy) argv.push_back(a.data());
      argv.push_back(nullptr);
      execv(argv[0], argv.data());
      _exit(127);
    }
  }
  ~BackgroundProcess() {
    if (pid_ <= 0) return;
    kill(pid_, SIGTERM);
    for (int i = 0; i < 200; ++i) {
      if (waitpid(pid_, nullptr, WNOHANG) == pid_) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
  bool running() const { return pid_ > 0 && waitpid(pid_, nullptr, WNOHANG) == 0; }
  std::string log() const { return ReadFile(log_); }

 private:
  pid_t pid_ = -1;
  std::string log_;
};

std::string UrlEncode(const std::string& text) {
  std::string out;
  for (unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      char buf[4];
      std::snprintf(buf, sizeof buf, "%%%02X", c);
      out += buf;
    }
  }
  return out;
}

// A real Prometheus on loopback that scrapes one target every second.
class Prometheus {
 public:
  Prometheus(const std::string& dir, const std::string& target) {
    const std::string config = dir + "/prometheus.yml";
    std::ofstream(config) << "global:\n"
                          << "  scrape_interval: 1s\n"
                          << "  evaluation_interval: 1s\n"
                          << "scrape_configs:\n"
                          << "  - job_name: dagd\n"
                          << "    static_configs:\n"
                          << "      - targets: ['" << target << "']\n";
    address_ = "127.0.0.1:" + std::to_string(FreeLoopbackPort());
    process_ = std::make_unique<BackgroundProcess>(
        std::vector<std::string>{"/usr/bin/prometheus", "--config.file=" + config,
                                 "--storage.tsdb.path=" + dir + "/tsdb",
                                 "--web.listen-address=" + address_, "--log.level=warn"},
        dir + "/prometheus.log");
  }

  // Waits until the API answers; false (with the log) if Prometheus did not come up.
  bool WaitReady() {
    const auto deadline = std::chrono::steady_clock::now() + seconds(60);
    while (std::chrono::steady_clock::now() < deadline && process_->running()) {
      if (HttpGet(address_, "/-/ready").status == 200) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return false;
  }

  // The instant vector of `query`: label set (as "k=v,k=v", sorted, without __name__) -> value.
  std::map<std::string, double> Query(const std::string& query) {
    std::map<std::string, double> out;
    HttpResult r = HttpGet(address_, "/api/v1/query?query=" + UrlEncode(query));
    EXPECT_EQ(r.status, 200) << query << ": " << r.body;
    nlohmann::json body = nlohmann::json::parse(r.body, nullptr, false);
    if (!body.is_object() || body.value("status", "") != "success") {
      ADD_FAILURE() << query << ": " << r.body;
      return out;
    }
    for (const auto& sample : body["data"]["result"]) {
      std::string labels;
      for (const auto& [k, v] : sample["metric"].items()) {
        if (k == "__name__") continue;
        labels += (labels.empty() ? "" : ",") + k + "=" + v.get<std::string>();
      }
      out[labels] = std::stod(sample["value"][1].get<std::string>());
    }
    return out;
  }

  // The single value of a query that yields one unlabelled sample (sum(...), count(...)), or
  // -1 when it yields none.
  double Value(const std::string& query) {
    std::map<std::string, double> result = Query(query);
    if (result.size() != 1) return -1;
    return result.begin()->second;
  }

  std::string log() const { return process_->log(); }

 private:
  std::string address_;
  std::unique_ptr<BackgroundProcess> process_;
};

class ObservabilityTest : public ::testing::Test {
 protected:
  void SetUp() override {
    fs::create_directories(records_);
    dagd_.Start();
    ASSERT_FALSE(dagd_.metrics_address().empty());
  }

  TempDir tmp_;
  std::string data_dir_ = tmp_.path() + "/data";
  std::string records_ = tmp_.path() + "/records";
  Daemon dagd_{data_dir_};
};

TEST_F(ObservabilityTest, HealthReadinessAndTheExpositionPromtoolAccepts) {
  HttpResult healthz = HttpGet(dagd_.metrics_address(), "/healthz");
  EXPECT_EQ(healthz.status, 200);
  EXPECT_EQ(healthz.body, "ok\n");
  HttpResult readyz = HttpGet(dagd_.metrics_address(), "/readyz");
  EXPECT_EQ(readyz.status, 200);
  EXPECT_EQ(readyz.body, "ready\n");
  EXPECT_EQ(HttpGet(dagd_.metrics_address(), "/no-such-page").status, 404);

  HttpResult metrics = HttpGet(dagd_.metrics_address(), "/metrics");
  ASSERT_EQ(metrics.status, 200);
  EXPECT_EQ(metrics.content_type, "text/plain; version=0.0.4; charset=utf-8");
  for (const char* name :
       {"dagd_build_info", "dagd_ready 1", "dagd_runs_active 0", "dagd_ready_queue_depth 0",
        "dagd_nodes_running{runner=\"local\"} 0", "dagd_storage_database_bytes",
        "dagd_storage_commit_errors_total 0", "process_cpu_seconds_total", "process_open_fds",
        "process_start_time_seconds"}) {
    EXPECT_NE(metrics.body.find(std::string("\n") + name), std::string::npos) << name;
  }
  const std::string file = tmp_.path() + "/metrics.txt";
  std::ofstream(file) << metrics.body;
  CommandResult check = RunCommand({"/bin/sh", "-c", "/usr/bin/promtool check metrics < " + file});
  EXPECT_EQ(check.exit_code, 0) << check.output;

  // promtool is a real check: it refuses a broken exposition.
  std::ofstream(file) << "# TYPE x_total counter\nx_total{a=\"1\" 1\n";
  CommandResult broken = RunCommand({"/bin/sh", "-c", "/usr/bin/promtool check metrics < " + file});
  EXPECT_NE(broken.exit_code, 0) << broken.output;
}

TEST_F(ObservabilityTest, PrometheusReadsBackTheCountersOfADiamondRun) {
  Prometheus prometheus(tmp_.path(), dagd_.metrics_address());
  ASSERT_TRUE(prometheus.WaitReady()) << prometheus.log();

  const v1::Run run = SubmitDiamond(dagd_, records_);
  ASSERT_FALSE(run.id().empty());
  std::vector<v1::RunEvent> events = WatchToEnd(dagd_.runs(), run.id());
  ASSERT_FALSE(events.empty());
  ASSERT_EQ(events.back().phase(), v1::PHASE_SUCCEEDED);

  // What dagd's store says the playbooks did, per status as in Ansible's recap.
  std::map<std::string, double> recap;
  {
    grpc::ClientContext context;
    v1::ListAnsibleEventsRequest list;
    list.set_run_id(run.id());
    list.set_page_size(1000);
    v1::ListAnsibleEventsResponse response;
    ASSERT_TRUE(dagd_.runs()->ListAnsibleEvents(&context, list, &response).ok());
    for (const auto& e : response.events()) {
      if (e.kind() == "runner_on_ok") recap[e.changed() ? "changed" : "ok"] += 1;
      if (e.kind() == "runner_on_failed") recap["failed"] += 1;
      if (e.kind() == "runner_on_unreachable") recap["unreachable"] += 1;
      if (e.kind() == "runner_on_skipped") recap["skipped"] += 1;
    }
  }
  ASSERT_GT(recap["ok"] + recap["changed"], 0);
  ASSERT_GT(recap["failed"], 0) << "B's first attempt fails a task";

  // Prometheus scrapes every second: wait until a scrape after the run's end is stored.
  const auto deadline = std::chrono::steady_clock::now() + seconds(60);
  while (std::chrono::steady_clock::now() < deadline &&
         prometheus.Value("sum(dagd_runs_finished_total{phase=\"Succeeded\"})") != 1) {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  ASSERT_EQ(prometheus.Value("sum(dagd_runs_finished_total{phase=\"Succeeded\"})"), 1)
      << prometheus.log() << HttpGet(dagd_.metrics_address(), "/metrics").body;

  EXPECT_EQ(prometheus.Value("up{job=\"dagd\"}"), 1);
  EXPECT_EQ(prometheus.Query("dagd_runs_started_total"),
            (std::map<std::string, double>{
                {"instance=" + dagd_.metrics_address() + ",job=dagd,workflow=diamond-retry", 1}}));
  EXPECT_EQ(prometheus.Query("sum by (phase) (dagd_runs_finished_total)"),
            (std::map<std::string, double>{
                {"phase=Succeeded", 1}, {"phase=Failed", 0}, {"phase=Error", 0}}));
  // A, B, B, C, D: B failed once and was retried.
  EXPECT_EQ(prometheus.Query("sum by (runner, template, phase) (dagd_node_attempts_total)"),
            (std::map<std::string, double>{{"phase=Failed,runner=local,template=step", 1},
                                           {"phase=Succeeded,runner=local,template=step", 4}}));
  EXPECT_EQ(prometheus.Value("sum(dagd_node_retries_total{runner=\"local\",template=\"step\"})"),
            1);
  EXPECT_EQ(prometheus.Value("sum(dagd_node_attempt_duration_seconds_count)"), 5);
  EXPECT_EQ(prometheus.Value("sum(dagd_node_queue_wait_seconds_count)"), 4);
  // Every attempt ran a real playbook, which takes longer than a millisecond.
  EXPECT_EQ(prometheus.Value("sum(dagd_node_attempt_duration_seconds_bucket{le=\"0.001\"})"), 0);
  std::map<std::string, double> recap_labels;
  for (const auto& [status, n] : recap) {
    if (n > 0) recap_labels["status=" + status] = n;
  }
  EXPECT_EQ(prometheus.Query("sum by (status) (dagd_ansible_task_results_total)"), recap_labels);
  EXPECT_EQ(prometheus.Value("sum(dagd_grpc_requests_total{method=\"/dagd.v1.RunService/"
                             "SubmitRun\",code=\"OK\"})"),
            1);
  EXPECT_EQ(prometheus.Value("sum(dagd_grpc_request_duration_seconds_count{method=\"/dagd.v1."
                             "RunService/SubmitRun\"})"),
            1);
  EXPECT_GT(prometheus.Value("sum(dagd_storage_commit_duration_seconds_count)"), 0);
  EXPECT_GT(prometheus.Value("sum(dagd_storage_database_bytes)"), 0);
  EXPECT_EQ(prometheus.Value("sum(dagd_runs_active)"), 0);
  EXPECT_EQ(prometheus.Value("sum(dagd_nodes_running)"), 0);
  EXPECT_EQ(prometheus.Value("sum(dagd_ready)"), 1);
  EXPECT_EQ(prometheus.Value("count(dagd_build_info{version!=\"\",sqlite_version!=\"\"})"), 1);
  EXPECT_GT(prometheus.Value("sum(process_start_time_seconds)"), 0);
  EXPECT_GT(prometheus.Value("sum(process_resident_memory_bytes)"), 0);
}

// --log-format json: every line is one JSON object, and every line that mentions a run names it
// in its "run" field (the property, not the wording, is what is checked).
TEST(ObservabilityLogsTest, JsonLinesCarryTheRunOfEveryLineAboutIt) {
  TempDir tmp;
  const std::string data_dir = tmp.path() + "/data";
  const std::string records = tmp.path() + "/records";
  fs::create_directories(records);
  const std::string config = tmp.path() + "/dagd.toml";
  std::ofstream(config) << "listen = \"127.0.0.1:0\"\n"
                        << "data-dir = \"" << data_dir << "\"\n"
                        << "port-file = \"" << data_dir << "/port\"\n"
                        << "metrics-listen = \"127.0.0.1:0\"\n"
                        << "log-format = \"json\"\n"
                        << "log-level = \"debug\"\n";
  Daemon dagd(data_dir);
  dagd.UseConfigFile(config);
  dagd.Start();
  const v1::Run run = SubmitDiamond(dagd, records);
  ASSERT_FALSE(run.id().empty());
  ASSERT_EQ(WatchToEnd(dagd.runs(), run.id()).back().phase(), v1::PHASE_SUCCEEDED);
  ASSERT_EQ(dagd.Terminate(), 0);

  int lines = 0;
  int about_the_run = 0;
  for (const std::string& text : ReadLines(data_dir + "/dagd.log")) {
    ++lines;
    nlohmann::json line = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
    ASSERT_TRUE(line.is_object()) << "not a JSON object: " << text;
    for (const char* field : {"time", "level", "logger", "msg"}) {
      EXPECT_TRUE(line.contains(field) && line[field].is_string()) << field << " in " << text;
    }
    if (line.value("msg", "").find(run.id()) != std::string::npos || line.contains("run")) {
      ++about_the_run;
      EXPECT_EQ(line.value("run", ""), run.id()) << text;
    }
  }
  EXPECT_GT(lines, 2);
  EXPECT_GT(about_the_run, 0) << "the run's end is logged";
}

TEST(ObservabilityFlagsTest, ABadOrTakenMetricsAddressStopsDagdWithTheFlagToFix) {
  TempDir tmp;
  const std::string dagd = BinaryPath("cmd/dagd/dagd");
  CommandResult bad = RunCommand({dagd, "--listen", "127.0.0.1:0", "--data-dir", tmp.path() + "/a",
                                  "--metrics-listen", "localhost"});
  EXPECT_EQ(bad.exit_code, 1) << bad.output;
  EXPECT_NE(bad.output.find("\"localhost\" is not HOST:PORT"), std::string::npos) << bad.output;

  Daemon first(tmp.path() + "/b");
  first.Start();
  CommandResult taken =
      RunCommand({dagd, "--listen", "127.0.0.1:0", "--data-dir", tmp.path() + "/c",
                  "--metrics-listen", first.metrics_address()});
  EXPECT_EQ(taken.exit_code, 1) << taken.output;
  EXPECT_NE(taken.output.find("cannot listen on the metrics address " + first.metrics_address()),
            std::string::npos)
      << taken.output;
  EXPECT_NE(taken.output.find("--metrics-listen"), std::string::npos) << taken.output;
  // The first dagd still serves.
  EXPECT_EQ(HttpGet(first.metrics_address(), "/healthz").status, 200);
}

}  // namespace
}  // namespace dagd::testing
