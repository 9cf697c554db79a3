#include "runners/local/inventory.h"

#include <sys/stat.h>
#include <yaml-cpp/yaml.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>
#include <string_view>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "engine/status_macros.h"
#include "runners/local/files.h"

namespace dagd::runners::local {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

std::string_view Trim(std::string_view text) {
  const char* kSpace = " \t\r\n";
  size_t begin = text.find_first_not_of(kSpace);
  if (begin == std::string_view::npos) return {};
  return text.substr(begin, text.find_last_not_of(kSpace) - begin + 1);
}

// The shape of a YAML node, for structure checks only: scalars become strings.
json Shape(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Map: {
      json out = json::object();
      for (const auto& entry : node) out[entry.first.as<std::string>()] = Shape(entry.second);
      return out;
    }
    case YAML::NodeType::Sequence: {
      json out = json::array();
      for (const auto& element : node) out.push_back(Shape(element));
      return out;
    }
    case YAML::NodeType::Scalar:
      return node.Scalar();
    default:
      return nullptr;
  }
}

// Checks one group of an inventory and collects its hosts. `path` names the group in messages.
// With `script_form` (ansible-inventory --list), hosts and children are lists of names;
// otherwise (the yaml plugin's form) they are mappings.
absl::Status CheckGroup(const json& group, const std::string& path, bool script_form,
                        std::set<std::string>* hosts) {
  if (group.is_null()) return absl::OkStatus();
  if (!group.is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, " must be a mapping with hosts, vars or children"));
  }
  for (const auto& [key, value] : group.items()) {
    if (key == "vars") {
      if (!value.is_null() && !value.is_object()) {
        return absl::InvalidArgumentError(absl::StrCat(path, ".vars must be a mapping"));
      }
    } else if (key == "hosts") {
      if (value.is_null()) continue;
      if (script_form ? !value.is_array() : !value.is_object()) {
        return absl::InvalidArgumentError(
            absl::StrCat(path, ".hosts must be ",
                         script_form ? "a list of host names" : "a mapping of host names"));
      }
      for (const auto& [index, host] : value.items()) {
        if (script_form && !host.is_string()) {
          return absl::InvalidArgumentError(
              absl::StrCat(path, ".hosts[", index, "] must be a host name"));
        }
        if (!script_form && !host.is_null() && !host.is_object()) {
          return absl::InvalidArgumentError(absl::StrCat(
              path, ".hosts.", index, " must hold the host's variables (a mapping) or nothing"));
        }
        hosts->insert(script_form ? host.get<std::string>() : index);
      }
    } else if (key == "children") {
      if (value.is_null()) continue;
      if (script_form) {
        if (!value.is_array()) {
          return absl::InvalidArgumentError(
              absl::StrCat(path, ".children must be a list of group names"));
        }
        continue;  // names of groups defined at the top level
      }
      if (!value.is_object()) {
        return absl::InvalidArgumentError(
            absl::StrCat(path, ".children must be a mapping of groups"));
      }
      for (const auto& [child, body] : value.items()) {
        RETURN_IF_ERROR(CheckGroup(body, absl::StrCat(path, ".children.", child), false, hosts));
      }
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat(path, " has \"", key, "\", which is not one of hosts, vars, children"));
    }
  }
  return absl::OkStatus();
}

// Checks an inventory given as a mapping of groups (see inventory.h); InvalidArgument if it is
// malformed or names no host.
absl::Status CheckInventory(const json& inventory) {
  if (!inventory.is_object()) {
    return absl::InvalidArgumentError(
        "it must be a mapping of groups such as {\"all\": {\"hosts\": {…}}}");
  }
  // ansible-inventory --list and inventory scripts write hosts and children as lists.
  bool script_form = inventory.contains("_meta");
  for (const auto& [name, group] : inventory.items()) {
    if (group.is_object()) {
      auto hosts = group.find("hosts");
      auto children = group.find("children");
      if ((hosts != group.end() && hosts->is_array()) ||
          (children != group.end() && children->is_array())) {
        script_form = true;
      }
    }
  }
  std::set<std::string> hosts;
  for (const auto& [name, group] : inventory.items()) {
    if (name == "_meta") {
      if (!group.is_object() || (group.contains("hostvars") && !group["hostvars"].is_object())) {
        return absl::InvalidArgumentError("_meta must be a mapping with a \"hostvars\" mapping");
      }
      continue;
    }
    RETURN_IF_ERROR(CheckGroup(group, absl::StrCat("group \"", name, "\""), script_form, &hosts));
  }
  if (hosts.empty()) {
    return absl::InvalidArgumentError(
        "it names no host, and Ansible would run the play on nothing");
  }
  return absl::OkStatus();
}

// ansible-inventory --list form → the yaml plugin's form (which Ansible reads from a .json file).
json ToPluginForm(const json& inventory) {
  json hostvars = json::object();
  if (auto meta = inventory.find("_meta"); meta != inventory.end()) {
    hostvars = meta->value("hostvars", json::object());
  }
  json out = json::object();
  for (const auto& [name, group] : inventory.items()) {
    if (name == "_meta") continue;
    json converted = json::object();
    if (group.is_object()) {
      if (group.contains("vars")) converted["vars"] = group["vars"];
      if (auto hosts = group.find("hosts"); hosts != group.end() && hosts->is_array()) {
        json mapped = json::object();
        for (const json& host : *hosts) {
          const std::string host_name = host.get<std::string>();
          mapped[host_name] = hostvars.value(host_name, json(nullptr));
        }
        converted["hosts"] = mapped;
      } else if (hosts != group.end()) {
        converted["hosts"] = *hosts;
      }
      if (auto children = group.find("children"); children != group.end() && children->is_array()) {
        json mapped = json::object();
        for (const json& child : *children) mapped[child.get<std::string>()] = nullptr;
        converted["children"] = mapped;
      } else if (children != group.end()) {
        converted["children"] = *children;
      }
    }
    out[name] = converted;
  }
  return out;
}

absl::Status Malformed(const std::string& where, const std::string& form, const std::string& why) {
  return absl::InvalidArgumentError(absl::StrCat(
      where, ": inventory (", form, ") is malformed: ", why,
      "; give a host list (\"web1,web2,\"), a file in the bundle, or an inventory in the form "
      "of Ansible's yaml plugin or of `ansible-inventory --list`"));
}

}  // namespace

absl::StatusOr<std::string> PrepareInventory(const std::string& inventory,
                                             const std::string& work_dir,
                                             const std::string& bundle_dir,
                                             const std::string& where) {
  const std::string text(Trim(inventory));
  if (text.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        where,
        ": inventory is empty (an upstream output may have been empty); leave the field "
        "out to use Ansible's default, or give hosts"));
  }
  // Any newline, even a trailing one after a single INI line, makes it inline text.
  const bool multiline = inventory.find('\n') != std::string::npos;

  if (text.front() == '{') {
    json parsed = json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (parsed.is_discarded()) return Malformed(where, "JSON", "it is not valid JSON");
    if (absl::Status shape = CheckInventory(parsed); !shape.ok()) {
      return Malformed(where, "JSON", std::string(shape.message()));
    }
    const std::string path = (fs::path(work_dir) / ".dagd-inventory.json").string();
    RETURN_IF_ERROR(WriteFile(path, ToPluginForm(parsed).dump(2), 0600));
    return path;
  }

  if (multiline) {
    YAML::Node parsed;
    bool is_yaml = false;
    try {
      parsed = YAML::Load(std::string(text));
      is_yaml = parsed.IsMap();
    } catch (const YAML::Exception&) {
      is_yaml = false;  // not YAML: INI
    }
    if (is_yaml) {
      json shape;
      try {
        shape = Shape(parsed);
      } catch (const YAML::Exception& e) {
        return Malformed(where, "YAML", e.what());
      }
      if (absl::Status checked = CheckInventory(shape); !checked.ok()) {
        return Malformed(where, "YAML", std::string(checked.message()));
      }
      const std::string path = (fs::path(work_dir) / ".dagd-inventory.yml").string();
      RETURN_IF_ERROR(WriteFile(path, inventory, 0600));
      return path;
    }
    const std::string path = (fs::path(work_dir) / ".dagd-inventory.ini").string();
    RETURN_IF_ERROR(WriteFile(path, inventory, 0600));
    return path;
  }

  if (text.find(',') != std::string::npos) return text;  // "web1,web2,"

  std::string path = text;
  if (fs::path(path).is_relative()) {
    if (bundle_dir.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(
          where, ": inventory \"", path,
          "\" is relative but the workflow has no bundle; apply it with --bundle DIR, or end a "
          "single host with a comma: \"",
          path, ",\""));
    }
    path = (fs::path(bundle_dir) / path).string();
  }
  struct stat st;
  if (stat(path.c_str(), &st) != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, ": inventory \"", text,
                     "\" is neither a host list (end a single host with a comma: \"", text,
                     ",\") nor a file in the bundle (looked for ", path, ")"));
  }
  return path;
}

}  // namespace dagd::runners::local
