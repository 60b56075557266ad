#include "preflight.h"

#include <filesystem>
#include <random>
#include <set>

#include <fmt/format.h>

#include "engine/diff.h"
#include "inventory/inventory.h"
#include "inventory/zdm_vars.h"
#include "template.h"
#include "vars.h"

namespace zdm::deploy {
namespace {

namespace fs = std::filesystem;

std::string run_id_for(const std::string& release_id) {
  static thread_local std::mt19937 rng{std::random_device{}()};
  return fmt::format("{}-{:06x}", release_id, rng() & 0xffffff);
}

// Every variable defined for the run, with where, for the catalog check.
std::vector<DefinedVar> defined_variables(const Inventory& inv, const Playbook& pb,
                                          const Json& extra) {
  std::vector<DefinedVar> out;
  for (auto& g : inv.group_order)
    for (auto& [k, v] : inv.groups.at(g).vars.items())
      out.push_back({k, v, fmt::format("{} [{}:vars]", inv.path, g)});
  for (auto& h : inv.hosts)
    for (auto& [k, v] : h.vars.items())
      out.push_back({k, v, fmt::format("{} {}", inv.path, h.name)});
  auto dir_files = [&](const DirVars& dv) {
    for (auto* files : {&dv.inventory_adjacent, &dv.playbook_adjacent})
      for (auto& f : *files)
        for (auto& [k, v] : f.vars.items()) out.push_back({k, v, f.path});
  };
  for (auto& g : inv.group_order) dir_files(inv.groups.at(g).dir_vars);
  for (auto& h : inv.hosts) dir_files(h.dir_vars);
  std::set<std::string> files, dirs;
  for (auto& p : pb.plays)
    for (auto& f : p.vars_files) {
      try {
        std::string path = find_vars_file(f, inv, pb);
        files.insert(fs::absolute(path).lexically_normal().string());
        dirs.insert(fs::absolute(path).parent_path().lexically_normal().string());
      } catch (const std::exception&) {
        // Not in the report: loading the play names the vars file that cannot be found.
      }
    }
  // The whole vars/ directory: ZDM's files our plays do not load (container, monitoring) count.
  for (auto& d : dirs) {
    std::error_code ec;
    for (auto& e : fs::directory_iterator(d, ec))
      if (e.path().extension() == ".yml" || e.path().extension() == ".yaml")
        files.insert(fs::absolute(e.path()).lexically_normal().string());
  }
  for (auto& f : files) {
    if (fs::path(f).filename() == "zdm_deploy_proxy.yml") continue;  // ours, computed
    Json j;
    try {
      j = load_vars_file(f);
    } catch (const std::exception&) {
      continue;  // reported when a play loads it
    }
    std::string shown =
        fs::path(f).parent_path().filename().string() + "/" + fs::path(f).filename().string();
    for (auto& [k, v] : j.items()) out.push_back({k, v, shown});
  }
  for (auto& [k, v] : extra.items()) out.push_back({k, v, "-e"});
  return out;
}

}  // namespace

void collect_secrets(const Plan& plan, Redactor& redactor) {
  for (auto& pp : plan.plays)
    for (auto& [h, layers] : pp.vars) {
      Json scope = layers.merged();
      for (auto& [k, v] : scope.items()) {
        if (!is_secret_name(k)) continue;
        Json r;
        try {
          r = render_value(v, scope, Source{"secret " + k, 1});
        } catch (const std::exception& e) {
          throw SecretError(fmt::format(
              "secret variable '{}' of host {} cannot be rendered, so its value could not be kept "
              "out of the output: {}",
              k, h, e.what()));
        }
        if (r.is_string()) redactor.add(r.get<std::string>());
      }
    }
}

std::vector<std::string> variable_report(const Plan& plan, const Playbook& pb, const Json& extra) {
  std::vector<std::string> out = plan.inventory.warnings;
  for (auto& w : check_variables(defined_variables(plan.inventory, pb, extra))) out.push_back(w);
  return out;
}

PlanOptions plan_options(const CommonOptions& opts) {
  PlanOptions po;
  for (auto& e : opts.extra_vars) overlay(po.extra_vars, parse_extra_vars(e));
  po.limit = opts.limit;
  po.release_id = release_id_now();
  po.run_id = run_id_for(po.release_id);
  po.defaults = {{"zdm_proxy_binary", ZDM_PROXY_BINARY}, {"zdm_data_binary", ZDM_DATA_BINARY}};
  if (!opts.serial.empty()) {
    try {
      po.serial = std::stoll(opts.serial);
    } catch (const std::exception&) {
      po.serial = opts.serial;  // "N%"
    }
  }
  return po;
}

}  // namespace zdm::deploy
