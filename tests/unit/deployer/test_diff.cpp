#include <doctest/doctest.h>

#include "engine/diff.h"

using namespace zdm::deploy;

TEST_CASE("secret names") {
  SUBCASE("passwords, tokens and keys are secrets") {
    for (const char* n : {"origin_password", "proxy_admin_token", "grafana_admin_password",
                          "ansible_ssh_pass_passphrase", "private_key", "CLIENT_SECRET"})
      CHECK_MESSAGE(is_secret_name(n), n);
  }
  SUBCASE("where a secret is kept is not one: errors name the key file") {
    for (const char* n : {"ansible_ssh_private_key_file", "ansible_private_key_file", "secret_dir",
                          "token_path", "origin_tls_client_key_filename", "log_level"})
      CHECK_FALSE_MESSAGE(is_secret_name(n), n);
  }
}
