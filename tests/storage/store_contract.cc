#include "tests/storage/store_contract.h"

#include <algorithm>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "gmock/gmock.h"
#include "tests/storage/status_test_macros.h"

namespace dagd::storage::testing {
namespace {

using engine::NodePhase;
using engine::NodeState;

const char kYamlV1[] = "apiVersion: argoproj.io/v1alpha1\nkind: Workflow\nspec: {entrypoint: a}\n";
const char kYamlV2[] = "apiVersion: argoproj.io/v1alpha1\nkind: Workflow\nspec: {entrypoint: b}\n";

std::vector<std::string> Ids(const std::vector<RunRecord>& runs) {
  std::vector<std::string> ids;
  ids.reserve(runs.size());
  for (const RunRecord& run : runs) ids.push_back(run.id);
  return ids;
}

void ExpectSameRun(const RunRecord& got, const RunRecord& want) {
  EXPECT_EQ(got.id, want.id);
  EXPECT_EQ(got.workflow_name, want.workflow_name);
  EXPECT_EQ(got.workflow_version, want.workflow_version);
  EXPECT_EQ(got.workflow_yaml, want.workflow_yaml);
  EXPECT_EQ(got.file_name, want.file_name);
  EXPECT_EQ(got.bundle_digest, want.bundle_digest);
  EXPECT_EQ(got.parameters, want.parameters);
  EXPECT_EQ(got.phase, want.phase);
  EXPECT_EQ(got.message, want.message);
  EXPECT_EQ(got.request_id, want.request_id);
  EXPECT_EQ(got.stop, want.stop);
  EXPECT_EQ(got.created_at_ms, want.created_at_ms);
  EXPECT_EQ(got.started_at_ms, want.started_at_ms);
  EXPECT_EQ(got.finished_at_ms, want.finished_at_ms);
  EXPECT_EQ(got.last_sequence, want.last_sequence);
  EXPECT_EQ(got.labels, want.labels);
}

// Three files: a playbook (0644), a script (0755) and a role's task file (0600), 34 bytes.
std::vector<BundleFile> SiteBundle() {
  return {BundleFile{.path = "site.yml", .mode = 0644, .content = "- hosts: x\n"},
          BundleFile{.path = "bin/check.sh", .mode = 0755, .content = "#!/bin/sh\nexit\n"},
          BundleFile{.path = "roles/web/tasks/main.yml", .mode = 0600, .content = "- ping:\n"}};
}

WriteBatch RunBatch(RunRecord run) {
  WriteBatch batch;
  batch.runs.push_back(std::move(run));
  return batch;
}

}  // namespace

std::string StoreFactoryName(const ::testing::TestParamInfo<StoreFactory>& info) {
  return info.param.name;
}

void StoreContractTest::SetUp() {
  absl::StatusOr<std::unique_ptr<Store>> store = GetParam().open(dir_.path());
  ASSERT_TRUE(store.ok()) << store.status();
  store_ = *std::move(store);
}

RunRecord MakeRun(const std::string& id, const std::string& workflow, int64_t created_at_ms,
                  NodePhase phase, const std::string& request_id) {
  RunRecord run;
  run.id = id;
  run.workflow_name = workflow;
  run.workflow_version = 1;
  run.workflow_yaml = kYamlV1;
  run.file_name = workflow + ".yaml";
  run.parameters = {{"env", "staging"}, {"quote", "it's \"x\""}};
  run.phase = phase;
  run.message = "message of " + id;
  run.request_id = request_id;
  run.created_at_ms = created_at_ms;
  run.started_at_ms = created_at_ms + 1;
  run.labels = {{"team", "ops"}, {"app.kubernetes.io/name", "it's \"x\""}};
  return run;
}

NodeState MakeNode(const std::string& name, int attempts) {
  NodeState node;
  node.name = name;
  node.display_name = name.substr(name.find('.') + 1);
  node.parent = name.substr(0, name.find('.'));
  node.task_name = node.display_name;
  node.template_name = "tmpl";
  node.type = engine::NodeType::kPod;
  node.phase = NodePhase::kRunning;
  node.inputs = {{"host", "a"}};
  node.started_at_ms = 100;
  for (int i = 1; i <= attempts; ++i) {
    engine::AttemptRecord attempt;
    attempt.number = i;
    attempt.phase = i < attempts ? NodePhase::kFailed : NodePhase::kRunning;
    attempt.runner = "kubernetes";
    attempt.external_name = absl::StrCat(name, "-", i);
    attempt.exit_code = i < attempts ? 2 : -1;
    attempt.started_at_ms = int64_t{100} * i;
    node.attempts.push_back(attempt);
  }
  return node;
}

EventRecord MakeEvent(const std::string& run_id, int64_t sequence, const std::string& node) {
  EventRecord event;
  event.run_id = run_id;
  event.sequence = sequence;
  event.time_ms = 1000 + sequence;
  event.node_name = node;
  event.type = node.empty() ? "RunPhase" : "NodePhase";
  event.phase = NodePhase::kSucceeded;
  event.message = absl::StrCat("event ", sequence);
  event.attempt = node.empty() ? 0 : 1;
  return event;
}

LogChunkRecord MakeLog(const std::string& run_id, const std::string& node, int attempt,
                       const std::string& data) {
  LogChunkRecord chunk;
  chunk.run_id = run_id;
  chunk.node_name = node;
  chunk.attempt = attempt;
  chunk.stream = "stdout";
  chunk.data = data;
  chunk.time_ms = 5000;
  return chunk;
}

// --- workflows ----------------------------------------------------------------------------------

TEST_P(StoreContractTest, PutWorkflowVersionsOnlyChangedSpecs) {
  bool created = false;
  absl::StatusOr<WorkflowRecord> v1 = store_->PutWorkflow("deploy", kYamlV1, "a", {}, 10, &created);
  DAGD_ASSERT_OK(v1);
  EXPECT_TRUE(created);
  EXPECT_EQ(v1->version, 1);
  EXPECT_EQ(v1->created_at_ms, 10);
  EXPECT_EQ(v1->spec_sha256.size(), 64u);

  absl::StatusOr<WorkflowRecord> same =
      store_->PutWorkflow("deploy", kYamlV1, "a", {}, 20, &created);
  DAGD_ASSERT_OK(same);
  EXPECT_FALSE(created);
  EXPECT_EQ(same->version, 1);
  EXPECT_EQ(same->created_at_ms, 10);

  absl::StatusOr<WorkflowRecord> v2 = store_->PutWorkflow("deploy", kYamlV2, "b", {}, 30, &created);
  DAGD_ASSERT_OK(v2);
  EXPECT_TRUE(created);
  EXPECT_EQ(v2->version, 2);
  EXPECT_NE(v2->spec_sha256, v1->spec_sha256);

  absl::StatusOr<WorkflowRecord> v3 =
      store_->PutWorkflow("deploy", kYamlV2, "b", SiteBundle(), 40, &created);
  DAGD_ASSERT_OK(v3);
  EXPECT_TRUE(created) << "a changed bundle alone makes a new version";
  EXPECT_EQ(v3->version, 3);
  EXPECT_EQ(v3->bundle.digest.size(), 64u);
  EXPECT_EQ(v3->bundle.file_count, 3);
  EXPECT_EQ(v3->bundle.total_bytes, 11 + 15 + 8);

  // The same files in another order, with mode 0 for the default 0644: the same bundle.
  std::vector<BundleFile> shuffled = SiteBundle();
  std::reverse(shuffled.begin(), shuffled.end());
  for (BundleFile& file : shuffled) {
    if (file.mode == 0644) file.mode = 0;
  }
  absl::StatusOr<WorkflowRecord> same_bundle =
      store_->PutWorkflow("deploy", kYamlV2, "b", shuffled, 50, &created);
  DAGD_ASSERT_OK(same_bundle);
  EXPECT_FALSE(created);
  EXPECT_EQ(same_bundle->version, 3);
  EXPECT_EQ(same_bundle->bundle.digest, v3->bundle.digest);
  EXPECT_EQ(same_bundle->bundle.file_count, 3);

  std::vector<BundleFile> edited = SiteBundle();
  edited[0].content += "# edited\n";
  absl::StatusOr<WorkflowRecord> v4 =
      store_->PutWorkflow("deploy", kYamlV2, "b", edited, 60, &created);
  DAGD_ASSERT_OK(v4);
  EXPECT_TRUE(created) << "a changed file content makes a new version";
  EXPECT_EQ(v4->version, 4);
  EXPECT_NE(v4->bundle.digest, v3->bundle.digest);

  std::vector<BundleFile> executable = SiteBundle();
  executable[0].mode = 0755;
  absl::StatusOr<WorkflowRecord> v5 =
      store_->PutWorkflow("deploy", kYamlV2, "b", executable, 70, &created);
  DAGD_ASSERT_OK(v5);
  EXPECT_TRUE(created) << "a changed mode makes a new version";
  EXPECT_NE(v5->bundle.digest, v3->bundle.digest);

  absl::StatusOr<WorkflowRecord> v6 = store_->PutWorkflow("deploy", kYamlV2, "b", {}, 80, &created);
  DAGD_ASSERT_OK(v6);
  EXPECT_TRUE(created) << "dropping the bundle makes a new version";
  EXPECT_EQ(v6->bundle.digest, "");
  EXPECT_EQ(v6->bundle.file_count, 0);
}

TEST_P(StoreContractTest, WorkflowSha256IsOfTheYaml) {
  absl::StatusOr<WorkflowRecord> abc = store_->PutWorkflow("w", "abc", "main", {}, 1, nullptr);
  DAGD_ASSERT_OK(abc);
  EXPECT_EQ(abc->spec_sha256, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST_P(StoreContractTest, GetWorkflowByVersionAndLatest) {
  DAGD_ASSERT_OK(store_->PutWorkflow("deploy", kYamlV1, "a", {}, 10, nullptr));
  absl::StatusOr<WorkflowRecord> put =
      store_->PutWorkflow("deploy", kYamlV2, "b", SiteBundle(), 20, nullptr);
  DAGD_ASSERT_OK(put);

  absl::StatusOr<WorkflowRecord> latest = store_->GetWorkflow("deploy", 0);
  DAGD_ASSERT_OK(latest);
  EXPECT_EQ(latest->version, 2);
  EXPECT_EQ(latest->yaml, kYamlV2);
  EXPECT_EQ(latest->entrypoint, "b");
  EXPECT_EQ(latest->bundle.digest, put->bundle.digest);
  EXPECT_EQ(latest->bundle.file_count, 3);
  EXPECT_EQ(latest->bundle.total_bytes, 34);

  absl::StatusOr<WorkflowRecord> first = store_->GetWorkflow("deploy", 1);
  DAGD_ASSERT_OK(first);
  EXPECT_EQ(first->name, "deploy");
  EXPECT_EQ(first->yaml, kYamlV1);
  EXPECT_EQ(first->entrypoint, "a");
  EXPECT_EQ(first->created_at_ms, 10);
  EXPECT_EQ(first->bundle.digest, "");
  EXPECT_EQ(first->bundle.file_count, 0);

  absl::StatusOr<std::vector<WorkflowRecord>> listed = store_->ListWorkflows("", 10, {});
  DAGD_ASSERT_OK(listed);
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ((*listed)[0].bundle.digest, put->bundle.digest);
  EXPECT_EQ((*listed)[0].bundle.total_bytes, 34);

  DAGD_EXPECT_CODE(store_->GetWorkflow("deploy", 3), kNotFound);
  DAGD_EXPECT_CODE(store_->GetWorkflow("missing", 0), kNotFound);
}

TEST_P(StoreContractTest, ListWorkflowsPagesByNameWithLatestVersions) {
  for (const char* name : {"c", "a", "e", "b", "d"}) {
    DAGD_ASSERT_OK(store_->PutWorkflow(name, kYamlV1, "a", {}, 1, nullptr));
  }
  DAGD_ASSERT_OK(store_->PutWorkflow("b", kYamlV2, "b", {}, 2, nullptr));
  DAGD_ASSERT_OK(store_->DeleteWorkflow("d"));

  absl::StatusOr<std::vector<WorkflowRecord>> page = store_->ListWorkflows("", 2, {});
  DAGD_ASSERT_OK(page);
  ASSERT_EQ(page->size(), 2u);
  EXPECT_EQ((*page)[0].name, "a");
  EXPECT_EQ((*page)[1].name, "b");
  EXPECT_EQ((*page)[1].version, 2);

  page = store_->ListWorkflows("b", 10, {});
  DAGD_ASSERT_OK(page);
  ASSERT_EQ(page->size(), 2u);
  EXPECT_EQ((*page)[0].name, "c");
  EXPECT_EQ((*page)[1].name, "e");

  page = store_->ListWorkflows("e", 10, {});
  DAGD_ASSERT_OK(page);
  EXPECT_TRUE(page->empty());
}

TEST_P(StoreContractTest, WorkflowsBelongToOneNamespaceAndListByNamespace) {
  DAGD_ASSERT_OK(store_->PutWorkflows(
      {WorkflowDocument{.name = "a", .yaml = kYamlV1, .entrypoint = "a", .namespace_name = "x"},
       WorkflowDocument{.name = "b", .yaml = kYamlV1, .entrypoint = "a", .namespace_name = "y"},
       WorkflowDocument{.name = "c", .yaml = kYamlV1, .entrypoint = "a"}},
      {}, 1, nullptr));
  absl::StatusOr<WorkflowRecord> a = store_->GetWorkflow("a", 0);
  DAGD_ASSERT_OK(a);
  EXPECT_EQ(a->namespace_name, "x");
  absl::StatusOr<std::vector<WorkflowRecord>> listed =
      store_->ListWorkflows("", 10, {"x", "default"});
  DAGD_ASSERT_OK(listed);
  ASSERT_EQ(listed->size(), 2u);
  EXPECT_EQ((*listed)[0].name, "a");
  EXPECT_EQ((*listed)[1].name, "c");
  EXPECT_EQ((*listed)[1].namespace_name, "default");

  // A live name cannot be taken in another namespace, and nothing of the file is stored.
  DAGD_EXPECT_CODE(
      store_->PutWorkflows(
          {WorkflowDocument{
               .name = "new", .yaml = kYamlV1, .entrypoint = "a", .namespace_name = "y"},
           WorkflowDocument{
               .name = "a", .yaml = kYamlV2, .entrypoint = "a", .namespace_name = "y"}},
          {}, 2, nullptr),
      kAlreadyExists);
  DAGD_EXPECT_CODE(store_->GetWorkflow("new", 0), kNotFound);
  // Deleted, the name is free again, in any namespace.
  DAGD_ASSERT_OK(store_->DeleteWorkflow("a"));
  absl::StatusOr<std::vector<WorkflowRecord>> moved = store_->PutWorkflows(
      {WorkflowDocument{.name = "a", .yaml = kYamlV1, .entrypoint = "a", .namespace_name = "y"}},
      {}, 3, nullptr);
  DAGD_ASSERT_OK(moved);
  EXPECT_EQ((*moved)[0].namespace_name, "y");
  EXPECT_EQ((*moved)[0].version, 2);
}

TEST_P(StoreContractTest, DeleteWorkflowHidesItButKeepsRuns) {
  DAGD_ASSERT_OK(store_->PutWorkflow("deploy", kYamlV1, "a", {}, 10, nullptr));
  DAGD_ASSERT_OK(store_->PutWorkflow("deploy", kYamlV2, "b", {}, 20, nullptr));
  RunRecord run = MakeRun("run-1", "deploy", 30);
  run.workflow_version = 2;
  DAGD_ASSERT_OK(store_->Write(RunBatch(run)));

  DAGD_ASSERT_OK(store_->DeleteWorkflow("deploy"));
  DAGD_EXPECT_CODE(store_->GetWorkflow("deploy", 0), kNotFound);
  DAGD_EXPECT_CODE(store_->GetWorkflow("deploy", 1), kNotFound);
  DAGD_EXPECT_CODE(store_->DeleteWorkflow("deploy"), kNotFound);
  DAGD_EXPECT_CODE(store_->DeleteWorkflow("never-stored"), kNotFound);

  absl::StatusOr<RunRecord> kept = store_->GetRun("run-1");
  DAGD_ASSERT_OK(kept);
  EXPECT_EQ(kept->workflow_yaml, kYamlV1);

  // Storing the name again starts a new version; numbers are not reused.
  bool created = false;
  absl::StatusOr<WorkflowRecord> again =
      store_->PutWorkflow("deploy", kYamlV1, "a", {}, 40, &created);
  DAGD_ASSERT_OK(again);
  EXPECT_TRUE(created);
  EXPECT_EQ(again->version, 3);
}

// --- bundles ------------------------------------------------------------------------------------

TEST_P(StoreContractTest, BundleRoundTripsSortedWithModesAndContent) {
  absl::StatusOr<WorkflowRecord> put =
      store_->PutWorkflow("deploy", kYamlV1, "a", SiteBundle(), 10, nullptr);
  DAGD_ASSERT_OK(put);
  absl::StatusOr<std::vector<BundleFile>> files = store_->GetBundle(put->bundle.digest);
  DAGD_ASSERT_OK(files);
  ASSERT_EQ(files->size(), 3u);
  EXPECT_EQ((*files)[0].path, "bin/check.sh");
  EXPECT_EQ((*files)[0].mode, 0755u);
  EXPECT_EQ((*files)[0].content, "#!/bin/sh\nexit\n");
  EXPECT_EQ((*files)[1].path, "roles/web/tasks/main.yml");
  EXPECT_EQ((*files)[1].mode, 0600u);
  EXPECT_EQ((*files)[1].content, "- ping:\n");
  EXPECT_EQ((*files)[2].path, "site.yml");
  EXPECT_EQ((*files)[2].mode, 0644u);
  EXPECT_EQ((*files)[2].content, "- hosts: x\n");

  absl::StatusOr<std::vector<BundleEntry>> manifest = store_->GetBundleManifest(put->bundle.digest);
  DAGD_ASSERT_OK(manifest);
  ASSERT_EQ(manifest->size(), 3u);
  EXPECT_EQ((*manifest)[2].path, "site.yml");
  EXPECT_EQ((*manifest)[2].mode, 0644u);
  EXPECT_EQ((*manifest)[2].size, 11);
  EXPECT_EQ((*manifest)[2].blob_digest, Sha256Hex("- hosts: x\n"));
}

TEST_P(StoreContractTest, BundleDigestIsTheSha256OfTheCanonicalManifest) {
  absl::StatusOr<BundleInfo> info =
      store_->PutBundle({BundleFile{.path = "b.yml", .mode = 0755, .content = "b"},
                         BundleFile{.path = "a dir/a.yml", .mode = 0, .content = ""}},
                        10);
  DAGD_ASSERT_OK(info);
  // Written out by hand: sorted by path, 4 octal digits of mode, the content's SHA-256, path.
  const std::string manifest = absl::StrCat(
      "dagd-bundle-v1\n",
      "0644 e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855 a dir/a.yml\n",
      "0755 3e23e8160039594a33894f6564e1b1348bbd7a0088d42c4acb73eeaed59c009d b.yml\n");
  EXPECT_EQ(info->digest, Sha256Hex(manifest));
  EXPECT_EQ(info->file_count, 2);
  EXPECT_EQ(info->total_bytes, 1);
  absl::StatusOr<std::vector<BundleFile>> files = store_->GetBundle(info->digest);
  DAGD_ASSERT_OK(files);
  ASSERT_EQ(files->size(), 2u);
  EXPECT_EQ((*files)[0].content, "") << "an empty file is kept, empty";
  EXPECT_EQ((*files)[0].mode, 0644u);

  // Storing it again is a no-op that returns the same info.
  absl::StatusOr<BundleInfo> again =
      store_->PutBundle({BundleFile{.path = "a dir/a.yml", .content = ""},
                         BundleFile{.path = "b.yml", .mode = 0755, .content = "b"}},
                        20);
  DAGD_ASSERT_OK(again);
  EXPECT_EQ(again->digest, info->digest);
}

TEST_P(StoreContractTest, EmptyBundleIsNoBundle) {
  absl::StatusOr<BundleInfo> info = store_->PutBundle({}, 10);
  DAGD_ASSERT_OK(info);
  EXPECT_EQ(info->digest, "");
  EXPECT_EQ(info->file_count, 0);
  absl::StatusOr<std::vector<BundleFile>> files = store_->GetBundle("");
  DAGD_ASSERT_OK(files);
  EXPECT_TRUE(files->empty());
  absl::StatusOr<std::vector<BundleEntry>> manifest = store_->GetBundleManifest("");
  DAGD_ASSERT_OK(manifest);
  EXPECT_TRUE(manifest->empty());
}

TEST_P(StoreContractTest, UnknownBundleIsNotFound) {
  const std::string unknown = Sha256Hex("never stored");
  DAGD_EXPECT_CODE(store_->GetBundle(unknown), kNotFound);
  DAGD_EXPECT_CODE(store_->GetBundleManifest(unknown), kNotFound);
}

TEST_P(StoreContractTest, ABadBundleIsInvalidArgumentAndStoresNothing) {
  const std::vector<std::vector<BundleFile>> bad = {
      {BundleFile{.path = "/etc/passwd", .content = "x"}},
      {BundleFile{.path = "../outside.yml", .content = "x"}},
      {BundleFile{.path = "a/./b.yml", .content = "x"}},
      {BundleFile{.path = ".dagd/callback_plugins/x.py", .content = "x"}},
      {BundleFile{.path = "ok.yml", .content = "x"}, BundleFile{.path = "ok.yml", .content = "y"}},
      {BundleFile{.path = "a", .content = "x"}, BundleFile{.path = "a/b", .content = "y"}},
      {BundleFile{.path = "setuid", .mode = 04755, .content = "x"}},
  };
  for (const std::vector<BundleFile>& files : bad) {
    bool created = true;
    DAGD_EXPECT_CODE(store_->PutWorkflow("deploy", kYamlV1, "a", files, 10, &created),
                     kInvalidArgument);
    DAGD_EXPECT_CODE(store_->PutBundle(files, 10), kInvalidArgument);
  }
  DAGD_EXPECT_CODE(store_->GetWorkflow("deploy", 0), kNotFound);
  // The first version stored later is still version 1: nothing was stored meanwhile.
  absl::StatusOr<WorkflowRecord> first =
      store_->PutWorkflow("deploy", kYamlV1, "a", {}, 20, nullptr);
  DAGD_ASSERT_OK(first);
  EXPECT_EQ(first->version, 1);
}

TEST_P(StoreContractTest, RunNamesAStoredBundleOnly) {
  absl::StatusOr<BundleInfo> bundle = store_->PutBundle(SiteBundle(), 10);
  DAGD_ASSERT_OK(bundle);
  RunRecord run = MakeRun("run-1", "deploy", 1000);
  run.bundle_digest = bundle->digest;
  DAGD_ASSERT_OK(store_->Write(RunBatch(run)));
  absl::StatusOr<RunRecord> got = store_->GetRun("run-1");
  DAGD_ASSERT_OK(got);
  ExpectSameRun(*got, run);

  // A run may not name a bundle that is not stored; nothing of its batch is.
  RunRecord dangling = MakeRun("run-2", "deploy", 2000);
  dangling.bundle_digest = Sha256Hex("never stored");
  WriteBatch batch = RunBatch(dangling);
  batch.events.push_back(MakeEvent("run-2", 1));
  DAGD_EXPECT_CODE(store_->Write(batch), kFailedPrecondition);
  DAGD_EXPECT_CODE(store_->GetRun("run-2"), kNotFound);
}

TEST_P(StoreContractTest, DeletedWorkflowsKeepTheirBundleForTheirRuns) {
  absl::StatusOr<WorkflowRecord> put =
      store_->PutWorkflow("deploy", kYamlV1, "a", SiteBundle(), 10, nullptr);
  DAGD_ASSERT_OK(put);
  RunRecord run = MakeRun("run-1", "deploy", 1000);
  run.bundle_digest = put->bundle.digest;
  DAGD_ASSERT_OK(store_->Write(RunBatch(run)));
  DAGD_ASSERT_OK(store_->DeleteWorkflow("deploy"));
  absl::StatusOr<std::vector<BundleFile>> files = store_->GetBundle(put->bundle.digest);
  DAGD_ASSERT_OK(files);
  EXPECT_EQ(files->size(), 3u);
}

// --- runs ---------------------------------------------------------------------------------------

TEST_P(StoreContractTest, RunRoundTripsAndIsReplacedById) {
  RunRecord run = MakeRun("run-1", "deploy", 1000, NodePhase::kRunning, "req-1");
  DAGD_ASSERT_OK(store_->Write(RunBatch(run)));
  absl::StatusOr<RunRecord> got = store_->GetRun("run-1");
  DAGD_ASSERT_OK(got);
  ExpectSameRun(*got, run);

  run.phase = NodePhase::kFailed;
  run.message = "stopped by user";
  run.stop = engine::StopStrategy::kTerminate;
  run.finished_at_ms = 2000;
  DAGD_ASSERT_OK(store_->Write(RunBatch(run)));
  got = store_->GetRun("run-1");
  DAGD_ASSERT_OK(got);
  ExpectSameRun(*got, run);
  run.stop = engine::StopStrategy::kStop;  // Argo's stop: exit hooks still run
  DAGD_ASSERT_OK(store_->Write(RunBatch(run)));
  got = store_->GetRun("run-1");
  DAGD_ASSERT_OK(got);
  ExpectSameRun(*got, run);

  DAGD_EXPECT_CODE(store_->GetRun("run-2"), kNotFound);
}

TEST_P(StoreContractTest, RequestIdIsUniqueAndFindsItsRun) {
  DAGD_ASSERT_OK(store_->Write(RunBatch(MakeRun("run-1", "w", 1, NodePhase::kRunning, "req"))));
  absl::StatusOr<RunRecord> found = store_->GetRunByRequestId("req");
  DAGD_ASSERT_OK(found);
  EXPECT_EQ(found->id, "run-1");
  DAGD_EXPECT_CODE(store_->GetRunByRequestId("other"), kNotFound);
  DAGD_EXPECT_CODE(store_->GetRunByRequestId(""), kNotFound);

  // A second run with the same request id is refused, and nothing of its batch is stored.
  WriteBatch duplicate = RunBatch(MakeRun("run-2", "w", 2, NodePhase::kRunning, "req"));
  duplicate.events.push_back(MakeEvent("run-1", 1));
  DAGD_EXPECT_CODE(store_->Write(duplicate), kAlreadyExists);
  DAGD_EXPECT_CODE(store_->GetRun("run-2"), kNotFound);
  absl::StatusOr<std::vector<EventRecord>> events = store_->GetEvents("run-1", 0, 10);
  DAGD_ASSERT_OK(events);
  EXPECT_TRUE(events->empty());

  // Runs without a request id do not collide with each other.
  DAGD_ASSERT_OK(store_->Write(RunBatch(MakeRun("run-3", "w", 3))));
  DAGD_ASSERT_OK(store_->Write(RunBatch(MakeRun("run-4", "w", 4))));
}

TEST_P(StoreContractTest, ListRunsNewestFirstWithFiltersAndPages) {
  WriteBatch batch;
  for (int i = 0; i < 25; ++i) {
    const NodePhase phase = i % 3 == 0 ? NodePhase::kSucceeded : NodePhase::kRunning;
    // Two runs share each creation time, so that pages must break ties by id.
    batch.runs.push_back(
        MakeRun(absl::StrCat("run-", 100 + i), i % 2 ? "odd" : "even", 1000 + i / 2, phase));
  }
  DAGD_ASSERT_OK(store_->Write(batch));

  std::vector<std::string> all;
  RunFilter filter;
  filter.limit = 7;
  int pages = 0;
  do {
    absl::StatusOr<RunPage> page = store_->ListRuns(filter);
    DAGD_ASSERT_OK(page);
    EXPECT_LE(page->runs.size(), 7u);
    for (const RunRecord& run : page->runs) all.push_back(run.id);
    filter.page_token = page->next_page_token;
    ++pages;
  } while (!filter.page_token.empty());
  EXPECT_EQ(pages, 4);
  std::vector<std::string> want;
  for (int i = 24; i >= 0; --i) want.push_back(absl::StrCat("run-", 100 + i));
  EXPECT_EQ(all, want);  // created_at DESC, then id DESC

  RunFilter odd_running;
  odd_running.workflow_name = "odd";
  odd_running.phases = {NodePhase::kRunning, NodePhase::kPending};
  odd_running.created_after_ms = 1002;   // inclusive
  odd_running.created_before_ms = 1008;  // exclusive
  absl::StatusOr<RunPage> page = store_->ListRuns(odd_running);
  DAGD_ASSERT_OK(page);
  // odd i with 1002 <= 1000 + i/2 < 1008, i.e. i in 5..15, and i % 3 != 0.
  EXPECT_EQ(Ids(page->runs),
            (std::vector<std::string>{"run-113", "run-111", "run-107", "run-105"}));
  EXPECT_EQ(page->next_page_token, "");

  RunFilter bad;
  bad.page_token = "not a token!";
  DAGD_EXPECT_CODE(store_->ListRuns(bad), kInvalidArgument);
}

TEST_P(StoreContractTest, RunsKeepNamespaceAndSubmitterAndListByNamespace) {
  WriteBatch batch;
  for (const auto& [id, ns] : std::vector<std::pair<std::string, std::string>>{
           {"r1", "team-a"}, {"r2", "team-b"}, {"r3", "default"}}) {
    RunRecord run = MakeRun(id, "w", 10);
    run.namespace_name = ns;
    run.submitted_by = "alice";
    batch.runs.push_back(run);
  }
  DAGD_ASSERT_OK(store_->Write(batch));
  absl::StatusOr<RunRecord> r1 = store_->GetRun("r1");
  DAGD_ASSERT_OK(r1);
  EXPECT_EQ(r1->namespace_name, "team-a");
  EXPECT_EQ(r1->submitted_by, "alice");
  RunFilter filter;
  filter.namespaces = {"team-b", "default"};
  filter.descending = false;
  absl::StatusOr<RunPage> page = store_->ListRuns(filter);
  DAGD_ASSERT_OK(page);
  EXPECT_EQ(Ids(page->runs), (std::vector<std::string>{"r2", "r3"}));
  filter.namespaces = {"nowhere"};
  page = store_->ListRuns(filter);
  DAGD_ASSERT_OK(page);
  EXPECT_TRUE(page->runs.empty());
}

TEST_P(StoreContractTest, AuditRecordsReadBackNewestFirstWithFiltersAndPages) {
  WriteBatch batch;
  for (int i = 0; i < 5; ++i) {
    batch.audit_records.push_back(AuditRecord{
        .time_ms = 100 + i,
        .principal = i % 2 == 0 ? "alice" : "bob",
        .auth_method = "static-token",
        .method = i < 3 ? "/dagd.v1.RunService/SubmitRun" : "/dagd.v1.RunService/StopRun",
        .namespace_name = i == 4 ? "" : "team-a",
        .target = absl::StrCat("run/r", i),
        .request_id = absl::StrCat("req-", i),
        .code = i == 1 ? "PERMISSION_DENIED" : "OK",
        .message = i == 1 ? "bob may not" : "",
        .peer = "ipv4:127.0.0.1:1"});
  }
  DAGD_ASSERT_OK(store_->Write(batch));
  AuditFilter all;
  all.limit = 2;
  std::vector<std::string> targets;
  int pages = 0;
  do {
    absl::StatusOr<AuditPage> page = store_->ListAuditRecords(all);
    DAGD_ASSERT_OK(page);
    for (const AuditRecord& r : page->records) targets.push_back(r.target);
    all.page_token = page->next_page_token;
    ++pages;
  } while (!all.page_token.empty());
  EXPECT_EQ(targets, (std::vector<std::string>{"run/r4", "run/r3", "run/r2", "run/r1", "run/r0"}));
  EXPECT_EQ(pages, 3);

  AuditFilter alice_submits;
  alice_submits.principal = "alice";
  alice_submits.method = "SubmitRun";
  absl::StatusOr<AuditPage> page = store_->ListAuditRecords(alice_submits);
  DAGD_ASSERT_OK(page);
  ASSERT_EQ(page->records.size(), 2u);
  EXPECT_EQ(page->records[0].target, "run/r2");
  EXPECT_EQ(page->records[0].request_id, "req-2");
  EXPECT_EQ(page->records[0].time_ms, 102);
  EXPECT_GT(page->records[0].sequence, page->records[1].sequence);

  AuditFilter failed;
  failed.failed_only = true;
  page = store_->ListAuditRecords(failed);
  DAGD_ASSERT_OK(page);
  ASSERT_EQ(page->records.size(), 1u);
  EXPECT_EQ(page->records[0].code, "PERMISSION_DENIED");
  EXPECT_EQ(page->records[0].message, "bob may not");

  // A namespace filter leaves out records without a namespace.
  AuditFilter team;
  team.namespaces = {"team-a"};
  team.since_ms = 101;
  team.until_ms = 104;
  page = store_->ListAuditRecords(team);
  DAGD_ASSERT_OK(page);
  std::vector<std::string> got;
  for (const AuditRecord& r : page->records) got.push_back(r.target);
  EXPECT_EQ(got, (std::vector<std::string>{"run/r3", "run/r2", "run/r1"}));

  AuditFilter bad;
  bad.page_token = "x";
  DAGD_EXPECT_CODE(store_->ListAuditRecords(bad), kInvalidArgument);
}

TEST_P(StoreContractTest, ListRunsFiltersByLabels) {
  WriteBatch batch;
  RunRecord prod = MakeRun("prod", "w", 1000);
  prod.labels = {{"env", "prod"}, {"team", "web"}};
  RunRecord staging = MakeRun("staging", "w", 1001);
  staging.labels = {{"env", "staging"}, {"team", "web"}};
  RunRecord none = MakeRun("none", "w", 1002);
  none.labels = {};
  batch.runs = {prod, staging, none};
  DAGD_ASSERT_OK(store_->Write(batch));

  const auto ids = [this](std::vector<LabelRequirement> labels) {
    RunFilter filter;
    filter.labels = std::move(labels);
    absl::StatusOr<RunPage> page = store_->ListRuns(filter);
    EXPECT_TRUE(page.ok()) << page.status();
    return page.ok() ? Ids(page->runs) : std::vector<std::string>{};
  };
  using Op = LabelRequirement::Op;
  EXPECT_EQ(ids({{"env", Op::kEquals, "prod"}}), (std::vector<std::string>{"prod"}));
  EXPECT_EQ(ids({{"team", Op::kEquals, "web"}, {"env", Op::kNotEquals, "prod"}}),
            (std::vector<std::string>{"staging"}));
  EXPECT_EQ(ids({{"env", Op::kNotEquals, "prod"}}), (std::vector<std::string>{"none", "staging"}));
  EXPECT_EQ(ids({{"team", Op::kExists, ""}}), (std::vector<std::string>{"staging", "prod"}));
  EXPECT_EQ(ids({{"env", Op::kEquals, "dev"}}), (std::vector<std::string>{}));
}

TEST_P(StoreContractTest, ListRunsSortsByCreatedFinishedAndDurationAcrossPages) {
  // Durations 30, 10, 20 ms; "running" has not finished.
  WriteBatch batch;
  RunRecord a = MakeRun("a", "w", 1000, NodePhase::kSucceeded);
  a.started_at_ms = 1000;
  a.finished_at_ms = 1030;
  RunRecord b = MakeRun("b", "w", 1001, NodePhase::kFailed);
  b.started_at_ms = 1001;
  b.finished_at_ms = 1011;
  RunRecord c = MakeRun("c", "w", 1002, NodePhase::kSucceeded);
  c.started_at_ms = 1002;
  c.finished_at_ms = 1022;
  RunRecord running = MakeRun("running", "w", 1003, NodePhase::kRunning);
  batch.runs = {a, b, c, running};
  DAGD_ASSERT_OK(store_->Write(batch));

  // Every order, one run per page, so that each page token is used.
  const auto ids = [this](RunOrder order, bool descending) {
    RunFilter filter;
    filter.order = order;
    filter.descending = descending;
    filter.limit = 1;
    std::vector<std::string> all;
    for (int pages = 0; pages < 10; ++pages) {
      absl::StatusOr<RunPage> page = store_->ListRuns(filter);
      EXPECT_TRUE(page.ok()) << page.status();
      if (!page.ok()) break;
      for (const RunRecord& run : page->runs) all.push_back(run.id);
      if (page->next_page_token.empty()) break;
      filter.page_token = page->next_page_token;
    }
    return all;
  };
  using V = std::vector<std::string>;
  EXPECT_EQ(ids(RunOrder::kCreated, true), (V{"running", "c", "b", "a"}));
  EXPECT_EQ(ids(RunOrder::kCreated, false), (V{"a", "b", "c", "running"}));
  EXPECT_EQ(ids(RunOrder::kFinished, true), (V{"a", "c", "b", "running"}));
  EXPECT_EQ(ids(RunOrder::kFinished, false), (V{"running", "b", "c", "a"}));
  EXPECT_EQ(ids(RunOrder::kDuration, true), (V{"a", "c", "b", "running"}));
  EXPECT_EQ(ids(RunOrder::kDuration, false), (V{"running", "b", "c", "a"}));

  // A token is a position in one order only.
  RunFilter first;
  first.limit = 1;
  absl::StatusOr<RunPage> page = store_->ListRuns(first);
  DAGD_ASSERT_OK(page);
  RunFilter other = first;
  other.order = RunOrder::kDuration;
  other.page_token = page->next_page_token;
  DAGD_EXPECT_CODE(store_->ListRuns(other), kInvalidArgument);
}

TEST_P(StoreContractTest, ListUnfinishedRunsReturnsPendingAndRunning) {
  WriteBatch batch;
  batch.runs.push_back(MakeRun("pending", "w", 1, NodePhase::kPending));
  batch.runs.push_back(MakeRun("running", "w", 2, NodePhase::kRunning));
  batch.runs.push_back(MakeRun("ok", "w", 3, NodePhase::kSucceeded));
  batch.runs.push_back(MakeRun("failed", "w", 4, NodePhase::kFailed));
  batch.runs.push_back(MakeRun("error", "w", 5, NodePhase::kError));
  DAGD_ASSERT_OK(store_->Write(batch));
  absl::StatusOr<std::vector<RunRecord>> unfinished = store_->ListUnfinishedRuns();
  DAGD_ASSERT_OK(unfinished);
  std::vector<std::string> ids = Ids(*unfinished);
  std::sort(ids.begin(), ids.end());
  EXPECT_EQ(ids, (std::vector<std::string>{"pending", "running"}));
}

// --- nodes --------------------------------------------------------------------------------------

TEST_P(StoreContractTest, NodesRoundTripInCreationOrderAndAreReplacedByName) {
  WriteBatch batch = RunBatch(MakeRun("r", "w", 1));
  batch.node_run_id = "r";
  NodeState root = MakeNode("r", 0);
  root.parent = "";
  root.type = engine::NodeType::kDag;
  root.children = {"r.b", "r.a"};
  NodeState b = MakeNode("r.b", 2);
  b.outputs.parameters = {{"hosts", "[\"h1\"]"}};
  b.outputs.result = "done";
  b.item = nlohmann::json{{"k", 1}};
  b.retry_at_ms = 77;
  batch.nodes = {root, b, MakeNode("r.a", 1)};
  DAGD_ASSERT_OK(store_->Write(batch));

  absl::StatusOr<std::vector<NodeState>> nodes = store_->GetNodes("r");
  DAGD_ASSERT_OK(nodes);
  ASSERT_EQ(nodes->size(), 3u);
  EXPECT_EQ((*nodes)[0].name, "r");
  EXPECT_EQ((*nodes)[0].type, engine::NodeType::kDag);
  EXPECT_EQ((*nodes)[0].children, root.children);
  const NodeState& got = (*nodes)[1];
  EXPECT_EQ(got.name, "r.b");
  EXPECT_EQ(got.display_name, "b");
  EXPECT_EQ(got.parent, "r");
  EXPECT_EQ(got.outputs.parameters, b.outputs.parameters);
  EXPECT_EQ(got.outputs.result, "done");
  EXPECT_EQ(got.item, b.item);
  EXPECT_EQ(got.retry_at_ms, 77);
  ASSERT_EQ(got.attempts.size(), 2u);
  EXPECT_EQ(got.attempts[0].phase, NodePhase::kFailed);
  EXPECT_EQ(got.attempts[0].exit_code, 2);
  EXPECT_EQ(got.attempts[1].external_name, "r.b-2");
  EXPECT_EQ((*nodes)[2].name, "r.a");

  // A later write of a node replaces it and keeps its place.
  WriteBatch update;
  update.node_run_id = "r";
  b.phase = NodePhase::kSucceeded;
  b.attempts.back().phase = NodePhase::kSucceeded;
  b.attempts.back().exit_code = 0;
  update.nodes = {b};
  DAGD_ASSERT_OK(store_->Write(update));
  nodes = store_->GetNodes("r");
  DAGD_ASSERT_OK(nodes);
  ASSERT_EQ(nodes->size(), 3u);
  EXPECT_EQ((*nodes)[1].phase, NodePhase::kSucceeded);
  EXPECT_EQ((*nodes)[1].attempts.back().exit_code, 0);

  nodes = store_->GetNodes("other");
  DAGD_ASSERT_OK(nodes);
  EXPECT_TRUE(nodes->empty());
}

TEST_P(StoreContractTest, NodesNeedTheirRun) {
  WriteBatch orphan;
  orphan.node_run_id = "missing";
  orphan.nodes = {MakeNode("missing.a", 1)};
  DAGD_EXPECT_CODE(store_->Write(orphan), kFailedPrecondition);

  WriteBatch unnamed;
  unnamed.nodes = {MakeNode("x.a", 1)};
  DAGD_EXPECT_CODE(store_->Write(unnamed), kInvalidArgument);
}

// --- events and logs ----------------------------------------------------------------------------

TEST_P(StoreContractTest, EventsReadBackInOrderAfterASequence) {
  WriteBatch batch = RunBatch(MakeRun("r", "w", 1));
  for (int64_t s = 1; s <= 10; ++s) batch.events.push_back(MakeEvent("r", s, s % 2 ? "r.a" : ""));
  DAGD_ASSERT_OK(store_->Write(batch));

  absl::StatusOr<std::vector<EventRecord>> events = store_->GetEvents("r", 0, 100);
  DAGD_ASSERT_OK(events);
  ASSERT_EQ(events->size(), 10u);
  const EventRecord& first = (*events)[0];
  EXPECT_EQ(first.run_id, "r");
  EXPECT_EQ(first.sequence, 1);
  EXPECT_EQ(first.time_ms, 1001);
  EXPECT_EQ(first.node_name, "r.a");
  EXPECT_EQ(first.type, "NodePhase");
  EXPECT_EQ(first.phase, NodePhase::kSucceeded);
  EXPECT_EQ(first.message, "event 1");
  EXPECT_EQ(first.attempt, 1);

  events = store_->GetEvents("r", 4, 3);
  DAGD_ASSERT_OK(events);
  ASSERT_EQ(events->size(), 3u);
  EXPECT_EQ((*events)[0].sequence, 5);
  EXPECT_EQ((*events)[2].sequence, 7);

  absl::StatusOr<RunRecord> run = store_->GetRun("r");
  DAGD_ASSERT_OK(run);
  EXPECT_EQ(run->last_sequence, 10);

  // A sequence is stored once.
  WriteBatch again;
  again.events.push_back(MakeEvent("r", 10));
  DAGD_EXPECT_CODE(store_->Write(again), kAlreadyExists);
}

TEST_P(StoreContractTest, LogChunksGetIncreasingSequencesPerRun) {
  WriteBatch batch = RunBatch(MakeRun("r1", "w", 1));
  batch.runs.push_back(MakeRun("r2", "w", 2));
  batch.logs = {MakeLog("r1", "r1.a", 1, "a1 "), MakeLog("r1", "r1.b", 1, "b1 "),
                MakeLog("r2", "r2.a", 1, "x")};
  DAGD_ASSERT_OK(store_->Write(batch));
  WriteBatch more;
  more.logs = {MakeLog("r1", "r1.a", 2, std::string("a2\0bin", 6)),
               MakeLog("r1", "r1.a", 1, "a1b")};
  DAGD_ASSERT_OK(store_->Write(more));

  absl::StatusOr<std::vector<LogChunkRecord>> logs = store_->GetLogs("r1", "", 0, 0, 100);
  DAGD_ASSERT_OK(logs);
  ASSERT_EQ(logs->size(), 4u);
  for (size_t i = 0; i < logs->size(); ++i) EXPECT_EQ((*logs)[i].sequence, int64_t(i + 1));
  EXPECT_EQ((*logs)[2].data, std::string("a2\0bin", 6));
  EXPECT_EQ((*logs)[2].attempt, 2);
  EXPECT_EQ((*logs)[2].stream, "stdout");
  EXPECT_EQ((*logs)[2].time_ms, 5000);

  logs = store_->GetLogs("r1", "r1.a", 0, 0, 100);
  DAGD_ASSERT_OK(logs);
  ASSERT_EQ(logs->size(), 3u);
  logs = store_->GetLogs("r1", "r1.a", 1, 1, 100);
  DAGD_ASSERT_OK(logs);
  ASSERT_EQ(logs->size(), 1u);
  EXPECT_EQ((*logs)[0].data, "a1b");
  EXPECT_EQ((*logs)[0].sequence, 4);
  logs = store_->GetLogs("r1", "", 0, 1, 2);
  DAGD_ASSERT_OK(logs);
  ASSERT_EQ(logs->size(), 2u);
  EXPECT_EQ((*logs)[0].sequence, 2);

  logs = store_->GetLogs("r2", "", 0, 0, 100);
  DAGD_ASSERT_OK(logs);
  ASSERT_EQ(logs->size(), 1u);
  EXPECT_EQ((*logs)[0].sequence, 1);
}

AnsibleEventRecord MakeAnsibleEvent(const std::string& run_id, const std::string& node, int attempt,
                                    const std::string& kind, const std::string& host, bool changed,
                                    bool failed) {
  AnsibleEventRecord event;
  event.run_id = run_id;
  event.node_name = node;
  event.attempt = attempt;
  event.time_ms = 7000;
  event.kind = kind;
  event.host = host;
  event.task = "Install nginx";
  event.play = "web";
  event.changed = changed;
  event.failed = failed;
  event.payload = "{\"kind\":\"" + kind + "\"}";
  return event;
}

TEST_P(StoreContractTest, AnsibleEventsGetSequencesPerRunAndFilter) {
  WriteBatch batch = RunBatch(MakeRun("r1", "w", 1));
  batch.runs.push_back(MakeRun("r2", "w", 2));
  batch.ansible_events = {
      MakeAnsibleEvent("r1", "r1.a", 1, "task_start", "", false, false),
      MakeAnsibleEvent("r1", "r1.a", 1, "runner_on_ok", "web1", true, false),
      MakeAnsibleEvent("r1", "r1.a", 1, "runner_on_failed", "web2", false, true),
      MakeAnsibleEvent("r2", "r2.a", 1, "runner_on_ok", "web1", false, false)};
  batch.ansible_events[1].item = "\"apple\"";
  DAGD_ASSERT_OK(store_->Write(batch));
  WriteBatch more;
  more.ansible_events = {MakeAnsibleEvent("r1", "r1.b", 2, "runner_on_ok", "web1", true, false),
                         MakeAnsibleEvent("r1", "r1.b", 2, "stats", "", false, false)};
  DAGD_ASSERT_OK(store_->Write(more));

  absl::StatusOr<std::vector<AnsibleEventRecord>> events =
      store_->GetAnsibleEvents("r1", AnsibleEventFilter{}, 0, 100);
  DAGD_ASSERT_OK(events);
  ASSERT_EQ(events->size(), 5u);
  for (size_t i = 0; i < events->size(); ++i) EXPECT_EQ((*events)[i].sequence, int64_t(i + 1));
  const AnsibleEventRecord& ok = (*events)[1];
  EXPECT_EQ(ok.run_id, "r1");
  EXPECT_EQ(ok.node_name, "r1.a");
  EXPECT_EQ(ok.attempt, 1);
  EXPECT_EQ(ok.time_ms, 7000);
  EXPECT_EQ(ok.kind, "runner_on_ok");
  EXPECT_EQ(ok.host, "web1");
  EXPECT_EQ(ok.task, "Install nginx");
  EXPECT_EQ(ok.play, "web");
  EXPECT_TRUE(ok.changed);
  EXPECT_FALSE(ok.failed);
  EXPECT_EQ(ok.item, "\"apple\"");
  EXPECT_EQ(ok.payload, "{\"kind\":\"runner_on_ok\"}");

  auto sequences = [&](const AnsibleEventFilter& filter, int64_t after, int limit) {
    std::vector<int64_t> out;
    absl::StatusOr<std::vector<AnsibleEventRecord>> got =
        store_->GetAnsibleEvents("r1", filter, after, limit);
    EXPECT_TRUE(got.ok()) << got.status();
    if (got.ok()) {
      for (const AnsibleEventRecord& e : *got) out.push_back(e.sequence);
    }
    return out;
  };
  using ::testing::ElementsAre;
  EXPECT_THAT(sequences({.node_name = "r1.b"}, 0, 100), ElementsAre(4, 5));
  EXPECT_THAT(sequences({.host = "web1"}, 0, 100), ElementsAre(2, 4));
  EXPECT_THAT(sequences({.changed_only = true}, 0, 100), ElementsAre(2, 4));
  EXPECT_THAT(sequences({.failed_only = true}, 0, 100), ElementsAre(3));
  EXPECT_THAT(sequences({.node_name = "r1.a", .changed_only = true}, 0, 100), ElementsAre(2));
  EXPECT_THAT(sequences({.kind = "stats"}, 0, 100), ElementsAre(5));
  EXPECT_THAT(sequences({}, 2, 2), ElementsAre(3, 4));

  events = store_->GetAnsibleEvents("r2", AnsibleEventFilter{}, 0, 100);
  DAGD_ASSERT_OK(events);
  ASSERT_EQ(events->size(), 1u);
  EXPECT_EQ((*events)[0].sequence, 1);
  events = store_->GetAnsibleEvents("unknown", AnsibleEventFilter{}, 0, 100);
  DAGD_ASSERT_OK(events);
  EXPECT_TRUE(events->empty());
}

TEST_P(StoreContractTest, AnsibleEventOfAnUnknownRunFailsItsBatch) {
  WriteBatch batch;
  batch.ansible_events = {MakeAnsibleEvent("nope", "nope.a", 1, "runner_on_ok", "h", false, false)};
  DAGD_EXPECT_CODE(store_->Write(batch), kFailedPrecondition);
}

// --- grouped writes -----------------------------------------------------------------------------

TEST_P(StoreContractTest, SubmitCallsBackOncePerBatchInOrder) {
  DAGD_ASSERT_OK(store_->Write(RunBatch(MakeRun("r", "w", 1))));
  absl::Mutex mu;
  std::vector<int> order;
  constexpr int kBatches = 50;
  for (int i = 0; i < kBatches; ++i) {
    WriteBatch batch;
    batch.events.push_back(MakeEvent("r", i + 1));
    store_->Submit(std::move(batch), [&, i](const absl::Status& status) {
      EXPECT_TRUE(status.ok()) << status;
      absl::MutexLock lock(&mu);
      order.push_back(i);
    });
  }
  // A Write after the Submits completes after all of them.
  DAGD_ASSERT_OK(store_->Write(WriteBatch{}));
  absl::MutexLock lock(&mu);
  ASSERT_EQ(order.size(), size_t{kBatches});
  EXPECT_TRUE(std::is_sorted(order.begin(), order.end()));
}

}  // namespace dagd::storage::testing
