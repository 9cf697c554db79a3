#include "server/bundle_check.h"

#include <filesystem>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace dagd::server {

absl::StatusOr<std::vector<storage::BundleFile>> BundleFromProto(
    const v1::Bundle& bundle, const storage::BundleLimits& limits) {
  std::vector<storage::BundleFile> files;
  files.reserve(bundle.files_size());
  for (const v1::BundleFile& file : bundle.files()) {
    files.push_back(
        storage::BundleFile{.path = file.path(), .mode = file.mode(), .content = file.content()});
  }
  if (absl::Status valid = storage::ValidateBundle(files, limits); !valid.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("bundle: ", valid.message()));
  }
  return files;
}

absl::Status CheckPlaybooksInBundle(const engine::Workflow& workflow,
                                    const std::set<std::string>& paths, absl::string_view fix) {
  for (size_t i = 0; i < workflow.templates.size(); ++i) {
    const engine::Template& t = workflow.templates[i];
    if (!t.ansible) continue;
    const std::string& playbook = t.ansible->playbook;
    // Absolute paths name files of the dagd host; tags are only known at run time.
    if (playbook.empty() || playbook.front() == '/' || absl::StrContains(playbook, "{{")) {
      continue;
    }
    const std::string normal = std::filesystem::path(playbook).lexically_normal().generic_string();
    if (paths.count(normal) != 0) continue;

    const std::string field = absl::StrCat("spec.templates[", i, "].ansible.playbook");
    engine::SourceLocation where{workflow.file};
    if (auto it = workflow.field_locations.find(field); it != workflow.field_locations.end()) {
      where = it->second;
    } else if (t.location.line > 0) {
      where = t.location;
    }
    const std::string prefix = absl::StrCat(where.ToString(), ": ", field, ": template \"", t.name,
                                            "\": playbook \"", playbook, "\" ");
    if (normal == ".." || absl::StartsWith(normal, "../")) {
      return absl::InvalidArgumentError(absl::StrCat(
          prefix, "points outside the workflow's bundle; name it relative to the bundle's root"));
    }
    return absl::InvalidArgumentError(absl::StrCat(
        prefix,
        paths.empty() ? "is relative, but the workflow has no bundle"
                      : absl::StrCat("is not in the workflow's bundle (", paths.size(), " files)"),
        "; ", fix, ", DIR holding ", normal, " (or fix the path)"));
  }
  return absl::OkStatus();
}

}  // namespace dagd::server
