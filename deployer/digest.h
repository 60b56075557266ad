// Digests and random strings (OpenSSL), for the hash filter and the password lookup.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace zdm::deploy {

// Hex digest of `data` with the named algorithm (sha256, sha1, sha512, md5); throws
// std::invalid_argument for another name.
std::string digest_hex(const std::string& algorithm, std::string_view data);

// `n` random characters from `alphabet`, from OpenSSL's CSPRNG (RAND_bytes); throws
// std::runtime_error if it fails.
std::string random_string(size_t n, std::string_view alphabet);

}  // namespace zdm::deploy
