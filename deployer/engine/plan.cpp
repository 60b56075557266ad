#include "engine/plan.h"

#include <chrono>
#include <ctime>
#include <filesystem>
#include <fstream>

#include <fmt/format.h>

#include "template.h"

namespace zdm::deploy {

std::vector<std::vector<std::string>> make_batches(const std::vector<std::string>& hosts,
                                                   const Json& serial) {
  size_t size = hosts.size();
  if (serial.is_number_integer() && serial.get<long long>() > 0) {
    size = static_cast<size_t>(serial.get<long long>());
  } else if (serial.is_string()) {
    std::string s = serial.get<std::string>();
    if (!s.empty() && s.back() == '%') {
      long long pct = std::stoll(s.substr(0, s.size() - 1));
      size = static_cast<size_t>(static_cast<double>(pct) / 100.0 * hosts.size());
      if (size < 1) size = 1;
    } else {
      long long n = std::stoll(s);
      if (n > 0) size = static_cast<size_t>(n);
    }
  }
  std::vector<std::vector<std::string>> out;
  if (hosts.empty()) return out;
  if (size == 0) size = hosts.size();
  for (size_t i = 0; i < hosts.size(); i += size)
    out.emplace_back(hosts.begin() + i, hosts.begin() + std::min(hosts.size(), i + size));
  return out;
}

std::string find_vars_file(const std::string& name, const Inventory& inv, const Playbook& pb) {
  namespace fs = std::filesystem;
  if (fs::path(name).is_absolute()) return name;
  // The repository keeps vars/ next to the example inventories (inventory/vars/), so an
  // inventory kept elsewhere still finds them through <playbook_dir>/../inventory.
  std::string shipped = (fs::path(pb.dir) / ".." / "inventory").lexically_normal().string();
  for (const std::string& dir : {inv.dir, pb.dir, shipped}) {
    fs::path p = fs::path(dir) / name;
    if (fs::exists(p)) return p.string();
  }
  throw VarsError(
      fmt::format("vars file '{}' not found in {}, {} or {}", name, inv.dir, pb.dir, shipped));
}

std::vector<std::string> limit_hosts(const Inventory& inv, const std::string& limit) {
  if (limit.empty() || limit[0] != '@') return match_hosts(inv, limit);
  std::ifstream in(limit.substr(1));
  if (!in) throw InventoryError(fmt::format("--limit {}: cannot read the file", limit));
  std::string pattern, line;
  while (std::getline(in, line)) {
    auto b = line.find_first_not_of(" \t\r");
    if (b == std::string::npos || line[b] == '#') continue;
    auto e = line.find_last_not_of(" \t\r");
    pattern += (pattern.empty() ? "" : ",") + line.substr(b, e - b + 1);
  }
  if (pattern.empty()) throw InventoryError(fmt::format("--limit {}: no host in the file", limit));
  return match_hosts(inv, pattern);
}

Plan make_plan(const Inventory& inventory, const Playbook& pb, const PlanOptions& opts) {
  namespace fs = std::filesystem;
  Plan plan;
  plan.inventory = inventory;
  const Inventory& inv = plan.inventory;
  if (!pb.path.empty() && fs::weakly_canonical(pb.dir) !=
                              fs::weakly_canonical(inventory.dir.empty() ? "." : inventory.dir))
    load_vars_dirs(plan.inventory, pb.dir, true);
  Json groups = inv.groups_json();
  Json hostvars = Json::object();
  for (auto& h : inv.hosts) hostvars[h.name] = inv.host_vars(h.name);
  std::vector<std::string> limited;
  bool has_limit = !opts.limit.empty();
  if (has_limit) limited = limit_hosts(inv, opts.limit);
  std::string playbook_dir = fs::absolute(pb.dir).lexically_normal().string();
  std::string inventory_dir = fs::absolute(inv.dir).lexically_normal().string();

  for (const Play& play : pb.plays) {
    PlayPlan pp;
    pp.play = &play;
    std::vector<std::string> hosts;
    try {
      hosts = match_hosts(inv, play.hosts);
    } catch (const InventoryError&) {
      hosts.clear();  // Ansible: "no hosts matched" is a warning, the play is skipped.
    }
    std::vector<std::string> pattern_hosts = hosts;
    if (has_limit) {
      std::vector<std::string> keep;
      for (auto& h : hosts)
        if (std::find(limited.begin(), limited.end(), h) != limited.end()) keep.push_back(h);
      hosts = keep;
    }
    pp.hosts = hosts;
    pp.batches = make_batches(
        hosts, !play.serial.is_null() && !opts.serial.is_null() ? opts.serial : play.serial);

    Json files = Json::object();
    for (auto& f : play.vars_files) overlay(files, load_vars_file(find_vars_file(f, inv, pb)));

    for (auto& h : pattern_hosts) {
      VarLayers layers;
      layers.inventory = opts.defaults;
      overlay(layers.inventory, inv.host_vars(h));
      layers.vars_files = files;
      layers.play_vars = play.vars;
      layers.extra = opts.extra_vars;
      layers.magic = {{"inventory_hostname", h},
                      {"inventory_hostname_short", h.substr(0, h.find('.'))},
                      {"groups", groups},
                      {"hostvars", hostvars},
                      {"group_names", Json::array()},
                      {"playbook_dir", playbook_dir},
                      {"inventory_dir", inventory_dir},
                      {"inventory_file", fs::absolute(inv.path).lexically_normal().string()},
                      {"ansible_play_hosts", hosts},
                      {"ansible_play_batch", Json::array()},
                      {"zdm_release_id", opts.release_id},
                      {"zdm_run_id", opts.run_id.empty() ? opts.release_id : opts.run_id}};
      for (auto& g : inv.host_groups(h))
        if (g != "all") layers.magic["group_names"].push_back(g);
      for (auto& b : pp.batches)
        if (std::find(b.begin(), b.end(), h) != b.end()) layers.magic["ansible_play_batch"] = b;
      pp.vars.emplace(h, std::move(layers));
    }
    plan.plays.push_back(std::move(pp));
  }
  return plan;
}

Json host_scope(const PlayPlan& play, const std::string& host) {
  return play.vars.at(host).merged();
}

std::string release_id_now() {
  std::time_t t = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y%m%dT%H%M%SZ", &tm);
  return buf;
}

}  // namespace zdm::deploy
