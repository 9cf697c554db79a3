#include "server/auth/oidc.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <ctime>
#include <fstream>
#include <optional>
#include <sstream>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "engine/status_macros.h"
#include "logging/log.h"
#include "nlohmann/json.hpp"

namespace dagd::server::auth {

using json = nlohmann::json;
using Clock = std::chrono::system_clock;

namespace internal {

// One verification key of a JWKS.
struct Key {
  std::string kid;  // may be empty
  std::string kty;  // "RSA" or "EC"
  std::string alg;  // the key's own "alg", if it names one
  std::shared_ptr<EVP_PKEY> pkey;
};

// The usable keys of one JWKS. Immutable once built, so it is shared between threads without a
// lock (EVP_PKEY may be used for verification concurrently).
class KeySet {
 public:
  std::vector<Key> keys;
};

absl::StatusOr<std::string> Base64UrlDecode(absl::string_view in) {
  auto value = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '-') return 62;
    if (c == '_') return 63;
    return -1;
  };
  if (in.size() % 4 == 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("base64url of length ", in.size(), " (4n+1) cannot be decoded"));
  }
  std::string out;
  out.reserve(in.size() / 4 * 3 + 2);
  uint32_t acc = 0;
  int bits = 0;
  for (size_t i = 0; i < in.size(); ++i) {
    int v = value(in[i]);
    if (v < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("not base64url: byte ", static_cast<int>(static_cast<unsigned char>(in[i])),
                       " at offset ", i));
    }
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xff));
    }
  }
  if (bits > 0 && (acc & ((1u << bits) - 1)) != 0) {
    return absl::InvalidArgumentError("not canonical base64url: unused bits are not zero");
  }
  return out;
}

}  // namespace internal

namespace {

using internal::Key;
using internal::KeySet;

constexpr size_t kMaxHttpBody = 1 << 20;
constexpr long kHttpTimeoutMs = 5000;
// NumericDate values beyond 9999-12-31 are refused rather than risk overflow.
constexpr double kMaxNumericDate = 253402300799.0;

std::shared_ptr<spdlog::logger> Log() {
  static auto* const logger = new std::shared_ptr<spdlog::logger>(logging::Get("auth.oidc"));
  return *logger;
}

// A claim or header value as it may appear in a log line: JSON, invalid UTF-8 replaced, cut.
std::string Quote(const json& value) {
  std::string s = value.dump(-1, ' ', true, json::error_handler_t::replace);
  if (s.size() > 200) s = s.substr(0, 200) + "…";
  return s;
}

std::string QuoteString(absl::string_view s) { return Quote(json(std::string(s))); }

std::string FormatTime(Clock::time_point t) {
  std::time_t secs = Clock::to_time_t(t);
  std::tm tm{};
  if (gmtime_r(&secs, &tm) == nullptr) return absl::StrCat("@", secs);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

absl::Status Unauthenticated(absl::string_view why) {
  return absl::UnauthenticatedError(absl::StrCat("oidc: ", why));
}

// ---- OpenSSL -------------------------------------------------------------------------------

struct BnFree {
  void operator()(BIGNUM* p) const { BN_free(p); }
};
struct ParamBldFree {
  void operator()(OSSL_PARAM_BLD* p) const { OSSL_PARAM_BLD_free(p); }
};
struct ParamFree {
  void operator()(OSSL_PARAM* p) const { OSSL_PARAM_free(p); }
};
struct PkeyCtxFree {
  void operator()(EVP_PKEY_CTX* p) const { EVP_PKEY_CTX_free(p); }
};
struct MdCtxFree {
  void operator()(EVP_MD_CTX* p) const { EVP_MD_CTX_free(p); }
};
struct EcdsaSigFree {
  void operator()(ECDSA_SIG* p) const { ECDSA_SIG_free(p); }
};
using BnPtr = std::unique_ptr<BIGNUM, BnFree>;

std::string OpenSslError() {
  unsigned long code = ERR_get_error();
  ERR_clear_error();
  if (code == 0) return "unknown OpenSSL error";
  char buf[256];
  ERR_error_string_n(code, buf, sizeof buf);
  return buf;
}

BnPtr Bignum(const std::string& bytes) {
  return BnPtr(BN_bin2bn(reinterpret_cast<const unsigned char*>(bytes.data()),
                         static_cast<int>(bytes.size()), nullptr));
}

// A public key from OSSL_PARAMs (EVP_PKEY_fromdata), checked with EVP_PKEY_public_check.
absl::StatusOr<std::shared_ptr<EVP_PKEY>> PkeyFromParams(const char* type, OSSL_PARAM_BLD* bld) {
  std::unique_ptr<OSSL_PARAM, ParamFree> params(OSSL_PARAM_BLD_to_param(bld));
  std::unique_ptr<EVP_PKEY_CTX, PkeyCtxFree> ctx(
      EVP_PKEY_CTX_new_from_name(nullptr, type, nullptr));
  EVP_PKEY* raw = nullptr;
  if (params == nullptr || ctx == nullptr || EVP_PKEY_fromdata_init(ctx.get()) != 1 ||
      EVP_PKEY_fromdata(ctx.get(), &raw, EVP_PKEY_PUBLIC_KEY, params.get()) != 1) {
    return absl::InvalidArgumentError(OpenSslError());
  }
  std::shared_ptr<EVP_PKEY> pkey(raw, EVP_PKEY_free);
  std::unique_ptr<EVP_PKEY_CTX, PkeyCtxFree> check(
      EVP_PKEY_CTX_new_from_pkey(nullptr, pkey.get(), nullptr));
  if (check == nullptr || EVP_PKEY_public_check(check.get()) != 1) {
    return absl::InvalidArgumentError(absl::StrCat("public key check: ", OpenSslError()));
  }
  return pkey;
}

absl::StatusOr<std::string> B64Member(const json& jwk, const char* name) {
  auto it = jwk.find(name);
  if (it == jwk.end() || !it->is_string()) {
    return absl::InvalidArgumentError(absl::StrCat("no string \"", name, "\""));
  }
  auto decoded = internal::Base64UrlDecode(it->get_ref<const std::string&>());
  if (!decoded.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("\"", name, "\": ", decoded.status().message()));
  }
  return decoded;
}

absl::StatusOr<std::shared_ptr<EVP_PKEY>> RsaKey(const json& jwk) {
  ASSIGN_OR_RETURN(std::string n, B64Member(jwk, "n"));
  ASSIGN_OR_RETURN(std::string e, B64Member(jwk, "e"));
  if (n.empty() || e.empty()) return absl::InvalidArgumentError("empty n or e");
  BnPtr bn_n = Bignum(n), bn_e = Bignum(e);
  std::unique_ptr<OSSL_PARAM_BLD, ParamBldFree> bld(OSSL_PARAM_BLD_new());
  if (bn_n == nullptr || bn_e == nullptr || bld == nullptr ||
      OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_N, bn_n.get()) != 1 ||
      OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_E, bn_e.get()) != 1) {
    return absl::InvalidArgumentError(OpenSslError());
  }
  ASSIGN_OR_RETURN(std::shared_ptr<EVP_PKEY> pkey, PkeyFromParams("RSA", bld.get()));
  if (int bits = EVP_PKEY_get_bits(pkey.get()); bits < 2048) {
    return absl::InvalidArgumentError(absl::StrCat("RSA key of ", bits, " bits (< 2048)"));
  }
  return pkey;
}

absl::StatusOr<std::shared_ptr<EVP_PKEY>> EcKey(const json& jwk) {
  auto crv = jwk.find("crv");
  if (crv == jwk.end() || !crv->is_string() || *crv != "P-256") {
    return absl::InvalidArgumentError(
        absl::StrCat("crv ", crv == jwk.end() ? "missing" : Quote(*crv), " (only P-256)"));
  }
  ASSIGN_OR_RETURN(std::string x, B64Member(jwk, "x"));
  ASSIGN_OR_RETURN(std::string y, B64Member(jwk, "y"));
  if (x.size() != 32 || y.size() != 32) {
    return absl::InvalidArgumentError("P-256 x and y must be 32 bytes each");
  }
  std::string point = "\x04" + x + y;  // SEC 1 uncompressed point
  std::unique_ptr<OSSL_PARAM_BLD, ParamBldFree> bld(OSSL_PARAM_BLD_new());
  if (bld == nullptr ||
      OSSL_PARAM_BLD_push_utf8_string(bld.get(), OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0) !=
          1 ||
      OSSL_PARAM_BLD_push_octet_string(bld.get(), OSSL_PKEY_PARAM_PUB_KEY, point.data(),
                                       point.size()) != 1) {
    return absl::InvalidArgumentError(OpenSslError());
  }
  return PkeyFromParams("EC", bld.get());
}

// The usable keys of a JWKS document. Keys of other types or curves, keys not for signatures and
// keys that fail to decode are skipped (a JWKS may list keys for others); InvalidArgument when
// `text` is not a JWKS or none of its keys is usable.
absl::StatusOr<std::shared_ptr<const KeySet>> ParseJwks(absl::string_view text) {
  json doc = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!doc.is_object()) return absl::InvalidArgumentError("not a JSON object");
  auto keys = doc.find("keys");
  if (keys == doc.end() || !keys->is_array()) {
    return absl::InvalidArgumentError("no \"keys\" array");
  }
  auto set = std::make_shared<KeySet>();
  std::vector<std::string> skipped;
  for (size_t i = 0; i < keys->size(); ++i) {
    const json& jwk = (*keys)[i];
    if (!jwk.is_object()) {
      skipped.push_back(absl::StrCat("keys[", i, "]: not an object"));
      continue;
    }
    Key key;
    auto member = [&jwk](const char* name) -> std::string {
      auto it = jwk.find(name);
      return it != jwk.end() && it->is_string() ? it->get<std::string>() : std::string();
    };
    key.kid = member("kid");
    key.kty = member("kty");
    key.alg = member("alg");
    std::string use = member("use");
    std::string label = absl::StrCat("keys[", i, "] kid=", QuoteString(key.kid));
    if (!use.empty() && use != "sig") {
      skipped.push_back(absl::StrCat(label, ": use ", QuoteString(use)));
      continue;
    }
    if (!key.alg.empty() && key.alg != "RS256" && key.alg != "ES256") {
      skipped.push_back(absl::StrCat(label, ": alg ", QuoteString(key.alg)));
      continue;
    }
    absl::StatusOr<std::shared_ptr<EVP_PKEY>> pkey;
    if (key.kty == "RSA") {
      pkey = RsaKey(jwk);
    } else if (key.kty == "EC") {
      pkey = EcKey(jwk);
    } else {
      skipped.push_back(absl::StrCat(label, ": kty ", QuoteString(key.kty)));
      continue;
    }
    if (!pkey.ok()) {
      skipped.push_back(absl::StrCat(label, ": ", pkey.status().message()));
      continue;
    }
    key.pkey = *std::move(pkey);
    set->keys.push_back(std::move(key));
  }
  if (set->keys.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("no usable RS256/ES256 key (", keys->size(),
                                                   " listed", skipped.empty() ? "" : ": ",
                                                   absl::StrJoin(skipped, "; "), ")"));
  }
  for (const std::string& s : skipped) Log()->debug("JWKS key skipped: {}", s);
  return std::shared_ptr<const KeySet>(std::move(set));
}

// Whether `signature` (JWS form) over `input` verifies with `key` under `alg`.
bool VerifySignature(const Key& key, const std::string& alg, absl::string_view input,
                     const std::string& signature) {
  std::string der;
  const std::string* sig = &signature;
  if (alg == "ES256") {
    // JWS carries R||S, 32 bytes each; EVP wants a DER ECDSA-Sig-Value.
    if (signature.size() != 64) return false;
    std::unique_ptr<ECDSA_SIG, EcdsaSigFree> es(ECDSA_SIG_new());
    BnPtr r(BN_bin2bn(reinterpret_cast<const unsigned char*>(signature.data()), 32, nullptr));
    BnPtr s(BN_bin2bn(reinterpret_cast<const unsigned char*>(signature.data()) + 32, 32, nullptr));
    if (es == nullptr || r == nullptr || s == nullptr ||
        ECDSA_SIG_set0(es.get(), r.get(), s.get()) != 1) {
      ERR_clear_error();
      return false;
    }
    r.release();  // owned by es now
    s.release();
    int len = i2d_ECDSA_SIG(es.get(), nullptr);
    if (len <= 0) {
      ERR_clear_error();
      return false;
    }
    der.resize(static_cast<size_t>(len));
    auto* out = reinterpret_cast<unsigned char*>(der.data());
    if (i2d_ECDSA_SIG(es.get(), &out) != len) {
      ERR_clear_error();
      return false;
    }
    sig = &der;
  }
  std::unique_ptr<EVP_MD_CTX, MdCtxFree> ctx(EVP_MD_CTX_new());
  bool ok =
      ctx != nullptr &&
      EVP_DigestVerifyInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key.pkey.get()) == 1 &&
      EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char*>(sig->data()), sig->size(),
                       reinterpret_cast<const unsigned char*>(input.data()), input.size()) == 1;
  ERR_clear_error();
  return ok;
}

// ---- HTTP ----------------------------------------------------------------------------------

void InitCurlOnce() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

bool IsLoopbackHost(std::string host) {
  if (host == "localhost") return true;
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  unsigned char buf[16];
  if (inet_pton(AF_INET, host.c_str(), buf) == 1) return buf[0] == 127;
  if (inet_pton(AF_INET6, host.c_str(), buf) == 1) {
    static const unsigned char kLoopback6[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    return std::equal(buf, buf + 16, kLoopback6);
  }
  return false;
}

// OK for an https URL, or an http URL to a loopback host (then *plain_http is set).
absl::Status CheckFetchUrl(const std::string& url, bool* plain_http) {
  InitCurlOnce();
  std::unique_ptr<CURLU, void (*)(CURLU*)> u(curl_url(), curl_url_cleanup);
  if (u == nullptr) return absl::ResourceExhaustedError("curl_url");
  if (curl_url_set(u.get(), CURLUPART_URL, url.c_str(), 0) != CURLUE_OK) {
    return absl::InvalidArgumentError(absl::StrCat(QuoteString(url), " is not a URL"));
  }
  auto part = [&u](CURLUPart which) {
    char* p = nullptr;
    std::string s;
    if (curl_url_get(u.get(), which, &p, 0) == CURLUE_OK && p != nullptr) s = p;
    curl_free(p);
    return s;
  };
  std::string scheme = part(CURLUPART_SCHEME);
  if (scheme == "https") {
    *plain_http = false;
    return absl::OkStatus();
  }
  if (scheme == "http" && IsLoopbackHost(part(CURLUPART_HOST))) {
    *plain_http = true;
    return absl::OkStatus();
  }
  return absl::InvalidArgumentError(
      absl::StrCat(QuoteString(url), " is neither https nor http to a loopback host"));
}

struct Body {
  std::string data;
  bool too_big = false;
};

size_t WriteBody(char* ptr, size_t size, size_t nmemb, void* userdata) {
  auto* body = static_cast<Body*>(userdata);
  size_t n = size * nmemb;
  if (body->data.size() + n > kMaxHttpBody) {
    body->too_big = true;
    return 0;  // makes libcurl fail the transfer
  }
  body->data.append(ptr, n);
  return n;
}

// GET `url`, expecting 200. Unavailable with the reason otherwise.
absl::StatusOr<std::string> HttpGet(const std::string& url, const std::string& ca_file) {
  bool plain_http = false;
  if (absl::Status s = CheckFetchUrl(url, &plain_http); !s.ok()) {
    return absl::UnavailableError(absl::StrCat("GET ", url, ": ", s.message()));
  }
  std::unique_ptr<CURL, void (*)(CURL*)> easy(curl_easy_init(), curl_easy_cleanup);
  if (easy == nullptr) return absl::UnavailableError("curl_easy_init failed");
  CURL* e = easy.get();
  char error[CURL_ERROR_SIZE] = {0};
  Body body;
  curl_easy_setopt(e, CURLOPT_ERRORBUFFER, error);
  curl_easy_setopt(e, CURLOPT_URL, url.c_str());
  curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, plain_http ? "http" : "https");
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, kHttpTimeoutMs);
  curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, kHttpTimeoutMs);
  curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(e, CURLOPT_USERAGENT, "dagd");
  curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
  curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
  if (!ca_file.empty()) curl_easy_setopt(e, CURLOPT_CAINFO, ca_file.c_str());
  // A proxy from the environment must not see loopback requests.
  if (plain_http) curl_easy_setopt(e, CURLOPT_PROXY, "");
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, &WriteBody);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, &body);
  CURLcode code = curl_easy_perform(e);
  if (body.too_big) {
    return absl::UnavailableError(
        absl::StrCat("GET ", url, ": answer over ", kMaxHttpBody, " bytes"));
  }
  if (code != CURLE_OK) {
    return absl::UnavailableError(
        absl::StrCat("GET ", url, ": ", error[0] != 0 ? error : curl_easy_strerror(code)));
  }
  long status = 0;
  curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
  if (status != 200) {
    return absl::UnavailableError(absl::StrCat("GET ", url, ": HTTP ", status));
  }
  return std::move(body.data);
}

// ---- Tokens --------------------------------------------------------------------------------

struct Jwt {
  json header;
  std::string alg;
  std::optional<std::string> kid;
  absl::string_view signing_input;  // "header.payload", into the caller's token
  std::string payload;              // decoded, not yet parsed
  std::string signature;            // decoded
};

absl::StatusOr<Jwt> ParseJwt(const std::string& token) {
  if (token.size() > OidcAuthenticator::kMaxTokenBytes) {
    return Unauthenticated(absl::StrCat("token of ", token.size(), " bytes (over ",
                                        OidcAuthenticator::kMaxTokenBytes, ")"));
  }
  std::vector<absl::string_view> parts = absl::StrSplit(token, '.');
  if (parts.size() != 3) {
    return Unauthenticated(
        absl::StrCat("not a JWT: ", parts.size(), " dot-separated parts instead of 3"));
  }
  Jwt jwt;
  auto decode = [](absl::string_view part, const char* name) -> absl::StatusOr<std::string> {
    auto decoded = internal::Base64UrlDecode(part);
    if (!decoded.ok()) {
      return Unauthenticated(absl::StrCat("not a JWT: ", name, ": ", decoded.status().message()));
    }
    return decoded;
  };
  ASSIGN_OR_RETURN(std::string header, decode(parts[0], "header"));
  ASSIGN_OR_RETURN(jwt.payload, decode(parts[1], "payload"));
  ASSIGN_OR_RETURN(jwt.signature, decode(parts[2], "signature"));
  jwt.signing_input = absl::string_view(token).substr(0, parts[0].size() + 1 + parts[1].size());

  jwt.header = json::parse(header, nullptr, /*allow_exceptions=*/false);
  if (!jwt.header.is_object()) return Unauthenticated("not a JWT: header is not a JSON object");
  auto alg = jwt.header.find("alg");
  if (alg == jwt.header.end() || !alg->is_string()) {
    return Unauthenticated("header has no string alg");
  }
  jwt.alg = alg->get<std::string>();
  if (jwt.alg != "RS256" && jwt.alg != "ES256") {
    return Unauthenticated(
        absl::StrCat("alg ", QuoteString(jwt.alg), " is not accepted (RS256, ES256)"));
  }
  if (auto kid = jwt.header.find("kid"); kid != jwt.header.end()) {
    if (!kid->is_string()) return Unauthenticated("header kid is not a string");
    jwt.kid = kid->get<std::string>();
  }
  // We implement no JWS extension, so any critical one makes the token unusable (RFC 7515
  // §4.1.11). jku, x5u and jwk are ignored: keys never come from the token itself.
  if (jwt.header.contains("crit")) return Unauthenticated("header has crit extensions");
  return jwt;
}

std::string KidLabel(const std::optional<std::string>& kid) {
  return kid ? absl::StrCat("kid=", QuoteString(*kid)) : std::string("(no kid)");
}

// The key a token names, or nullptr with *why set and *unknown telling whether new keys might
// hold it.
const Key* SelectKey(const KeySet& set, const Jwt& jwt, std::string* why, bool* unknown) {
  const std::string kty = jwt.alg == "RS256" ? "RSA" : "EC";
  auto fits = [&](const Key& k) { return k.kty == kty && (k.alg.empty() || k.alg == jwt.alg); };
  if (jwt.kid) {
    for (const Key& k : set.keys) {
      if (k.kid == *jwt.kid && fits(k)) return &k;
    }
    *unknown = true;
    *why = absl::StrCat("no ", jwt.alg, " key ", KidLabel(jwt.kid), " in the JWKS");
    return nullptr;
  }
  const Key* found = nullptr;
  int count = 0;
  for (const Key& k : set.keys) {
    if (fits(k)) {
      found = &k;
      ++count;
    }
  }
  if (count == 1) return found;
  *unknown = count == 0;
  *why = absl::StrCat("token has no kid and the JWKS holds ", count, " ", jwt.alg,
                      " keys (exactly one needed)");
  return nullptr;
}

// A NumericDate claim, if present. Unauthenticated if present but not a number in range.
absl::StatusOr<std::optional<Clock::time_point>> TimeClaim(const json& claims, const char* name) {
  auto it = claims.find(name);
  if (it == claims.end()) return std::optional<Clock::time_point>();
  if (!it->is_number()) {
    return Unauthenticated(absl::StrCat(name, " ", Quote(*it), " is not a number"));
  }
  double v = it->get<double>();
  if (!std::isfinite(v) || v < 0 || v > kMaxNumericDate) {
    return Unauthenticated(absl::StrCat(name, " ", Quote(*it), " is out of range"));
  }
  return std::optional<Clock::time_point>(Clock::time_point(
      std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(v))));
}

absl::StatusOr<Principal> CheckClaims(const json& claims, const OidcOptions& options,
                                      Clock::time_point now) {
  auto iss = claims.find("iss");
  if (iss == claims.end() || !iss->is_string() || *iss != options.issuer) {
    return Unauthenticated(absl::StrCat("iss ", iss == claims.end() ? "missing" : Quote(*iss),
                                        " is not the issuer ", QuoteString(options.issuer)));
  }

  auto aud = claims.find("aud");
  if (aud == claims.end()) return Unauthenticated("aud missing");
  std::vector<std::string> auds;
  if (aud->is_string()) {
    auds.push_back(aud->get<std::string>());
  } else if (aud->is_array()) {
    for (const json& a : *aud) {
      if (!a.is_string())
        return Unauthenticated(absl::StrCat("aud ", Quote(*aud), " is not strings"));
      auds.push_back(a.get<std::string>());
    }
  } else {
    return Unauthenticated(absl::StrCat("aud ", Quote(*aud), " is neither a string nor an array"));
  }
  bool aud_ok = false;
  for (const std::string& a : auds) {
    for (const std::string& want : options.audiences) aud_ok = aud_ok || a == want;
  }
  if (!aud_ok) {
    return Unauthenticated(
        absl::StrCat("aud ", Quote(json(auds)), " is not one of ", Quote(json(options.audiences))));
  }

  const auto skew = options.clock_skew;
  ASSIGN_OR_RETURN(std::optional<Clock::time_point> exp, TimeClaim(claims, "exp"));
  if (!exp) return Unauthenticated("exp missing");
  if (!(now < *exp + skew)) {
    return Unauthenticated(absl::StrCat("token expired at ", FormatTime(*exp), " (now ",
                                        FormatTime(now), ", clock skew ", skew.count(), "s)"));
  }
  ASSIGN_OR_RETURN(std::optional<Clock::time_point> nbf, TimeClaim(claims, "nbf"));
  if (nbf && now < *nbf - skew) {
    return Unauthenticated(absl::StrCat("token not valid before ", FormatTime(*nbf), " (now ",
                                        FormatTime(now), ", clock skew ", skew.count(), "s)"));
  }
  ASSIGN_OR_RETURN(std::optional<Clock::time_point> iat, TimeClaim(claims, "iat"));
  if (iat && *iat > now + skew) {
    return Unauthenticated(absl::StrCat("token issued in the future at ", FormatTime(*iat),
                                        " (now ", FormatTime(now), ", clock skew ", skew.count(),
                                        "s)"));
  }

  Principal principal;
  principal.method = "oidc";
  auto user = claims.find(options.username_claim);
  if (user == claims.end() || !user->is_string() || user->get_ref<const std::string&>().empty()) {
    return Unauthenticated(absl::StrCat("username claim ", QuoteString(options.username_claim), " ",
                                        user == claims.end() ? "missing" : Quote(*user),
                                        " is not a non-empty string"));
  }
  principal.name = options.username_prefix + user->get<std::string>();

  if (!options.groups_claim.empty()) {
    auto groups = claims.find(options.groups_claim);
    if (groups != claims.end() && !groups->is_null()) {
      auto bad = [&] {
        return Unauthenticated(absl::StrCat("groups claim ", QuoteString(options.groups_claim), " ",
                                            Quote(*groups),
                                            " is neither a string nor an array of strings"));
      };
      if (groups->is_string()) {
        principal.groups.push_back(options.groups_prefix + groups->get<std::string>());
      } else if (groups->is_array()) {
        for (const json& g : *groups) {
          if (!g.is_string()) return bad();
          principal.groups.push_back(options.groups_prefix + g.get<std::string>());
        }
      } else {
        return bad();
      }
    }
  }
  return principal;
}

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot open: ", std::strerror(errno)));
  std::ostringstream out;
  out << in.rdbuf();
  if (in.bad()) return absl::UnavailableError("read failed");
  return out.str();
}

}  // namespace

// ---- OidcAuthenticator ---------------------------------------------------------------------

absl::StatusOr<std::unique_ptr<OidcAuthenticator>> OidcAuthenticator::Create(OidcOptions options) {
  auto invalid = [](absl::string_view option, absl::string_view why) {
    return absl::InvalidArgumentError(absl::StrCat("oidc: ", option, " ", why));
  };
  if (options.issuer.empty()) return invalid("issuer", "is empty");
  if (options.audiences.empty()) return invalid("audiences", "is empty");
  for (const std::string& a : options.audiences) {
    if (a.empty()) return invalid("audiences", "holds an empty string");
  }
  if (options.username_claim.empty()) return invalid("username_claim", "is empty");
  if (options.clock_skew.count() < 0) return invalid("clock_skew", "is negative");
  if (options.jwks_cache_ttl.count() < 0) return invalid("jwks_cache_ttl", "is negative");

  if (options.jwks_file.empty()) {
    bool plain_http = false;
    if (absl::Status s = CheckFetchUrl(options.issuer, &plain_http); !s.ok()) {
      return invalid("issuer", absl::StrCat(s.message(), ", so its keys cannot be fetched"));
    }
  }
  std::unique_ptr<OidcAuthenticator> auth(new OidcAuthenticator(std::move(options)));
  if (!auth->options_.jwks_file.empty()) {
    absl::StatusOr<std::shared_ptr<const KeySet>> keys = auth->FileKeys();
    if (!keys.ok()) return invalid("jwks_file", keys.status().ToString());
  }
  return auth;
}

OidcAuthenticator::OidcAuthenticator(OidcOptions options) : options_(std::move(options)) {}

OidcAuthenticator::~OidcAuthenticator() = default;

Clock::time_point OidcAuthenticator::Now() const {
  return options_.now ? options_.now() : Clock::now();
}

absl::StatusOr<Principal> OidcAuthenticator::Authenticate(const std::string& token) {
  try {
    ASSIGN_OR_RETURN(Jwt jwt, ParseJwt(token));
    ASSIGN_OR_RETURN(std::shared_ptr<const KeySet> keys, Keys(/*unknown_kid=*/false));
    std::string why;
    bool unknown = false;
    const Key* key = SelectKey(*keys, jwt, &why, &unknown);
    if (key == nullptr && unknown) {
      ASSIGN_OR_RETURN(keys, Keys(/*unknown_kid=*/true));
      unknown = false;
      key = SelectKey(*keys, jwt, &why, &unknown);
    }
    if (key == nullptr) return Unauthenticated(why);
    if (!VerifySignature(*key, jwt.alg, jwt.signing_input, jwt.signature)) {
      return Unauthenticated(absl::StrCat(
          jwt.alg, " signature does not verify with key ",
          KidLabel(key->kid.empty() ? std::nullopt : std::optional<std::string>(key->kid))));
    }
    // Only a signed payload is parsed.
    json claims = json::parse(jwt.payload, nullptr, /*allow_exceptions=*/false);
    if (!claims.is_object()) return Unauthenticated("payload is not a JSON object");
    return CheckClaims(claims, options_, Now());
  } catch (const json::exception& e) {
    return Unauthenticated(absl::StrCat("malformed token: ", e.what()));
  } catch (const std::exception& e) {
    return Unauthenticated(absl::StrCat("token not checked: ", e.what()));
  }
}

absl::StatusOr<std::shared_ptr<const KeySet>> OidcAuthenticator::Keys(bool unknown_kid) {
  if (!options_.jwks_file.empty()) return FileKeys();
  return FetchedKeys(unknown_kid);
}

absl::StatusOr<std::shared_ptr<const KeySet>> OidcAuthenticator::FileKeys() {
  const std::string& path = options_.jwks_file;
  struct stat st {};
  FileStamp stamp;
  int stat_errno = 0;
  if (stat(path.c_str(), &st) != 0) {
    stat_errno = errno;
  } else {
    stamp.mtime_ns = static_cast<long long>(st.st_mtim.tv_sec) * 1000000000LL + st.st_mtim.tv_nsec;
    stamp.size = static_cast<long long>(st.st_size);
    stamp.inode = static_cast<unsigned long long>(st.st_ino);
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (keys_ != nullptr && (stamp == file_stamp_ || stamp == bad_file_stamp_)) return keys_;
  }
  absl::StatusOr<std::shared_ptr<const KeySet>> keys;
  if (stamp.mtime_ns < 0) {
    keys = absl::NotFoundError(absl::StrCat(path, ": ", std::strerror(stat_errno)));
  } else if (absl::StatusOr<std::string> text = ReadFile(path); !text.ok()) {
    keys = absl::Status(text.status().code(), absl::StrCat(path, ": ", text.status().message()));
  } else {
    keys = ParseJwks(*text);
    if (!keys.ok()) {
      keys = absl::InvalidArgumentError(absl::StrCat(path, ": ", keys.status().message()));
    }
  }
  std::lock_guard<std::mutex> lock(mu_);
  if (!keys.ok()) {
    if (keys_ == nullptr) return keys.status();  // only at Create()
    // Keep serving the keys we have; say so once per version of the file.
    if (bad_file_stamp_ != stamp) {
      Log()->warn("JWKS file not re-read, keeping its previous keys: {}", keys.status().ToString());
      bad_file_stamp_ = stamp;
    }
    return keys_;
  }
  if (keys_ != nullptr) Log()->info("JWKS file {} re-read: {} keys", path, (*keys)->keys.size());
  keys_ = *keys;
  file_stamp_ = stamp;
  bad_file_stamp_.reset();
  return keys_;
}

absl::StatusOr<std::shared_ptr<const KeySet>> OidcAuthenticator::FetchedKeys(bool unknown_kid) {
  const Clock::time_point now = Now();
  // Whether to fetch now; if not, what to answer. REQUIRES: mu_ held.
  auto decide = [&](absl::StatusOr<std::shared_ptr<const KeySet>>* answer) {
    bool stale = keys_ == nullptr || now >= fetched_at_ + options_.jwks_cache_ttl;
    bool refetch = unknown_kid &&
                   (!has_kid_refetched_ || now - last_kid_refetch_ >= kUnknownKidRefetchInterval);
    bool backoff = has_failed_ && now - last_failure_ < kFailedFetchBackoff;
    if ((stale || refetch) && !backoff) return true;
    if (keys_ != nullptr) {
      *answer = keys_;
    } else {
      *answer = absl::UnavailableError(
          absl::StrCat("oidc: no keys: ", last_failure_status_.message(), " (retried after ",
                       kFailedFetchBackoff.count(), "s)"));
    }
    return false;
  };
  absl::StatusOr<std::shared_ptr<const KeySet>> answer;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!decide(&answer)) return answer;
  }
  std::lock_guard<std::mutex> fetch_lock(fetch_mu_);
  {
    std::lock_guard<std::mutex> lock(mu_);
    // Another caller may have fetched while we waited for fetch_mu_.
    if (!decide(&answer)) return answer;
    if (unknown_kid) {
      has_kid_refetched_ = true;
      last_kid_refetch_ = now;
    }
  }
  absl::StatusOr<std::shared_ptr<const KeySet>> fetched = Fetch();
  std::lock_guard<std::mutex> lock(mu_);
  if (!fetched.ok()) {
    has_failed_ = true;
    last_failure_ = now;
    last_failure_status_ = fetched.status();
    if (keys_ != nullptr) {
      Log()->warn("JWKS of {} not fetched, keeping the cached keys: {}", options_.issuer,
                  fetched.status().ToString());
      return keys_;
    }
    return absl::UnavailableError(absl::StrCat("oidc: no keys: ", fetched.status().message()));
  }
  has_failed_ = false;
  keys_ = *std::move(fetched);
  fetched_at_ = now;
  Log()->debug("JWKS of {} fetched: {} keys", options_.issuer, keys_->keys.size());
  return keys_;
}

absl::StatusOr<std::shared_ptr<const KeySet>> OidcAuthenticator::Fetch() {
  std::string base = options_.issuer;
  while (!base.empty() && base.back() == '/') base.pop_back();
  const std::string discovery_url = base + "/.well-known/openid-configuration";
  ASSIGN_OR_RETURN(std::string discovery_text, HttpGet(discovery_url, options_.ca_file));
  json discovery = json::parse(discovery_text, nullptr, /*allow_exceptions=*/false);
  if (!discovery.is_object()) {
    return absl::UnavailableError(absl::StrCat(discovery_url, ": not a JSON object"));
  }
  // OpenID Connect Discovery 1.0 §4.3: the document must name the issuer it was fetched for.
  auto iss = discovery.find("issuer");
  if (iss == discovery.end() || !iss->is_string() || *iss != options_.issuer) {
    return absl::UnavailableError(absl::StrCat(discovery_url, ": issuer ",
                                               iss == discovery.end() ? "missing" : Quote(*iss),
                                               " is not ", QuoteString(options_.issuer)));
  }
  auto uri = discovery.find("jwks_uri");
  if (uri == discovery.end() || !uri->is_string()) {
    return absl::UnavailableError(absl::StrCat(discovery_url, ": no string jwks_uri"));
  }
  const std::string jwks_uri = uri->get<std::string>();
  ASSIGN_OR_RETURN(std::string jwks_text, HttpGet(jwks_uri, options_.ca_file));
  absl::StatusOr<std::shared_ptr<const KeySet>> keys = ParseJwks(jwks_text);
  if (!keys.ok()) {
    return absl::UnavailableError(absl::StrCat(jwks_uri, ": ", keys.status().message()));
  }
  return keys;
}

}  // namespace dagd::server::auth
