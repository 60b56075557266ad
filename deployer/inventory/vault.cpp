#include "inventory/vault.h"

#include <sys/stat.h>

#include <array>
#include <cstdio>
#include <fstream>
#include <memory>
#include <sstream>
#include <vector>

#include <fmt/format.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

namespace zdm::deploy {
namespace {

std::optional<std::string> g_password;

std::string to_hex(std::string_view bytes) {
  static const char* d = "0123456789abcdef";
  std::string out;
  for (unsigned char c : bytes) out += d[c >> 4], out += d[c & 15];
  return out;
}

std::string from_hex(std::string_view hex) {
  auto v = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  if (hex.size() % 2) throw VaultError("vault: odd number of hex digits");
  std::string out;
  for (size_t i = 0; i < hex.size(); i += 2) {
    int a = v(hex[i]), b = v(hex[i + 1]);
    if (a < 0 || b < 0) throw VaultError("vault: not hexadecimal");
    out += static_cast<char>(a * 16 + b);
  }
  return out;
}

struct Keys {
  std::string aes, hmac, iv;
};

Keys derive(const std::string& password, const std::string& salt) {
  unsigned char out[80];
  if (PKCS5_PBKDF2_HMAC(password.data(), static_cast<int>(password.size()),
                        reinterpret_cast<const unsigned char*>(salt.data()),
                        static_cast<int>(salt.size()), 10000, EVP_sha256(), sizeof out, out) != 1)
    throw VaultError("vault: key derivation failed");
  std::string k(reinterpret_cast<char*>(out), sizeof out);
  return {k.substr(0, 32), k.substr(32, 32), k.substr(64, 16)};
}

std::string hmac_sha256(const std::string& key, const std::string& data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), md, &len);
  return std::string(reinterpret_cast<char*>(md), len);
}

std::string aes_ctr(const Keys& k, const std::string& in) {
  std::unique_ptr<EVP_CIPHER_CTX, decltype(&EVP_CIPHER_CTX_free)> ctx(EVP_CIPHER_CTX_new(),
                                                                      EVP_CIPHER_CTX_free);
  std::string out(in.size() + 16, '\0');
  int n = 0, m = 0;
  if (!ctx ||
      EVP_CipherInit_ex(ctx.get(), EVP_aes_256_ctr(), nullptr,
                        reinterpret_cast<const unsigned char*>(k.aes.data()),
                        reinterpret_cast<const unsigned char*>(k.iv.data()), 1) != 1 ||
      EVP_CipherUpdate(ctx.get(), reinterpret_cast<unsigned char*>(out.data()), &n,
                       reinterpret_cast<const unsigned char*>(in.data()),
                       static_cast<int>(in.size())) != 1 ||
      EVP_CipherFinal_ex(ctx.get(), reinterpret_cast<unsigned char*>(out.data()) + n, &m) != 1)
    throw VaultError("vault: AES failed");
  out.resize(static_cast<size_t>(n + m));
  return out;
}

}  // namespace

bool is_vault_text(std::string_view text) {
  size_t b = text.find_first_not_of(" \t\r\n");
  return b != std::string_view::npos && text.substr(b).rfind("$ANSIBLE_VAULT;", 0) == 0;
}

std::string vault_decrypt(std::string_view text, const std::string& password) {
  std::istringstream in{std::string(text)};
  std::string header, line, hex;
  while (std::getline(in, header) && header.find_first_not_of(" \t\r") == std::string::npos) {
  }
  if (header.rfind("$ANSIBLE_VAULT;", 0) != 0) throw VaultError("vault: no $ANSIBLE_VAULT header");
  if (header.find(";AES256") == std::string::npos)
    throw VaultError(fmt::format("vault: unsupported cipher in '{}' (AES256 only)", header));
  while (std::getline(in, line))
    for (char c : line)
      if (!std::isspace(static_cast<unsigned char>(c))) hex += c;
  std::string body = from_hex(hex);
  std::istringstream parts(body);
  std::string salt_hex, hmac_hex, cipher_hex;
  std::getline(parts, salt_hex);
  std::getline(parts, hmac_hex);
  std::getline(parts, cipher_hex);
  std::string salt = from_hex(salt_hex), mac = from_hex(hmac_hex), cipher = from_hex(cipher_hex);
  Keys k = derive(password, salt);
  std::string want = hmac_sha256(k.hmac, cipher);
  if (want.size() != mac.size() || CRYPTO_memcmp(want.data(), mac.data(), mac.size()) != 0)
    throw VaultError("vault: wrong password (or the file was changed)");
  std::string plain = aes_ctr(k, cipher);
  // PKCS#7 padding to 16 bytes.
  if (plain.empty()) throw VaultError("vault: empty payload");
  unsigned pad = static_cast<unsigned char>(plain.back());
  if (pad == 0 || pad > 16 || pad > plain.size()) throw VaultError("vault: bad padding");
  plain.resize(plain.size() - pad);
  return plain;
}

std::string vault_encrypt(std::string_view plaintext, const std::string& password,
                          std::string salt) {
  if (salt.empty()) {
    salt.resize(32);
    RAND_bytes(reinterpret_cast<unsigned char*>(salt.data()), 32);
  }
  std::string padded(plaintext);
  size_t pad = 16 - padded.size() % 16;
  padded.append(pad, static_cast<char>(pad));
  Keys k = derive(password, salt);
  std::string cipher = aes_ctr(k, padded);
  std::string body =
      to_hex(salt) + "\n" + to_hex(hmac_sha256(k.hmac, cipher)) + "\n" + to_hex(cipher);
  std::string hex = to_hex(body);
  std::string out = "$ANSIBLE_VAULT;1.1;AES256\n";
  for (size_t i = 0; i < hex.size(); i += 80) out += hex.substr(i, 80) + "\n";
  return out;
}

void set_vault_password(std::optional<std::string> password) {
  g_password = std::move(password);
}

const std::optional<std::string>& vault_password() {
  return g_password;
}

std::string read_vault_password_file(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0)
    throw VaultError(fmt::format("--vault-password-file {}: no such file", path));
  std::string text;
  if (st.st_mode & S_IXUSR) {  // a script prints the password (Ansible's convention)
    std::unique_ptr<FILE, decltype(&pclose)> p(popen(("'" + path + "'").c_str(), "r"), pclose);
    if (!p) throw VaultError(fmt::format("--vault-password-file {}: cannot run it", path));
    std::array<char, 4096> buf{};
    size_t n;
    while ((n = fread(buf.data(), 1, buf.size(), p.get())) > 0) text.append(buf.data(), n);
  } else {
    std::ifstream in(path);
    std::stringstream ss;
    ss << in.rdbuf();
    text = ss.str();
  }
  auto nl = text.find('\n');
  if (nl != std::string::npos) text.resize(nl);
  while (!text.empty() && (text.back() == '\r' || text.back() == ' ')) text.pop_back();
  if (text.empty()) throw VaultError(fmt::format("--vault-password-file {}: empty", path));
  return text;
}

std::string vault_decrypt_for(std::string_view text, const std::string& what) {
  if (!g_password)
    throw VaultError(fmt::format(
        "{}: encrypted with Ansible Vault: run with --vault-password-file FILE (or decrypt it "
        "with ansible-vault decrypt)",
        what));
  try {
    return vault_decrypt(text, *g_password);
  } catch (const VaultError& e) {
    throw VaultError(fmt::format("{}: {}", what, e.what()));
  }
}

}  // namespace zdm::deploy
