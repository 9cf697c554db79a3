// Argo's synchronization: the LockTable alone, then runs sharing one (the cases of Argo's
// synchronization-*-tmpl-level and -wf-level examples).
#include "engine/locks.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "engine/run_state.h"
#include "tests/engine/run_state_driver.h"

namespace dagd::engine::test {
namespace {

using ::testing::HasSubstr;
using ::testing::UnorderedElementsAre;

TEST(LockTableTest, AMutexHasOneHolderAndASemaphoreItsLimit) {
  LockTable locks({{"my-config/template", 2}});
  const std::vector<std::string> mutex = LockKeys({"deploy"}, {});
  const std::vector<std::string> semaphore = LockKeys({}, {"my-config/template"});
  EXPECT_TRUE(locks.TryAcquire("a", mutex));
  EXPECT_TRUE(locks.TryAcquire("a", mutex));  // held already
  EXPECT_FALSE(locks.TryAcquire("b", mutex));
  EXPECT_EQ(locks.Describe(mutex[0]), "mutex deploy (held by a)");
  EXPECT_TRUE(locks.TryAcquire("b", semaphore));
  EXPECT_TRUE(locks.TryAcquire("c", semaphore));
  EXPECT_FALSE(locks.TryAcquire("d", semaphore));
  EXPECT_EQ(locks.Describe(semaphore[0]), "semaphore my-config/template (2/2 held)");
  // All or nothing: d gets neither while the mutex is taken.
  locks.Release("b");
  EXPECT_FALSE(locks.TryAcquire("d", {semaphore[0], mutex[0]}));
  EXPECT_TRUE(locks.TryAcquire("d", semaphore));
  EXPECT_EQ(locks.releases(), 1);
  locks.Release("nobody");
  EXPECT_EQ(locks.releases(), 1);
  EXPECT_EQ(locks.Unknown(semaphore[0]), "");
  EXPECT_THAT(locks.Unknown(LockKeys({}, {"other/key"})[0]),
              HasSubstr("semaphore other/key has no limit in dagd's configuration; start dagd "
                        "with --semaphore other/key=N"));
}

// A second run "other" of `wf`, sharing `locks` with `first`.
RunState SecondRun(std::shared_ptr<const Workflow> wf, LockTable* locks, RunState* first) {
  absl::StatusOr<RunState> second = RunState::Create(std::move(wf), {}, "other", 1000);
  EXPECT_TRUE(second.ok()) << second.status();
  first->SetLockTable(locks);
  second->SetLockTable(locks);
  return *std::move(second);
}

Template Locked(const std::string& name, std::vector<std::string> mutexes,
                std::vector<std::string> semaphores = {}) {
  Template t = Leaf(name);
  t.synchronization.emplace();
  t.synchronization->mutexes = std::move(mutexes);
  t.synchronization->semaphores = std::move(semaphores);
  return t;
}

// synchronization-tmpl-level.yaml: five items through a semaphore of three.
TEST(RunStateLocksTest, ASemaphoreCapsTheRunningAttempts) {
  LockTable locks({{"my-config/template", 3}});
  DagTask fan = Task("acquire", "locked");
  fan.with_items = {1, 2, 3, 4, 5};
  RunState state = MustCreate(
      MakeWorkflow({Steps("main", {{fan}}), Locked("locked", {}, {"my-config/template"})}));
  state.SetLockTable(&locks);
  Driver driver(&state);
  EXPECT_EQ(driver.Advance().size(), 3u);
  EXPECT_TRUE(state.waiting_for_locks());
  EXPECT_EQ(NodeOf(state, "run[0].acquire(3:4)").message,
            "Waiting for lock: semaphore my-config/template (3/3 held)");
  driver.Finish("run[0].acquire(0:1)");
  EXPECT_EQ(driver.Advance().size(), 1u);
  driver.Run();
  EXPECT_EQ(state.phase(), NodePhase::kSucceeded);
  EXPECT_EQ(NodeOf(state, "run[0].acquire(3:4)").message, "");
}

// synchronization-mutex-tmpl-level.yaml across two runs: one mutex, one attempt at a time.
TEST(RunStateLocksTest, AMutexIsSharedByRuns) {
  LockTable locks;
  auto wf = MakeWorkflow({Dag("main", {Task("A", "locked")}), Locked("locked", {"welcome"})});
  RunState first = MustCreate(wf);
  RunState second = SecondRun(wf, &locks, &first);
  Driver one(&first), two(&second);
  EXPECT_EQ(one.Advance().size(), 1u);
  EXPECT_TRUE(two.Advance().empty());
  EXPECT_THAT(NodeOf(second, "other.A").message, HasSubstr("held by run.A"));
  // What a restarted dagd holds again: the running attempt's locks.
  EXPECT_THAT(first.HeldLocks(), UnorderedElementsAre(std::make_pair(std::string("run.A"),
                                                                     LockKeys({"welcome"}, {}))));
  one.Run();
  EXPECT_EQ(two.Advance().size(), 1u);
  two.Run();
  EXPECT_EQ(second.phase(), NodePhase::kSucceeded);
}

TEST(RunStateLocksTest, AWorkflowLevelLockHoldsTheWholeRun) {
  LockTable locks;
  auto base =
      MakeWorkflow({Dag("main", {Task("A", "echo"), Task("B", "echo", "A")}), Leaf("echo")});
  auto wf = std::make_shared<Workflow>(*base);
  wf->synchronization.emplace();
  wf->synchronization->mutexes = {"test"};
  RunState first = MustCreate(wf);
  RunState second = SecondRun(wf, &locks, &first);
  Driver one(&first), two(&second);
  EXPECT_EQ(one.Advance().size(), 1u);
  EXPECT_TRUE(two.Advance().empty());
  EXPECT_EQ(NodeOf(second, "other").message, "Waiting for lock: mutex test (held by run)");
  EXPECT_EQ(second.nodes().size(), 1u);  // nothing started
  one.Run();
  EXPECT_TRUE(first.Done());
  EXPECT_EQ(two.Advance().size(), 1u);  // the lock went with the first run's end
  two.Run();
  EXPECT_EQ(second.phase(), NodePhase::kSucceeded);

  // A run stopped while it waits ends Failed without having started anything.
  RunState third = MustCreate(wf);
  RunState fourth = *RunState::Create(wf, {}, "fourth", 1000);
  third.SetLockTable(&locks);
  fourth.SetLockTable(&locks);
  third.Advance(1000);
  fourth.Advance(1000);
  fourth.Stop("stopped", 1000);
  EXPECT_TRUE(fourth.Done());
  EXPECT_EQ(fourth.phase(), NodePhase::kFailed);
}

TEST(RunStateLocksTest, ASemaphoreWithoutALimitErrorsTheNode) {
  LockTable locks;
  RunState state = MustCreate(
      MakeWorkflow({Dag("main", {Task("A", "locked")}), Locked("locked", {}, {"cm/key"})}));
  state.SetLockTable(&locks);
  Driver driver(&state);
  driver.Run();
  EXPECT_EQ(NodeOf(state, "run.A").phase, NodePhase::kError);
  EXPECT_THAT(NodeOf(state, "run.A").message,
              HasSubstr("synchronization: semaphore cm/key has no limit"));
}

}  // namespace
}  // namespace dagd::engine::test
