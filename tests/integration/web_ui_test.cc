// The run page of the real dagd, opened in Debian's headless Chromium: what the browser shows
// after its script ran (the DOM), while a node runs and after the run ended, and a screenshot.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <thread>

#include "tests/integration/daemon.h"

namespace dagd::testing {
namespace {

namespace fs = std::filesystem;

// A waits for nothing, B until the file `gate` exists (its directory mounted into B's pod as a
// hostPath volume), C after both.
std::string GatedWorkflow(const std::string& gate) {
  return "apiVersion: argoproj.io/v1alpha1\n"
         "kind: Workflow\n"
         "metadata: {generateName: gated-}\n"
         "spec:\n"
         "  entrypoint: main\n"
         "  templates:\n"
         "  - name: main\n"
         "    dag:\n"
         "      tasks:\n"
         "      - {name: A, template: quick}\n"
         "      - {name: B, template: gated, depends: A}\n"
         "      - {name: C, template: quick, depends: A && B}\n"
         "  - name: quick\n"
         "    container: {image: alpine, command: [echo, quick step done]}\n"
         "  - name: gated\n"
         "    volumes: [{name: gate, hostPath: {path: '" +
         fs::path(gate).parent_path().string() +
         "'}}]\n"
         "    container:\n"
         "      image: alpine\n"
         "      volumeMounts: [{name: gate, mountPath: /gate, readOnly: true}]\n"
         "      command: [sh, -c, 'while [ ! -f /gate/" +
         fs::path(gate).filename().string() + " ]; do sleep 0.05; done; echo gate open, B done']\n";
}

class WebUiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dagd_.Start();
    ASSERT_FALSE(dagd_.metrics_address().empty());
  }

  // The page's DOM once its script has run (Chromium's virtual time lets the fetches finish).
  std::string Dom(const std::string& path) {
    CommandResult r =
        RunCommand({"/usr/bin/chromium", "--headless", "--no-sandbox", "--disable-gpu",
                    "--user-data-dir=" + tmp_.path() + "/chromium", "--virtual-time-budget=4000",
                    "--dump-dom", "http://" + dagd_.metrics_address() + path});
    EXPECT_EQ(r.exit_code, 0) << r.output;
    return r.output;
  }

  v1::Run GetRun(const std::string& id) {
    grpc::ClientContext context;
    v1::GetRunRequest request;
    request.set_run_id(id);
    v1::Run run;
    EXPECT_TRUE(dagd_.runs()->GetRun(&context, request, &run).ok());
    return run;
  }

  static std::string TaskPhase(const std::string& dom, const std::string& task) {
    std::smatch m;
    const std::regex re("class=\"task\" data-task=\"" + task + "\" data-phase=\"(\\w*)\"");
    return std::regex_search(dom, m, re) ? m[1].str() : "(no task " + task + ")";
  }

  static int Count(const std::string& text, const std::string& what) {
    int n = 0;
    for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
    return n;
  }

  TempDir tmp_;
  Daemon dagd_{tmp_.path() + "/data"};
};

TEST_F(WebUiTest, ChromiumShowsTheDagLiveThenFinalWithLinksToLogs) {
  const std::string gate = tmp_.path() + "/gate";
  v1::SubmitRunRequest request;
  request.set_spec_yaml(GatedWorkflow(gate));
  request.set_file_name("gated.yaml");
  v1::Run run;
  {
    grpc::ClientContext context;
    ASSERT_TRUE(dagd_.runs()->SubmitRun(&context, request, &run).ok());
  }
  // Wait (bounded) until B runs: A is done, B waits at its gate.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (std::chrono::steady_clock::now() < deadline) {
    v1::Run now = GetRun(run.id());
    const v1::Node* b = FindNode(now, "B");
    if (b != nullptr && b->phase() == v1::PHASE_RUNNING) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }

  std::string live = Dom("/runs/" + run.id());
  EXPECT_EQ(TaskPhase(live, "A"), "Succeeded") << live;
  EXPECT_EQ(TaskPhase(live, "B"), "Running") << live;
  EXPECT_EQ(TaskPhase(live, "C"), "") << "C has no node yet";
  EXPECT_NE(live.find("<b id=\"progress\">1/2</b>"), std::string::npos) << live;
  EXPECT_NE(live.find("updating live"), std::string::npos) << live;
  EXPECT_EQ(Count(live, "class=\"edge\""), 3) << "A→B, A→C, B→C";

  std::ofstream(gate) << "open";
  WatchToEnd(dagd_.runs(), run.id());
  std::string final_dom = Dom("/runs/" + run.id());
  for (const char* task : {"A", "B", "C"}) {
    EXPECT_EQ(TaskPhase(final_dom, task), "Succeeded") << task << "\n" << final_dom;
  }
  EXPECT_NE(final_dom.find("<b id=\"phase\" class=\"phase Succeeded\">Succeeded</b>"),
            std::string::npos)
      << final_dom;
  EXPECT_NE(final_dom.find("<b id=\"progress\">3/3</b>"), std::string::npos) << final_dom;
  EXPECT_NE(final_dom.find(">final<"), std::string::npos) << final_dom;
  EXPECT_EQ(Count(final_dom, "class=\"logs\""), 3) << final_dom;
  EXPECT_EQ(Count(final_dom, "class=\"events\""), 3) << final_dom;

  // The page's own link to B's log leads to B's output.
  std::smatch link;
  ASSERT_TRUE(std::regex_search(final_dom, link,
                                std::regex("<a class=\"logs\" href=\"([^\"]*\\.B)\">logs</a>")))
      << final_dom;
  std::string href = std::regex_replace(link[1].str(), std::regex("&amp;"), "&");
  HttpResult logs = HttpGet(dagd_.metrics_address(), href);
  EXPECT_EQ(logs.status, 200) << href;
  EXPECT_EQ(logs.body, "--- attempt 1 ---\ngate open, B done\n");

  // The index lists the run and links to its page.
  std::string index = Dom("/");
  EXPECT_NE(index.find("href=\"/runs/" + run.id() + "\""), std::string::npos) << index;

  // A screenshot: a PNG of the drawn page.
  const std::string png = tmp_.path() + "/run.png";
  CommandResult shot =
      RunCommand({"/usr/bin/chromium", "--headless", "--no-sandbox", "--disable-gpu",
                  "--user-data-dir=" + tmp_.path() + "/chromium", "--virtual-time-budget=4000",
                  "--window-size=1100,700", "--screenshot=" + png,
                  "http://" + dagd_.metrics_address() + "/runs/" + run.id()});
  EXPECT_EQ(shot.exit_code, 0) << shot.output;
  const std::string bytes = ReadFile(png);
  ASSERT_GT(bytes.size(), 8u);
  EXPECT_EQ(bytes.substr(1, 3), "PNG");
  if (const char* keep = std::getenv("DAGD_KEEP_SCREENSHOT"))
    fs::copy_file(png, keep, fs::copy_options::overwrite_existing);
}

TEST_F(WebUiTest, AnUnknownRunIsA404) {
  HttpResult page = HttpGet(dagd_.metrics_address(), "/runs/no-such-run");
  EXPECT_EQ(page.status, 404);
  EXPECT_NE(page.body.find("no-such-run"), std::string::npos) << page.body;
}

}  // namespace
}  // namespace dagd::testing
