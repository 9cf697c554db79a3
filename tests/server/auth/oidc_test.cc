// OidcAuthenticator against real keys: RSA-2048 and EC P-256 keys generated here, tokens signed
// here, JWKS served from a file or by a small Python HTTP server on 127.0.0.1, a manual clock.
#include "server/auth/oidc.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

extern char** environ;

namespace dagd::server::auth {
namespace {

using json = nlohmann::json;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using Clock = std::chrono::system_clock;

constexpr long long kNow = 1'800'000'000;  // 2027-01-15
constexpr char kIssuer[] = "https://issuer.example.com";

std::string B64Url(std::string_view in) {
  static const char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  for (unsigned char c : in) {
    acc = (acc << 8) | c;
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      out.push_back(kAlphabet[(acc >> bits) & 63]);
    }
  }
  if (bits > 0) out.push_back(kAlphabet[(acc << (6 - bits)) & 63]);
  return out;
}

std::string BnBytes(EVP_PKEY* pkey, const char* name, int pad) {
  BIGNUM* bn = nullptr;
  EXPECT_EQ(EVP_PKEY_get_bn_param(pkey, name, &bn), 1) << name;
  std::string out(pad > 0 ? pad : BN_num_bytes(bn), '\0');
  if (pad > 0) {
    BN_bn2binpad(bn, reinterpret_cast<unsigned char*>(out.data()), pad);
  } else {
    BN_bn2bin(bn, reinterpret_cast<unsigned char*>(out.data()));
  }
  BN_free(bn);
  return out;
}

// A signing key and its public JWK.
struct TestKey {
  std::shared_ptr<EVP_PKEY> pkey;
  std::string kid;
  std::string alg;  // RS256 or ES256

  static TestKey Rsa(std::string kid) {
    EVP_PKEY* p = EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<size_t>(2048));
    EXPECT_NE(p, nullptr);
    return {std::shared_ptr<EVP_PKEY>(p, EVP_PKEY_free), std::move(kid), "RS256"};
  }
  static TestKey Ec(std::string kid) {
    EVP_PKEY* p = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256");
    EXPECT_NE(p, nullptr);
    return {std::shared_ptr<EVP_PKEY>(p, EVP_PKEY_free), std::move(kid), "ES256"};
  }
  TestKey WithKid(std::string other) const { return {pkey, std::move(other), alg}; }

  json Jwk() const {
    json jwk = {{"kid", kid}, {"use", "sig"}, {"alg", alg}};
    if (alg == "RS256") {
      jwk["kty"] = "RSA";
      jwk["n"] = B64Url(BnBytes(pkey.get(), OSSL_PKEY_PARAM_RSA_N, 0));
      jwk["e"] = B64Url(BnBytes(pkey.get(), OSSL_PKEY_PARAM_RSA_E, 0));
    } else {
      jwk["kty"] = "EC";
      jwk["crv"] = "P-256";
      jwk["x"] = B64Url(BnBytes(pkey.get(), OSSL_PKEY_PARAM_EC_PUB_X, 32));
      jwk["y"] = B64Url(BnBytes(pkey.get(), OSSL_PKEY_PARAM_EC_PUB_Y, 32));
    }
    return jwk;
  }

  // The JWS signature of `input`: PKCS#1 v1.5 for RS256, R||S for ES256.
  std::string Sign(std::string_view input) const {
    std::unique_ptr<EVP_MD_CTX, void (*)(EVP_MD_CTX*)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
    EXPECT_EQ(EVP_DigestSignInit(ctx.get(), nullptr, EVP_sha256(), nullptr, pkey.get()), 1);
    size_t len = 0;
    const auto* data = reinterpret_cast<const unsigned char*>(input.data());
    EXPECT_EQ(EVP_DigestSign(ctx.get(), nullptr, &len, data, input.size()), 1);
    std::string sig(len, '\0');
    EXPECT_EQ(EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(sig.data()), &len, data,
                             input.size()),
              1);
    sig.resize(len);
    if (alg == "RS256") return sig;
    const auto* der = reinterpret_cast<const unsigned char*>(sig.data());
    ECDSA_SIG* es = d2i_ECDSA_SIG(nullptr, &der, static_cast<long>(sig.size()));
    EXPECT_NE(es, nullptr);
    std::string raw(64, '\0');
    BN_bn2binpad(ECDSA_SIG_get0_r(es), reinterpret_cast<unsigned char*>(raw.data()), 32);
    BN_bn2binpad(ECDSA_SIG_get0_s(es), reinterpret_cast<unsigned char*>(raw.data()) + 32, 32);
    ECDSA_SIG_free(es);
    return raw;
  }
};

json Jwks(const std::vector<const TestKey*>& keys) {
  json doc = {{"keys", json::array()}};
  for (const TestKey* k : keys) doc["keys"].push_back(k->Jwk());
  return doc;
}

// A compact JWS of raw header and payload text.
std::string SignRaw(const TestKey& key, const std::string& header, const std::string& payload) {
  std::string input = B64Url(header) + "." + B64Url(payload);
  return input + "." + B64Url(key.Sign(input));
}

// A token signed by `key`, its header {alg, kid, typ} patched by `header_patch` (a null value
// removes a member).
std::string Token(const TestKey& key, const json& claims,
                  const json& header_patch = json::object()) {
  json header = {{"alg", key.alg}, {"kid", key.kid}, {"typ", "JWT"}};
  header.merge_patch(header_patch);
  return SignRaw(key, header.dump(), claims.dump());
}

void WriteFile(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  ASSERT_TRUE(out.good()) << path;
}

std::string MakeTempDir() {
  std::string templ = (std::filesystem::temp_directory_path() / "oidc_test.XXXXXX").string();
  char* dir = mkdtemp(templ.data());
  EXPECT_NE(dir, nullptr);
  return templ;
}

// Keys are expensive to make: one set for the whole binary.
struct Keys {
  TestKey rsa = TestKey::Rsa("rsa-1");
  TestKey ec = TestKey::Ec("ec-1");
  TestKey rsa2 = TestKey::Rsa("rsa-2");
  TestKey ec2 = TestKey::Ec("ec-2");
};
const Keys& K() {
  static const Keys* const keys = new Keys;
  return *keys;
}

class OidcTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = MakeTempDir();
    jwks_path_ = dir_ + "/jwks.json";
    WriteFile(jwks_path_, Jwks({&K().rsa, &K().ec}).dump());
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  OidcOptions Options() {
    OidcOptions o;
    o.issuer = kIssuer;
    o.audiences = {"dagd", "dagd-cli"};
    o.jwks_file = jwks_path_;
    o.username_prefix = "oidc:";
    o.groups_prefix = "oidc:";
    o.now = [this] { return now_; };
    return o;
  }

  std::unique_ptr<OidcAuthenticator> Make(OidcOptions o) {
    auto auth = OidcAuthenticator::Create(std::move(o));
    EXPECT_TRUE(auth.ok()) << auth.status();
    return auth.ok() ? *std::move(auth) : nullptr;
  }

  static json Claims() {
    return {{"iss", kIssuer},     {"aud", "dagd"},      {"sub", "alice"},
            {"iat", kNow - 10},   {"exp", kNow + 600},  {"groups", {"dev", "ops"}},
            {"email", "a@x.org"}, {"name", "Alice Doe"}};
  }

  // Asserts `token` is refused as Unauthenticated and returns the reason.
  std::string Rejected(OidcAuthenticator& auth, const std::string& token) {
    absl::StatusOr<Principal> p = auth.Authenticate(token);
    EXPECT_FALSE(p.ok()) << "accepted as " << (p.ok() ? p->name : "");
    EXPECT_EQ(p.status().code(), absl::StatusCode::kUnauthenticated) << p.status();
    return std::string(p.status().message());
  }

  void SetMtimeForward(const std::string& path, int seconds) {
    // File systems stamp mtime with a coarse clock; a real rotation comes seconds later.
    struct stat st {};
    ASSERT_EQ(stat(path.c_str(), &st), 0);
    timespec times[2] = {st.st_atim, st.st_mtim};
    times[1].tv_sec += seconds;
    ASSERT_EQ(utimensat(AT_FDCWD, path.c_str(), times, 0), 0);
  }

  std::string dir_;
  std::string jwks_path_;
  Clock::time_point now_ = Clock::time_point(std::chrono::seconds(kNow));
};

TEST_F(OidcTest, AcceptsRs256WithUserAndGroups) {
  auto auth = Make(Options());
  ASSERT_NE(auth, nullptr);
  EXPECT_STREQ(auth->method(), "oidc");
  absl::StatusOr<Principal> p = auth->Authenticate(Token(K().rsa, Claims()));
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->name, "oidc:alice");
  EXPECT_THAT(p->groups, ElementsAre("oidc:dev", "oidc:ops"));
  EXPECT_EQ(p->method, "oidc");
}

TEST_F(OidcTest, AcceptsEs256) {
  auto auth = Make(Options());
  ASSERT_NE(auth, nullptr);
  absl::StatusOr<Principal> p = auth->Authenticate(Token(K().ec, Claims()));
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->name, "oidc:alice");
  EXPECT_THAT(p->groups, ElementsAre("oidc:dev", "oidc:ops"));
}

TEST_F(OidcTest, ClaimsConfigurable) {
  OidcOptions o = Options();
  o.username_claim = "email";
  o.username_prefix = "";
  o.groups_claim = "roles";
  o.groups_prefix = "r:";
  auto auth = Make(o);
  ASSERT_NE(auth, nullptr);
  json claims = Claims();
  claims["roles"] = "admin";  // a single string
  absl::StatusOr<Principal> p = auth->Authenticate(Token(K().rsa, claims));
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->name, "a@x.org");
  EXPECT_THAT(p->groups, ElementsAre("r:admin"));

  claims.erase("roles");
  p = auth->Authenticate(Token(K().rsa, claims));
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_THAT(p->groups, IsEmpty());

  claims["roles"] = {"a", 7};
  EXPECT_THAT(Rejected(*auth, Token(K().rsa, claims)), HasSubstr("roles"));
}

TEST_F(OidcTest, CreateRejectsBadOptions) {
  auto fails = [](OidcOptions o, const std::string& option) {
    auto auth = OidcAuthenticator::Create(std::move(o));
    ASSERT_FALSE(auth.ok());
    EXPECT_EQ(auth.status().code(), absl::StatusCode::kInvalidArgument) << auth.status();
    EXPECT_THAT(auth.status().message(), HasSubstr(option));
  };
  OidcOptions o = Options();
  o.issuer = "";
  fails(o, "issuer");
  o = Options();
  o.audiences.clear();
  fails(o, "audiences");
  o = Options();
  o.jwks_file = dir_ + "/missing.json";
  fails(o, "jwks_file");
  WriteFile(dir_ + "/bad.json", "{\"keys\": 5}");
  o.jwks_file = dir_ + "/bad.json";
  fails(o, "jwks_file");
  WriteFile(dir_ + "/bad.json", "[1, 2]");
  fails(o, "jwks_file");
  WriteFile(dir_ + "/bad.json", R"({"keys": [{"kty": "oct", "k": "c2VjcmV0"}]})");
  fails(o, "jwks_file");
  o.jwks_file = "";
  o.issuer = "http://issuer.example.com";  // keys would travel in clear text
  fails(o, "issuer");
  o.issuer = "http://127.0.0.1:8080";
  EXPECT_TRUE(OidcAuthenticator::Create(o).ok());
}

TEST_F(OidcTest, RejectsBadSignatures) {
  auto auth = Make(Options());
  ASSERT_NE(auth, nullptr);
  // Signed by another key that claims rsa-1's kid.
  EXPECT_THAT(Rejected(*auth, Token(K().rsa2.WithKid("rsa-1"), Claims())),
              HasSubstr("does not verify with key kid=\"rsa-1\""));
  EXPECT_THAT(Rejected(*auth, Token(K().ec2.WithKid("ec-1"), Claims())),
              HasSubstr("does not verify"));

  // A valid token whose payload is swapped for another.
  std::string token = Token(K().rsa, Claims());
  json forged = Claims();
  forged["sub"] = "mallory";
  size_t dot1 = token.find('.'), dot2 = token.rfind('.');
  std::string tampered = token.substr(0, dot1 + 1) + B64Url(forged.dump()) + token.substr(dot2);
  EXPECT_THAT(Rejected(*auth, tampered), HasSubstr("does not verify"));
  std::string es = Token(K().ec, Claims());
  dot1 = es.find('.');
  dot2 = es.rfind('.');
  EXPECT_THAT(Rejected(*auth, es.substr(0, dot1 + 1) + B64Url(forged.dump()) + es.substr(dot2)),
              HasSubstr("does not verify"));

  // ES256 signature of the wrong length.
  EXPECT_THAT(Rejected(*auth, es.substr(0, dot2 + 1) + B64Url(std::string(63, 'x'))),
              HasSubstr("does not verify"));
  // An RS256 header on an ES256 signature.
  std::string mixed =
      SignRaw(K().ec, json{{"alg", "RS256"}, {"kid", "rsa-1"}}.dump(), Claims().dump());
  Rejected(*auth, mixed);
}

TEST_F(OidcTest, RejectsOtherAlgorithms) {
  auto auth = Make(Options());
  ASSERT_NE(auth, nullptr);
  std::string input =
      B64Url(json{{"alg", "none"}, {"kid", "rsa-1"}}.dump()) + "." + B64Url(Claims().dump());
  EXPECT_THAT(Rejected(*auth, input + "."), HasSubstr("alg \"none\""));

  // HS256 keyed with the public JWKS: the classic confusion attack.
  std::string hs_input =
      B64Url(json{{"alg", "HS256"}, {"kid", "rsa-1"}}.dump()) + "." + B64Url(Claims().dump());
  std::string secret = Jwks({&K().rsa}).dump();
  unsigned char mac[32];
  size_t mac_len = 0;
  ASSERT_NE(EVP_Q_mac(nullptr, "HMAC", nullptr, "SHA256", nullptr, secret.data(), secret.size(),
                      reinterpret_cast<const unsigned char*>(hs_input.data()), hs_input.size(), mac,
                      sizeof mac, &mac_len),
            nullptr);
  std::string hs = hs_input + "." + B64Url(std::string(reinterpret_cast<char*>(mac), mac_len));
  EXPECT_THAT(Rejected(*auth, hs), HasSubstr("HS256"));

  for (const char* alg : {"RS384", "PS256", "ES384", "EdDSA", "rs256"}) {
    EXPECT_THAT(Rejected(*auth, Token(K().rsa, Claims(), {{"alg", alg}})), HasSubstr("alg"));
  }
  EXPECT_THAT(Rejected(*auth, Token(K().rsa, Claims(), {{"alg", nullptr}})), HasSubstr("alg"));
  EXPECT_THAT(Rejected(*auth, Token(K().rsa, Claims(), {{"alg", 256}})), HasSubstr("alg"));
  EXPECT_THAT(Rejected(*auth, Token(K().rsa, Claims(), {{"crit", {"exp"}}})), HasSubstr("crit"));
}

TEST_F(OidcTest, SelectsKeyByKid) {
  auto auth = Make(Options());
  ASSERT_NE(auth, nullptr);
  EXPECT_THAT(Rejected(*auth, Token(K().rsa.WithKid("nope"), Claims())),
              HasSubstr("no RS256 key kid=\"nope\""));
  // A kid of a key of the other type.
  EXPECT_THAT(Rejected(*auth, Token(K().rsa.WithKid("ec-1"), Claims())), HasSubstr("no RS256 key"));
  EXPECT_THAT(Rejected(*auth, Token(K().rsa, Claims(), {{"kid", 1}})), HasSubstr("kid"));

  // Without a kid, the one key of the right type is used.
  absl::StatusOr<Principal> p = auth->Authenticate(Token(K().ec, Claims(), {{"kid", nullptr}}));
  EXPECT_TRUE(p.ok()) << p.status();
  p = auth->Authenticate(Token(K().rsa, Claims(), {{"kid", nullptr}}));
  EXPECT_TRUE(p.ok()) << p.status();

  // ... but not when there are two.
  WriteFile(jwks_path_, Jwks({&K().rsa, &K().rsa2, &K().ec}).dump());
  SetMtimeForward(jwks_path_, 2);
  EXPECT_THAT(Rejected(*auth, Token(K().rsa, Claims(), {{"kid", nullptr}})),
              HasSubstr("no kid and the JWKS holds 2 RS256 keys"));
}

TEST_F(OidcTest, ChecksIssuerAndAudience) {
  auto auth = Make(Options());
  ASSERT_NE(auth, nullptr);
  json c = Claims();
  c["iss"] = std::string(kIssuer) + "/";
  EXPECT_THAT(Rejected(*auth, Token(K().rsa, c)), HasSubstr("iss"));
  c.erase("iss");
  EXPECT_THAT(Rejected(*auth, Token(K().rsa, c)), HasSubstr("iss missing"));

  c = Claims();
  c["aud"] = "x";
  EXPECT_THAT(Rejected(*auth, Token(K().rsa, c)),
              HasSubstr(R"(aud ["x"] is not one of ["dagd","dagd-cli"])"));
  c["aud"] = {"x", "y"};
  EXPECT_THAT(Rejected(*auth, Token(K().rsa, c)), HasSubstr("is not one of"));
  c["aud"] = {"x", "dagd-cli"};
  EXPECT_TRUE(auth->Authenticate(Token(K().rsa, c)).ok());
  c["aud"] = 5;
  Rejected(*auth, Token(K().rsa, c));
  c["aud"] = {"dagd", 5};
  Rejected(*auth, Token(K().rsa, c));
  c.erase("aud");
  EXPECT_THAT(Rejected(*auth, Token(K().rsa, c)), HasSubstr("aud missing"));
}

TEST_F(OidcTest, ChecksTimesWithSkew) {
  auto auth = Make(Options());  // clock_skew 60 s
  ASSERT_NE(auth, nullptr);
  json c = Claims();
  c["exp"] = kNow - 120;
  EXPECT_THAT(Rejected(*auth, Token(K().rsa, c)),
              HasSubstr("token expired at 2027-01-15T07:58:00Z"));
  c["exp"] = kNow - 60;  // now == exp + skew: expired
  Rejected(*auth, Token(K().rsa, c));
  c["exp"] = kNow - 59;  // expired, but within the skew
  EXPECT_TRUE(auth->Authenticate(Token(K().rsa, c)).ok());
  c["exp"] = kNow - 59.5;  // fractional NumericDate
  EXPECT_TRUE(auth->Authenticate(Token(K().rsa, c)).ok());

  c = Claims();
  c.erase("exp");
  EXPECT_THAT(Rejected(*auth, Token(K().rsa, c)), HasSubstr("exp missing"));
  for (json bad : {json("1900000000"), json(nullptr), json::array({kNow + 60}), json(true),
                   json(1e300), json(-1)}) {
    c["exp"] = bad;
    EXPECT_THAT(Rejected(*auth, Token(K().rsa, c)), HasSubstr("exp")) << bad;
  }

  c = Claims();
  c["nbf"] = kNow + 120;
  EXPECT_THAT(Rejected(*auth, Token(K().rsa, c)), HasSubstr("not valid before"));
  c["nbf"] = kNow + 30;
  EXPECT_TRUE(auth->Authenticate(Token(K().rsa, c)).ok());
  c["nbf"] = "soon";
  Rejected(*auth, Token(K().rsa, c));

  c = Claims();
  c["iat"] = kNow + 120;
  EXPECT_THAT(Rejected(*auth, Token(K().rsa, c)), HasSubstr("issued in the future"));
  c["iat"] = kNow + 30;
  EXPECT_TRUE(auth->Authenticate(Token(K().rsa, c)).ok());

  // The clock moves: the same token expires.
  std::string token = Token(K().rsa, Claims());
  EXPECT_TRUE(auth->Authenticate(token).ok());
  now_ += std::chrono::seconds(600 + 60);
  EXPECT_THAT(Rejected(*auth, token), HasSubstr("expired"));
}

TEST_F(OidcTest, ChecksUsername) {
  auto auth = Make(Options());
  ASSERT_NE(auth, nullptr);
  json c = Claims();
  c.erase("sub");
  EXPECT_THAT(Rejected(*auth, Token(K().rsa, c)), HasSubstr("username claim \"sub\" missing"));
  for (json bad :
       {json(123), json(""), json(nullptr), json::array({"alice"}), json::object({{"a", "b"}})}) {
    c["sub"] = bad;
    EXPECT_THAT(Rejected(*auth, Token(K().rsa, c)), HasSubstr("username claim")) << bad;
  }
}

TEST_F(OidcTest, MalformedTokensAreRefused) {
  auto auth = Make(Options());
  ASSERT_NE(auth, nullptr);
  const std::string good = Token(K().rsa, Claims());
  const std::string header = good.substr(0, good.find('.'));
  const std::string rest = good.substr(good.find('.'));
  std::vector<std::string> tokens = {
      "",
      "garbage",
      "a.b",
      "..",
      "a.b.c.d",
      good + ".",
      "!!!.e30.e30",
      header + ".e30=.e30",                 // padding
      header + ".@@@@.e30",                 // not the alphabet
      header + ".e.e30",                    // 4n+1 characters
      B64Url("[1]") + rest,                 // header not an object
      B64Url("{\"alg\":\"RS256\"") + rest,  // header not JSON
      B64Url("\"RS256\"") + rest,           // header a string
      B64Url("{\"alg\":\"RS256\",\"kid\":\"rsa-1\"}\xff") + rest,
      std::string(3, '\0') + "." + std::string(5, '\0') + ".x",
  };
  for (const std::string& t : tokens) Rejected(*auth, t);

  // Signed properly, but the payload is not a JSON object.
  for (const char* payload : {"[1,2]", "null", "\"alice\"", "12", "{\"sub\":", "", "{}"}) {
    Rejected(*auth, SignRaw(K().rsa, json{{"alg", "RS256"}, {"kid", "rsa-1"}}.dump(), payload));
  }

  // Over 16 KiB, even though signed properly.
  json big = Claims();
  big["padding"] = std::string(20 * 1024, 'x');
  std::string huge = Token(K().rsa, big);
  EXPECT_GT(huge.size(), 20u * 1024);
  EXPECT_THAT(Rejected(*auth, huge), HasSubstr("over 16384"));

  // Every truncation and a flipped character in every position.
  for (size_t n = 0; n < good.size(); ++n) Rejected(*auth, good.substr(0, n));
  for (size_t i = 0; i < good.size(); ++i) {
    std::string t = good;
    t[i] = t[i] == 'A' ? 'B' : 'A';
    if (t == good) continue;
    absl::StatusOr<Principal> p = auth->Authenticate(t);
    // A flip of the last character may only touch unused bits; those are refused too.
    EXPECT_FALSE(p.ok()) << "position " << i;
  }
  EXPECT_TRUE(auth->Authenticate(good).ok());
}

TEST(Base64UrlTest, Decodes) {
  std::vector<std::string> plain = {"",     "f",     "fo",     "foo",
                                    "foob", "fooba", "foobar", std::string("\xff\xfe\x00", 3)};
  for (const std::string& s : plain) {
    absl::StatusOr<std::string> d = internal::Base64UrlDecode(B64Url(s));
    ASSERT_TRUE(d.ok()) << d.status();
    EXPECT_EQ(*d, s);
  }
  EXPECT_EQ(*internal::Base64UrlDecode("-_8"), "\xfb\xff");
  EXPECT_FALSE(internal::Base64UrlDecode("Zg==").ok());
  EXPECT_FALSE(internal::Base64UrlDecode("Zh").ok());  // unused bits set
  EXPECT_FALSE(internal::Base64UrlDecode("Z").ok());
  EXPECT_FALSE(internal::Base64UrlDecode("a+/b").ok());
}

TEST_F(OidcTest, JwksFileRotation) {
  auto auth = Make(Options());
  ASSERT_NE(auth, nullptr);
  EXPECT_TRUE(auth->Authenticate(Token(K().rsa, Claims())).ok());
  Rejected(*auth, Token(K().rsa2, Claims()));

  WriteFile(jwks_path_, Jwks({&K().rsa2}).dump());  // rsa-1 retired
  SetMtimeForward(jwks_path_, 2);
  absl::StatusOr<Principal> p = auth->Authenticate(Token(K().rsa2, Claims()));
  EXPECT_TRUE(p.ok()) << p.status();
  EXPECT_THAT(Rejected(*auth, Token(K().rsa, Claims())), HasSubstr("no RS256 key"));

  // A broken file keeps the keys we have.
  WriteFile(jwks_path_, "{\"keys\": [");
  SetMtimeForward(jwks_path_, 4);
  p = auth->Authenticate(Token(K().rsa2, Claims()));
  EXPECT_TRUE(p.ok()) << p.status();
  std::filesystem::remove(jwks_path_);
  p = auth->Authenticate(Token(K().rsa2, Claims()));
  EXPECT_TRUE(p.ok()) << p.status();

  WriteFile(jwks_path_, Jwks({&K().ec2}).dump());
  p = auth->Authenticate(Token(K().ec2, Claims()));
  EXPECT_TRUE(p.ok()) << p.status();
}

// ---- Keys fetched from the issuer ----------------------------------------------------------

// A static HTTP server on 127.0.0.1:0 (Python's http.server) serving `root`, and writing the
// path of every GET, one a line, to `log`.
constexpr char kServerScript[] = R"PY(
import functools, http.server, sys
root, log = sys.argv[1], sys.argv[2]
class Handler(http.server.SimpleHTTPRequestHandler):
    def do_GET(self):
        with open(log, "a") as f:
            f.write(self.path + "\n")
        super().do_GET()
    def log_message(self, *args):
        pass
server = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                         functools.partial(Handler, directory=root))
print(server.server_address[1], flush=True)
server.serve_forever()
)PY";

class FakeIssuer {
 public:
  explicit FakeIssuer(const std::string& dir) : root_(dir + "/www"), log_(dir + "/requests.log") {
    std::filesystem::create_directories(root_ + "/.well-known");
    int fds[2];
    if (pipe(fds) != 0) return;
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, fds[1], STDOUT_FILENO);
    posix_spawn_file_actions_addclose(&actions, fds[0]);
    std::vector<std::string> args = {"python3", "-c", kServerScript, root_, log_};
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    if (posix_spawnp(&pid_, "python3", &actions, nullptr, argv.data(), environ) != 0) pid_ = -1;
    posix_spawn_file_actions_destroy(&actions);
    close(fds[1]);
    // Read the port, waiting at most 20 s.
    std::string line;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (pid_ > 0 && line.find('\n') == std::string::npos &&
           std::chrono::steady_clock::now() < deadline) {
      pollfd pfd = {fds[0], POLLIN, 0};
      if (poll(&pfd, 1, 200) <= 0) continue;
      char buf[64];
      ssize_t n = read(fds[0], buf, sizeof buf);
      if (n <= 0) break;
      line.append(buf, static_cast<size_t>(n));
    }
    close(fds[0]);
    port_ = std::atoi(line.c_str());
    issuer_ = "http://127.0.0.1:" + std::to_string(port_);
    WriteFile(root_ + "/.well-known/openid-configuration",
              json{{"issuer", issuer_}, {"jwks_uri", issuer_ + "/keys/jwks.json"}}.dump());
    std::filesystem::create_directories(root_ + "/keys");
  }
  ~FakeIssuer() { Stop(); }

  void Stop() {
    if (pid_ <= 0) return;
    kill(pid_, SIGTERM);
    int status;
    waitpid(pid_, &status, 0);
    pid_ = -1;
  }

  bool ok() const { return port_ > 0; }
  const std::string& issuer() const { return issuer_; }
  void Serve(const json& jwks) { WriteFile(root_ + "/keys/jwks.json", jwks.dump()); }

  // How many times the JWKS was fetched.
  int JwksFetches() const {
    std::ifstream in(log_);
    std::string line;
    int n = 0;
    while (std::getline(in, line)) n += line == "/keys/jwks.json";
    return n;
  }

 private:
  std::string root_;
  std::string log_;
  pid_t pid_ = -1;
  int port_ = 0;
  std::string issuer_;
};

class OidcFetchTest : public OidcTest {
 protected:
  OidcOptions FetchOptions(const std::string& issuer) {
    OidcOptions o = Options();
    o.jwks_file = "";
    o.issuer = issuer;
    o.jwks_cache_ttl = std::chrono::seconds(3600);
    return o;
  }
  std::string TokenFor(const TestKey& key, const std::string& issuer) {
    // Times follow the manual clock, which these tests move by hours.
    long long now =
        std::chrono::duration_cast<std::chrono::seconds>(now_.time_since_epoch()).count();
    json c = Claims();
    c["iss"] = issuer;
    c["iat"] = now;
    c["exp"] = now + 600;
    return Token(key, c);
  }
};

TEST_F(OidcFetchTest, FetchesCachesAndRefetchesOnUnknownKid) {
  FakeIssuer issuer(dir_);
  ASSERT_TRUE(issuer.ok());
  issuer.Serve(Jwks({&K().rsa}));
  auto auth = Make(FetchOptions(issuer.issuer()));
  ASSERT_NE(auth, nullptr);
  EXPECT_EQ(issuer.JwksFetches(), 0);  // Create() does not fetch

  absl::StatusOr<Principal> p = auth->Authenticate(TokenFor(K().rsa, issuer.issuer()));
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->name, "oidc:alice");
  EXPECT_TRUE(auth->Authenticate(TokenFor(K().rsa, issuer.issuer())).ok());
  EXPECT_EQ(issuer.JwksFetches(), 1);

  // The issuer rotates: a token with the new kid makes one refetch.
  issuer.Serve(Jwks({&K().rsa, &K().ec}));
  now_ += std::chrono::seconds(1);
  p = auth->Authenticate(TokenFor(K().ec, issuer.issuer()));
  EXPECT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(issuer.JwksFetches(), 2);

  // Forged kids within 30 s of that refetch cause none.
  for (int i = 0; i < 5; ++i) {
    Rejected(*auth, TokenFor(K().rsa.WithKid("forged-" + std::to_string(i)), issuer.issuer()));
  }
  issuer.Serve(Jwks({&K().rsa, &K().ec, &K().rsa2}));
  now_ += std::chrono::seconds(29);
  EXPECT_THAT(Rejected(*auth, TokenFor(K().rsa2, issuer.issuer())), HasSubstr("rsa-2"));
  EXPECT_EQ(issuer.JwksFetches(), 2);
  // 30 s later one more is allowed.
  now_ += std::chrono::seconds(1);
  p = auth->Authenticate(TokenFor(K().rsa2, issuer.issuer()));
  EXPECT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(issuer.JwksFetches(), 3);

  // The cache expires after jwks_cache_ttl: the next call fetches again.
  now_ += std::chrono::seconds(3600);
  EXPECT_TRUE(auth->Authenticate(TokenFor(K().rsa, issuer.issuer())).ok());
  EXPECT_EQ(issuer.JwksFetches(), 4);

  // The issuer goes away: the cached keys keep serving.
  issuer.Stop();
  now_ += std::chrono::seconds(3601);
  p = auth->Authenticate(TokenFor(K().rsa, issuer.issuer()));
  EXPECT_TRUE(p.ok()) << p.status();
}

TEST_F(OidcFetchTest, DiscoveryMustNameTheIssuer) {
  FakeIssuer issuer(dir_);
  ASSERT_TRUE(issuer.ok());
  issuer.Serve(Jwks({&K().rsa}));
  // Same server, another spelling of it: the discovery document names the other one.
  std::string other = issuer.issuer() + "/";
  auto auth = Make(FetchOptions(other));
  ASSERT_NE(auth, nullptr);
  absl::StatusOr<Principal> p = auth->Authenticate(TokenFor(K().rsa, other));
  EXPECT_EQ(p.status().code(), absl::StatusCode::kUnavailable) << p.status();
  EXPECT_THAT(p.status().message(), HasSubstr("issuer"));
}

TEST_F(OidcFetchTest, UnreachableIssuerIsUnavailable) {
  // A port nothing listens on.
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  socklen_t len = sizeof addr;
  ASSERT_EQ(getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  close(fd);
  std::string url = "http://127.0.0.1:" + std::to_string(ntohs(addr.sin_port));

  auto auth = Make(FetchOptions(url));
  ASSERT_NE(auth, nullptr);
  absl::StatusOr<Principal> p = auth->Authenticate(TokenFor(K().rsa, url));
  EXPECT_EQ(p.status().code(), absl::StatusCode::kUnavailable) << p.status();
  EXPECT_THAT(p.status().message(), HasSubstr(url));
  // Malformed tokens are still Unauthenticated: they never need the keys.
  EXPECT_EQ(auth->Authenticate("garbage").status().code(), absl::StatusCode::kUnauthenticated);
  // Within the back-off after a failure, no new attempt, but still Unavailable.
  p = auth->Authenticate(TokenFor(K().rsa, url));
  EXPECT_EQ(p.status().code(), absl::StatusCode::kUnavailable) << p.status();
}

}  // namespace
}  // namespace dagd::server::auth
