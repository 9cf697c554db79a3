// Inventory: what an ansible template's `inventory` field becomes on ansible-playbook's command
// line, checked before launch so that a malformed inventory is an error that names the problem
// (Ansible itself warns and runs on an empty inventory).
//
// The field, after dagd's tags are substituted (it may come from an upstream output), is one of:
//   - JSON text (starts with `{`): an inventory in the form of Ansible's yaml plugin
//     ({"web": {"hosts": {"h1": {…}}, "vars": {…}, "children": {…}}}) or of
//     `ansible-inventory --list` / an inventory script ({"web": {"hosts": ["h1"]}, "_meta":
//     {"hostvars": {…}}}), the dynamic-inventory pattern;
//   - several lines of text: a YAML inventory (a mapping of groups, as above) or else INI;
//   - a comma-separated host list ("localhost," or "web1,web2");
//   - a path: a file or directory in the bundle (relative to bundle_dir) or absolute.
// Structured inventories are checked for shape and for naming at least one host, then written
// into the working directory (`.dagd-inventory.json|yml|ini`, 0600, beside the bundle's files so
// that its group_vars/ and host_vars/ apply). INI text and files are checked by Ansible itself:
// the local runner sets ANSIBLE_INVENTORY_UNPARSED_FAILED so that an unparsable source fails.
//
// Blocking file I/O; stateless; thread-compatible.
#ifndef DAGD_RUNNERS_LOCAL_INVENTORY_H_
#define DAGD_RUNNERS_LOCAL_INVENTORY_H_

#include <string>

#include "absl/status/statusor.h"

namespace dagd::runners::local {

// The argument for `-i`. `where` names the template in messages ("template \"x\" (wf.yaml:3:5)").
// InvalidArgument for a malformed or empty inventory, or a path that does not exist, naming what
// is wrong and where; Unavailable if the file cannot be written.
absl::StatusOr<std::string> PrepareInventory(const std::string& inventory,
                                             const std::string& work_dir,
                                             const std::string& bundle_dir,
                                             const std::string& where);

}  // namespace dagd::runners::local

#endif  // DAGD_RUNNERS_LOCAL_INVENTORY_H_
