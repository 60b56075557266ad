// Showing what a change would do: a unified diff of two texts, and secrets taken out of text
// before it is shown (--check, --diff, logs, collect-logs).
#pragma once

#include <mutex>
#include <set>
#include <string>
#include <string_view>

namespace zdm::deploy {

// "--- a\n+++ b\n@@ -l,n +l,n @@\n..." with `context` lines around each change; "" when the
// texts are equal. Texts over `max_lines` lines each are summarized in one line.
std::string unified_diff(std::string_view before, std::string_view after,
                         const std::string& label_before, const std::string& label_after,
                         int context = 3, size_t max_lines = 5000);

// True for a variable or configuration key that holds a secret (password, token, secret,
// passphrase, private key), by its name; not for one that says where a secret is kept (a name
// ending in _file, _path, _filename or _dir: ansible_ssh_private_key_file).
bool is_secret_name(std::string_view name);

// YAML/INI-style lines whose key is a secret's ("origin_password: x", "token=x") with the
// value replaced by "<redacted>".
std::string redact_secret_lines(std::string_view text);

// Every occurrence of a known secret value replaced by "********". Thread-safe; values shorter
// than 4 characters are not tracked (they would blank out ordinary text).
class Redactor {
 public:
  void add(const std::string& secret);
  std::string apply(std::string text) const;
  bool empty() const;

 private:
  mutable std::mutex mu_;
  std::set<std::string> secrets_;
};

}  // namespace zdm::deploy
