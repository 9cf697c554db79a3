// The run pages' data and routes, on the real scheduler, local runner and SQLite store
// (ServerStack): a fan-out diamond of real commands runs to its end, then every page is asked for.
#include "server/web_ui.h"

#include <gtest/gtest.h>

#include <string>

#include "tests/server/server_stack.h"

namespace dagd::server {
namespace {

using nlohmann::json;
using testing::ServerStack;

constexpr char kFanOutDiamond[] = R"(
apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata: {generateName: page-}
spec:
  entrypoint: main
  templates:
  - name: main
    dag:
      tasks:
      - {name: A, template: say, arguments: {parameters: [{name: word, value: alpha}]}}
      - name: B
        depends: A
        template: say
        withItems: [one, two]
        arguments: {parameters: [{name: word, value: "{{item}}"}]}
      - {name: C, template: fail, depends: A}
      - {name: D, template: say, depends: "B && C.Failed",
         arguments: {parameters: [{name: word, value: "<delta>"}]}}
  - name: say
    inputs: {parameters: [{name: word}]}
    container: {image: alpine, command: [echo, "said {{inputs.parameters.word}}"]}
  - name: fail
    container: {image: alpine, command: [sh, -c, "echo failing; exit 3"]}
)";

class WebUiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_NO_FATAL_FAILURE(stack_.Start());
    AddWebUiRoutes(stack_.store(), &routes_);
    run_ = testing::SubmitSpec(stack_.runs(), kFanOutDiamond);
    ASSERT_FALSE(run_.id().empty());
    testing::WatchToEnd(stack_.runs(), run_.id());
  }

  HttpResponse Get(const std::string& route, const std::string& path,
                   std::map<std::string, std::string> query = {}) {
    HttpRequest request{"GET", path, std::move(query)};
    return routes_.at(route)(request);
  }

  ServerStack stack_;
  HttpServer::Routes routes_;
  v1::Run run_;
};

TEST_F(WebUiTest, TheRunJsonHasTheTasksTheirEdgesPhasesAndPods) {
  absl::StatusOr<json> page = RunPageJson(stack_.store(), run_.id(), 0);
  ASSERT_TRUE(page.ok()) << page.status();
  EXPECT_EQ((*page)["phase"], "Succeeded") << page->dump(2);
  EXPECT_EQ((*page)["workflow"], "page");
  EXPECT_EQ((*page)["final"], true);
  EXPECT_EQ((*page)["done"], 5);  // A, B(0), B(1), C, D
  EXPECT_EQ((*page)["total"], 5);
  const json& tasks = (*page)["tasks"];
  ASSERT_EQ(tasks.size(), 4u);
  EXPECT_EQ(tasks[0]["task"], "A");
  EXPECT_EQ(tasks[1]["task"], "B");
  EXPECT_EQ(tasks[1]["phase"], "Succeeded");
  ASSERT_EQ(tasks[1]["nodes"].size(), 2u) << "the fan-out's two pods";
  EXPECT_EQ(tasks[1]["nodes"][0]["display"], "B(0:one)");
  EXPECT_EQ(tasks[1]["nodes"][1]["display"], "B(1:two)");
  EXPECT_EQ(tasks[2]["phase"], "Failed");
  EXPECT_EQ(tasks[2]["nodes"][0]["attempts"][0]["phase"], "Failed");
  EXPECT_EQ(tasks[2]["nodes"][0]["attempts"][0]["runner"], "local");
  EXPECT_EQ(tasks[3]["phase"], "Succeeded");
  EXPECT_EQ((*page)["edges"], json::parse("[[0,1],[0,2],[1,3],[2,3]]"));

  EXPECT_EQ(RunPageJson(stack_.store(), "no-such-run", 0).status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(WebUiTest, PagesForTheRunItsLogsAndEventsAndTheIndex) {
  HttpResponse page = Get("/runs/", "/runs/" + run_.id());
  EXPECT_EQ(page.status, 200);
  EXPECT_EQ(page.content_type, "text/html; charset=utf-8");
  EXPECT_NE(page.body.find("<svg id=\"dag\""), std::string::npos);

  HttpResponse api = Get("/api/runs/", "/api/runs/" + run_.id());
  EXPECT_EQ(api.status, 200);
  EXPECT_EQ(api.content_type, "application/json");
  EXPECT_EQ(json::parse(api.body)["id"], run_.id());

  const std::string d_node = run_.id() + ".D";
  HttpResponse logs = Get("/runs/", "/runs/" + run_.id() + "/logs", {{"node", d_node}});
  EXPECT_EQ(logs.status, 200);
  EXPECT_EQ(logs.body, "--- attempt 1 ---\nsaid <delta>\n");
  HttpResponse c_logs = Get("/runs/", "/runs/" + run_.id() + "/logs", {{"node", run_.id() + ".C"}});
  EXPECT_EQ(c_logs.body, "--- attempt 1 ---\nfailing\n");

  HttpResponse events = Get("/runs/", "/runs/" + run_.id() + "/events");
  EXPECT_EQ(events.status, 200);
  EXPECT_NE(events.body.find("Ansible events of " + run_.id()), std::string::npos);

  HttpResponse index = Get("/", "/");
  EXPECT_EQ(index.status, 200);
  EXPECT_NE(index.body.find("href=\"/runs/" + run_.id() + "\""), std::string::npos) << index.body;
  EXPECT_NE(index.body.find("<span class=\"phase Succeeded\">Succeeded</span>"), std::string::npos);
}

TEST_F(WebUiTest, UnknownRunsAndPagesAre404AndTextIsEscaped) {
  EXPECT_EQ(Get("/runs/", "/runs/no-such-run").status, 404);
  EXPECT_EQ(Get("/runs/", "/runs/no-such-run/logs").status, 404);
  EXPECT_EQ(Get("/runs/", "/runs/no-such-run/events").status, 404);
  EXPECT_EQ(Get("/api/runs/", "/api/runs/no-such-run").status, 404);
  EXPECT_EQ(Get("/runs/", "/runs/" + run_.id() + "/nothing").status, 404);
  EXPECT_EQ(Get("/runs/", "/runs/%zz").status, 404) << "a bad escape is a name, not a crash";
  EXPECT_EQ(Get("/api/runs/", "/api/runs/%zz%").status, 404);
  // A percent-encoded run id is decoded.
  std::string encoded = run_.id();
  encoded.replace(encoded.find('-'), 1, "%2D");
  EXPECT_EQ(Get("/runs/", "/runs/" + encoded).status, 200);
  // A node name from the query is shown escaped, never as markup.
  HttpResponse events =
      Get("/runs/", "/runs/" + run_.id() + "/events", {{"node", "<script>alert(1)</script>"}});
  EXPECT_EQ(events.body.find("<script>alert"), std::string::npos);
  EXPECT_NE(events.body.find("&lt;script&gt;alert(1)&lt;/script&gt;"), std::string::npos);
}

}  // namespace
}  // namespace dagd::server
