// Ansible Vault (format 1.1/1.2, AES256): vars files and `!vault |` values encrypted with
// ansible-vault, decrypted with the password of --vault-password-file (OpenSSL's PBKDF2, AES-CTR
// and HMAC; nothing else). Without a password an encrypted file is a clear error.
#pragma once

#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

namespace zdm::deploy {

class VaultError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

bool is_vault_text(std::string_view text);

// Decrypts "$ANSIBLE_VAULT;1.1;AES256\n<hex>..."; throws VaultError (wrong password, damaged).
std::string vault_decrypt(std::string_view text, const std::string& password);
// Encrypts (for tests, and for operators through `zdm-deploy` never: ansible-vault does that);
// `salt` of 32 bytes, random when empty.
std::string vault_encrypt(std::string_view plaintext, const std::string& password,
                          std::string salt = {});

// The run's vault password (from --vault-password-file: the file's first line, or the output of
// the file when it is executable). Unset: encrypted content fails with `what` named.
void set_vault_password(std::optional<std::string> password);
const std::optional<std::string>& vault_password();
// Reads a password file as Ansible does; throws VaultError.
std::string read_vault_password_file(const std::string& path);
// Decrypts with the run's password, or throws naming `what` (a file, or file:line).
std::string vault_decrypt_for(std::string_view text, const std::string& what);

}  // namespace zdm::deploy
