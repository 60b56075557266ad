#include <doctest/doctest.h>

#include "inventory/vault.h"

using namespace zdm::deploy;

namespace {

// Made by an independent implementation of Ansible Vault 1.1 (Python: hashlib.pbkdf2_hmac
// sha256 x10000 → AES-256 key, HMAC key, CTR IV; PKCS7; cryptography's AES-CTR; hmac sha256),
// password "correct horse", salt bytes 0..31, plaintext "origin_password: s3cret\n".
const char* kVault =
    "$ANSIBLE_VAULT;1.1;AES256\n"
    "30303031303230333034303530363037303830393061306230633064306530663130313131323133\n"
    "3134313531363137313831393161316231633164316531660a373664393464346233626432663232\n"
    "33396461383630376334356333343366363436656636386363653539393565396638393266313637\n"
    "6364303030343231650a613465313763366662373632393632653231383735303336623664623739\n"
    "36363633343564306562633365646235346364393435396130646238646437356661\n";

}  // namespace

TEST_CASE("Ansible Vault") {
  SUBCASE("a file made by another implementation decrypts") {
    CHECK(is_vault_text(kVault));
    CHECK(vault_decrypt(kVault, "correct horse") == "origin_password: s3cret\n");
  }
  SUBCASE("a wrong password is an error, not garbage") {
    CHECK_THROWS_AS(vault_decrypt(kVault, "wrong"), VaultError);
  }
  SUBCASE("encrypt then decrypt round-trips; the same salt gives the same text") {
    std::string salt(32, 'x');
    std::string a = vault_encrypt("k: v\n", "pw", salt);
    CHECK(a == vault_encrypt("k: v\n", "pw", salt));
    CHECK(vault_decrypt(a, "pw") == "k: v\n");
  }
  SUBCASE("plain YAML is not vault text") {
    CHECK_FALSE(is_vault_text("a: 1\n"));
  }
  SUBCASE("without a password, encrypted content is refused naming it") {
    set_vault_password(std::nullopt);
    CHECK_THROWS_AS(vault_decrypt_for(kVault, "vars/secrets.yml"), VaultError);
  }
}
