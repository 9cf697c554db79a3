// Memoization (`memoize`) in RunState with a MemoCache: Argo's memoize-simple and
// fibonacci-seq-conditional-param cases.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "engine/memo.h"
#include "engine/run_state.h"
#include "tests/engine/run_state_driver.h"

namespace dagd::engine::test {
namespace {

using ::testing::HasSubstr;

Template Memoized(Template t, const std::string& key, const std::string& max_age = "") {
  t.memoize.emplace();
  t.memoize->key = key;
  t.memoize->max_age = max_age;
  t.memoize->cache = "cache-config";
  return t;
}

// memoize-simple.yaml: the entrypoint is a memoized pod.
std::shared_ptr<const Workflow> Simple(const std::string& max_age) {
  return MakeWorkflow({Memoized(Leaf("world-to-file"), "cache-key", max_age)});
}

TEST(RunStateMemoTest, ASecondRunWithinMaxAgeTakesTheCachedOutputs) {
  MemoCache cache;
  RunState first = MustCreate(Simple("10s"));
  first.SetMemoCache(&cache);
  Driver driver(&first);
  driver.Script("run", {Ok("world")});
  driver.Run();
  ASSERT_EQ(first.phase(), NodePhase::kSucceeded);
  std::vector<MemoCache::Write> writes = cache.TakeWrites();
  ASSERT_EQ(writes.size(), 1u);
  EXPECT_EQ(writes[0].cache, "cache-config");
  EXPECT_EQ(writes[0].key, "cache-key");
  EXPECT_EQ(writes[0].entry.outputs.result, "world");
  EXPECT_EQ(writes[0].entry.node, "run/run");

  // Within 10 s: no attempt, the cached outputs, a message saying where they came from.
  RunState second = MustCreate(Simple("10s"), {}, driver.now() + 9000);
  second.SetMemoCache(&cache);
  Driver again(&second, driver.now() + 9000);
  EXPECT_TRUE(again.Run().empty()) << "a cache hit launches nothing";
  EXPECT_EQ(second.phase(), NodePhase::kSucceeded);
  const NodeState& root = NodeOf(second, "run");
  EXPECT_TRUE(root.attempts.empty());
  EXPECT_EQ(root.outputs.result, "world");
  EXPECT_THAT(root.message, HasSubstr("Memoized: cache cache-config, key cache-key, from run/run"));
  EXPECT_TRUE(cache.TakeWrites().empty()) << "a hit is not stored again";

  // After maxAge the node runs again and refreshes the entry.
  RunState third = MustCreate(Simple("10s"), {}, driver.now() + 11000);
  third.SetMemoCache(&cache);
  Driver later(&third, driver.now() + 11000);
  later.Script("run", {Ok("world again")});
  EXPECT_EQ(later.Run().size(), 1u);
  EXPECT_EQ(NodeOf(third, "run").outputs.result, "world again");
  EXPECT_EQ(cache.TakeWrites().size(), 1u);
}

TEST(RunStateMemoTest, KeysComeFromInputsAndCompositeNodesAreCachedToo) {
  // A memoized steps template keyed by its input (as fibonacci's), called twice with 3 and
  // once more with 3 in a later group: the later call is a hit and runs no children.
  Template fib = Memoized(Steps("fib", {{Task("work", "echo")}}), "{{inputs.parameters.n}}");
  fib.inputs.parameters = {Param("n")};
  auto call = [](const std::string& name, const std::string& n) {
    DagTask task = Task(name, "fib");
    task.arguments.parameters = {Param("n", n)};
    return task;
  };
  RunState state = MustCreate(MakeWorkflow(
      {Steps("main", {{call("a", "3")}, {call("b", "3"), call("c", "4")}}), fib, Leaf("echo")}));
  MemoCache cache;
  state.SetMemoCache(&cache);
  Driver driver(&state);
  driver.Run();
  ASSERT_EQ(state.phase(), NodePhase::kSucceeded);
  EXPECT_FALSE(NodeOf(state, "run[0].a").children.empty());
  EXPECT_TRUE(NodeOf(state, "run[1].b").children.empty()) << "a hit runs no children";
  EXPECT_THAT(NodeOf(state, "run[1].b").message, HasSubstr("key 3, from run/run[0].a"));
  EXPECT_FALSE(NodeOf(state, "run[1].c").children.empty());
  EXPECT_EQ(cache.size(), 2u);
}

TEST(RunStateMemoTest, AKeyThatDoesNotResolveIsAnError) {
  MemoCache cache;
  RunState state = MustCreate(MakeWorkflow({Memoized(Leaf("t"), "{{inputs.parameters.missing}}")}));
  state.SetMemoCache(&cache);
  Driver driver(&state);
  driver.Run();
  EXPECT_EQ(state.phase(), NodePhase::kError);
  EXPECT_THAT(NodeOf(state, "run").message, HasSubstr("memoize.key: "));
}

}  // namespace
}  // namespace dagd::engine::test
