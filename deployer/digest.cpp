#include "digest.h"

#include <stdexcept>

#include <fmt/format.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

namespace zdm::deploy {

std::string random_string(size_t n, std::string_view alphabet) {
  std::string out;
  out.reserve(n);
  // Rejection sampling: no bias towards the first characters of the alphabet.
  const unsigned limit = 256 - 256 % static_cast<unsigned>(alphabet.size());
  unsigned char buf[64];
  while (out.size() < n) {
    if (RAND_bytes(buf, sizeof buf) != 1) throw std::runtime_error("RAND_bytes failed");
    for (unsigned char b : buf) {
      if (b >= limit) continue;
      out += alphabet[b % alphabet.size()];
      if (out.size() == n) break;
    }
  }
  return out;
}

std::string digest_hex(const std::string& algorithm, std::string_view data) {
  const EVP_MD* md = algorithm == "sha256"   ? EVP_sha256()
                     : algorithm == "sha1"   ? EVP_sha1()
                     : algorithm == "sha512" ? EVP_sha512()
                     : algorithm == "md5"    ? EVP_md5()
                                             : nullptr;
  if (!md)
    throw std::invalid_argument(
        fmt::format("unknown hash '{}' (sha256, sha1, sha512, md5)", algorithm));
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), out, &len, md, nullptr);
  std::string hex;
  for (unsigned int i = 0; i < len; ++i) hex += fmt::format("{:02x}", out[i]);
  return hex;
}

}  // namespace zdm::deploy
