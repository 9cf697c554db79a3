// The server's side of bundles: turning an uploaded dagd.v1.Bundle into storage::BundleFile
// values within dagd's limits, and refusing a workflow whose playbooks its bundle does not hold
// before anything is stored (DESIGN.md §3, rule 5). Pure functions; thread-safe.
#ifndef DAGD_SERVER_BUNDLE_CHECK_H_
#define DAGD_SERVER_BUNDLE_CHECK_H_

#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "dagd/v1/bundle.pb.h"
#include "engine/workflow.h"
#include "storage/bundle.h"

namespace dagd::server {

// The files of `bundle`, checked against the path rules and `limits` (storage::ValidateBundle).
// InvalidArgument "bundle: …" naming the offending file or total and the fix.
absl::StatusOr<std::vector<storage::BundleFile>> BundleFromProto(
    const v1::Bundle& bundle, const storage::BundleLimits& limits);

// OK unless an `ansible` template of `workflow` names a playbook by a relative path without
// "{{" (known before the run) that is not one of `paths` (the bundle's files, "" none). Then
// InvalidArgument "<file>:<line>:<col>: spec.templates[i].ansible.playbook: template "t": …"
// naming the playbook and ending with `fix` (such as "apply with --bundle DIR").
absl::Status CheckPlaybooksInBundle(const engine::Workflow& workflow,
                                    const std::set<std::string>& paths, absl::string_view fix);

}  // namespace dagd::server

#endif  // DAGD_SERVER_BUNDLE_CHECK_H_
