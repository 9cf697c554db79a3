#include "runners/local/secret_mask.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <memory>
#include <random>
#include <string>
#include <vector>

namespace dagd::runners::local {
namespace {

using ::testing::Contains;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kKey[] =
    "-----BEGIN OPENSSH PRIVATE KEY-----\n"
    "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\n"
    "QyNTUxOQAAACDx1Pj6m0Z7o9mB3kJ5lq2v7sY1s8tJ0o5r2Yc1Hk6yQAAAAJgpZ3c0KWd3\n"
    "short\n"
    "-----END OPENSSH PRIVATE KEY-----";

// Feeds `text` to a Stream cut at `cuts` (ascending offsets) and returns everything it emitted.
std::string Streamed(const std::shared_ptr<const SecretMasker>& masker, std::string_view text,
                     const std::vector<size_t>& cuts) {
  SecretMasker::Stream stream(masker);
  std::string out;
  size_t from = 0;
  for (size_t cut : cuts) {
    out += stream.Feed(text.substr(from, cut - from));
    from = cut;
  }
  out += stream.Feed(text.substr(from));
  out += stream.Flush();
  return out;
}

TEST(SecretMaskerTest, NothingToMaskPassesTextThrough) {
  SecretMasker none;
  EXPECT_TRUE(none.empty());
  EXPECT_EQ(none.Mask("hunter2 and more"), "hunter2 and more");
  SecretMasker::Stream null_stream;
  EXPECT_EQ(null_stream.Feed("abc"), "abc");
  EXPECT_EQ(null_stream.Flush(), "");
}

TEST(SecretMaskerTest, ReplacesEveryOccurrence) {
  SecretMasker masker({"hunter2", "s3cr3t-token"});
  EXPECT_EQ(masker.Mask("pw=hunter2 token=s3cr3t-token again hunter2"),
            "pw=******** token=******** again ********");
  EXPECT_EQ(masker.Mask("hunter2hunter2"), "****************");
  EXPECT_EQ(masker.Mask("hunter"), "hunter");
  EXPECT_EQ(masker.Mask(""), "");
}

TEST(SecretMaskerTest, ValuesShorterThanFourBytesAreNotMasked) {
  SecretMasker masker({"", "a", "ab", "abc", "wxyz"});
  EXPECT_EQ(masker.patterns(), std::vector<std::string>{"wxyz"});
  EXPECT_EQ(masker.Mask("a ab abc wxyz"), "a ab abc ********");
  EXPECT_TRUE(SecretMasker({"abc", "no"}).empty());
}

TEST(SecretMaskerTest, LeftmostThenLongestWins) {
  SecretMasker masker({"abcd", "abcdefgh", "cdefghij"});
  // At offset 2, both "abcd" and "abcdefgh" start: the longer one is masked whole.
  EXPECT_EQ(masker.Mask("xxabcdefghyy"), "xx********yy");
  // "abcdefgh" starts left of "cdefghij" and is masked first; the rest of the overlap shows.
  EXPECT_EQ(masker.Mask("abcdefghij"), "********ij");
  EXPECT_EQ(masker.Mask("abcdefg"), "********efg");
}

TEST(SecretMaskerTest, OverlappingSecretsNeverShowWhole) {
  SecretMasker masker({"abcd1234", "1234wxyz"});
  const std::string masked = masker.Mask("abcd1234wxyz / 1234wxyz / abcd1234");
  EXPECT_EQ(masked, "********wxyz / ******** / ********");
  EXPECT_THAT(masked, Not(HasSubstr("abcd1234")));
  EXPECT_THAT(masked, Not(HasSubstr("1234wxyz")));
}

TEST(SecretMaskerTest, MasksTheJsonEncodedForm) {
  // Quotes, backslashes, control characters: as Python's json.dumps writes them.
  SecretMasker masker({"pa\"ss\\wo\trd\x01"});
  EXPECT_THAT(masker.patterns(), Contains("pa\\\"ss\\\\wo\\trd\\u0001"));
  EXPECT_EQ(masker.Mask(R"({"msg": "pw is pa\"ss\\wo\trd\u0001!"})"),
            R"({"msg": "pw is ********!"})");
  EXPECT_EQ(masker.Mask("raw pa\"ss\\wo\trd\x01 too"), "raw ******** too");
}

TEST(SecretMaskerTest, MasksBothJsonFormsOfNonAsciiValues) {
  SecretMasker masker({"pässwörd-🔑"});
  // ensure_ascii=False keeps the UTF-8 bytes; ensure_ascii=True writes \u escapes (a surrogate
  // pair for the key).
  EXPECT_EQ(masker.Mask("{\"a\": \"pässwörd-🔑\"}"), "{\"a\": \"********\"}");
  EXPECT_EQ(masker.Mask(R"({"a": "p\u00e4ssw\u00f6rd-\ud83d\udd11"})"), R"({"a": "********"})");
}

TEST(SecretMaskerTest, MultiLineSecretsAreMaskedWholeAndLineByLine) {
  SecretMasker masker({kKey});
  EXPECT_EQ(masker.Mask(std::string("key:\n") + kKey + "\nend"), "key:\n********\nend");
  // As a JSON string (newlines escaped), e.g. in an Ansible event.
  const std::string json_body =
      "-----BEGIN OPENSSH PRIVATE KEY-----\\n"
      "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\\n"
      "QyNTUxOQAAACDx1Pj6m0Z7o9mB3kJ5lq2v7sY1s8tJ0o5r2Yc1Hk6yQAAAAJgpZ3c0KWd3\\n"
      "short\\n"
      "-----END OPENSSH PRIVATE KEY-----";
  EXPECT_EQ(masker.Mask("{\"content\": \"" + json_body + "\"}"), "{\"content\": \"********\"}");
  // One line of the key on its own (say, a `head -2`), with its surroundings; lines under eight
  // bytes are left alone.
  EXPECT_EQ(
      masker.Mask("line: QyNTUxOQAAACDx1Pj6m0Z7o9mB3kJ5lq2v7sY1s8tJ0o5r2Yc1Hk6yQAAAAJgpZ3c0KWd3 "
                  "short"),
      "line: ******** short");
  EXPECT_EQ(masker.Mask("-----END OPENSSH PRIVATE KEY-----"), "********");
}

TEST(SecretMaskerTest, MaskResultCoversMessageResultAndParameters) {
  SecretMasker masker({"hunter2"});
  engine::AttemptResult result;
  result.message = "task failed: hunter2 rejected";
  result.result = "{\"pw\": \"hunter2\"}";
  result.parameters = {{"a", "hunter2"}, {"b", "fine"}};
  masker.MaskResult(&result);
  EXPECT_EQ(result.message, "task failed: ******** rejected");
  EXPECT_EQ(result.result, "{\"pw\": \"********\"}");
  EXPECT_EQ(result.parameters.at("a"), "********");
  EXPECT_EQ(result.parameters.at("b"), "fine");
}

TEST(SecretMaskerStreamTest, PassesOnWhatCannotStartASecretAtOnce) {
  auto masker = std::make_shared<const SecretMasker>(std::vector<std::string>{"password1"});
  SecretMasker::Stream stream(masker);
  EXPECT_EQ(stream.Feed("TASK [hello] ****\n"), "TASK [hello] ****\n");
  EXPECT_EQ(stream.held(), 0u);
  // "pass" might become the secret: held back until the next piece decides.
  EXPECT_EQ(stream.Feed("ok: pw=pass"), "ok: pw=");
  EXPECT_EQ(stream.held(), 4u);
  EXPECT_EQ(stream.Feed("word1\n"), "********\n");
  EXPECT_EQ(stream.held(), 0u);
  // It was not the secret after all.
  EXPECT_EQ(stream.Feed("passw"), "");
  EXPECT_EQ(stream.Feed("ord2"), "password2");
  // At the end of the stream, a held prefix is what it is.
  EXPECT_EQ(stream.Feed("tail passwor"), "tail ");
  EXPECT_EQ(stream.Flush(), "passwor");
  EXPECT_EQ(stream.held(), 0u);
}

TEST(SecretMaskerStreamTest, WaitsForTheLongestSecretBeforeMaskingAShorterOne) {
  auto masker = std::make_shared<const SecretMasker>(std::vector<std::string>{"abcd", "abcdefgh"});
  SecretMasker::Stream stream(masker);
  EXPECT_EQ(stream.Feed("abcd"), "");
  EXPECT_EQ(stream.Feed("efgh!"), "********!");
  EXPECT_EQ(stream.Feed("abcdef"), "");
  EXPECT_EQ(stream.Feed("X"), "********efX");
  EXPECT_EQ(stream.Feed("abcd"), "");
  EXPECT_EQ(stream.Flush(), "********");
}

TEST(SecretMaskerStreamTest, EverySplitGivesTheSameResultAsTheWholeText) {
  auto masker = std::make_shared<const SecretMasker>(
      std::vector<std::string>{"hunter22", "hunter2hunter", "s3\"cr\\3t", kKey});
  const std::string text = std::string("start hunter2hunter22 x hunter22hunter22 ") +
                           "json {\"v\": \"s3\\\"cr\\\\3t\"} raw s3\"cr\\3t hunte " + kKey +
                           " b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW"
                           " end hunter2";
  const std::string whole = masker->Mask(text);
  for (const char* secret : {"hunter22", "hunter2hunter", "s3\"cr\\3t", "s3\\\"cr\\\\3t"}) {
    EXPECT_THAT(whole, Not(HasSubstr(secret)));
  }
  EXPECT_THAT(whole, Not(HasSubstr("b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ")));
  EXPECT_THAT(whole, HasSubstr("start ********22 x **************** "));
  EXPECT_THAT(whole, HasSubstr(" end hunter2"));  // shorter than any secret: kept

  EXPECT_EQ(Streamed(masker, text, {}), whole);
  for (size_t i = 0; i <= text.size(); ++i) {
    ASSERT_EQ(Streamed(masker, text, {i}), whole) << "cut at " << i;
  }
  for (size_t i = 0; i <= text.size(); i += 3) {
    for (size_t j = i; j <= text.size(); j += 5) {
      ASSERT_EQ(Streamed(masker, text, {i, j}), whole) << "cuts at " << i << ", " << j;
    }
  }
  std::vector<size_t> every_byte;
  for (size_t i = 1; i < text.size(); ++i) every_byte.push_back(i);
  EXPECT_EQ(Streamed(masker, text, every_byte), whole);
}

// Random texts over a small alphabet, so that secrets overlap and repeat: streaming with random
// cuts equals masking the whole, and no secret survives either way.
TEST(SecretMaskerStreamTest, RandomTextsAndCuts) {
  std::mt19937 rng(20240611);
  const std::string alphabet = "ab\"\\\n";
  auto random_text = [&](size_t length) {
    std::string s;
    for (size_t i = 0; i < length; ++i) s += alphabet[rng() % alphabet.size()];
    return s;
  };
  for (int round = 0; round < 300; ++round) {
    std::vector<std::string> secrets;
    for (int k = 0; k < 3; ++k) secrets.push_back(random_text(4 + rng() % 6));
    auto masker = std::make_shared<const SecretMasker>(secrets);
    const std::string text = random_text(rng() % 120);
    const std::string whole = masker->Mask(text);
    for (const std::string& pattern : masker->patterns()) {
      ASSERT_THAT(whole, Not(HasSubstr(pattern))) << "round " << round;
    }
    std::vector<size_t> cuts;
    for (size_t i = 0; i < text.size(); ++i) {
      if (rng() % 4 == 0) cuts.push_back(i);
    }
    ASSERT_EQ(Streamed(masker, text, cuts), whole) << "round " << round;
  }
}

}  // namespace
}  // namespace dagd::runners::local
